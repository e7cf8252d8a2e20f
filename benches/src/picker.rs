//! Picker benchmarks (issue 13), on the real host serving the picker block of the
//! repository's spin.toml with a fresh database, then a walk-forward backtest in process:
//!
//! 1. bulk ingest: the generated universe (`--symbols`, default 500, over `--days` trading
//!    days, default 756) posted as NDJSON in 40,000-bar requests; bars per second of wall time;
//!    with `--ingest-wasm OLD.wasm --ingest-wasm NEW.wasm` only this, the builds alternating
//!    for `--ingest-rounds` rounds, each on a fresh database and host (to compare changes).
//!    With `.tessera/sampledata/stocks.csv` present (`cargo xtask setup`), the real daily
//!    history of AAPL, GOOG, IBM, MSFT and FB is loaded too (marked real; the generated
//!    universe then ends on its last day, as `cargo xtask up` does);
//! 2. discovery runs over the whole universe (the component's own `duration_ms` and the
//!    request's wall time; medians of `--runs`): without a closed trade; then, with one
//!    (the FuzzyPicker then needs the embeddings of its 20 best candidates' setups to find
//!    similar trades), the first run of a data day on a freshly started host (every setup
//!    embedded: the model loads in a new instance), the same in an instance that has the
//!    model loaded (a cron tick's case), a repeated run of such a day on a freshly started
//!    host (setups read from `setup_embeddings`), and repeated runs on one host;
//! 3. `GET /v1/discovery/suggestions` latency over `--requests` requests;
//! 4. the backtest: one discovery per trading day over the last `--backtest-days` days that
//!    have five days after them, each with only the bars known that day (tessera-picking's
//!    `Candidate::as_of`), the metric and fuzzy pickers and the ensemble as the component runs
//!    them, 5-day forward returns from the close of the next trading day, and per source the
//!    win rate and mean excess return over the universe's equal-weight return with 95 %
//!    bootstrap intervals. The LLMPicker is not part of it (not wired).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tessera_e2e::http::Request;
use tessera_e2e::{HostCommand, TempDir, TestDb, TestHost};
use tessera_picking::calendar::Nyse;
use tessera_picking::date::Date;
use tessera_picking::discovery::{DiscoverySettings, select_suggestions};
use tessera_picking::ensemble::EnsembleCombiner;
use tessera_picking::forward::{forward_return, universe_forward_return};
use tessera_picking::fuzzy::FuzzyPicker;
use tessera_picking::market::Bar;
use tessera_picking::metric::MetricPicker;
use tessera_picking::pick::{Candidate, Portfolio};
use tessera_picking::sampledata::{RealSeries, STOCKS_CSV, parse_stocks_csv};
use tessera_picking::scorecard::{Bootstrap, Outcome, scorecard};
use tessera_picking::synth::{INDEX_TICKER, SynthParams, SyntheticUniverse, generate};

use crate::kb::percentile;
use crate::stats::median;

const TENANT: &str = "bench";

#[derive(clap::Args)]
pub struct PickerArgs {
    #[arg(long, default_value_t = 500)]
    symbols: usize,
    #[arg(long, default_value_t = 756)]
    days: usize,
    /// Timed discovery runs per variant.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Timed suggestion reads.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Trading days the walk-forward backtest runs discovery on.
    #[arg(long, default_value_t = 252)]
    backtest_days: usize,
    /// Measure only the bulk ingest, once per given picker.wasm per round (the files
    /// alternating, each on a fresh database and host), e.g. an old build against a new one.
    #[arg(long = "ingest-wasm", value_name = "PICKER_WASM")]
    ingest_wasm: Vec<std::path::PathBuf>,
    /// Rounds of the ingest comparison.
    #[arg(long, default_value_t = 3)]
    ingest_rounds: usize,
}

