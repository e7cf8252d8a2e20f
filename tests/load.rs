//! Under load nothing stalls (issue 12, docs/adr/0011): the repository's spin.toml on the real
//! host takes 64 concurrent chat turns, then 64 clients for a minute over a mix of health,
//! kb searches in every mode, local-mode chat turns and feedback reads and writes, with no
//! 5xx other than 503 back-pressure, no transport errors, and the host's peak memory under
//! 1 GiB; and a PostgreSQL outage in the middle of load is answered with 503 and a JSON
//! error, recovered from without restarting the host, and loses no acknowledged write.
//!
//! `TESSERA_LOAD_SECONDS` shortens the mixed phase for local runs (default 60). The
//! latencies printed here are figures for benches/README.md, not assertions.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tessera_e2e::http::Request;
use tessera_e2e::{HostCommand, Response, TestDb, TestHost};

const T: &str = "load-co";
const CLIENTS: usize = 64;
const KEY: &str = "load-test-feedback-signing-key-0123456789";

/// One host at a time: each maps the embedding model and the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn host(db: &TestDb) -> TestHost {
    HostCommand::with_manifest_file(db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_DATABASE_HOST", db.host_port())
        .env("SPIN_VARIABLE_FEEDBACK_SIGNING_KEY", KEY)
        .start()
}

fn send(
    host: SocketAddrOf,
    method: &'static str,
    path: &str,
    body: Option<&Value>,
    user: &str,
) -> std::io::Result<Response> {
    let request = Request::new(method, path)
        .header("x-tenant-id", T)
        .header("x-user-id", user.to_string());
    match body {
        Some(b) => request.json(b).send(host),
        None => request.send(host),
    }
}

type SocketAddrOf = std::net::SocketAddr;

fn ingest(host: &TestHost, files: &[&str]) {
    for f in files {
        let text = std::fs::read_to_string(tessera_e2e::root().join("demo/kb").join(f)).unwrap();
        let r = send(
            host.addr(),
            "POST",
            "/v1/kb/documents",
            Some(&json!({"title": f, "content": text})),
            "admin",
        )
        .expect("ingest");
        assert!(r.status == 201 || r.status == 200, "{f}: {}", r.describe());
    }
}

/// A local-mode chat turn: a new conversation and one question, the SSE stream read to its
/// end. Returns the status that decides the outcome and the assistant message id.
fn chat_turn(
    addr: SocketAddrOf,
    user: &str,
    question: &str,
) -> std::io::Result<(u16, Option<String>)> {
    let r = send(
        addr,
        "POST",
        "/v1/chat/conversations",
        Some(&json!({"title": "load"})),
        user,
    )?;
    if r.status != 201 {
        return Ok((r.status, None));
    }
    let conversation = r.json()["id"].as_str().unwrap_or_default().to_string();
    let r = send(
        addr,
        "POST",
        &format!("/v1/chat/conversations/{conversation}/messages"),
        Some(&json!({"content": question})),
        user,
    )?;
    if r.status != 200 {
        return Ok((r.status, None));
    }
    let text = r.text();
    let message = text
        .split("\n\n")
        .filter(|b| b.starts_with("event: start"))
        .flat_map(|b| b.lines().filter_map(|l| l.strip_prefix("data: ")))
        .find_map(|d| serde_json::from_str::<Value>(d).ok())
        .and_then(|v| v["message_id"].as_str().map(str::to_string));
    let finished = text.contains("event: finish") && text.contains("data: [DONE]");
    // A stream that ends without its finish is a failure the status line cannot show.
    Ok((if finished { 200 } else { 599 }, message))
}

const QUESTIONS: &[&str] = &[
    "What is WACC?",
    "How is the Sharpe ratio computed?",
    "What does free cash flow measure?",
    "How is terminal value estimated?",
    "What is the CAPM cost of equity?",
];

/// Outcomes of one kind of request: statuses and latencies.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    transport_errors: Vec<String>,
    latencies: Vec<Duration>,
}

impl Tally {
    fn record(&mut self, started: Instant, outcome: std::io::Result<u16>) {
        self.latencies.push(started.elapsed());
        match outcome {
            Ok(status) => *self.statuses.entry(status).or_default() += 1,
            Err(e) => self.transport_errors.push(e.to_string()),
        }
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() - 1) as f64 * p).round() as usize]
    }

    /// 5xx other than 503 (back-pressure the client is told to retry), and the stream
    /// failures counted as 599.
    fn failures(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(s, _)| **s >= 500 && **s != 503)
            .map(|(_, n)| n)
            .sum()
    }
}

type Tallies = Arc<Mutex<BTreeMap<&'static str, Tally>>>;

