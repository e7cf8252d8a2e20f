//! The picker's demo data: tessera-picking's generated universe (500 symbols and an index
//! over three years of NYSE days, every symbol marked `generated`; no real listing) loaded
//! for the `demo` tenant through the picker's own bulk endpoints, NDJSON in chunks under the
//! host's body limit. Skipped when the tenant already holds every bar (upserts are
//! idempotent either way).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tessera_picking::market::Bar;
use tessera_picking::synth::{SynthParams, generate};

/// The tenant of the local admin key `cargo xtask up` creates, so the README's examples
/// (which send that key) see the demo universe.
pub const DEMO_TENANT: &str = "default";
/// Bars per request: about 5 MB of NDJSON, under the host's 8 MiB default.
const BARS_PER_REQUEST: usize = 40_000;

/// One HTTP/1.1 request over std (xtask keeps no HTTP client dependency).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    key: &str,
) -> Result<(u16, String)> {
    let mut stream =
        std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         x-tenant-id: {DEMO_TENANT}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed HTTP answer from {addr}"))?;
    let payload = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, payload))
}

fn bar_line(b: &Bar) -> String {
    json!({"symbol": b.symbol, "interval": "1d", "time": b.time, "open": b.open,
           "high": b.high, "low": b.low, "close": b.close, "volume": b.volume})
    .to_string()
}

/// Loads the generated universe for the demo tenant and runs discovery once.
pub fn load_demo(addr: &str, key: &str) -> Result<()> {
    let u = generate(&SynthParams::default());
    let mut bars: Vec<&Bar> = u.bars.iter().flatten().collect();
    bars.extend(u.index_bars.iter());
    let (status, answer) = request(
        addr,
        "GET",
        "/v1/discovery/status",
        "application/json",
        b"",
        key,
    )?;
    if status != 200 {
        bail!("GET /v1/discovery/status answered {status}: {answer}");
    }
    let held: Value = serde_json::from_str(&answer).unwrap_or_default();
    if held["bars"].as_u64() == Some(bars.len() as u64) {
        println!(
            "xtask: picker demo: tenant `{DEMO_TENANT}` already holds the {} generated bars",
            bars.len()
        );
        return Ok(());
    }
    let mut symbols: Vec<Value> = u.symbols.iter().map(|s| json!(s)).collect();
    symbols.push(json!(u.index));
    let body = Value::Array(symbols).to_string();
    let (status, answer) = request(
        addr,
        "POST",
        "/v1/market/symbols",
        "application/json",
        body.as_bytes(),
        key,
    )?;
    if status != 200 {
        bail!("POST /v1/market/symbols answered {status}: {answer}");
    }
    let started = Instant::now();
    for chunk in bars.chunks(BARS_PER_REQUEST) {
        let body: String = chunk.iter().map(|b| bar_line(b) + "\n").collect();
        let (status, answer) = request(
            addr,
            "POST",
            "/v1/market/bars",
            "application/x-ndjson",
            body.as_bytes(),
            key,
        )?;
        if status != 200 {
            bail!("POST /v1/market/bars answered {status}: {answer}");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "xtask: picker demo: {} generated symbols and {} daily bars ({} to {}) loaded for tenant \
         `{DEMO_TENANT}` in {seconds:.1} s ({:.0} bars/s)",
        u.symbols.len() + 1,
        bars.len(),
        u.days[0],
        u.days[u.days.len() - 1],
        bars.len() as f64 / seconds
    );
    // Market conditions read the generated index rather than an equal-weight one.
    let settings = json!({ "index": tessera_picking::synth::INDEX_TICKER }).to_string();
    let (status, answer) = request(
        addr,
        "PUT",
        "/v1/discovery/settings",
        "application/json",
        settings.as_bytes(),
        key,
    )?;
    if status != 200 {
        bail!("PUT /v1/discovery/settings answered {status}: {answer}");
    }
    let (status, answer) = request(
        addr,
        "POST",
        "/v1/discovery/run",
        "application/json",
        b"",
        key,
    )?;
    if status != 202 {
        bail!("POST /v1/discovery/run answered {status}: {answer}");
    }
    println!("xtask: picker demo: first discovery run {answer}");
    Ok(())
}
