//! Knowledge-base benchmarks, on the real host with the repository's spin.toml:
//!
//! - `kb-eval`: recall@5/10, MRR@10 and nDCG@10 of vector, text and hybrid search on
//!   demo/kb/eval.json, beside an independent Okapi BM25 over the same chunks;
//! - `kb`: query embedding in the component against the same code natively; inline ingest
//!   throughput; `/v1/kb/search` latency over a corpus grown to `--chunks` (default 100k)
//!   and the HNSW scan's recall@10 against an exact scan.

use crate::bm25_reference::Bm25Reference;
use crate::stats::median;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;
use tessera_e2e::http::Request;
use tessera_e2e::{HostCommand, TestDb, TestHost};
use tessera_retrieval::metrics::{
    LabelledQuestion, distinct_in_order, ndcg_at_k, recall_at_k, reciprocal_rank,
};
use tessera_retrieval::search_sql;
use tokio_postgres::types::Type;

const TENANT: &str = "bench";

#[derive(clap::Args)]
pub struct EvalArgs {}

#[derive(clap::Args)]
pub struct KbArgs {
    /// Corpus size for the search latency and recall measurement.
    #[arg(long, default_value_t = 100_000)]
    chunks: usize,
    /// Search requests timed per mode.
    #[arg(long, default_value_t = 200)]
    searches: usize,
    /// Clients of the mixed load on the demo corpus (0 skips it).
    #[arg(long, default_value_t = 64)]
    load_clients: usize,
    /// How long the mixed load runs.
    #[arg(long, default_value_t = 20)]
    load_seconds: u64,
    /// Keep the database (printing its URL) instead of dropping it, to study its plans.
    #[arg(long)]
    keep_db: bool,
    /// Start the host with `--no-local-models`, so the kb embeds in the component (its Wasm
    /// fallback) and "component" in the output means that path.
    #[arg(long)]
    no_local_models: bool,
}

pub(crate) fn start(db: &TestDb) -> TestHost {
    host_command(db).start()
}

fn host_command(db: &TestDb) -> HostCommand {
    HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("RUST_LOG", "warn")
}

fn post(host: &TestHost, path: &str, body: &Value) -> Result<Value> {
    let r = Request::new("POST", path)
        .header("x-tenant-id", TENANT)
        .json(body)
        .send(host.addr())
        .with_context(|| format!("POST {path}"))?;
    if r.status >= 300 {
        bail!("POST {path}: {}", r.describe());
    }
    Ok(r.json())
}

/// Every demo document (demo/kb/*.md but its README) as the body of an ingest request, in
/// file-name order, with its file stem.
pub(crate) fn demo_requests() -> Result<Vec<(String, Value)>> {
    let dir = tessera_e2e::root().join("demo/kb");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md") && !p.ends_with("README.md"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(path)?;
            let body = tessera_retrieval::ingest::request_for_markdown_file(&stem, &text)
                .map_err(anyhow::Error::msg)?;
            Ok((stem, body))
        })
        .collect()
}

/// Ingests every demo document; returns (documents, chunks, seconds).
pub(crate) fn load_demo(host: &TestHost) -> Result<(usize, u64, f64)> {
    let requests = demo_requests()?;
    let started = Instant::now();
    let mut chunks = 0;
    for (stem, body) in &requests {
        let answer = post(host, "/v1/kb/documents", body)?;
        if answer["status"] != "ready" {
            bail!("{stem} was not embedded inline: {answer}");
        }
        chunks += answer["chunks"].as_u64().unwrap_or(0);
    }
    Ok((requests.len(), chunks, started.elapsed().as_secs_f64()))
}

pub(crate) fn questions() -> Result<Vec<LabelledQuestion>> {
    let text = std::fs::read_to_string(tessera_e2e::root().join("demo/kb/eval.json"))?;
    let value: Value = serde_json::from_str(&text)?;
    let list = value.get("questions").cloned().unwrap_or(value);
    Ok(serde_json::from_value(list)?)
}

/// Document stems in rank order for one search: the top `CHUNK_DEPTH` chunks collapsed to
/// their documents, each where its best chunk ranks.
fn ranked_docs(host: &TestHost, question: &str, mode: &str) -> Result<Vec<String>> {
    let r = post(
        host,
        "/v1/kb/search",
        &json!({"query": question, "mode": mode, "k": CHUNK_DEPTH}),
    )?;
    let docs = r["results"]
        .as_array()
        .context("results")?
        .iter()
        .map(|h| h["metadata"]["doc"].as_str().unwrap_or("").to_string());
    Ok(distinct_in_order(docs))
}