/// The manifest's head and its picker block (cron trigger left out), paths made absolute,
/// serving `wasm` as the picker.
fn manifest(wasm: &std::path::Path) -> Result<String> {
    let root = tessera_e2e::root();
    let full = std::fs::read_to_string(root.join("spin.toml"))?;
    let head = &full[..full.find("[[trigger.").context("spin.toml has triggers")?];
    let start = full
        .find("# picker:")
        .context("spin.toml has the picker block")?;
    let rest = &full[start..];
    let end = rest.find("\n\n#").map_or(rest.len(), |i| i + 1);
    let block = rest[..end]
        .replace(
            "source = \"target/wasm32-wasip2/release/picker.wasm\"",
            &format!(
                "source = {}",
                tessera_e2e::toml_string(&wasm.to_string_lossy())
            ),
        )
        .replace(
            "source = \".tessera/models/",
            &format!("source = \"{}/.tessera/models/", root.display()),
        );
    let block = &block[..block.find("[[trigger.cron]]").unwrap_or(block.len())];
    Ok(format!("{head}\n{block}"))
}

fn send(
    host: &TestHost,
    method: &str,
    path: &str,
    ctype: &str,
    body: &[u8],
) -> Result<(f64, Value)> {
    let t = Instant::now();
    let r = Request::new(method, path)
        .header("x-tenant-id", TENANT)
        .header("content-type", ctype)
        .body(body)
        .send(host.addr())
        .with_context(|| format!("{method} {path}"))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !(200..300).contains(&r.status) {
        bail!("{method} {path}: {}", r.describe());
    }
    Ok((ms, r.json()))
}

fn bar_line(b: &Bar) -> String {
    json!({"symbol": b.symbol, "interval": "1d", "time": b.time, "open": b.open,
           "high": b.high, "low": b.low, "close": b.close, "volume": b.volume})
    .to_string()
}

/// One discovery run (as of `as_of`, or the latest day): the request's wall time in ms and
/// the run's record.
fn discovery_run(host: &TestHost, as_of: Option<Date>) -> Result<(f64, Value)> {
    let body = as_of.map_or(String::new(), |d| json!({ "as_of": d }).to_string());
    let (ms, j) = send(
        host,
        "POST",
        "/v1/discovery/run",
        "application/json",
        body.as_bytes(),
    )?;
    let id = j["run_id"].as_str().context("run id")?.to_string();
    if j["status"] != "succeeded" {
        bail!("discovery run {id}: {j}");
    }
    let (_, run) = send(
        host,
        "GET",
        &format!("/v1/discovery/runs/{id}"),
        "application/json",
        b"",
    )?;
    Ok((ms, run))
}

/// Timings of a series of runs: the component's own `duration_ms`, the request's wall time,
/// and (with a closed trade) the setups embedded and the milliseconds that took.
#[derive(Default)]
struct Timings {
    own: Vec<f64>,
    wall: Vec<f64>,
    embedded: Vec<f64>,
    load_ms: Vec<f64>,
    embed_ms: Vec<f64>,
}

impl Timings {
    fn push(&mut self, wall: f64, run: &Value) {
        self.wall.push(wall);
        self.own
            .push(run["settings"]["duration_ms"].as_f64().unwrap_or(f64::NAN));
        let setups = &run["pickers"]["fuzzy"]["setup_embeddings"];
        self.embedded
            .push(setups["embedded"].as_f64().unwrap_or(0.0));
        self.load_ms
            .push(setups["model_load_ms"].as_f64().unwrap_or(0.0));
        self.embed_ms
            .push(setups["embed_ms"].as_f64().unwrap_or(0.0));
    }

    /// A results-table row: medians, and every run's own time.
    fn row(&self, what: &str) -> String {
        let each: Vec<String> = self.own.iter().map(|x| format!("{x:.0}")).collect();
        format!(
            "| {what} (median of {}) | {:.0} ms in the component ({}), {:.0} ms request; model load {:.0} ms, {:.0} setups embedded in {:.0} ms | ≤ 1 s |",
            self.own.len(),
            median(&self.own),
            each.join(", "),
            median(&self.wall),
            median(&self.load_ms),
            median(&self.embedded),
            median(&self.embed_ms),
        )
    }
}

fn timed_runs(host: &TestHost, runs: usize) -> Result<Timings> {
    let mut t = Timings::default();
    for _ in 0..runs {
        let (ms, run) = discovery_run(host, None)?;
        t.push(ms, &run);
    }
    Ok(t)
}

