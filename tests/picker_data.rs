//! The picker on real history: the daily AAPL, GOOG, IBM, MSFT and FB series (2000–2013) of
//! the PyPI wheel `bokeh_sampledata`, as `cargo xtask setup` extracts it into
//! `.tessera/sampledata/stocks.csv`, loaded through the real host into real Postgres next
//! to a generated universe that ends on the same day. Every real row is accepted (counted
//! per ticker), stored to the last bit and read back, and a discovery run over both ranks the
//! real symbols with each picker's verdict: the MetricPicker reports them `unavailable` (the
//! sample has no market cap, beta or spread), the FuzzyPicker scores them from their bars.

use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{Checks, HostCommand, Response, TempDir, TestDb, TestHost};
use tessera_picking::market::Bar;
use tessera_picking::sampledata::{RealSeries, STOCKS_CSV, parse_stocks_csv};
use tessera_picking::synth::{INDEX_TICKER, SynthParams, generate};

const TENANT: &str = "pick-data";

/// The extracted file, or a failure that says how to get it.
fn real_series() -> RealSeries {
    let path = tessera_e2e::root().join(".tessera").join(STOCKS_CSV);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the picker's real market data {} is missing ({e}): run `cargo xtask setup`, which \
             fetches the PyPI wheel bokeh_sampledata==2026.1 and extracts stocks.csv there",
            path.display()
        )
    });
    parse_stocks_csv(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn host(db: &TestDb, dir: &TempDir) -> TestHost {
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, tessera_e2e::market::picker_manifest()).unwrap();
    HostCommand::with_manifest_file(db, path)
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("SPIN_VARIABLE_AUTH_MODE", "trusted-headers")
        .start()
}

fn send(host: &TestHost, method: &str, path: &str, body: Option<&Value>) -> Response {
    let r = Request::new(method, path).header("x-tenant-id", TENANT);
    match body {
        Some(b) => r.json(b).send(host.addr()),
        None => r.send(host.addr()),
    }
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn post_bars(host: &TestHost, bars: &[&Bar]) -> Value {
    let body: String = bars
        .iter()
        .map(|b| {
            json!({"symbol": b.symbol, "interval": "1d", "time": b.time, "open": b.open,
                   "high": b.high, "low": b.low, "close": b.close, "volume": b.volume})
            .to_string()
                + "\n"
        })
        .collect();
    let r = Request::new("POST", "/v1/market/bars")
        .header("x-tenant-id", TENANT)
        .header("content-type", "application/x-ndjson")
        .body(body.as_bytes())
        .send(host.addr())
        .expect("POST /v1/market/bars");
    ok(r, 200)
}

fn ok(r: Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.describe());
    r.json()
}

fn counts(j: &Value) -> (i64, i64, i64, i64) {
    let n = |k: &str| j[k].as_i64().unwrap_or(-1);
    (n("inserted"), n("updated"), n("unchanged"), n("rejected"))
}