/// Chunks asked of each search (the API's maximum k), so that ten distinct documents can be
/// scored; the BM25 reference is cut at the same depth.
const CHUNK_DEPTH: usize = 50;

/// One mode's scores over a question set, by document.
#[derive(Default)]
struct Scores {
    recall5: Vec<f64>,
    recall10: Vec<f64>,
    mrr10: Vec<f64>,
    ndcg10: Vec<f64>,
    by_kind: std::collections::BTreeMap<String, Vec<f64>>,
}

impl Scores {
    fn add(&mut self, ranking: &[String], q: &LabelledQuestion) {
        let top10 = &ranking[..ranking.len().min(10)];
        self.recall5.push(recall_at_k(ranking, &q.relevant, 5));
        self.recall10.push(recall_at_k(ranking, &q.relevant, 10));
        self.mrr10.push(reciprocal_rank(top10, &q.relevant));
        self.ndcg10.push(ndcg_at_k(ranking, &q.relevant, 10));
        let kind = q
            .kind
            .map(|k| format!("{k:?}").to_lowercase())
            .unwrap_or_default();
        self.by_kind
            .entry(kind)
            .or_default()
            .push(recall_at_k(ranking, &q.relevant, 5));
    }

    fn row(&self, name: &str) -> String {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let kind = |k: &str| self.by_kind.get(k).map_or(f64::NAN, |v| mean(v));
        format!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            mean(&self.recall5),
            mean(&self.recall10),
            mean(&self.mrr10),
            mean(&self.ndcg10),
            kind("lexical"),
            kind("paraphrase"),
            kind("mixed"),
        )
    }
}