/// A host serving the picker block of `manifest` on `db` (a new process: fresh instances).
fn serve(db: &TestDb, manifest: &std::path::Path) -> TestHost {
    HostCommand::with_manifest_file(db, manifest)
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .start()
}

/// A fresh database and a host serving `wasm` as the picker.
fn start(wasm: &std::path::Path) -> Result<(TestDb, TempDir, TestHost)> {
    let db = TestDb::new();
    let dir = TempDir::new("tessera-bench-picker");
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, manifest(wasm)?)?;
    let host = serve(&db, &path);
    Ok((db, dir, host))
}

/// The real series `cargo xtask setup` extracted, when it is there.
fn real_series() -> Result<Option<RealSeries>> {
    let path = tessera_e2e::root().join(".tessera").join(STOCKS_CSV);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)?;
    let real = parse_stocks_csv(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(real))
}

/// Posts the universe's symbols (and the real ones), then its bars as NDJSON in 40,000-bar
/// requests; returns the bars, the requests and the seconds the bars took.
fn ingest(
    host: &TestHost,
    u: &SyntheticUniverse,
    real: Option<&RealSeries>,
) -> Result<(usize, usize, f64)> {
    let mut symbols: Vec<Value> = u.symbols.iter().map(|s| json!(s)).collect();
    symbols.push(json!(u.index));
    if let Some(real) = real {
        symbols.extend(real.symbols.iter().map(|s| json!(s)));
    }
    send(
        host,
        "POST",
        "/v1/market/symbols",
        "application/json",
        Value::Array(symbols).to_string().as_bytes(),
    )?;
    let mut bars: Vec<&Bar> = u.bars.iter().flatten().collect();
    bars.extend(u.index_bars.iter());
    if let Some(real) = real {
        bars.extend(real.bars.iter().flatten());
    }
    let bodies: Vec<String> = bars
        .chunks(40_000)
        .map(|c| c.iter().map(|b| bar_line(b) + "\n").collect())
        .collect();
    let started = Instant::now();
    for body in &bodies {
        let (_, answer) = send(
            host,
            "POST",
            "/v1/market/bars",
            "application/x-ndjson",
            body.as_bytes(),
        )?;
        if answer["rejected"] != 0 {
            bail!("the bench's bars were rejected: {answer}");
        }
    }
    Ok((bars.len(), bodies.len(), started.elapsed().as_secs_f64()))
}

/// `--ingest-wasm A --ingest-wasm B`: the ingest alone, A and B alternating each round.
fn compare_ingest(
    u: &SyntheticUniverse,
    wasms: &[std::path::PathBuf],
    rounds: usize,
) -> Result<()> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); wasms.len()];
    let mut shape = (0, 0);
    for round in 0..rounds {
        for (k, wasm) in wasms.iter().enumerate() {
            let (_db, _dir, host) = start(wasm)?;
            let (bars, requests, seconds) = ingest(&host, u, None)?;
            shape = (bars, requests);
            let rate = bars as f64 / seconds;
            println!(
                "round {}: {}: {rate:.0} bars/s ({seconds:.2} s)",
                round + 1,
                wasm.display()
            );
            rates[k].push(rate);
        }
    }
    println!(
        "\n| picker.wasm | bulk ingest, {} bars in {} NDJSON requests (median of {rounds}; each round) |\n|---|---|",
        shape.0, shape.1
    );
    for (wasm, r) in wasms.iter().zip(&rates) {
        let each: Vec<String> = r.iter().map(|x| format!("{x:.0}")).collect();
        println!(
            "| {} | {:.0} bars/s ({}) |",
            wasm.display(),
            median(r),
            each.join(", ")
        );
    }
    Ok(())
}

