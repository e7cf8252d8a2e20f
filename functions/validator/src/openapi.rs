//! The validator's operations (its fragment of the API description, answered on
//! `GET /internal/openapi`): one per concrete arm of `route` in `lib.rs`, each request body
//! from the very type its handler parses.

use serde_json::{Value, json};
use tessera_api::openapi::{Fragment, Operation};
use tessera_validation::formula::sheet::SheetRequest;
use tessera_validation::model::ModelRequest;

use crate::{breaker, limits, snapshots, trade};

pub fn fragment() -> Value {
    Fragment::new("validator")
        .op_with::<trade::TradeRequest>(Operation::post(
            "/v1/validate/trade",
            "Verdict on a proposed trade (stored for audit)",
        ))
        .op_with::<SheetRequest>(Operation::post(
            "/v1/validate/formula",
            "Evaluate a sheet of formulas and check claimed values",
        ))
        .op_with::<ModelRequest>(Operation::post(
            "/v1/validate/model",
            "Check a DCF or LBO model",
        ))
        .op(Operation::get(
            "/v1/validator/limits",
            "The tenant's hard limits and breaker rules",
        ))
        .op_with::<limits::Update>(
            Operation::put(
                "/v1/validator/limits",
                "Change hard limits and breaker rules",
            )
            .role("operator"),
        )
        .op(
            Operation::get("/v1/validations", "The audit of validations, newest first")
                .query(
                    "kind",
                    json!({"type": "string", "enum": ["trade", "formula", "model"]}),
                    "only validations of this kind",
                )
                .query(
                    "verdict",
                    json!({"type": "string", "enum": [
                        "approve", "approve_with_warnings", "reject", "valid", "invalid"
                    ]}),
                    "only validations with this verdict",
                )
                .query(
                    "symbol",
                    json!({"type": "string"}),
                    "only trades of this symbol (case-insensitive)",
                )
                .query(
                    "before",
                    json!({"type": "string"}),
                    "only validations made before this time (ISO 8601), for paging",
                )
                .query(
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
                    "at most this many",
                ),
        )
        .op_with::<snapshots::Snapshot>(
            Operation::post(
                "/v1/portfolio/snapshots",
                "Report the account after a trading cycle",
            )
            .created_or_ok(201)
            .role("service"),
        )
        .op(Operation::get(
            "/v1/system/circuit-breaker",
            "The circuit breaker, its metrics and the auto-resume check",
        ))
        .op_with::<breaker::Resume>(
            Operation::post(
                "/v1/system/circuit-breaker/resume",
                "Close a breaker awaiting approval",
            )
            .role("operator"),
        )
        .to_json()
}