pub fn eval(_args: EvalArgs) -> Result<()> {
    let db = TestDb::new();
    let host = start(&db);
    let (docs, chunks, _) = load_demo(&host)?;
    let questions = questions()?;
    let reference = Bm25Reference::load(&db, TENANT)?;
    println!(
        "kb evaluation, demo/kb/eval.json: {} questions over {docs} documents ({chunks} chunks; \
         the BM25 reference indexes {}), by document, {CHUNK_DEPTH} chunks per search",
        questions.len(),
        reference.passages()
    );
    println!();
    println!(
        "| mode | recall@5 | recall@10 | MRR@10 | nDCG@10 | lexical recall@5 | paraphrase recall@5 | mixed recall@5 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut bm25 = Scores::default();
    for q in &questions {
        let terms = Bm25Reference::query_terms(&db, &q.question)?;
        bm25.add(&distinct_in_order(reference.rank(&terms, CHUNK_DEPTH)), q);
    }
    println!("{}", bm25.row("BM25 reference (bench)"));
    for mode in ["vector", "text", "hybrid"] {
        let mut scores = Scores::default();
        for q in &questions {
            scores.add(&ranked_docs(&host, &q.question, mode)?, q);
        }
        println!("{}", scores.row(mode));
    }
    Ok(())
}

pub fn run(args: KbArgs) -> Result<()> {
    let db = TestDb::new();
    let host = if args.no_local_models {
        host_command(&db).arg("--no-local-models").start()
    } else {
        start(&db)
    };

    // 1. Inline ingest throughput (every demo document is small enough to embed inline).
    let (docs, chunks, seconds) = load_demo(&host)?;
    println!(
        "inline ingest: {docs} documents, {chunks} chunks in {seconds:.1} s = {:.1} chunks/s",
        chunks as f64 / seconds
    );

    // 2. Query embedding: the component (timed inside it) against the same code natively.
    let questions = questions()?;
    let embedder = tessera_embedder::Embedder::from_dir(
        tessera_e2e::root().join(".tessera/models/all-MiniLM-L6-v2"),
    )?;
    let (mut wasm_ms, mut native_ms) = (Vec::new(), Vec::new());
    for q in questions.iter().cycle().take(args.searches) {
        let r = post(
            &host,
            "/v1/kb/search",
            &json!({"query": q.question, "mode": "vector", "k": 1}),
        )?;
        wasm_ms.push(
            r["timing"]["embed_ms"]
                .as_f64()
                .context("timing.embed_ms")?,
        );
        let t = Instant::now();
        embedder.embed_one(&q.question)?;
        native_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (w, n) = (median(&wasm_ms), median(&native_ms));
    println!(
        "query embedding p50: component {w:.2} ms, native {n:.2} ms, ratio {:.2}×",
        w / n
    );

    // 3. Mixed load on the demo corpus: every client loops, 4 in 5 requests a hybrid
    // search, the fifth an embedding, each of a different question.
    if args.load_clients > 0 {
        mixed_load(&host, &questions, args.load_clients, args.load_seconds)?;
    }

    // 4. Grow the corpus and time searches.
    grow_corpus(&db, args.chunks)?;
    let total: i64 = db
        .query("SELECT count(*) FROM kb_chunks")
        .map_err(anyhow::Error::msg)?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0);
    println!("corpus: {total} chunks");
    println!();
    println!("| mode | searches | p50 ms | p95 ms | embed p50 ms |");
    println!("|---|---:|---:|---:|---:|");
    for mode in ["hybrid", "vector", "text"] {
        let (mut lat, mut emb) = (Vec::new(), Vec::new());
        for q in questions.iter().cycle().take(args.searches) {
            let t = Instant::now();
            let r = post(
                &host,
                "/v1/kb/search",
                &json!({"query": q.question, "mode": mode, "k": 10}),
            )?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            emb.push(r["timing"]["embed_ms"].as_f64().unwrap_or(0.0));
        }
        println!(
            "| {mode} | {} | {:.1} | {:.1} | {:.1} |",
            lat.len(),
            median(&lat),
            percentile(&lat, 0.95),
            median(&emb)
        );
    }

    // 5. Recall@10 of the HNSW scan against an exact scan, same queries, same filters.
    let probe = RecallProbe::new(db.url())?;
    let mut queries = Vec::new();
    for q in questions.iter().take(args.searches.min(questions.len())) {
        let r = tessera_e2e::http::Request::new("POST", "/v1/embeddings")
            .json(&json!({"input": q.question}))
            .send(host.addr())?;
        queries.push(r.json()["data"][0]["embedding"].to_string());
    }
    let exact: Vec<Vec<f64>> = queries
        .iter()
        .map(|v| probe.top10(v, true))
        .collect::<Result<_>>()?;
    println!();
    println!(
        "HNSW recall@10 against exact search over {total} chunks ({} queries):",
        queries.len()
    );
    println!();
    println!("| hnsw.ef_search | recall@10 | query p50 ms (SQL only) |");
    println!("|---:|---:|---:|");
    for ef in [40, 100, 200, 400] {
        probe.set_ef_search(ef)?;
        let (mut recalls, mut times) = (Vec::new(), Vec::new());
        for (vector, exact) in queries.iter().zip(&exact) {
            let t = Instant::now();
            let approx = probe.top10(vector, false)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            // By distance, not id: a result as near as the exact 10th is a true neighbour,
            // which matters where near-duplicates tie.
            let bound = exact.last().copied().unwrap_or(0.0) + 1e-6;
            let hit = approx.iter().filter(|d| **d <= bound).count();
            recalls.push(hit as f64 / exact.len().max(1) as f64);
        }
        let mean = recalls.iter().sum::<f64>() / recalls.len().max(1) as f64;
        println!("| {ef} | {mean:.3} | {:.1} |", median(&times));
    }
    // 6. The plans of both sides for one question, as the kb runs them (same SQL text).
    if let (Some(q), Some(vector)) = (questions.first(), queries.first()) {
        probe.set_ef_search(100)?;
        let filters = "tenant_id = $2";
        for (side, sql, first) in [
            (
                "text",
                search_sql::text_side(
                    &search_sql::TextFilters {
                        predicate: filters,
                        scopes: "NULL",
                        metadata: "NULL",
                    },
                    40,
                    search_sql::MAX_TEXT_CANDIDATES,
                ),
                q.question.as_str(),
            ),
            (
                "vector",
                search_sql::vector_side(filters, 40),
                vector.as_str(),
            ),
        ] {
            println!();
            println!(
                "EXPLAIN (ANALYZE, BUFFERS), {side} side of a hybrid search for {:?}:",
                q.question
            );
            println!();
            println!("{}", probe.explain(&sql, &[first, TENANT])?);
        }
    }
    if args.keep_db {
        println!("kept the database: {}", db.url());
        std::mem::forget(db);
    }
    Ok(())
}

/// `clients` threads send requests back to back for `seconds`: 80 % `POST /v1/kb/search`
/// (hybrid, k 10), 20 % `POST /v1/embeddings` (one question). Prints throughput, latency and
/// every answer that was not a 200, by status.
fn mixed_load(
    host: &TestHost,
    questions: &[LabelledQuestion],
    clients: usize,
    seconds: u64,
) -> Result<()> {
    let addr = host.addr();
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let cpu_before = crate::cpu::Split::now(host.pid());
    let started = Instant::now();
    let results: Vec<(Vec<f64>, Vec<f64>, BTreeMap<String, u64>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let (mut search_ms, mut embed_ms) = (Vec::new(), Vec::new());
                    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
                    let mut i = c;
                    while Instant::now() < deadline {
                        let question = &questions[i % questions.len()].question;
                        let search = i % 5 != 4;
                        let (path, body) = if search {
                            ("/v1/kb/search", json!({"query": question, "k": 10}))
                        } else {
                            ("/v1/embeddings", json!({"input": question}))
                        };
                        let t = Instant::now();
                        let answer = Request::new("POST", path)
                            .header("x-tenant-id", TENANT)
                            .json(&body)
                            .send(addr);
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        match answer {
                            Ok(r) if r.status == 200 => {
                                if search {
                                    search_ms.push(ms)
                                } else {
                                    embed_ms.push(ms)
                                }
                            }
                            Ok(r) => {
                                *failures.entry(format!("{path} {}", r.status)).or_default() += 1
                            }
                            Err(e) => {
                                *failures.entry(format!("{path} {}", e.kind())).or_default() += 1
                            }
                        }
                        i += clients;
                    }
                    (search_ms, embed_ms, failures)
                })
            })
            .collect();
        threads.into_iter().filter_map(|t| t.join().ok()).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = crate::cpu::Split::now(host.pid()).since(cpu_before);
    let (mut search_ms, mut embed_ms) = (Vec::new(), Vec::new());
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for (s, e, f) in results {
        search_ms.extend(s);
        embed_ms.extend(e);
        for (k, v) in f {
            *failures.entry(k).or_default() += v;
        }
    }
    let ok = search_ms.len() + embed_ms.len();
    let failed: u64 = failures.values().sum();
    println!();
    println!(
        "mixed load, {clients} clients for {elapsed:.1} s on the demo corpus: {ok} answered 200 \
         ({:.0} requests/s), {failed} not: {failures:?}",
        ok as f64 / elapsed
    );
    println!();
    // Where the 2 cores went: what each request cost, and the rate that cost allows.
    let per_request = |s: f64| s * 1e3 / ok.max(1) as f64;
    println!(
        "CPU during the load: host {:.1} s, Postgres {:.1} s, load generator {:.1} s of {:.1} \
         core-seconds; per answered request host {:.2} ms + Postgres {:.2} ms = {:.2} ms",
        cpu.host,
        cpu.postgres,
        cpu.client,
        elapsed * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
        per_request(cpu.host),
        per_request(cpu.postgres),
        per_request(cpu.host + cpu.postgres),
    );
    println!();
    println!("| request | answered | p50 ms | p95 ms |");
    println!("|---|---:|---:|---:|");
    for (name, lat) in [
        ("search (hybrid, k 10)", &search_ms),
        ("embeddings (1 text)", &embed_ms),
    ] {
        if !lat.is_empty() {
            println!(
                "| {name} | {} | {:.1} | {:.1} |",
                lat.len(),
                median(lat),
                percentile(lat, 0.95)
            );
        }
    }
    println!();
    Ok(())
}

pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Two sessions for the recall measurement: one scanning like the kb (iterative HNSW scan,
/// tenant filter), one with index scans off, which makes Postgres compute every distance.
struct RecallProbe {
    rt: tokio::runtime::Runtime,
    approx: tokio_postgres::Client,
    exact: tokio_postgres::Client,
}

impl RecallProbe {
    fn new(url: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let connect = |setting: &'static str| {
            let url = url.to_string();
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                client.batch_execute(setting).await?;
                Ok::<_, anyhow::Error>(client)
            })
        };
        // The kb's own settings: iterative scans, and the tenant kb_text_matches reads.
        let approx = connect(
            "SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = 100; \
             SET tessera.tenant = 'bench'",
        )?;
        let exact = connect("SET enable_indexscan = off")?;
        Ok(Self { rt, approx, exact })
    }

    fn set_ef_search(&self, ef: usize) -> Result<()> {
        self.rt.block_on(
            self.approx
                .batch_execute(&format!("SET hnsw.ef_search = {ef}")),
        )?;
        Ok(())
    }

    /// `EXPLAIN (ANALYZE, BUFFERS)` of one statement with text parameters, as printed.
    fn explain(&self, sql: &str, params: &[&str]) -> Result<String> {
        // Typed as text, as the kb sends them: `$1::vector` is then a cast from text.
        let params: Vec<(&(dyn tokio_postgres::types::ToSql + Sync), Type)> = params
            .iter()
            .map(|p| (p as &(dyn tokio_postgres::types::ToSql + Sync), Type::TEXT))
            .collect();
        let rows = self.rt.block_on(
            self.approx
                .query_typed(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &params),
        )?;
        Ok(rows
            .iter()
            .map(|r| without_vector_literal(&r.get::<_, String>(0)))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// The ten nearest chunks' cosine distances, nearest first.
    fn top10(&self, vector: &str, exact: bool) -> Result<Vec<f64>> {
        let client = if exact { &self.exact } else { &self.approx };
        let sql = format!(
            "SELECT embedding <=> '{vector}'::vector FROM kb_chunks
             WHERE tenant_id = '{TENANT}' AND embedding IS NOT NULL
             ORDER BY embedding <=> '{vector}'::vector LIMIT 10"
        );
        let rows = self.rt.block_on(client.query(&sql, &[]))?;
        Ok(rows.iter().map(|r| r.get::<_, f64>(0)).collect())
    }
}

/// A plan line with the query's 384 numbers shown as `'[…]'`.
fn without_vector_literal(line: &str) -> String {
    const END: &str = "]'::vector";
    match (line.find("'["), line.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!(
                "{}'[…]'::vector{}",
                &line[..start],
                &line[end + END.len()..]
            )
        }
        _ => line.to_string(),
    }
}

