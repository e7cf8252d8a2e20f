//! Chat benchmarks (issue 5), on the real host with the repository's spin.toml and the demo
//! knowledge base (all of demo/kb, tenant `bench`):
//!
//! 1. a local-mode turn end to end (no provider configured: every step answers locally);
//! 2. the gateway's overhead over the provider's own time, against `ProviderDouble`;
//! 3. a turn whose paid step is an exact cache hit;
//! 4. cost: paid tokens per interaction over a replayed workload, the progressive protocol
//!    against one single-shot prompt with the same retrieved context, and the cache hit rate.
//!
//! Turns are timed from sending the `POST …/messages` to having read the whole SSE stream;
//! each turn gets a new conversation (no history), as in tests/chat.rs.

use crate::kb::{load_demo, percentile, questions};
use crate::stats::median;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Instant;
use tessera_e2e::http::Request;
use tessera_e2e::{HostCommand, ProviderDouble, TestDb, TestHost};
use tessera_gateway::{Catalog, ProviderStream, StreamEvent, StreamParser, build_request};
use tessera_progressive::{ContextBudget, SkillLevel, Source, context, prompt};

const TENANT: &str = "bench";
const KEY: &str = "bench-platform-key";

#[derive(clap::Args)]
pub struct ChatArgs {
    /// Timed turns per latency measurement (distinct questions of demo/kb/eval.json).
    #[arg(long, default_value_t = 50)]
    turns: usize,
    /// Untimed turns before them (other questions).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Interactions in the cost replay.
    #[arg(long, default_value_t = 200)]
    replay: usize,
    /// The chat's SSE heartbeat period (`chat_heartbeat_ms`); the app's default when unset.
    #[arg(long)]
    heartbeat_ms: Option<u64>,
}

fn start(db: &TestDb, heartbeat_ms: Option<u64>, env: &[(&str, String)]) -> TestHost {
    let mut cmd = HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("RUST_LOG", "warn");
    if let Some(ms) = heartbeat_ms {
        cmd = cmd.env("SPIN_VARIABLE_CHAT_HEARTBEAT_MS", ms.to_string());
    }
    for (k, v) in env {
        cmd = cmd.env(k, v.clone());
    }
    cmd.start()
}

/// One finished turn: its wall time and its SSE events (`[DONE]` dropped).
struct Turn {
    ms: f64,
    events: Vec<(String, Value)>,
}

impl Turn {
    fn of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events
            .iter()
            .filter(move |(e, _)| e == kind)
            .map(|(_, v)| v)
    }

    /// `step-finish` events of steps a model answered (or a cache answered for a model).
    fn paid(&self) -> Vec<&Value> {
        self.of("step-finish")
            .filter(|s| !matches!(s["provider"].as_str(), Some("local" | "-") | None))
            .collect()
    }

    fn finish(&self) -> &Value {
        self.of("finish").last().expect("checked in ask")
    }
}

fn ask(host: &TestHost, user: &str, question: &str) -> Result<Turn> {
    let send = |path: &str, body: Value| {
        Request::new("POST", path)
            .header("x-tenant-id", TENANT)
            .header("x-user-id", user.to_string())
            .json(&body)
            .send(host.addr())
    };
    let conv = send("/v1/chat/conversations", json!({"title": "bench"}))?.json()["id"]
        .as_str()
        .context("conversation id")?
        .to_string();
    let t = Instant::now();
    let r = send(
        &format!("/v1/chat/conversations/{conv}/messages"),
        json!({"content": question}),
    )?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if r.status != 200 {
        bail!("{question:?}: {}", r.describe());
    }
    let mut events = Vec::new();
    for block in r.text().split("\n\n") {
        let name = block.lines().find_map(|l| l.strip_prefix("event: "));
        let data: String = block
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        if let Some(name) = name {
            events.push((
                name.to_string(),
                serde_json::from_str(&data).with_context(|| format!("event {name}: {data}"))?,
            ));
        }
    }
    let turn = Turn { ms, events };
    match turn.of("finish").last() {
        Some(f) if f["status"] == "completed" => Ok(turn),
        _ => bail!(
            "{question:?} did not complete: {}",
            r.text().chars().take(3000).collect::<String>()
        ),
    }
}

fn row(what: &str, v: &[f64]) {
    if v.is_empty() {
        println!("| {what} | 0 | – | – |");
        return;
    }
    println!(
        "| {what} | {} | {:.1} | {:.1} |",
        v.len(),
        median(v),
        percentile(v, 0.95)
    );
}