pub fn run(args: PickerArgs) -> Result<()> {
    let params = SynthParams {
        symbols: args.symbols,
        trading_days: args.days,
        ..SynthParams::default()
    };
    if !args.ingest_wasm.is_empty() {
        return compare_ingest(&generate(&params), &args.ingest_wasm, args.ingest_rounds);
    }
    let real = real_series()?;
    // With the real series, the generated universe ends on their last day (as in the demo).
    let params = match real.as_ref().and_then(RealSeries::span) {
        Some((_, last)) => params.ending_on(last),
        None => params,
    };
    let u = generate(&params);
    let db = TestDb::new();
    let dir = TempDir::new("tessera-bench-picker");
    let manifest_path = dir.path().join("spin.toml");
    std::fs::write(&manifest_path, manifest(&tessera_e2e::wasm("picker"))?)?;
    let mut host = serve(&db, &manifest_path);
    let (bar_count, requests, ingest_s) = ingest(&host, &u, real.as_ref())?;
    let settings = json!({ "index": INDEX_TICKER }).to_string();
    send(
        &host,
        "PUT",
        "/v1/discovery/settings",
        "application/json",
        settings.as_bytes(),
    )?;

    let no_trades = timed_runs(&host, args.runs)?;
    let trade = json!({"symbol": u.symbols[0].ticker, "side": "buy", "quantity": 10,
                       "price": 40.0, "reasoning": "benchmark"});
    let (_, t) = send(
        &host,
        "POST",
        "/v1/trades",
        "application/json",
        trade.to_string().as_bytes(),
    )?;
    let exit = json!({"exit_price": 42.0}).to_string();
    send(
        &host,
        "POST",
        &format!("/v1/trades/{}/exit", t["id"].as_str().unwrap_or("")),
        "application/json",
        exit.as_bytes(),
    )?;
    // The first run of a data day: a day no run has seen (its setups never embedded), on a
    // newly started host (no instance has the model loaded). The days before the latest,
    // one per run; then each of those days again on another new host.
    let days: Vec<Date> = (0..args.runs)
        .map(|k| u.days[u.days.len() - 2 - k])
        .collect();
    let (mut first, mut again) = (Timings::default(), Timings::default());
    // A setup can read alike on two days (its figures are rounded to 0.1 %); the row shows
    // how many setups each run embedded.
    for timings in [&mut first, &mut again] {
        for day in &days {
            drop(host);
            host = serve(&db, &manifest_path);
            let (ms, run) = discovery_run(&host, Some(*day))?;
            timings.push(ms, &run);
        }
    }
    // The first run of a data day in an instance that has loaded the model already, as a cron
    // tick's run is (the tick's market snapshot embeds first, in the same request): a new
    // host, an open trade recorded (embedded: the instance loads the model; an open trade
    // has no return, so the search ignores it), then a run of another day no run has seen.
    let mut loaded = Timings::default();
    for k in 0..args.runs {
        drop(host);
        host = serve(&db, &manifest_path);
        let open = json!({"symbol": u.symbols[1].ticker, "side": "buy", "quantity": 1,
                          "price": 40.0, "reasoning": "benchmark, left open"});
        send(
            &host,
            "POST",
            "/v1/trades",
            "application/json",
            open.to_string().as_bytes(),
        )?;
        let day = u.days[u.days.len() - 2 - args.runs - k];
        let (ms, run) = discovery_run(&host, Some(day))?;
        loaded.push(ms, &run);
    }
    // Repeated runs on one host (the latest day, its setups stored by a first run).
    discovery_run(&host, None)?;
    let repeated = timed_runs(&host, args.runs)?;

    let mut reads = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        let (ms, _) = send(
            &host,
            "GET",
            "/v1/discovery/suggestions",
            "application/json",
            b"",
        )?;
        reads.push(ms);
    }

    let symbols = u.symbols.len() + real.as_ref().map_or(0, |r| r.symbols.len());
    match &real {
        Some(r) => println!(
            "\nUniverse: {} generated symbols and the index ({} to {}), and the real daily \
             history of {} ({} bars, marked real)",
            u.symbols.len(),
            u.days[0],
            u.days[u.days.len() - 1],
            r.symbols
                .iter()
                .map(|s| s.ticker.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            r.bar_count()
        ),
        None => println!(
            "\nUniverse: {} generated symbols and the index ({} to {}); no real series \
             (run `cargo xtask setup` for .tessera/{STOCKS_CSV})",
            u.symbols.len(),
            u.days[0],
            u.days[u.days.len() - 1]
        ),
    }
    println!("\n| measurement | result | goal |\n|---|---|---|");
    println!(
        "| bulk ingest, {bar_count} bars in {requests} NDJSON requests | {:.0} bars/s ({ingest_s:.1} s) | ≥ 50,000 bars/s |",
        bar_count as f64 / ingest_s
    );
    println!(
        "{}",
        no_trades.row(&format!(
            "discovery run, {symbols} symbols, no closed trade"
        ))
    );
    println!(
        "{}",
        first.row("with similar trades: first run of a data day, freshly started host")
    );
    println!(
        "{}",
        loaded.row("with similar trades: first run of a data day, model loaded in the instance")
    );
    println!(
        "{}",
        again.row("with similar trades: that day again, freshly started host")
    );
    println!(
        "{}",
        repeated.row("with similar trades: repeated runs on one host")
    );
    println!(
        "| GET /v1/discovery/suggestions ({} requests) | p50 {:.1} ms, p99 {:.1} ms | p50 ≤ 10 ms |",
        args.requests,
        percentile(&reads, 0.5),
        percentile(&reads, 0.99)
    );
    backtest(&u, args.backtest_days);
    Ok(())
}