/// Grows the corpus to `target` chunks of mixtures: each new chunk's vector is a random
/// weighted sum of three real chunk embeddings (re-normalised) and its text joins theirs.
/// Mixtures of real embeddings spread over the model's space like real text does; noisy
/// copies of a few hundred points would instead make hundreds of near-ties per query.
fn grow_corpus(db: &TestDb, target: usize) -> Result<()> {
    let existing: i64 = db
        .query("SELECT count(*) FROM kb_chunks")
        .map_err(anyhow::Error::msg)?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0);
    let missing = target.saturating_sub(existing as usize);
    if missing == 0 {
        return Ok(());
    }
    let started = Instant::now();
    let per_doc = 100;
    let docs = missing.div_ceil(per_doc);
    db.execute(&format!(
        "INSERT INTO kb_documents (tenant_id, title, scope, format, content, content_hash, status, chunk_count)
         SELECT '{TENANT}', 'synthetic ' || g, 'global', 'text', 'synthetic', 'synthetic-' || g, 'ready', {per_doc}
         FROM generate_series(1, {docs}) g"
    ));
    db.execute(&format!(
        "WITH base AS (
             SELECT row_number() OVER (ORDER BY id) - 1 AS i, heading, content, embedding::real[] AS e
             FROM kb_chunks WHERE embedding IS NOT NULL),
         n AS (SELECT count(*) AS c FROM base),
         docs AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS d FROM kb_documents WHERE title LIKE 'synthetic %'),
         picks AS (
             SELECT g - 1 AS s, floor(random() * n.c)::bigint AS a, floor(random() * n.c)::bigint AS b,
                    floor(random() * n.c)::bigint AS c, random() AS wa, random() AS wb, random() AS wc
             FROM generate_series(1, {missing}) g, n)
         INSERT INTO kb_chunks (document_id, tenant_id, scope, ordinal, heading, content, token_count, embedding)
         SELECT docs.id, '{TENANT}', 'global', p.s % {per_doc}, ba.heading,
                left(ba.content, 300) || ' ' || left(bb.content, 300) || ' ' || left(bc.content, 300), 200,
                l2_normalize((SELECT array_agg(x * p.wa + y * p.wb + z * p.wc ORDER BY o)
                              FROM unnest(ba.e, bb.e, bc.e) WITH ORDINALITY AS u(x, y, z, o))::vector)
         FROM picks p
         JOIN base ba ON ba.i = p.a
         JOIN base bb ON bb.i = p.b
         JOIN base bc ON bc.i = p.c
         JOIN docs ON docs.d = p.s / {per_doc}"
    ));
    println!(
        "grew the corpus by {missing} chunks in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // Fresh planner statistics, so the plans measured do not depend on whether autovacuum
    // happened to analyse the grown tables yet (without them a run saw exact scans).
    db.execute("ANALYZE kb_documents; ANALYZE kb_chunks; ANALYZE kb_term_stats");
    Ok(())
}
