//! The picker's operations (its fragment of the API description, answered on
//! `GET /internal/openapi`): one per concrete public arm of `route` in `lib.rs`, each request
//! body from the very type its handler parses. `/internal/...` (the cron jobs and event
//! discovery runs) is reached only by service chaining and is not described.

use serde_json::{Value, json};
use tessera_api::openapi::{Fragment, Operation};
use tessera_picking::discovery::DiscoverySettings;
use tessera_picking::market::Symbol;

use crate::{discovery, trades, watchlist};

/// The bulk bodies (`POST /v1/market/symbols`, `POST /v1/market/bars`) come as a JSON array
/// of rows or as NDJSON, one row per line (`read_rows` in `market`).
const NDJSON: [&str; 2] = ["application/x-ndjson", "application/jsonl"];

/// A bar row (see [`bar_row`]).
const BAR_ROW: &str = "#/components/schemas/MarketBarRow";

pub fn fragment() -> Value {
    let symbols = on_error(Operation::post(
        "/v1/market/symbols",
        "Upsert symbols (idempotent)",
    ))
    .role("service");
    let bars = on_error(Operation::post(
        "/v1/market/bars",
        "Upsert OHLCV bars (idempotent)",
    ))
    .role("service");
    let time = "Unix seconds, YYYY-MM-DD (00:00 UTC) or YYYY-MM-DDTHH:MM:SSZ";
    let mut f = Fragment::new("picker")
        .op_with::<Vec<Symbol>>(symbols)
        .op_with_body(
            bars,
            "application/json",
            json!({"type": "array", "items": {"$ref": BAR_ROW}}),
        )
        .op(
            Operation::get("/v1/market/bars", "Bars of one symbol, oldest first")
                .required_query("symbol", json!({"type": "string"}), "the ticker")
                .query(
                    "interval",
                    json!({"type": "string", "enum": ["1m", "1d"], "default": "1d"}),
                    "bar size",
                )
                .query("from", json!({"type": ["integer", "string"]}), time)
                .query("to", json!({"type": ["integer", "string"]}), time)
                .query(
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": 10000, "default": 10000}),
                    "at most this many bars",
                ),
        );
    f = f
        .op(Operation::get(
            "/v1/discovery/settings",
            "The tenant's discovery settings",
        ))
        .op_with::<DiscoverySettings>(
            Operation::put("/v1/discovery/settings", "Replace the discovery settings")
                .role("operator"),
        )
        .op_with::<discovery::RunInput>(
            Operation::post(
                "/v1/discovery/run",
                "Run discovery: pickers, ensemble, suggestions, watchlist merge",
            )
            .created_or_ok(202)
            .body_optional(),
        )
        .op(Operation::get(
            "/v1/discovery/runs/{id}",
            "One discovery run",
        ))
        .op(Operation::get(
            "/v1/discovery/status",
            "The running and last runs, and how much market data there is",
        ))
        .op(Operation::get(
            "/v1/discovery/requests",
            "Event discovery runs asked for by the price-move monitor, newest first",
        ))
        .op(Operation::get(
            "/v1/discovery/suggestions",
            "The latest successful run's suggestions, in rank order",
        )
        .query(
            "source",
            json!({"type": "string", "enum": ["ensemble", "metric", "fuzzy", "llm", "all"],
                   "default": "ensemble"}),
            "whose suggestions: the ensemble's, one picker's, or all",
        )
        .query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 20}),
            "at most this many",
        ));
    f = f
        .op(Operation::get("/v1/discovery/watchlist", "The watchlist"))
        .op_with::<watchlist::TickerInput>(Operation::post(
            "/v1/discovery/watchlist/add",
            "Add a symbol to the watchlist",
        ))
        .op_with::<watchlist::TickerInput>(Operation::post(
            "/v1/discovery/watchlist/remove",
            "Remove a symbol from the watchlist",
        ))
        .op(Operation::get(
            "/v1/discovery/performance",
            "The scorecard: suggestions' forward returns by picker",
        )
        .query(
            "horizon",
            json!({"type": "integer", "enum": tessera_picking::forward::HORIZONS, "default": 5}),
            "forward-return horizon in trading days",
        ))
        .op_with::<trades::TradeInput>(
            Operation::post("/v1/trades", "Record an executed trade")
                .created_or_ok(201)
                .role("service"),
        )
        .op(Operation::get("/v1/trades", "Executed trades"))
        .op_with::<trades::ExitInput>(
            Operation::post("/v1/trades/{id}/exit", "Record a trade's exit and outcome")
                .role("service"),
        );
    let mut out = f.to_json();
    out["schemas"]["MarketBarRow"] = bar_row();
    // What the builder cannot say: the bulk bodies' NDJSON form (each line one row of the
    // JSON array's).
    for path in ["/v1/market/symbols", "/v1/market/bars"] {
        let content = &mut out["paths"][path]["post"]["requestBody"]["content"];
        let mut row = content["application/json"]["schema"]["items"].clone();
        row["description"] = json!("one row per line");
        for media_type in NDJSON {
            content[media_type] = json!({ "schema": row });
        }
    }
    out
}

/// What a bulk load does with a bad row.
fn on_error(op: Operation) -> Operation {
    op.query(
        "on_error",
        json!({"type": "string", "enum": ["fail", "skip"], "default": "fail"}),
        "`fail`: a bad row refuses the load (400 naming it) and nothing is written; \
         `skip`: the good rows are written, the bad ones counted and listed",
    )
}

/// One bar row of `POST /v1/market/bars`. Written by hand: the handler reads each field as a
/// JSON value itself (`RawBar` in `market`: a missing or mistyped field is that row's
/// rejection, named) before `BarRow::validate`.
fn bar_row() -> Value {
    let price = |what: &str| {
        json!({"type": ["number", "string"], "description":
               format!("{what}: a finite number ≥ 0 (or its decimal text)")})
    };
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["symbol", "interval", "time", "open", "high", "low", "close", "volume"],
        "properties": {
            "symbol": {"type": "string", "minLength": 1,
                       "description": "a ticker already posted to /v1/market/symbols"},
            "interval": {"type": "string", "enum": ["1m", "1d"]},
            "time": {"type": ["integer", "string"], "description":
                     "the bar's start: Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, on the \
                      interval's grid (a whole minute; 00:00 UTC of the trading date)"},
            "open": price("open, within [low, high]"),
            "high": price("high, ≥ low"),
            "low": price("low"),
            "close": price("close, within [low, high]"),
            "volume": price("volume"),
        },
    })
}