/// The walk-forward backtest table (see the module doc).
fn backtest(u: &SyntheticUniverse, days: usize) {
    const HORIZON: u32 = 5;
    let settings = DiscoverySettings::default();
    let windows = settings.windows();
    let n = u.days.len();
    let last = n.saturating_sub(HORIZON as usize + 2);
    let first = last.saturating_sub(days);
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for i in first..last {
        let day = u.days[i];
        // Only the bars known at the end of `day` (and a year of them is all features use).
        let lo = i.saturating_sub(windows.drawdown + 5);
        let candidates: Vec<Candidate> = u
            .symbols
            .iter()
            .zip(&u.bars)
            .map(|(s, b)| Candidate::as_of(s, &b[lo..=i], day, &windows))
            .collect();
        let outputs = vec![
            MetricPicker::new(settings.metric.clone()).pick(&candidates),
            FuzzyPicker::new(settings.fuzzy()).pick(
                &candidates,
                &Portfolio::default(),
                &BTreeMap::new(),
            ),
        ];
        let result = EnsembleCombiner::new(settings.ensemble()).combine(&outputs);
        let picked = select_suggestions(&result, &outputs, settings.suggestions);
        // The days after `day` only, as far as the exit.
        let after = |b: &[Bar]| b[i + 1..(i + 3 + HORIZON as usize).min(b.len())].to_vec();
        let future: Vec<Vec<Bar>> = u.bars.iter().map(|b| after(b)).collect();
        let series: Vec<&[Bar]> = future.iter().map(Vec::as_slice).collect();
        let Some(universe) = universe_forward_return(&Nyse, &series, day, HORIZON) else {
            continue;
        };
        let index: BTreeMap<&str, usize> = u
            .symbols
            .iter()
            .enumerate()
            .map(|(k, s)| (s.ticker.as_str(), k))
            .collect();
        for s in &picked {
            let k = index[s.ranked.ticker.as_str()];
            let Some(r) = forward_return(&Nyse, &future[k], day, HORIZON) else {
                continue;
            };
            for source in &s.sources {
                outcomes.push(Outcome {
                    source: source.clone(),
                    ticker: s.ranked.ticker.clone(),
                    suggested_on: day,
                    forward_return: r,
                    universe_return: universe,
                });
            }
        }
    }
    let card = scorecard(&outcomes, &Bootstrap::default());
    println!(
        "\nWalk-forward backtest: {} discovery days ({} to {}), top {} per source, {HORIZON}-day \
         forward returns; {:.1} s\n",
        last - first,
        u.days[first],
        u.days[last - 1],
        settings.suggestions,
        started.elapsed().as_secs_f64()
    );
    println!("| source | suggestions | win rate [95 % CI] | mean excess 5-day return [95 % CI] |");
    println!("|---|---:|---|---|");
    for s in card {
        println!(
            "| {} | {} | {:.1} % [{:.1}, {:.1}] | {:+.2} % [{:+.2}, {:+.2}] |",
            s.source,
            s.count,
            s.win_rate * 100.0,
            s.win_rate_ci.low * 100.0,
            s.win_rate_ci.high * 100.0,
            s.mean_excess * 100.0,
            s.excess_ci.low * 100.0,
            s.excess_ci.high * 100.0
        );
    }
}