pub fn run(args: ChatArgs) -> Result<()> {
    let db = TestDb::new();
    let qs: Vec<String> = questions()?.into_iter().map(|q| q.question).collect();
    let timed = args.warmup..(args.warmup + args.turns).min(qs.len());

    // 1. Local mode: no provider variables, so every step answers locally.
    let host = start(&db, args.heartbeat_ms, &[]);
    let (docs, chunks, _) = load_demo(&host)?;
    println!("demo knowledge base: {docs} documents, {chunks} chunks (tenant {TENANT})");
    let mut local = Vec::new();
    let mut steps: Vec<(String, Vec<f64>)> = Vec::new();
    for (i, q) in qs.iter().enumerate().take(timed.end) {
        let t = ask(&host, "bench", q)?;
        if !t.paid().is_empty() {
            bail!("local mode made a paid call: {:?}", t.paid());
        }
        if i >= timed.start {
            local.push(t.ms);
            for s in t.of("step-finish") {
                let kind = s["kind"].as_str().unwrap_or("?").to_string();
                let ms = s["duration_ms"].as_f64().unwrap_or(f64::NAN);
                match steps.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, v)) => v.push(ms),
                    None => steps.push((kind, vec![ms])),
                }
            }
        }
    }
    drop(host);

    // 2 and 3. The providers replaced by the test double, same database and knowledge base.
    let double = ProviderDouble::start();
    let host = start(
        &db,
        args.heartbeat_ms,
        &[
            ("SPIN_VARIABLE_LLM_CATALOG", double.catalog_json()),
            ("SPIN_VARIABLE_LLM_LOCAL_HOST", "127.0.0.1:*".into()),
            ("SPIN_VARIABLE_OPENAI_API_KEY", KEY.into()),
            ("SPIN_VARIABLE_ANTHROPIC_API_KEY", KEY.into()),
            ("SPIN_VARIABLE_GEMINI_API_KEY", KEY.into()),
        ],
    );
    db.execute("DELETE FROM response_cache");
    let (mut miss_turn, mut miss_step, mut served, mut overhead) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, q) in qs.iter().enumerate().take(timed.end) {
        let before = double.total_hits();
        let t = ask(&host, "bench", q)?;
        let calls = &double.requests()[before..];
        // Only turns with one paid step, a cache miss, answered by one provider request.
        let paid = t.paid();
        if i < timed.start || paid.len() != 1 || paid[0]["cache"] != "miss" || calls.len() != 1 {
            continue;
        }
        let Some(service) = calls[0].served_in else {
            continue;
        };
        let step = paid[0]["duration_ms"].as_f64().context("duration_ms")?;
        let service = service.as_secs_f64() * 1e3;
        miss_turn.push(t.ms);
        miss_step.push(step);
        served.push(service);
        overhead.push(step - service);
    }
    // The same questions again, each in a new conversation, so every paid step is an exact
    // hit; each asked twice, side by side: first with its stored whole turn removed (each
    // step looked up after analysis), then answered whole before analysis (docs/adr/0020).
    let (mut hit_turn, mut hit_one, mut hit_step) = (Vec::new(), Vec::new(), Vec::new());
    let mut whole = Vec::new();
    let all_exact =
        |paid: &[&Value]| !paid.is_empty() && paid.iter().all(|s| s["cache"] == "exact");
    for q in &qs[timed.clone()] {
        db.execute("DELETE FROM response_cache WHERE step_kind = 'turn'");
        let before = double.total_hits();
        let t = ask(&host, "bench", q)?;
        let paid = t.paid();
        if double.total_hits() == before && all_exact(&paid) {
            hit_turn.push(t.ms);
            if paid.len() == 1 {
                hit_one.push(t.ms);
            }
            hit_step.extend(
                paid.iter()
                    .filter(|s| s["kind"] == "implementation")
                    .filter_map(|s| s["duration_ms"].as_f64()),
            );
        }
        let again = ask(&host, "bench", q)?;
        let paid = again.paid();
        let replayed = paid.iter().all(|s| {
            s["reason"]
                .as_str()
                .is_some_and(|r| r.contains("whole turn"))
        });
        if double.total_hits() == before && all_exact(&paid) && replayed {
            whole.push(again.ms);
        }
    }

    println!();
    println!(
        "Latency ({} timed turns each after {} warm-up turns; new conversation per turn):",
        timed.len(),
        timed.start
    );
    println!();
    println!("| measurement | n | p50 ms | p95 ms |");
    println!("|---|---:|---:|---:|");
    row(
        "local-mode turn, end to end (POST → whole SSE stream read)",
        &local,
    );
    for (kind, v) in &steps {
        row(
            &format!("  local-mode {kind} step (server `duration_ms`)"),
            v,
        );
    }
    row(
        "paid turn, cache miss, one paid step, end to end",
        &miss_turn,
    );
    row(
        "  its implementation step (server `duration_ms`, whole ms)",
        &miss_step,
    );
    row(
        "  the provider double's own service time (last request byte read → last reply byte written)",
        &served,
    );
    row(
        "  **gateway overhead = step `duration_ms` − double's service time**",
        &overhead,
    );
    row(
        "cache-hit turn (exact hit on every paid step, each looked up after analysis), end to end",
        &hit_turn,
    );
    row(
        "  of which turns with one paid step (as the cache-miss rows)",
        &hit_one,
    );
    row(
        "  their implementation steps (server `duration_ms`)",
        &hit_step,
    );
    row(
        "**cache-hit turn answered whole before analysis (the same questions, asked right after), end to end**",
        &whole,
    );

    // 4. Cost over a replayed workload; fresh cache.
    db.execute("DELETE FROM response_cache");
    let catalog = Catalog::from_json(&double.catalog_json()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = qs.len();
    // Each question as asked, then each combined with the one half the list away (a two-part
    // question), then the list again from the top: repeats, as real traffic has.
    let compound = (0..n).map(|i| {
        format!(
            "{}, and {}",
            qs[i].trim_end_matches('?'),
            qs[(i + n / 2) % n]
        )
    });
    let workload: Vec<String> = qs.iter().cloned().chain(compound).collect();
    let (mut seen, mut fresh) = (HashSet::new(), Cost::default());
    let (mut all, mut steps_paid, mut steps_cached, mut exact, mut planned) =
        (Cost::default(), 0, 0, 0, 0);
    // Paid tokens by step kind: (steps, input, output), cache hits included as zero.
    let mut by_kind: Vec<(String, u64, u64, u64)> = Vec::new();
    for (i, q) in workload.iter().cycle().take(args.replay).enumerate() {
        let t = ask(&host, &format!("replay-{i}"), q)?;
        let paid = t.paid();
        for s in &paid {
            let kind = s["kind"].as_str().unwrap_or("?").to_string();
            let (i, o) = (
                s["input_tokens"].as_u64().unwrap_or(0),
                s["output_tokens"].as_u64().unwrap_or(0),
            );
            match by_kind.iter_mut().find(|(k, ..)| *k == kind) {
                Some(e) => (e.1, e.2, e.3) = (e.1 + 1, e.2 + i, e.3 + o),
                None => by_kind.push((kind, 1, i, o)),
            }
        }
        let tokens = |k: &str| paid.iter().map(|s| s[k].as_u64().unwrap_or(0)).sum::<u64>();
        let cached = paid.iter().filter(|s| s["cache"] != "miss").count();
        steps_paid += paid.len();
        steps_cached += cached;
        exact += paid.iter().filter(|s| s["cache"] == "exact").count();
        planned += paid.iter().any(|s| s["kind"] == "planning") as usize;
        let single = single_shot(&db, &double, &catalog, &t, q)?;
        // The baseline with an exact cache of its own: a repeated question costs nothing.
        let repeat = !seen.insert(q.clone());
        all.add(
            (tokens("input_tokens"), tokens("output_tokens")),
            if repeat { (0, 0) } else { single },
        );
        if cached == 0 {
            fresh.add((tokens("input_tokens"), tokens("output_tokens")), single);
        }
    }
    println!();
    println!(
        "Cost: a replay of {} interactions — the {n} eval questions, {n} two-part questions (question i + \", and \" + question i+{}), \
         then the list again from the top; fresh cache; tokens as the provider double reports them (characters / 4):",
        args.replay,
        n / 2
    );
    println!();
    println!(
        "| interactions | n | progressive paid tokens / interaction (in + out) | single-shot tokens / interaction (in + out) | progressive saves |"
    );
    println!("|---|---:|---:|---:|---:|");
    fresh.row("no step served from cache (the protocol alone)");
    all.row(
        "whole replay (protocol + its cache vs single-shot + exact cache of repeated questions)",
    );
    println!();
    println!(
        "| paid step kind | steps | input tokens / step | output tokens / step | share of the replay's paid tokens |"
    );
    println!("|---|---:|---:|---:|---:|");
    let total: u64 = by_kind.iter().map(|(_, _, i, o)| i + o).sum();
    for (kind, n, i, o) in &by_kind {
        println!(
            "| {kind} | {n} | {:.0} | {:.0} | {:.0}% |",
            *i as f64 / *n as f64,
            *o as f64 / *n as f64,
            100.0 * (i + o) as f64 / total.max(1) as f64
        );
    }
    println!();
    println!(
        "Cache: {steps_cached} of {steps_paid} paid steps answered from cache = **{:.1}%** ({exact} exact, {} semantic); {planned} of {} turns were planned by a model.",
        100.0 * steps_cached as f64 / steps_paid.max(1) as f64,
        steps_cached - exact,
        args.replay
    );
    Ok(())
}

