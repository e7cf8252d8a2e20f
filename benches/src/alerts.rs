//! Alert delivery and inbound webhooks (issue 15), on the real host with the repository's
//! spin.toml, a fresh database and a local Standard Webhooks receiver (a thread per
//! connection that records when each notification arrived):
//!
//! 1. event → first attempt: `--events` events posted by `--clients` clients to a rule with
//!    `group_wait_ms: 0`, so each is attempted right after its commit; the time from the
//!    post's start to the receiver's arrival, per event, and the deliveries per second;
//! 2. dispatcher drain: `--backlog` events posted to a rule whose groups wait
//!    `--backlog-wait-ms` (10 s: longer than the posting takes, so the whole backlog is
//!    written before its first group is due and the figure is the dispatcher's, not the
//!    posting's pace), so the cron-driven dispatcher flushes and sends them all; deliveries
//!    per second from the first to the last arrival;
//! 3. inbound: `--inbound` signed Standard Webhooks posts to `/v1/webhooks/market_data`,
//!    one at a time, each verified and stored: latency p50/p95.

use crate::kb::percentile;
use crate::stats::median;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_alerting::standard_webhooks::{Secret, outgoing_headers};
use tessera_e2e::http::Request;
use tessera_e2e::{HostCommand, TestDb, TestHost, wait_for};

const TENANT: &str = "bench";
// Test secrets (base64 of 24 fixed bytes), for this benchmark's host only.
const DELIVERY_SECRET: &str = "whsec_dGVzc2VyYS1iZW5jaC1kZWxpdmVyaWVzLTAx";
const INBOUND_SECRET: &str = "whsec_dGVzc2VyYS1iZW5jaC1pbmJvdW5kLXNlY3JldA==";

#[derive(clap::Args)]
pub struct AlertsArgs {
    /// Events for the event → first attempt measurement.
    #[arg(long, default_value_t = 1000)]
    events: usize,
    /// Events for the dispatcher drain measurement.
    #[arg(long, default_value_t = 3000)]
    backlog: usize,
    /// How long the backlog's groups wait: longer than posting the backlog takes.
    #[arg(long, default_value_t = 10_000)]
    backlog_wait_ms: u64,
    /// Clients posting events at once.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Inbound webhooks, posted one at a time.
    #[arg(long, default_value_t = 500)]
    inbound: usize,
}

/// When each notification (by its `n` label) first arrived.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<String, Instant>>>);

impl Arrivals {
    fn count(&self, prefix: &str) -> usize {
        let map = self.0.lock().expect("arrivals");
        map.keys().filter(|k| k.starts_with(prefix)).count()
    }

    fn get(&self, key: &str) -> Option<Instant> {
        self.0.lock().expect("arrivals").get(key).copied()
    }
}

fn start_receiver(arrivals: Arrivals) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let _ = serve(stream, &arrivals);
            });
        }
    });
    Ok(addr)
}

/// HTTP/1.1 with keep-alive: each request's arrival is recorded under its `"n":"…"` label.
fn serve(stream: TcpStream, arrivals: &Arrivals) -> std::io::Result<()> {
    crate::receiver::serve(stream, |request| {
        let at = Instant::now();
        if let Some(label) = request.label() {
            arrivals
                .0
                .lock()
                .expect("arrivals")
                .entry(label)
                .or_insert(at);
        }
    })
}

fn post(host: &TestHost, path: &str, body: &Value) -> Result<Value> {
    let r = Request::new("POST", path)
        .header("x-tenant-id", TENANT)
        .json(body)
        .send(host.addr())
        .with_context(|| format!("POST {path}"))?;
    if !(200..300).contains(&r.status) {
        bail!("POST {path}: {}", r.describe());
    }
    Ok(r.json())
}

