//! The picker's test setup, shared by its end-to-end tests: the picker block of the
//! repository's spin.toml as a test manifest, and a generated universe to load.

use serde_json::{Value, json};
use tessera_picking::market::Bar;
use tessera_picking::synth::{SynthParams, SyntheticUniverse, generate};

use crate::http::Request;
use crate::{Response, TestHost, root, toml_string, wasm};

/// The application head and the picker block of spin.toml, with the built .wasm and the
/// model directory as absolute paths. The cron trigger is left out (its ticks would race the
/// checks) and a route to `/internal/...` is added, which in spin.toml only the component's
/// own cron export reaches, so tests invoke the scheduled jobs deterministically.
pub fn picker_manifest() -> String {
    let root = root();
    let full = std::fs::read_to_string(root.join("spin.toml")).unwrap();
    let head = &full[..full.find("[[trigger.").expect("spin.toml has triggers")];
    let start = full
        .find("# picker:")
        .expect("spin.toml has the picker block");
    let rest = &full[start..];
    let end = rest.find("\n\n#").map_or(rest.len(), |i| i + 1);
    let block = rest[..end]
        .replace(
            "source = \"target/wasm32-wasip2/release/picker.wasm\"",
            &format!(
                "source = {}",
                toml_string(&wasm("picker").to_string_lossy())
            ),
        )
        .replace(
            "source = \".tessera/models/",
            &format!(
                "source = {}",
                toml_string(&format!("{}/.tessera/models/", root.display())).trim_end_matches('"')
            ),
        );
    let cron = block
        .find("[[trigger.cron]]")
        .expect("the picker block has its cron trigger");
    let block = &block[..cron];
    format!(
        "{head}\n{block}\n[[trigger.http]]\nroute = \"/internal/...\"\ncomponent = \"picker\"\n"
    )
}

/// A generated universe of `symbols` symbols over `trading_days` days (a tenth with unknown
/// fundamentals), the same for every call.
pub fn universe(symbols: usize, trading_days: usize) -> SyntheticUniverse {
    generate(&SynthParams {
        symbols,
        trading_days,
        unknown_fundamentals_fraction: 0.1,
        ..SynthParams::default()
    })
}

/// A daily bar as `POST /v1/market/bars` takes it.
pub fn bar_json(b: &Bar) -> Value {
    json!({"symbol": b.symbol, "interval": "1d", "time": b.time, "open": b.open,
           "high": b.high, "low": b.low, "close": b.close, "volume": b.volume})
}

/// Posts NDJSON lines for `tenant`.
pub fn post_ndjson(host: &TestHost, tenant: &str, path: &str, lines: &[Value]) -> Response {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    Request::new("POST", path)
        .header("x-tenant-id", tenant)
        .header("content-type", "application/x-ndjson")
        .body(body.as_bytes())
        .send(host.addr())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// Loads the universe's symbols (the index among them) and every bar for `tenant`.
pub fn load_universe(host: &TestHost, tenant: &str, u: &SyntheticUniverse) {
    let mut symbols: Vec<Value> = u.symbols.iter().map(|s| json!(s)).collect();
    symbols.push(json!(u.index));
    let r = Request::new("POST", "/v1/market/symbols")
        .header("x-tenant-id", tenant)
        .json(&json!(symbols))
        .send(host.addr())
        .unwrap_or_else(|e| panic!("POST /v1/market/symbols: {e}"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let mut lines: Vec<Value> = u.bars.iter().flatten().map(bar_json).collect();
    lines.extend(u.index_bars.iter().map(bar_json));
    let r = post_ndjson(host, tenant, "/v1/market/bars", &lines);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["rejected"].as_i64(), Some(0), "{}", r.describe());
}
