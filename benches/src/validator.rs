//! Validator benchmarks (issue 14), on the real host with the repository's spin.toml and a
//! fresh database, measured side by side in one run:
//!
//! 1. `POST /v1/validate/trade` with the similar-setup search over `--trades` (default
//!    100,000) stored trade embeddings — random unit vectors plus a few losers near the query
//!    — alternating with the same request without an embedding (no search), so the search's
//!    share shows; the plan of the component's query is checked to use the HNSW index;
//! 2. `POST /v1/validate/formula` on a sheet of `--cells` (default 10,000) cells with
//!    dependencies: the evaluation time the component reports (`timing.evaluate_ms`) and the
//!    request's wall time.

use crate::kb::percentile;
use crate::stats::median;
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::time::Instant;
use tessera_e2e::http::Request;
use tessera_e2e::{HostCommand, TestDb, TestHost};

const TENANT: &str = "bench";

#[derive(clap::Args)]
pub struct ValidatorArgs {
    /// Stored trade embeddings the similar-setup search runs over.
    #[arg(long, default_value_t = 100_000)]
    trades: usize,
    /// Timed trade validations per variant (with and without the similar-setup search).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Cells in the formula sheet (a multiple of 4).
    #[arg(long, default_value_t = 10_000)]
    cells: usize,
    /// Timed formula validations.
    #[arg(long, default_value_t = 30)]
    sheets: usize,
}

fn post(host: &TestHost, path: &str, body: &Value) -> Result<(f64, Value)> {
    let t = Instant::now();
    let r = Request::new("POST", path)
        .header("x-tenant-id", TENANT)
        .json(body)
        .send(host.addr())
        .with_context(|| format!("POST {path}"))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if r.status != 200 {
        bail!("POST {path}: {}", r.describe());
    }
    Ok((ms, r.json()))
}

/// A deterministic pseudo-random unit vector (xorshift, uniform in the cube, normalised).
fn unit_vector(seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..384)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn literal(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
    format!("[{}]", parts.join(","))
}

/// `trades` closed trades for the tenant: random unit vectors (three in four lost), the
/// latest twenty won (so the breaker's losing streak stays quiet), and five losers close to
/// `query`. The HNSW index is dropped for the bulk insert and rebuilt after, as a bulk load
/// would; the table is analysed.
fn store_trades(db: &TestDb, trades: usize, query: &[f32]) -> Result<()> {
    let started = Instant::now();
    db.execute("DROP INDEX IF EXISTS validator_trades_embedding");
    db.execute(&format!(
        "INSERT INTO validator_trades (tenant_id, symbol, pnl, setup, embedding, closed_at)
         SELECT '{TENANT}', 'S' || (g % 500),
                CASE WHEN g <= 20 OR g % 4 = 0 THEN 50 + g % 100 ELSE -(1 + g % 100) END,
                'synthetic setup ' || g,
                l2_normalize((SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) WHERE g > 0)::vector),
                now() - make_interval(mins => g + 60)
         FROM generate_series(1, {trades}) g"
    ));
    for (i, tilt) in [0.05f32, 0.1, 0.15, 0.2, 0.3].iter().enumerate() {
        let noise = unit_vector(1000 + i as u64);
        let near: Vec<f32> = query
            .iter()
            .zip(&noise)
            .map(|(q, n)| q + tilt * n)
            .collect();
        db.execute(&format!(
            "INSERT INTO validator_trades (tenant_id, symbol, pnl, setup, embedding, closed_at)
             VALUES ('{TENANT}', 'NEAR{i}', -{}, 'near the query', l2_normalize('{}'::vector),
                     now() - interval '30 days')",
            100 * (i + 1),
            literal(&near)
        ));
    }
    let inserted = started.elapsed().as_secs_f64();
    db.execute("SET maintenance_work_mem = '1GB'; CREATE INDEX validator_trades_embedding ON validator_trades USING hnsw (embedding vector_cosine_ops); ANALYZE validator_trades");
    println!(
        "stored {} trade embeddings: insert {inserted:.0} s, HNSW index build {:.0} s",
        trades + 5,
        started.elapsed().as_secs_f64() - inserted
    );
    Ok(())
}

/// The plan of the component's similar-trades query (functions/validator/src/trade.rs).
fn check_plan(db: &TestDb, query: &[f32]) -> Result<String> {
    let v = literal(query);
    let rows = db
        .query(&format!(
            "EXPLAIN SELECT id::text, symbol, (1 - (embedding <=> '{v}'::vector))::float8, pnl::float8
             FROM validator_trades
             WHERE tenant_id = '{TENANT}' AND embedding IS NOT NULL AND pnl < 0
             ORDER BY embedding <=> '{v}'::vector LIMIT 5"
        ))
        .map_err(anyhow::Error::msg)?;
    let plan: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let plan = plan.join("\n").replace(&v, "<query>");
    if !plan.contains("validator_trades_embedding") {
        bail!("the similar-trades query does not use the HNSW index:\n{plan}");
    }
    Ok(plan)
}

