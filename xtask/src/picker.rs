//! The picker's demo data, loaded for the `default` tenant through the picker's own bulk
//! endpoints (NDJSON in chunks under the host's body limit): the real daily history of
//! AAPL, GOOG, IBM, MSFT and FB (2000–2013, from the `bokeh_sampledata` wheel set-up put in
//! `.tessera/`; marked real) and tessera-picking's generated universe (500 symbols and an
//! index over three years of NYSE days, marked `generated`), generated to end on the real
//! series' last day so that a discovery run ranks both. Skipped when the tenant already
//! holds every bar (upserts are idempotent either way).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tessera_picking::market::Bar;
use tessera_picking::sampledata::{RealSeries, STOCKS_CSV, parse_stocks_csv};
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
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP answer from {addr}"))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed HTTP answer from {addr}"))?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let payload = if chunked {
        dechunk(body).ok_or_else(|| anyhow!("malformed chunked answer from {addr}"))?
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&payload).into_owned()))
}

/// The body of a `Transfer-Encoding: chunked` answer: hex size lines, each followed by
/// that many bytes, up to the empty chunk.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(rest.len());
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        let data = rest.get(line + 2..line + 2 + size)?;
        out.extend_from_slice(data);
        rest = rest.get(line + 2 + size..)?.strip_prefix(b"\r\n")?;
    }
}

fn bar_line(b: &Bar) -> String {
    json!({"symbol": b.symbol, "interval": "1d", "time": b.time, "open": b.open,
           "high": b.high, "low": b.low, "close": b.close, "volume": b.volume})
    .to_string()
}

/// The real series `cargo xtask setup` extracted (xtask/src/sampledata.rs).
fn read_real(state_dir: &std::path::Path) -> Result<RealSeries> {
    let path = state_dir.join(STOCKS_CSV);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (run `cargo xtask setup` to fetch it)",
            path.display()
        )
    })?;
    parse_stocks_csv(&text).with_context(|| format!("reading {}", path.display()))
}

/// Loads the real series and the generated universe for the demo tenant and runs discovery
/// once, as of the last real day.
pub fn load_demo(addr: &str, key: &str, state_dir: &std::path::Path) -> Result<()> {
    let real = read_real(state_dir)?;
    let (first_real, last_real) = real.span().context("the real series holds no bars")?;
    let u = generate(&SynthParams::default().ending_on(last_real));
    let mut bars: Vec<&Bar> = u.bars.iter().flatten().collect();
    bars.extend(u.index_bars.iter());
    bars.extend(real.bars.iter().flatten());
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
            "xtask: picker demo: tenant `{DEMO_TENANT}` already holds the {} demo bars",
            bars.len()
        );
        return Ok(());
    }
    let mut symbols: Vec<Value> = u.symbols.iter().map(|s| json!(s)).collect();
    symbols.push(json!(u.index));
    symbols.extend(real.symbols.iter().map(|s| json!(s)));
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
    // Written first, so the rate printed below is the picker's, not this debug build's JSON.
    let bodies: Vec<String> = bars
        .chunks(BARS_PER_REQUEST)
        .map(|chunk| chunk.iter().map(|b| bar_line(b) + "\n").collect())
        .collect();
    let started = Instant::now();
    for body in &bodies {
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
        let counts: Value = serde_json::from_str(&answer).unwrap_or_default();
        if counts["rejected"] != 0 {
            bail!("POST /v1/market/bars rejected demo bars: {answer}");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "xtask: picker demo: {} generated symbols ({} to {}) and the real daily history of {} \
         ({first_real} to {last_real}, PyPI wheel bokeh_sampledata), {} bars, loaded for tenant \
         `{DEMO_TENANT}` in {seconds:.1} s ({:.0} bars/s)",
        u.symbols.len() + 1,
        u.days[0],
        u.days[u.days.len() - 1],
        real.symbols
            .iter()
            .map(|s| s.ticker.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        bars.len(),
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
    let run = json!({ "as_of": last_real.to_string() }).to_string();
    let (status, answer) = request(
        addr,
        "POST",
        "/v1/discovery/run",
        "application/json",
        run.as_bytes(),
        key,
    )?;
    if status != 202 {
        bail!("POST /v1/discovery/run answered {status}: {answer}");
    }
    println!("xtask: picker demo: first discovery run (as of {last_real}) {answer}");
    // A tenant loaded by an earlier demo (2021–2024) keeps those bars, and runs without
    // `as_of` default to its latest day, where the real series has none.
    let (_, answer) = request(
        addr,
        "GET",
        "/v1/discovery/status",
        "application/json",
        b"",
        key,
    )?;
    let status: Value = serde_json::from_str(&answer).unwrap_or_default();
    if let Some(latest) = status["latest_daily_bar"]
        .as_str()
        .filter(|d| *d > last_real.to_string().as_str())
    {
        println!(
            "xtask: picker demo: note: tenant `{DEMO_TENANT}` also holds bars up to {latest} from an \
             earlier demo; send {{\"as_of\": \"{last_real}\"}} to /v1/discovery/run to rank the demo data"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::dechunk;

    #[test]
    fn chunked_bodies_are_joined() {
        let body = b"4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).as_deref(), Some(&b"{\"a\":1}"[..]));
        // A multi-byte character split across chunks.
        let body = b"1\r\n\xc3\r\n1\r\n\xa9\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).as_deref(), Some("\u{e9}".as_bytes()));
        assert_eq!(dechunk(b"5\r\nab"), None);
        assert_eq!(dechunk(b"zz\r\nab\r\n0\r\n\r\n"), None);
    }
}