fn report(title: &str, tallies: &Tallies, seconds: f64) {
    let tallies = tallies.lock().unwrap();
    eprintln!("\n{title}\n| request | count | req/s | p50 ms | p99 ms | statuses |");
    eprintln!("|---|---:|---:|---:|---:|---|");
    for (kind, t) in tallies.iter() {
        eprintln!(
            "| {kind} | {} | {:.1} | {:.1} | {:.1} | {:?} |",
            t.latencies.len(),
            t.latencies.len() as f64 / seconds,
            t.percentile(0.5).as_secs_f64() * 1e3,
            t.percentile(0.99).as_secs_f64() * 1e3,
            t.statuses
        );
    }
}

fn assert_healthy(tallies: &Tallies) {
    let tallies = tallies.lock().unwrap();
    for (kind, t) in tallies.iter() {
        assert!(
            t.transport_errors.is_empty(),
            "{kind}: {} transport errors, e.g. {:?}",
            t.transport_errors.len(),
            t.transport_errors.first()
        );
        assert_eq!(t.failures(), 0, "{kind}: failures among {:?}", t.statuses);
    }
}

/// The host's peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn mixed_request(
    addr: SocketAddrOf,
    client: usize,
    round: usize,
    messages: &[String],
    tallies: &Tallies,
) {
    let user = format!("u{}", client % 8);
    let question = QUESTIONS[(client + round) % QUESTIONS.len()];
    let started = Instant::now();
    let (kind, outcome): (&'static str, std::io::Result<u16>) = match (client + round) % 8 {
        0 => (
            "health",
            Request::new("GET", "/health").send(addr).map(|r| r.status),
        ),
        1 => ("search hybrid", search(addr, question, "hybrid")),
        2 => ("search vector", search(addr, question, "vector")),
        3 => ("search text", search(addr, question, "text")),
        4 => (
            "chat turn",
            chat_turn(addr, &user, question).map(|(s, _)| s),
        ),
        5 | 6 => {
            let message = &messages[(client * 7 + round) % messages.len()];
            let rating = if round % 2 == 0 { "up" } else { "down" };
            (
                "feedback write",
                send(
                    addr,
                    "POST",
                    &format!("/v1/messages/{message}/feedback"),
                    Some(&json!({"rating": rating})),
                    "u0",
                )
                .map(|r| r.status),
            )
        }
        _ => {
            let message = &messages[(client + round) % messages.len()];
            (
                "feedback read",
                send(
                    addr,
                    "GET",
                    &format!("/v1/messages/{message}/feedback"),
                    None,
                    "u0",
                )
                .map(|r| r.status),
            )
        }
    };
    tallies
        .lock()
        .unwrap()
        .entry(kind)
        .or_default()
        .record(started, outcome);
}

fn search(addr: SocketAddrOf, query: &str, mode: &str) -> std::io::Result<u16> {
    send(
        addr,
        "POST",
        "/v1/kb/search",
        Some(&json!({"query": query, "mode": mode, "k": 5})),
        "u0",
    )
    .map(|r| r.status)
}

#[test]
fn sixty_four_clients_are_served_without_stalls() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seconds: u64 = std::env::var("TESSERA_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let db = TestDb::new();
    let host = host(&db);
    let addr = host.addr();
    ingest(
        &host,
        &[
            "wacc.md",
            "sharpe-ratio.md",
            "free-cash-flow.md",
            "terminal-value.md",
            "capm-cost-of-equity.md",
        ],
    );

    // Phase 1: 64 chat turns at once (16 of them deadlocked the old shared pool).
    let burst: Tallies = Arc::default();
    let messages: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (burst, messages) = (burst.clone(), messages.clone());
            thread::spawn(move || {
                let t = Instant::now();
                let outcome =
                    chat_turn(addr, &format!("u{}", i % 8), QUESTIONS[i % QUESTIONS.len()]);
                if let Ok((_, Some(m))) = &outcome {
                    messages.lock().unwrap().push(m.clone());
                }
                burst
                    .lock()
                    .unwrap()
                    .entry("chat turn")
                    .or_default()
                    .record(t, outcome.map(|(s, _)| s));
            })
        })
        .collect();
    threads
        .into_iter()
        .for_each(|t| t.join().expect("client thread"));
    report(
        "64 concurrent chat turns",
        &burst,
        started.elapsed().as_secs_f64(),
    );
    assert_healthy(&burst);
    let messages = messages.lock().unwrap().clone();
    assert!(!messages.is_empty(), "no turn produced a message");
    let running: i64 = db
        .query("SELECT count(*) FROM messages WHERE status = 'running'")
        .unwrap()[0]
        .get(0);
    assert_eq!(running, 0, "turns left running after the burst");

    // Phase 2: 64 clients over the mix.
    let mixed: Tallies = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let messages = Arc::new(messages);
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (mixed, stop, messages) = (mixed.clone(), stop.clone(), messages.clone());
            thread::spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    mixed_request(addr, client, round, &messages, &mixed);
                    round += 1;
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    threads
        .into_iter()
        .for_each(|t| t.join().expect("client thread"));
    let elapsed = started.elapsed().as_secs_f64();
    report(
        &format!("64 clients, mixed, {elapsed:.0} s"),
        &mixed,
        elapsed,
    );
    let peak = peak_rss_mib(host.pid());
    eprintln!("host peak RSS (VmHWM): {peak:.0} MiB");
    assert_healthy(&mixed);
    assert!(
        peak > 0.0 && peak <= 1024.0,
        "peak RSS {peak:.0} MiB is over 1 GiB"
    );
    assert_eq!(host.get("/ready").status, 200, "still ready after the load");
}