#[test]
fn picker_on_real_history() {
    let real = real_series();
    let (first, last) = real.span().expect("the real series has bars");
    let u = generate(
        &SynthParams {
            symbols: 40,
            trading_days: 300,
            ..SynthParams::default()
        }
        .ending_on(last),
    );
    let db = TestDb::new();
    let dir = TempDir::new("tessera-picker-data");
    let host = host(&db, &dir);
    let mut c = Checks::new("picker_data");

    c.check("the file is the pinned sample", || {
        let per_ticker: Vec<(&str, usize)> = real
            .symbols
            .iter()
            .zip(&real.bars)
            .map(|(s, b)| (s.ticker.as_str(), b.len()))
            .collect();
        assert_eq!(
            per_ticker,
            [
                ("AAPL", 3270),
                ("FB", 196),
                ("GOOG", 2148),
                ("IBM", 3270),
                ("MSFT", 3270)
            ]
        );
        assert_eq!(
            (first.to_string(), last.to_string()),
            ("2000-03-01".into(), "2013-03-01".into())
        );
        assert_eq!(u.days.last(), Some(&last));
    });

    c.check(
        "real and generated symbols load, the real ones marked real",
        || {
            let mut symbols: Vec<Value> = real.symbols.iter().map(|s| json!(s)).collect();
            symbols.extend(u.symbols.iter().map(|s| json!(s)));
            symbols.push(json!(u.index));
            let j = ok(
                send(&host, "POST", "/v1/market/symbols", Some(&json!(symbols))),
                200,
            );
            assert_eq!(counts(&j), (46, 0, 0, 0), "{j}");
            let rows = db
                .query(
                    "SELECT ticker FROM market_symbols WHERE NOT generated AND sector IS NOT NULL \
                 AND market_cap IS NULL ORDER BY ticker",
                )
                .unwrap();
            let tickers: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            assert_eq!(tickers, ["AAPL", "FB", "GOOG", "IBM", "MSFT"]);
        },
    );

    c.check(
        "every real bar is accepted, and a reload changes nothing",
        || {
            let bars: Vec<&Bar> = real.bars.iter().flatten().collect();
            assert_eq!(bars.len(), 12_154);
            let j = post_bars(&host, &bars);
            assert_eq!(counts(&j), (12_154, 0, 0, 0), "{j}");
            let stored = db
                .query(
                    "SELECT symbol, count(*) FROM market_bars WHERE interval = '1d' \
                 GROUP BY symbol ORDER BY symbol",
                )
                .unwrap();
            let stored: Vec<(String, i64)> = stored.iter().map(|r| (r.get(0), r.get(1))).collect();
            let expected: Vec<(String, i64)> = real
                .symbols
                .iter()
                .zip(&real.bars)
                .map(|(s, b)| (s.ticker.clone(), b.len() as i64))
                .collect();
            assert_eq!(stored, expected);
            let j = post_bars(&host, &bars);
            assert_eq!(counts(&j), (0, 0, 12_154, 0), "{j}");
        },
    );

    c.check("real bars are stored to the last bit and read back", || {
        let stored = db
            .query(
                "SELECT symbol, extract(epoch FROM time)::int8, open, high, low, close, volume \
                 FROM market_bars WHERE symbol IN ('AAPL', 'FB', 'GOOG', 'IBM', 'MSFT') \
                 ORDER BY symbol, time",
            )
            .unwrap();
        let sent: Vec<&Bar> = real.bars.iter().flatten().collect();
        assert_eq!(stored.len(), sent.len());
        for (r, b) in stored.iter().zip(&sent) {
            let row: (String, i64, [f64; 5]) = (
                r.get(0),
                r.get(1),
                [r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)],
            );
            let want = (
                b.symbol.clone(),
                b.time,
                [b.open, b.high, b.low, b.close, b.volume],
            );
            assert_eq!(row, want, "{} {}", b.symbol, b.date());
        }
        // Through the API: serde_json's reader here is not correctly rounded, so the last
        // bit may differ on this side.
        for (s, series) in real.symbols.iter().zip(&real.bars) {
            let path = format!("/v1/market/bars?symbol={}&interval=1d", s.ticker);
            let j = ok(send(&host, "GET", &path, None), 200);
            let got = j["bars"].as_array().unwrap();
            assert_eq!(got.len(), series.len(), "{}", s.ticker);
            for (g, b) in got.iter().zip(series) {
                assert_eq!(g["time"].as_i64(), Some(b.time));
                for (k, want) in ["open", "high", "low", "close", "volume"]
                    .into_iter()
                    .zip([b.open, b.high, b.low, b.close, b.volume])
                {
                    let read = g[k].as_f64().unwrap();
                    assert!(
                        (read - want).abs() <= want.abs() * 1e-15,
                        "{} {} {k}: {read} vs {want}",
                        s.ticker,
                        b.date()
                    );
                }
            }
        }
        // The autumn-2008 fall, as the file has it: AAPL closed 2008-09-29 17.9 % down.
        let j = ok(
            send(
                &host,
                "GET",
                "/v1/market/bars?symbol=AAPL&from=2008-09-26&to=2008-09-29",
                None,
            ),
            200,
        );
        let closes: Vec<f64> = j["bars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["close"].as_f64().unwrap())
            .collect();
        assert_eq!(closes.len(), 2, "{j}");
        let fall = closes[1] / closes[0] - 1.0;
        assert!((fall - (105.26 / 128.24 - 1.0)).abs() < 1e-3, "{fall}");
    });

    c.check("the same bar twice in one load: the later row wins", || {
        let b = &real.bars[0][100];
        let mut later = b.clone();
        later.volume += 1.0;
        let earlier_other = &real.bars[3][100];
        let j = post_bars(&host, &[b, earlier_other, &later]);
        assert_eq!(counts(&j), (0, 1, 1, 0), "{j}");
        assert_eq!(j["duplicates"], 1, "{j}");
        let volume: f64 = db
            .query(&format!(
                "SELECT volume FROM market_bars WHERE symbol = '{}' AND time = to_timestamp({})",
                b.symbol, b.time
            ))
            .unwrap()[0]
            .get(0);
        assert_eq!(volume, later.volume);
        let j = post_bars(&host, &[b]);
        assert_eq!(counts(&j), (0, 1, 0, 0), "put back: {j}");
    });

    c.check(
        "a discovery run ranks the real symbols beside the generated ones",
        || {
            let mut bars: Vec<&Bar> = u.bars.iter().flatten().collect();
            bars.extend(u.index_bars.iter());
            let j = post_bars(&host, &bars);
            assert_eq!(counts(&j), (bars.len() as i64, 0, 0, 0), "{j}");
            // Every symbol a suggestion, so each one's verdicts can be read.
            ok(
                send(
                    &host,
                    "PUT",
                    "/v1/discovery/settings",
                    Some(&json!({"index": INDEX_TICKER, "suggestions": 200})),
                ),
                200,
            );
            let run = ok(
                send(
                    &host,
                    "POST",
                    "/v1/discovery/run",
                    Some(&json!({"as_of": last.to_string()})),
                ),
                202,
            );
            assert_eq!(run["status"], "succeeded", "{run}");
            let id = run["run_id"].as_str().unwrap();
            let run = ok(
                send(&host, "GET", &format!("/v1/discovery/runs/{id}"), None),
                200,
            );
            assert_eq!(run["symbols"], 45, "40 generated and 5 real: {run}");
            assert_eq!(run["as_of"], last.to_string(), "{run}");
            let unscored = run["unscored"].to_string();
            for s in &real.symbols {
                assert!(!unscored.contains(&format!("\"{}\"", s.ticker)), "{run}");
            }
            assert!(
                run["pickers"]["metric"]["unavailable"].as_i64().unwrap() >= 5,
                "{run}"
            );
            let s = ok(
                send(
                    &host,
                    "GET",
                    "/v1/discovery/suggestions?source=all&limit=200",
                    None,
                ),
                200,
            );
            let list = s["suggestions"].as_array().unwrap();
            for real_symbol in &real.symbols {
                let x = list
                    .iter()
                    .find(|x| x["ticker"] == real_symbol.ticker.as_str())
                    .unwrap_or_else(|| panic!("{} not ranked: {s}", real_symbol.ticker));
                let picker = |name: &str| {
                    x["pickers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| p["picker"] == name)
                        .unwrap_or_else(|| panic!("no {name} verdict: {x}"))
                        .clone()
                };
                let metric = picker("metric");
                assert_eq!(metric["verdict"], "unavailable", "{x}");
                assert!(
                    metric["missing"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("market_cap")),
                    "{x}"
                );
                let fuzzy = picker("fuzzy");
                let score = fuzzy["score"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&score), "{x}");
                assert!(!fuzzy["reasons"].as_array().unwrap().is_empty(), "{x}");
            }
        },
    );

    c.finish(Some(&host));
}