/// Token sums for the cost table.
#[derive(Default)]
struct Cost {
    n: usize,
    progressive: (u64, u64),
    single: (u64, u64),
}

impl Cost {
    fn add(&mut self, progressive: (u64, u64), single: (u64, u64)) {
        self.n += 1;
        self.progressive = (
            self.progressive.0 + progressive.0,
            self.progressive.1 + progressive.1,
        );
        self.single = (self.single.0 + single.0, self.single.1 + single.1);
    }

    fn row(&self, what: &str) {
        if self.n == 0 {
            println!("| {what} | 0 | – | – | – |");
            return;
        }
        let per = |(i, o): (u64, u64)| {
            (
                i + o,
                i as f64 / self.n.max(1) as f64,
                o as f64 / self.n.max(1) as f64,
            )
        };
        let (p, pi, po) = per(self.progressive);
        let (s, si, so) = per(self.single);
        println!(
            "| {what} | {} | {:.0} ({pi:.0} + {po:.0}) | {:.0} ({si:.0} + {so:.0}) | **{:.0}%** |",
            self.n,
            pi + po,
            si + so,
            100.0 * (1.0 - p as f64 / s.max(1) as f64)
        );
    }
}

/// The baseline for one turn: `tessera_progressive::prompt::single_shot` over the sources the
/// turn retrieved (as stored with its message by the analysis step, contents included),
/// built by tessera-gateway for the provider and model of the turn's first paid step, sent to
/// the double; returns the (input, output) tokens the double reports.
fn single_shot(
    db: &TestDb,
    double: &ProviderDouble,
    catalog: &Catalog,
    t: &Turn,
    question: &str,
) -> Result<(u64, u64)> {
    let message = t.finish()["message_id"].as_str().context("message_id")?;
    let rows = db
        .query(&format!(
            "SELECT sources::text FROM messages WHERE id = '{message}'"
        ))
        .map_err(anyhow::Error::msg)?;
    let sources: Vec<Source> =
        serde_json::from_str(&rows.first().context("the message row")?.get::<_, String>(0))?;
    let listed: Vec<i64> = t
        .of("tool-result")
        .flat_map(|r| {
            r["output"]["results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|r| r["chunk_id"].as_i64())
        .collect();
    if listed != sources.iter().map(|s| s.chunk_id).collect::<Vec<_>>() {
        bail!("the stored sources are not the ones the turn's tool-result listed");
    }
    let ctx = context::build(
        None,
        &[],
        &sources,
        SkillLevel::default(),
        &ContextBudget::single_shot(),
    );
    // A turn with no paid step (none expected here) is priced on the double's openai.
    let paid = t.paid();
    let (provider, model) = paid.first().map_or(("openai", "gpt-4o-mini"), |s| {
        (
            s["provider"].as_str().unwrap_or(""),
            s["model"].as_str().unwrap_or(""),
        )
    });
    let provider = catalog.provider(provider).context("provider")?;
    let mut request = prompt::single_shot(question, &ctx);
    request.model = model.to_string();
    let http = build_request(&provider.endpoint(Some(KEY.into())), &request)?;
    let path = http
        .url
        .split_once(&double.addr().to_string())
        .map(|(_, p)| p.to_string())
        .context("a URL on the double")?;
    let mut r = Request::new("POST", &path).body(&http.body);
    for (name, value) in &http.headers {
        r = r.header(name, value.clone());
    }
    let answer = r.send(double.addr())?;
    let mut stream = ProviderStream::new(provider.kind).context("a streaming provider")?;
    let mut events = stream.feed(&answer.body)?;
    events.extend(stream.finish()?);
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            StreamEvent::Usage(u) => Some((u.input_tokens, u.output_tokens)),
            _ => None,
        })
        .with_context(|| format!("no usage in the double's answer: {}", answer.describe()))
}
