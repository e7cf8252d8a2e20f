//! The outbox through a real receiver outage (issue 15), in real time with the production
//! retry schedule (0, 5 s, 5 min, …): a Standard Webhooks endpoint that is down (its port
//! reserved, nothing listening) while `--events` alerts are raised over `--spread-s`
//! seconds, and comes up `--outage-s` seconds after the first. Reports whether every alert
//! arrived exactly once by `webhook-id` and in the order raised, and how long after the
//! recovery the first and the last arrived.

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_e2e::{HostCommand, TestDb, TestHost, wait_for};

const DELIVERY_SECRET: &str = "whsec_dGVzc2VyYS1iZW5jaC1kZWxpdmVyaWVzLTAx";

#[derive(clap::Args)]
pub struct OutageArgs {
    /// Alerts raised while the receiver is down.
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Seconds over which they are raised, from the start of the outage.
    #[arg(long, default_value_t = 60)]
    spread_s: u64,
    /// Seconds the receiver is down, from the first alert.
    #[arg(long, default_value_t = 300)]
    outage_s: u64,
}

/// Every request the receiver answered: the `n` label, the `webhook-id`, when.
type Seen = Arc<Mutex<Vec<(String, String, Instant)>>>;

fn post(host: &TestHost, path: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
    let r = host.post_json(path, body);
    if !(200..300).contains(&r.status) {
        bail!("POST {path}: {}", r.describe());
    }
    Ok(r.json())
}

pub fn run(args: OutageArgs) -> Result<()> {
    // The receiver's port, reserved and released: down until bound.
    let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let db = TestDb::new();
    let host = HostCommand::with_manifest_file(&db, tessera_e2e::root().join("spin.toml"))
        .env("SPIN_VARIABLE_ALERT_WEBHOOK_SECRET", DELIVERY_SECRET)
        .start();
    let channel = post(
        &host,
        "/v1/alerts/channels",
        &json!({"name": "outage", "kind": "webhook", "url": format!("http://{addr}/hook"),
                "secret_variable": "webhook_secret"}),
    )?;
    let channel = channel["id"].as_str().context("channel id")?.to_string();
    post(
        &host,
        "/v1/alerts/rules",
        &json!({"name": "outage", "event_types": ["bench.outage"], "channels": [channel],
                "group_by": ["n"], "timing": {"group_wait_ms": 0}}),
    )?;
    println!(
        "alerts outage: {} alerts over {} s, receiver down for {} s from the first (real schedule)",
        args.events, args.spread_s, args.outage_s
    );
    let start = Instant::now();
    let mut raised = Vec::with_capacity(args.events);
    for i in 0..args.events {
        let due = Duration::from_secs_f64(args.spread_s as f64 * i as f64 / args.events as f64);
        std::thread::sleep(due.saturating_sub(start.elapsed()));
        let n = format!("o{i:03}");
        post(
            &host,
            "/v1/alerts/events",
            &json!({"type": "bench.outage", "severity": "warning", "labels": {"n": n}}),
        )?;
        raised.push(n);
    }
    std::thread::sleep(Duration::from_secs(args.outage_s).saturating_sub(start.elapsed()));
    let seen: Seen = Arc::default();
    let listener = TcpListener::bind(addr).context("bind the receiver's reserved port")?;
    let recovered = Instant::now();
    println!("receiver up after {:.0} s", start.elapsed().as_secs_f64());
    let shared = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = shared.clone();
            std::thread::spawn(move || {
                let _ = serve(stream, &seen);
            });
        }
    });
    let all = wait_for(Duration::from_secs(1800), || {
        let seen = seen.lock().expect("seen");
        let distinct: std::collections::BTreeSet<&String> = seen.iter().map(|s| &s.0).collect();
        (distinct.len() >= args.events).then_some(())
    });
    if all.is_none() {
        bail!("not every alert arrived within 30 minutes of the recovery");
    }
    std::thread::sleep(Duration::from_secs(5));
    let seen = seen.lock().expect("seen").clone();
    let order: Vec<&String> = seen.iter().map(|s| &s.0).collect();
    let mut ids: Vec<&String> = seen.iter().map(|s| &s.1).collect();
    ids.sort();
    ids.dedup();
    let in_order = order == raised.iter().collect::<Vec<_>>();
    let once = seen.len() == args.events && ids.len() == args.events;
    let first = seen.first().map(|s| s.2.duration_since(recovered));
    let last = seen.last().map(|s| s.2.duration_since(recovered));
    let attempts = db
        .query("SELECT sum(attempts)::int8, count(*) FILTER (WHERE status = 'delivered') FROM alert_deliveries")
        .map_err(|e| anyhow::anyhow!(e))?;
    println!();
    println!("| measurement | result |");
    println!("|---|---:|");
    println!("| alerts raised during the outage | {} |", args.events);
    println!(
        "| requests the receiver got after recovery (distinct webhook-ids) | {} ({}) |",
        seen.len(),
        ids.len()
    );
    println!("| each arrived exactly once | {once} |");
    println!("| arrived in the order raised | {in_order} |");
    println!(
        "| recovery → first / last arrival | {:.1} / {:.1} s |",
        first.unwrap_or_default().as_secs_f64(),
        last.unwrap_or_default().as_secs_f64()
    );
    println!(
        "| delivery attempts in all (delivered) | {} ({}) |",
        attempts[0].get::<_, Option<i64>>(0).unwrap_or(0),
        attempts[0].get::<_, i64>(1)
    );
    if !(once && in_order) {
        bail!("the outage lost, repeated or reordered alerts: {order:?}");
    }
    Ok(())
}

fn serve(stream: TcpStream, seen: &Seen) -> std::io::Result<()> {
    crate::receiver::serve(stream, |request| {
        if let Some(label) = request.label() {
            let webhook_id = request.header("webhook-id").unwrap_or_default().to_string();
            seen.lock()
                .expect("seen")
                .push((label, webhook_id, Instant::now()));
        }
    })
}