fn account() -> Value {
    json!({
        "equity": 100000, "cash": 60000, "day_pnl": 0, "peak_equity": 100000,
        "positions": [{"symbol": "BETA", "quantity": 100, "price": 100, "sector": "energy"}]
    })
}

fn trade() -> Value {
    json!({
        "symbol": "ACME", "side": "buy", "quantity": 50, "limit_price": 100,
        "stop": 96, "sector": "tech", "average_daily_volume": 5000000
    })
}

/// `cells` cells in four columns of `cells / 4` rows: a compounding chain down A, B scaling
/// A, C a 10-row moving SUM over B, D an IF/ROUND over C and A; one claim per column.
fn sheet(cells: usize) -> Value {
    let rows = cells / 4;
    let mut m = Map::new();
    m.insert("A1".into(), json!(1000));
    for i in 1..=rows {
        if i > 1 {
            m.insert(format!("A{i}"), json!(format!("=A{}*1.0001+1", i - 1)));
        }
        m.insert(format!("B{i}"), json!(format!("=A{i}*2")));
        m.insert(
            format!("C{i}"),
            json!(format!("=SUM(B{}:B{i})", i.saturating_sub(9).max(1))),
        );
        m.insert(
            format!("D{i}"),
            json!(format!("=IF(C{i}>A{i}, ROUND(C{i}/3, 2), ABS(C{i}-A{i}))")),
        );
    }
    json!({"cells": m, "claims": {"A1": 1000, "B1": 2000, "C1": 2000, "D1": 666.67}})
}

fn row(what: &str, v: &[f64], goal: &str) {
    println!(
        "| {what} | {} | {:.2} | {:.2} | {goal} |",
        v.len(),
        median(v),
        percentile(v, 0.95)
    );
}

pub fn run(args: ValidatorArgs) -> Result<()> {
    if args.cells % 4 != 0 || args.cells == 0 {
        bail!("--cells must be a positive multiple of 4");
    }
    let db = TestDb::new();
    let host = HostCommand::with_manifest_file(&db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("RUST_LOG", "warn")
        .start();

    // 1. Trades.
    let query = unit_vector(42);
    store_trades(&db, args.trades, &query)?;
    let plan = check_plan(&db, &query)?;
    println!("plan of the similar-trades query:\n{plan}");
    let with = json!({"trade": trade(), "account": account(), "setup_embedding": query});
    let without = json!({"trade": trade(), "account": account()});
    for _ in 0..10 {
        post(&host, "/v1/validate/trade", &with)?;
        post(&host, "/v1/validate/trade", &without)?;
    }
    let (_, answer) = post(&host, "/v1/validate/trade", &with)?;
    println!(
        "verdict with the embedding: {} ({})",
        answer["verdict"],
        answer["reasons"]
            .as_array()
            .map(|r| r
                .iter()
                .map(|x| x["code"].as_str().unwrap_or("?").to_string())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    let (mut search, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..args.requests {
        search.push(post(&host, "/v1/validate/trade", &with)?.0);
        plain.push(post(&host, "/v1/validate/trade", &without)?.0);
    }

    // 2. Formulas.
    let body = sheet(args.cells);
    let (mut wall, mut eval) = (Vec::new(), Vec::new());
    for i in 0..args.sheets + 3 {
        let (ms, v) = post(&host, "/v1/validate/formula", &body)?;
        if i == 0 {
            let n = v["cells"].as_array().map_or(0, Vec::len);
            if n != args.cells || v["valid"] != true {
                bail!(
                    "the sheet did not evaluate cleanly ({n} cells): {}",
                    serde_json::to_string(&v["claims"]).unwrap_or_default()
                );
            }
        }
        if i >= 3 {
            wall.push(ms);
            eval.push(
                v["timing"]["evaluate_ms"]
                    .as_f64()
                    .context("timing.evaluate_ms")?,
            );
        }
    }
    let bytes = serde_json::to_vec(&body)?.len();

    println!();
    println!("| measurement | requests | p50 ms | p95 ms | goal |\n|---|---:|---:|---:|---|");
    row(
        &format!(
            "trade, similar-setup search over {} embeddings (request)",
            args.trades + 5
        ),
        &search,
        "p50 ≤ 15 ms",
    );
    row("trade, no embedding (request)", &plain, "—");
    row(
        &format!("formula, {} cells: evaluation in the component", args.cells),
        &eval,
        "≤ 100 ms",
    );
    row(
        &format!(
            "formula, {} cells: request ({} KiB body)",
            args.cells,
            bytes / 1024
        ),
        &wall,
        "—",
    );
    println!();
    println!(
        "search share at p50: {:.2} ms",
        median(&search) - median(&plain)
    );
    Ok(())
}