/// Posts `count` events of `event_type` labelled `n = <prefix><i>` from `clients` threads;
/// returns when each post started.
fn post_events(
    host: &TestHost,
    event_type: &str,
    prefix: &str,
    count: usize,
    clients: usize,
) -> Result<HashMap<String, Instant>> {
    let started = Mutex::new(HashMap::with_capacity(count));
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for c in 0..clients {
            let (started, errors) = (&started, &errors);
            s.spawn(move || {
                for i in (c..count).step_by(clients) {
                    let n = format!("{prefix}{i}");
                    let at = Instant::now();
                    let body = json!({"type": event_type, "severity": "info",
                                      "labels": {"n": n}, "summary": "bench"});
                    match post(host, "/v1/alerts/events", &body) {
                        Ok(_) => {
                            started.lock().expect("started").insert(n, at);
                        }
                        Err(e) => errors.lock().expect("errors").push(e.to_string()),
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().expect("errors");
    if let Some(first) = errors.first() {
        bail!("{} event posts failed, the first: {first}", errors.len());
    }
    Ok(started.into_inner().expect("started"))
}

/// `status: count, …` of the outbox, with the last error seen, for a failure's message.
fn delivery_states(db: &TestDb) -> String {
    match db.query(
        "SELECT status || ': ' || count(*) || coalesce(' (' || max(last_error) || ')', '') \
         FROM alert_deliveries GROUP BY status",
    ) {
        Ok(rows) => rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => e,
    }
}

pub fn run(args: AlertsArgs) -> Result<()> {
    let arrivals = Arrivals::default();
    let receiver = start_receiver(arrivals.clone())?;
    let db = TestDb::new();
    let host = HostCommand::with_manifest_file(&db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_ALERT_WEBHOOK_SECRET", DELIVERY_SECRET)
        .env("SPIN_VARIABLE_MARKET_DATA_WEBHOOK_SECRET", INBOUND_SECRET)
        .start();
    println!(
        "alerts benchmark: {} immediate events ({} clients), a backlog of {}, {} inbound webhooks",
        args.events, args.clients, args.backlog, args.inbound
    );

    // Phases 1 and 2 for an ordered endpoint (the default: one delivery at a time, in the
    // order written) and an unordered one (concurrent sends), side by side.
    let ordered = measure_delivery(&host, &db, &arrivals, receiver, &args, true)?;
    let unordered = measure_delivery(&host, &db, &arrivals, receiver, &args, false)?;

    // 3. Inbound webhooks.
    let secret = Secret::parse(INBOUND_SECRET).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut inbound = Vec::with_capacity(args.inbound);
    for i in 0..args.inbound {
        let body = json!({"type": "bars.update", "data": {"symbol": "AAA", "i": i}}).to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let headers = outgoing_headers(
            &[secret.clone()],
            &format!("msg_bench_{i}"),
            now,
            body.as_bytes(),
        );
        let mut request = Request::new("POST", "/v1/webhooks/market_data")
            .header("content-type", "application/json");
        for (name, value) in &headers {
            request = request.header(name, value.clone());
        }
        let t = Instant::now();
        let r = request.body(body.as_bytes()).send(host.addr())?;
        inbound.push(t.elapsed().as_secs_f64() * 1e3);
        if r.status != 200 && r.status != 201 {
            bail!("inbound webhook {i}: {}", r.describe());
        }
    }
    inbound.sort_by(|a, b| a.total_cmp(b));
    let stored = db
        .query("SELECT count(*) FROM webhook_events")
        .map_err(|e| anyhow::anyhow!(e))?[0]
        .get::<_, i64>(0);

    println!();
    println!("| measurement | result |");
    println!("|---|---:|");
    for (mode, m) in [("ordered", &ordered), ("unordered", &unordered)] {
        println!(
            "| {mode} endpoint: event → first attempt, p50 / p95 ({} events, {} clients) | {:.1} / {:.1} ms |",
            args.events,
            args.clients,
            median(&m.latencies),
            percentile(&m.latencies, 0.95)
        );
        println!(
            "| {mode} endpoint: immediate deliveries (posted and delivered) | {:.0} /s |",
            m.immediate_rate
        );
        println!(
            "| {mode} endpoint: dispatcher drain ({} grouped events, first to last arrival) | {:.0} deliveries/s |",
            args.backlog, m.drain_rate
        );
        println!(
            "| {mode} endpoint: posting the backlog ({} events, {} clients) | {:.0} events/s |",
            args.backlog, args.clients, m.posting_rate
        );
    }
    println!(
        "| inbound webhook verified and stored, p50 / p95 ({} sequential) | {:.2} / {:.2} ms |",
        args.inbound,
        median(&inbound),
        percentile(&inbound, 0.95)
    );
    println!("  inbound events stored: {stored}");
    Ok(())
}

/// What phases 1 and 2 measured for one endpoint.
struct Delivery {
    latencies: Vec<f64>,
    immediate_rate: f64,
    drain_rate: f64,
    posting_rate: f64,
}

/// Phases 1 and 2 against a channel of its own (`ordered` or not) at the receiver.
fn measure_delivery(
    host: &TestHost,
    db: &TestDb,
    arrivals: &Arrivals,
    receiver: SocketAddr,
    args: &AlertsArgs,
    ordered: bool,
) -> Result<Delivery> {
    let mode = if ordered { "ordered" } else { "unordered" };
    let channel = post(
        host,
        "/v1/alerts/channels",
        &json!({"name": format!("bench-{mode}"), "kind": "webhook",
                "url": format!("http://{receiver}/hook"),
                "secret_variable": "webhook_secret", "ordered": ordered}),
    )?;
    let channel = channel["id"].as_str().context("channel id")?.to_string();
    for (phase, wait_ms) in [("immediate", 0), ("backlog", args.backlog_wait_ms)] {
        post(
            host,
            "/v1/alerts/rules",
            &json!({"name": format!("{mode}-{phase}"), "event_types": [format!("bench.{mode}.{phase}")],
                    "channels": [channel], "group_by": ["n"],
                    "timing": {"group_wait_ms": wait_ms, "group_interval_ms": 300000}}),
        )?;
    }
    let (i, b) = (format!("{mode}-i"), format!("{mode}-b"));

    // 1. Event → first attempt.
    let t0 = Instant::now();
    let started = post_events(
        host,
        &format!("bench.{mode}.immediate"),
        &i,
        args.events,
        args.clients,
    )?;
    if wait_for(Duration::from_secs(600), || {
        (arrivals.count(&i) >= args.events).then_some(())
    })
    .is_none()
    {
        bail!(
            "{mode}: {} of {} immediate events arrived within 10 minutes; deliveries by status: {}",
            arrivals.count(&i),
            args.events,
            delivery_states(db)
        );
    }
    let mut latencies: Vec<f64> = started
        .iter()
        .filter_map(|(n, at)| {
            arrivals
                .get(n)
                .map(|a| a.duration_since(*at).as_secs_f64() * 1e3)
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let last = started
        .keys()
        .filter_map(|n| arrivals.get(n))
        .max()
        .context("no arrivals")?;
    let immediate_rate = args.events as f64 / last.duration_since(t0).as_secs_f64();

    // 2. The dispatcher's drain of a backlog.
    let posted = Instant::now();
    let backlog = post_events(
        host,
        &format!("bench.{mode}.backlog"),
        &b,
        args.backlog,
        args.clients,
    )?;
    let posting_s = posted.elapsed().as_secs_f64();
    if posting_s * 1e3 > args.backlog_wait_ms as f64 {
        println!(
            "  note: posting the {mode} backlog took {posting_s:.1} s, longer than its groups \
             wait ({} ms): the drain below includes the posting's pace",
            args.backlog_wait_ms
        );
    }
    if wait_for(Duration::from_secs(600), || {
        (arrivals.count(&b) >= args.backlog).then_some(())
    })
    .is_none()
    {
        bail!(
            "{mode}: {} of {} backlog events arrived within 10 minutes; deliveries by status: {}",
            arrivals.count(&b),
            args.backlog,
            delivery_states(db)
        );
    }
    let times: Vec<Instant> = backlog.keys().filter_map(|n| arrivals.get(n)).collect();
    let (first, last) = (
        *times.iter().min().context("no arrivals")?,
        *times.iter().max().context("no arrivals")?,
    );
    let drain_s = last.duration_since(first).as_secs_f64();
    Ok(Delivery {
        latencies,
        immediate_rate,
        drain_rate: args.backlog as f64 / drain_s.max(1e-9),
        posting_rate: args.backlog as f64 / posting_s,
    })
}
