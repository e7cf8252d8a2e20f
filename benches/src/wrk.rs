//! Runs `wrk` (the load tool for every HTTP benchmark here) and parses its report.

use anyhow::{Context, Result, bail};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub requests_per_sec: f64,
    /// Latency percentiles in microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    /// Non-2xx/3xx answers plus socket errors: a benchmark with errors is not a result.
    pub errors: u64,
}

pub fn run(url: &str, load: Load) -> Result<Report> {
    let out = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .arg("--latency")
        .arg(url)
        .output()
        .context("running wrk (install it: `apt-get install wrk`)")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// Parses wrk 4's text report.
pub fn parse(text: &str) -> Result<Report> {
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = Some(v.trim().parse::<f64>().context("Requests/sec")?);
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = Some(duration_us(v.trim())?);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = Some(duration_us(v.trim())?);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().context("Non-2xx count")?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                if let Some(n) = part.split_whitespace().nth(1) {
                    errors += n.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    match (rps, p50, p99) {
        (Some(requests_per_sec), Some(p50_us), Some(p99_us)) => Ok(Report {
            requests_per_sec,
            p50_us,
            p99_us,
            errors,
        }),
        _ => bail!("unexpected wrk output:\n{text}"),
    }
}

/// "812.00us", "1.23ms", "2.00s" → microseconds.
fn duration_us(s: &str) -> Result<f64> {
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {s:?}"))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().with_context(|| format!("number in {s:?}"))?;
    Ok(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        other => bail!("unknown unit {other:?} in {s:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 5s test @ http://127.0.0.1:3000/hello
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.33us  200.10us   5.12ms   90.00%
    Req/Sec    19.50k     1.20k   21.00k    80.00%
  Latency Distribution
     50%  790.00us
     75%    0.90ms
     90%    1.10ms
     99%    2.50ms
  97000 requests in 5.00s, 9.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  19400.12
Transfer/sec:      1.80MB
";

    #[test]
    fn parses_a_report() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.requests_per_sec, 19400.12);
        assert_eq!(r.p50_us, 790.0);
        assert_eq!(r.p99_us, 2500.0);
        assert_eq!(r.errors, 7);
    }

    #[test]
    fn rejects_other_text() {
        assert!(parse("connection refused").is_err());
        assert!(duration_us("12").is_err());
        assert_eq!(duration_us("1.5s").unwrap(), 1.5e6);
    }
}