/// A server of its own, which the test stops and starts again.
struct OwnServer {
    server: tessera_devdb::PgServer,
    _dir: tessera_e2e::TempDir,
}

fn own_server() -> OwnServer {
    let state = tessera_e2e::root().join(".tessera");
    let install = tessera_devdb::ensure_installed(&state).expect("the embedded PostgreSQL");
    // Under .tessera/, which the server's system user can traverse (a temp dir may not be).
    let dir = tessera_e2e::TempDir::under(&state.join("test-pg"), "outage");
    let server = tessera_devdb::PgServer::start(&install, &dir.path().join("data"))
        .expect("a PostgreSQL of the test's own");
    server.ensure_database("postgres").expect("pgvector");
    OwnServer { server, _dir: dir }
}

#[test]
fn a_database_outage_is_answered_503_and_recovered_from_without_losing_writes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut own = own_server();
    let db = TestDb::on(&own.server.admin_url());
    let host = host(&db);
    let addr = host.addr();
    ingest(&host, &["wacc.md"]);

    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let during: Tallies = Arc::default();
    let bad_bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (acknowledged, during, stop, bad) = (
                acknowledged.clone(),
                during.clone(),
                stop.clone(),
                bad_bodies.clone(),
            );
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let title = format!("w{w}-{n}");
                    let started = Instant::now();
                    let r = send(
                        addr,
                        "POST",
                        "/v1/chat/conversations",
                        Some(&json!({"title": title})),
                        "u1",
                    );
                    if let Ok(r) = &r {
                        if r.status == 201 {
                            acknowledged
                                .lock()
                                .unwrap()
                                .push(r.json()["id"].as_str().unwrap().to_string());
                        } else if r.status >= 500 && !r.json()["error"]["code"].is_string() {
                            bad.lock().unwrap().push(r.describe());
                        }
                    }
                    let outcome = r.map(|r| r.status);
                    let kind = if w % 2 == 0 { "write" } else { "write (odd)" };
                    during
                        .lock()
                        .unwrap()
                        .entry(kind)
                        .or_default()
                        .record(started, outcome);
                    let started = Instant::now();
                    let s = search(addr, "weighted average cost of capital", "hybrid");
                    during
                        .lock()
                        .unwrap()
                        .entry("search")
                        .or_default()
                        .record(started, s);
                    n += 1;
                }
            })
        })
        .collect();

    thread::sleep(Duration::from_secs(2));
    own.server
        .restart_after(Duration::from_secs(3))
        .expect("PostgreSQL restarted");
    let back = Instant::now();
    let recovered = tessera_e2e::wait_for(Duration::from_secs(5), || {
        let r = send(
            addr,
            "POST",
            "/v1/chat/conversations",
            Some(&json!({"title": "probe"})),
            "u1",
        )
        .ok()?;
        (r.status == 201).then_some(back.elapsed())
    });
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|t| t.join().expect("writer"));
    report(
        "writes and searches across a 3 s PostgreSQL outage",
        &during,
        7.0,
    );

    let recovered = recovered.expect("a write succeeded within 5 s of PostgreSQL's return");
    eprintln!(
        "first acknowledged write {:.0} ms after PostgreSQL was back",
        recovered.as_secs_f64() * 1e3
    );
    let during = during.lock().unwrap();
    for (kind, t) in during.iter() {
        assert!(
            t.transport_errors.is_empty(),
            "{kind}: {:?}",
            t.transport_errors.first()
        );
        let unexpected: Vec<_> = t
            .statuses
            .keys()
            .filter(|s| **s >= 500 && **s != 503)
            .collect();
        assert!(unexpected.is_empty(), "{kind}: statuses {:?}", t.statuses);
    }
    let outage_seen: usize = during
        .values()
        .map(|t| t.statuses.get(&503).copied().unwrap_or(0))
        .sum();
    assert!(
        outage_seen > 0,
        "the outage was answered with 503: {:?}",
        during.keys()
    );
    assert!(
        bad_bodies.lock().unwrap().is_empty(),
        "5xx without a JSON error: {:?}",
        bad_bodies.lock().unwrap()
    );
    drop(during);

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty());
    let stored: i64 = db
        .query(&format!(
            "SELECT count(*) FROM conversations WHERE id::text = ANY(ARRAY[{}])",
            acknowledged
                .iter()
                .map(|id| format!("'{id}'"))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .unwrap()[0]
        .get(0);
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "every acknowledged write is stored"
    );
    drop(host);
    drop(db);
}
