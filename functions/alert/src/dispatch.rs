//! The outbox and its dispatcher. A notification becomes one delivery per channel, its body
//! rendered once with the channel's template and its `webhook-id` derived from the flush
//! (tessera-alerting's `Notification::delivery_id`), so every attempt sends the same bytes
//! under the same id and a receiver can deduplicate. The dispatcher claims due deliveries
//! with `FOR UPDATE SKIP LOCKED` under a lease (a crash mid-send lets the lease lapse and the
//! delivery is retried, never lost), sends them, classifies each outcome with
//! tessera-alerting's retry policy and records it.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use spin_sdk::http::FullBody;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::pg::Connection;
use tessera_alerting::retry::{DEFAULT_DISABLE_AFTER, FailReason};
use tessera_alerting::templates::email::EmailChannel;
use tessera_alerting::templates::{discord, email, slack, webhook};
use tessera_alerting::{
    AlertGroup, AttemptOutcome, EndpointHealth, NextStep, Notification, RetryPolicy, Rule, Secret,
    Silence, TransportError, classify, outgoing_headers, parse_retry_after,
};
use tessera_spin_kit::pg::parse_uuid;
use tessera_spin_kit::{ApiError, StatusCode};

use crate::clock::{self, now_ms};
use crate::db::{self, P};
use crate::{Handled, silences};

/// A claimed delivery is someone's for this long; past it (a crash), it is due again. The
/// component variable `lease_s` overrides it (tests shorten it to restart a killed host).
const LEASE_SECS: f64 = 60.0;
/// The send timeout of one attempt.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// Deliveries claimed at once, and claims per dispatcher run.
const BATCH: i64 = 50;
/// How long one tick keeps claiming batches while due work remains: a backlog drains at the
/// receivers' pace instead of `BATCH` per tick, and a tick still ends well inside the host's
/// request deadline (a batch in flight may add up to SEND_TIMEOUT).
const RUN_BUDGET: Duration = Duration::from_secs(5);
/// Groups flushed per dispatcher run.
const GROUPS_PER_RUN: i64 = 200;

/// Renders `n` for each of `channels` (ids; missing or disabled ones are skipped) and writes
/// the deliveries; a flush written twice yields the same `webhook-id`s and no second row.
pub async fn write_notification(
    db: &Connection,
    tenant: &str,
    n: &Notification,
    channels: &[String],
) -> Result<Vec<String>, ApiError> {
    let channels = load_channels(db, tenant, channels).await?;
    insert_deliveries(db, &render(tenant, n, &channels)).await
}

/// A channel a notification is rendered for.
struct ChannelRow {
    id: String,
    kind: String,
    config: serde_json::Value,
}

/// The tenant's enabled channels among `ids`.
async fn load_channels(
    db: &Connection,
    tenant: &str,
    ids: &[String],
) -> Result<Vec<ChannelRow>, ApiError> {
    let rows = db::rows(
        db,
        "notification channels",
        "SELECT id::text, kind, config FROM alert_channels \
         WHERE tenant_id = $1 AND id::text = ANY($2) AND NOT disabled ORDER BY id",
        vec![P::Str(tenant.into()), db::str_array_param(ids)],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| ChannelRow {
            id: db::text(r, 0),
            kind: db::text(r, 1),
            config: db::json(r, 2),
        })
        .collect())
}

/// A delivery rendered and ready to be written.
struct NewDelivery {
    tenant: String,
    channel: String,
    webhook_id: String,
    group_key: String,
    rule_id: String,
    kind: String,
    fingerprints: Vec<String>,
    body: String,
}

/// One delivery of `n` per channel, its body rendered with the channel's template; a
/// channel whose template cannot render it is skipped (and logged).
fn render(tenant: &str, n: &Notification, channels: &[ChannelRow]) -> Vec<NewDelivery> {
    let fingerprints: Vec<String> = n.events.iter().map(|e| e.fingerprint().0).collect();
    let kind = serde_json::to_value(n.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut out = Vec::new();
    for ch in channels {
        let body = match ch.kind.as_str() {
            "discord" => discord::body(n),
            "slack" => slack::body(n),
            "webhook" => webhook::body(n),
            "email" => {
                let config: Result<EmailChannel, _> = serde_json::from_value(ch.config.clone());
                match config
                    .map_err(|e| e.to_string())
                    .and_then(|c| email::body(n, &c).map_err(|e| e.to_string()))
                {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("alert: channel {}: e-mail not rendered: {e}", ch.id);
                        continue;
                    }
                }
            }
            other => {
                eprintln!("alert: channel {}: unknown kind {other}", ch.id);
                continue;
            }
        };
        out.push(NewDelivery {
            tenant: tenant.into(),
            channel: ch.id.clone(),
            webhook_id: n.delivery_id(&ch.id),
            group_key: n.group_key.clone(),
            rule_id: n.rule_id.clone(),
            kind: kind.clone(),
            fingerprints: fingerprints.clone(),
            body: body.to_string(),
        });
    }
    out
}

/// Writes `deliveries` in one statement (a flush of many groups is one round trip); the ids
/// of the rows written (one already written under its `webhook-id` is not written again).
async fn insert_deliveries(
    db: &Connection,
    deliveries: &[NewDelivery],
) -> Result<Vec<String>, ApiError> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&NewDelivery) -> String| {
        P::ArrayStr(deliveries.iter().map(|d| Some(f(d))).collect())
    };
    let rows = db::rows(
        db,
        "insert deliveries",
        // Each row's fingerprints travel as a JSON array: unnest cannot take an array of
        // arrays of different lengths.
        "INSERT INTO alert_deliveries (tenant_id, channel_id, webhook_id, group_key, rule_id, \
           kind, fingerprints, body) \
         SELECT x.t, x.c::uuid, x.w, x.g, x.r::uuid, x.k, \
           ARRAY(SELECT jsonb_array_elements_text(x.f::jsonb)), x.b \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::text[], $8::text[]) AS x(t, c, w, g, r, k, f, b) \
         ON CONFLICT (tenant_id, webhook_id) DO NOTHING RETURNING id::text",
        vec![
            column(|d| d.tenant.clone()),
            column(|d| d.channel.clone()),
            column(|d| d.webhook_id.clone()),
            column(|d| d.group_key.clone()),
            column(|d| d.rule_id.clone()),
            column(|d| d.kind.clone()),
            column(|d| serde_json::to_string(&d.fingerprints).unwrap_or_else(|_| "[]".into())),
            column(|d| d.body.clone()),
        ],
    )
    .await?;
    Ok(rows.iter().map(|r| db::text(r, 0)).collect())
}

/// Stores a group's state and next wake-up, or deletes it once it has no alert left.
pub async fn save_group(
    db: &Connection,
    tenant: &str,
    key: &str,
    group: &AlertGroup,
) -> Result<(), ApiError> {
    save_groups(db, &[(tenant, key, group)]).await
}

/// [`save_group`] for many groups at once: one statement for those that go on, one for
/// those that finished.
async fn save_groups(
    db: &Connection,
    groups: &[(&str, &str, &AlertGroup)],
) -> Result<(), ApiError> {
    let (finished, live): (Vec<_>, Vec<_>) = groups.iter().partition(|(_, _, g)| g.is_finished());
    type Group<'a> = (&'a str, &'a str, &'a AlertGroup);
    let strs =
        |v: &[&Group], f: fn(&Group) -> String| P::ArrayStr(v.iter().map(|g| Some(f(g))).collect());
    if !finished.is_empty() {
        db::execute(
            db,
            "delete groups",
            "DELETE FROM alert_groups g USING unnest($1::text[], $2::text[]) AS x(t, k) \
             WHERE g.tenant_id = x.t AND g.group_key = x.k",
            vec![
                strs(&finished, |g| g.0.to_string()),
                strs(&finished, |g| g.1.to_string()),
            ],
        )
        .await?;
    }
    if !live.is_empty() {
        db::execute(
            db,
            "save groups",
            "UPDATE alert_groups g SET state = x.s::jsonb, \
               next_flush_at = to_timestamp(x.n::bigint / 1000.0), updated_at = now() \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS x(t, k, s, n) \
             WHERE g.tenant_id = x.t AND g.group_key = x.k",
            vec![
                strs(&live, |g| g.0.to_string()),
                strs(&live, |g| g.1.to_string()),
                strs(&live, |g| {
                    serde_json::to_string(g.2).unwrap_or_else(|_| "null".into())
                }),
                strs(&live, |g| g.2.next_wakeup_ms().to_string()),
            ],
        )
        .await?;
    }
    Ok(())
}

/// `POST /internal/dispatch` (the cron tick): route the alerts other components queued, run
/// the price-move monitor when its interval is due, the daily P&L summary after the close,
/// then flush due groups and send due
/// deliveries.
pub async fn run() -> Handled {
    let db = tessera_spin_kit::connect_across_tenants().await?;
    // Before the flush, so their notifications go out on this same tick.
    let routed = crate::inbox::route_pending(&db).await?;
    let monitor = crate::monitor::run_if_due(&db).await?;
    let daily = crate::daily::run_if_due(&db).await?;
    let discovery = crate::monitor::request_discovery_runs(&db).await?;
    // Deliveries go out while later groups are still being flushed, on a connection of
    // their own (each flush holds a transaction open on `db`): a backlog's flush and its
    // sends overlap instead of the sends waiting for the last group.
    let sender_db = tessera_spin_kit::connect_across_tenants().await?;
    let flushing = std::cell::Cell::new(true);
    let flush = async {
        let flushed = flush_all_due(&db).await;
        flushing.set(false);
        flushed
    };
    let (flushed, attempted) =
        futures::join!(flush, attempt_while(&sender_db, None, || flushing.get()));
    let flushed = flushed?;
    Ok((
        StatusCode::OK,
        json!({ "routed": routed, "flushed_groups": flushed, "attempted": attempted,
                "monitor": monitor, "daily_summary": daily, "discovery_requests": discovery }),
    ))
}

/// Flushes due groups, a transaction of up to `GROUPS_PER_RUN` at a time, while any remain
/// and the run's budget lasts; the number flushed.
async fn flush_all_due(db: &Connection) -> Result<usize, ApiError> {
    let mut flushed = 0;
    let started = std::time::Instant::now();
    loop {
        let n = flush_due_groups(db).await?;
        flushed += n;
        if n < GROUPS_PER_RUN as usize || started.elapsed() >= RUN_BUDGET {
            return Ok(flushed);
        }
    }
}

async fn flush_due_groups(db: &Connection) -> Result<usize, ApiError> {
    db::begin(db).await?;
    let result = flush_in(db).await;
    match result {
        Ok(n) => {
            db::commit(db).await?;
            Ok(n)
        }
        Err(e) => {
            db::rollback(db).await;
            Err(e)
        }
    }
}

async fn flush_in(db: &Connection) -> Result<usize, ApiError> {
    let now = now_ms();
    let rows = db::rows(
        db,
        "due groups",
        "SELECT g.tenant_id, g.group_key, g.state, r.id::text, r.rule FROM alert_groups g \
         JOIN alert_rules r ON r.id = g.rule_id \
         WHERE g.next_flush_at <= now() AND g.state IS NOT NULL \
         ORDER BY g.next_flush_at LIMIT $1 FOR UPDATE OF g SKIP LOCKED",
        vec![P::Int64(GROUPS_PER_RUN)],
    )
    .await?;
    let mut silences_of: BTreeMap<String, Vec<Silence>> = BTreeMap::new();
    // Most groups of a flush share a rule, hence its channels: looked up once.
    let mut channels_of: BTreeMap<(String, Vec<String>), Vec<ChannelRow>> = BTreeMap::new();
    let mut deliveries = Vec::new();
    let mut groups = Vec::with_capacity(rows.len());
    let mut flushed = 0;
    for r in &rows {
        let (tenant, key) = (db::text(r, 0), db::text(r, 1));
        let mut group: AlertGroup = serde_json::from_value(db::json(r, 2))
            .map_err(|e| ApiError::internal(format!("stored group {key}: {e}")))?;
        let rule: Rule = serde_json::from_value({
            let mut v = db::json(r, 4);
            v["id"] = json!(db::text(r, 3));
            v
        })
        .map_err(|e| ApiError::internal(format!("stored rule of group {key}: {e}")))?;
        if !silences_of.contains_key(&tenant) {
            let s = silences::load_current(db, &tenant).await?;
            silences_of.insert(tenant.clone(), s);
        }
        if let Some(n) = group.flush_due(&silences_of[&tenant], now) {
            // A rule disabled since keeps its group quiet.
            if rule.enabled {
                let k = (tenant.clone(), rule.channels.clone());
                if !channels_of.contains_key(&k) {
                    let c = load_channels(db, &tenant, &rule.channels).await?;
                    channels_of.insert(k.clone(), c);
                }
                deliveries.extend(render(&tenant, &n, &channels_of[&k]));
            }
            flushed += 1;
        }
        groups.push((tenant, key, group));
    }
    insert_deliveries(db, &deliveries).await?;
    let refs: Vec<(&str, &str, &AlertGroup)> = groups
        .iter()
        .map(|(t, k, g)| (t.as_str(), k.as_str(), g))
        .collect();
    save_groups(db, &refs).await?;
    Ok(flushed)
}

/// A claimed delivery with what sending it needs.
struct Claimed {
    id: String,
    tenant: String,
    webhook_id: String,
    body: String,
    attempts: u32,
    channel_id: String,
    kind: String,
    url: String,
    secret_variable: Option<String>,
    /// The channel sends in order, one at a time.
    ordered: bool,
}

/// Claims due deliveries (only those of `only`, when given) and attempts each once; the
/// number attempted. Failures are recorded on the rows, never returned: the cron retries.
pub async fn attempt(db: &Connection, only: Option<&[String]>) -> usize {
    attempt_while(db, only, || false).await
}

/// How often a sender with nothing due looks again while `more_coming`.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// [`attempt`], which on finding nothing due keeps looking while `more_coming()` says new
/// deliveries are still being written (within the run's budget).
async fn attempt_while(
    db: &Connection,
    only: Option<&[String]>,
    more_coming: impl Fn() -> bool,
) -> usize {
    if only.is_some_and(|o| o.is_empty()) {
        return 0;
    }
    let policy = policy().await;
    let mut attempted = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < RUN_BUDGET {
        let claimed = match claim(db, only).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "alert: claiming deliveries: {}",
                    e.detail.unwrap_or(e.message)
                );
                break;
            }
        };
        if claimed.is_empty() {
            if more_coming() {
                tessera_spin_kit::clock::sleep(IDLE_POLL).await;
                continue;
            }
            break;
        }
        // Endpoints are sent to concurrently; each endpoint's deliveries one after another
        // in order, stopping at the first that fails (see `send_in_order`).
        let outcomes =
            futures::future::join_all(by_channel(&claimed).into_iter().map(send_in_order)).await;
        let mut unsent = Vec::new();
        for (c, outcome) in outcomes.into_iter().flatten() {
            let Some(outcome) = outcome else {
                unsent.push(c.id.clone());
                continue;
            };
            attempted += 1;
            if let Err(e) = record(db, &policy, c, outcome).await {
                eprintln!(
                    "alert: recording delivery {}: {}",
                    c.id,
                    e.detail.unwrap_or(e.message)
                );
            }
        }
        if let Err(e) = release(db, &unsent).await {
            eprintln!(
                "alert: releasing unsent deliveries: {}",
                e.detail.unwrap_or(e.message)
            );
        }
        if only.is_some() {
            break;
        }
    }
    attempted
}

/// Claimed deliveries grouped by ordered endpoint (channel), each group in the claim's
/// order; a delivery to an unordered endpoint is a group of its own (sent concurrently).
fn by_channel(claimed: &[Claimed]) -> Vec<Vec<&Claimed>> {
    let mut groups: Vec<Vec<&Claimed>> = Vec::new();
    for c in claimed {
        let ordered_group = groups
            .iter_mut()
            .find(|g| c.ordered && g[0].channel_id == c.channel_id);
        match ordered_group {
            Some(group) => group.push(c),
            None => groups.push(vec![c]),
        }
    }
    groups
}

/// Sends one endpoint's deliveries in order, each after the previous one was answered, so
/// the receiver sees them in the order they were written. After the first that is not
/// accepted the rest are not sent (`None`): they wait behind it, since `claim` takes no
/// delivery while an older one of its endpoint waits for a retry.
async fn send_in_order(
    group: Vec<&Claimed>,
) -> Vec<(&Claimed, Option<Result<AttemptOutcome, String>>)> {
    let mut results = Vec::with_capacity(group.len());
    let mut blocked = false;
    for c in group {
        if blocked {
            results.push((c, None));
            continue;
        }
        let outcome = send(c).await;
        blocked = !matches!(
            outcome,
            Ok(AttemptOutcome::Response {
                status: 200..=299,
                ..
            })
        );
        results.push((c, Some(outcome)));
    }
    results
}

/// Gives back claimed deliveries that were not sent (behind a failed one): due again, the
/// claim's attempt not counted.
async fn release(db: &Connection, ids: &[String]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    db::execute(
        db,
        "release unsent deliveries",
        "UPDATE alert_deliveries SET attempts = attempts - 1, next_attempt_at = now() \
         WHERE id::text = ANY($1) AND status = 'pending'",
        vec![db::str_array_param(ids)],
    )
    .await?;
    Ok(())
}

/// The retry policy, its schedule scaled by the `retry_scale` variable (tests shrink it).
async fn policy() -> RetryPolicy {
    let scale = spin_sdk::variables::get("retry_scale")
        .await
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    RetryPolicy::scaled(scale)
}

/// How long a claim holds, from the `lease_s` variable (default [`LEASE_SECS`]). Keep it
/// above the send timeout: a live send whose lease lapses is claimed and sent again (harmless
/// to a receiver that deduplicates by `webhook-id`, but a second send).
async fn lease_secs() -> f64 {
    spin_sdk::variables::get("lease_s")
        .await
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(LEASE_SECS)
}

async fn claim(db: &Connection, only: Option<&[String]>) -> Result<Vec<Claimed>, ApiError> {
    let only = only.map(db::str_array_param).unwrap_or(P::DbNull);
    let rows = db::rows(
        db,
        "claim deliveries",
        // `$2` (an immediate attempt of new deliveries) takes them, and on an ordered
        // endpoint whatever older is due before them. In order per endpoint: nothing is taken
        // behind the oldest pending delivery of its ordered endpoint that is not due (waiting
        // for a retry, or claimed and in flight). That boundary is looked up once per
        // endpoint (`blockers`), not once per candidate: a per-row NOT EXISTS made a claim
        // cost O(backlog²), ~1 s per batch with 3,000 pending (benches/README.md, Alerts).
        "WITH blockers AS (SELECT DISTINCT ON (b.channel_id) b.channel_id, b.created_at, b.id \
           FROM alert_deliveries b WHERE b.status = 'pending' AND b.next_attempt_at > now() \
           ORDER BY b.channel_id, b.created_at, b.id), \
         due AS (SELECT d0.id FROM alert_deliveries d0 \
           JOIN alert_channels ch0 ON ch0.id = d0.channel_id \
           LEFT JOIN blockers bl ON bl.channel_id = d0.channel_id \
           WHERE d0.status = 'pending' AND d0.next_attempt_at <= now() \
           AND ($2::text[]::uuid[] IS NULL OR d0.id = ANY($2::text[]::uuid[]) OR (ch0.ordered AND d0.channel_id IN \
             (SELECT n.channel_id FROM alert_deliveries n WHERE n.id = ANY($2::text[]::uuid[])))) \
           AND NOT (ch0.ordered AND bl.channel_id IS NOT NULL \
             AND (bl.created_at, bl.id) < (d0.created_at, d0.id)) \
           ORDER BY d0.created_at, d0.id LIMIT $1 FOR UPDATE OF d0 SKIP LOCKED), \
         claimed AS (UPDATE alert_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(), \
           next_attempt_at = now() + make_interval(secs => $3) FROM due WHERE d.id = due.id \
           RETURNING d.id, d.tenant_id, d.webhook_id, d.body, d.attempts, d.channel_id, d.created_at) \
         SELECT c.id::text, c.tenant_id, c.webhook_id, c.body, c.attempts, c.channel_id::text, \
           ch.kind, ch.url, ch.secret_variable, ch.ordered \
         FROM claimed c JOIN alert_channels ch ON ch.id = c.channel_id ORDER BY c.created_at, c.id",
        vec![P::Int64(BATCH), only, P::Floating64(lease_secs().await)],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Claimed {
            id: db::text(r, 0),
            tenant: db::text(r, 1),
            webhook_id: db::text(r, 2),
            body: db::text(r, 3),
            attempts: db::int(r, 4).max(1) as u32,
            channel_id: db::text(r, 5),
            kind: db::text(r, 6),
            url: db::text(r, 7),
            secret_variable: db::opt_text(r, 8),
            ordered: db::boolean(r, 9),
        })
        .collect())
}

/// One attempt, as tessera-alerting classifies outcomes; `Err` is a delivery that cannot be
/// sent at all (no usable secret), with why.
async fn send(c: &Claimed) -> Result<AttemptOutcome, String> {
    let secret = match &c.secret_variable {
        Some(name) => Some(
            spin_sdk::variables::get(name)
                .await
                .map_err(|_| format!("secret variable {name} is not set"))?,
        ),
        None => None,
    };
    let mut builder = http::Request::post(&c.url)
        .header("content-type", "application/json")
        .header("user-agent", "tessera-alerts");
    match c.kind.as_str() {
        "webhook" => {
            // Several secrets (space-separated) sign at once during a rotation.
            let secrets: Vec<Secret> = secret
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|s| Secret::parse(s).ok())
                .collect();
            if secrets.is_empty() {
                return Err("no valid whsec_ secret in the channel's secret variable".into());
            }
            let now_s = now_ms() / 1000;
            for (name, value) in outgoing_headers(&secrets, &c.webhook_id, now_s, c.body.as_bytes())
            {
                builder = builder.header(name, value);
            }
        }
        "email" => {
            builder = builder
                .header("accept", "application/json")
                .header("x-postmark-server-token", secret.unwrap_or_default());
        }
        _ => {}
    }
    let request = match builder.body(FullBody::new(Bytes::from(c.body.clone()))) {
        Ok(r) => r,
        Err(_) => return Ok(AttemptOutcome::Transport(TransportError::InvalidRequest)),
    };
    let exchange = async {
        let resp = tessera_spin_kit::outbound::send(request).await?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now_ms() / 1000));
        // Read (and drop) the answer so the connection ends cleanly.
        let _ = resp.into_body().bytes().await;
        Ok::<_, spin_sdk::wasip3::http::types::ErrorCode>(AttemptOutcome::Response {
            status,
            retry_after,
        })
    };
    Ok(match clock::timeout(SEND_TIMEOUT, exchange).await {
        None => AttemptOutcome::Transport(TransportError::Timeout),
        Some(Ok(outcome)) => outcome,
        Some(Err(e)) => AttemptOutcome::Transport(transport_error(&format!("{e:?}"))),
    })
}

/// wasi:http's error codes, as the retry policy names them.
fn transport_error(code: &str) -> TransportError {
    let c = code.to_ascii_lowercase();
    if c.contains("denied") {
        TransportError::NotAllowed
    } else if c.contains("uri") || c.contains("invalid") {
        TransportError::InvalidRequest
    } else if c.contains("dns") {
        TransportError::Dns
    } else if c.contains("tls") {
        TransportError::Tls
    } else if c.contains("timeout") {
        TransportError::Timeout
    } else if c.contains("refused") || c.contains("unavailable") || c.contains("notfound") {
        TransportError::Connect
    } else {
        TransportError::Reset
    }
}

/// A value in [0, 1) for jitter.
fn jitter() -> f64 {
    clock::random_unit()
}

async fn record(
    db: &Connection,
    policy: &RetryPolicy,
    c: &Claimed,
    outcome: Result<AttemptOutcome, String>,
) -> Result<(), ApiError> {
    let (step, status, error) = match &outcome {
        Err(why) => (
            NextStep::Failed(FailReason::Refused),
            None,
            Some(why.clone()),
        ),
        Ok(o) => {
            let step = policy.next_step(c.attempts, classify(o), jitter());
            match o {
                AttemptOutcome::Response { status, .. } => (
                    step,
                    Some(i64::from(*status)),
                    (!(200..300).contains(status)).then(|| format!("HTTP {status}")),
                ),
                AttemptOutcome::Transport(t) => (step, None, Some(format!("transport: {t:?}"))),
            }
        }
    };
    let status_param = status.map(P::Int64).unwrap_or(P::DbNull);
    // Guarded by `attempts`: a lease that lapsed and was claimed again is not overwritten.
    let guard = vec![
        P::Str(c.id.clone()),
        P::Int64(i64::from(c.attempts)),
        status_param,
        db::opt_str(error.as_deref()),
    ];
    match step {
        NextStep::Delivered => {
            db::execute(
                db,
                "delivered",
                "UPDATE alert_deliveries SET status = 'delivered', delivered_at = now(), \
                 last_status = $3, last_error = $4 WHERE id = $1::uuid AND attempts = $2 AND status = 'pending'",
                guard,
            )
            .await?;
            db::execute(
                db,
                "endpoint healthy",
                "UPDATE alert_channels SET consecutive_failed_deliveries = 0 WHERE id = $1::uuid \
                 AND consecutive_failed_deliveries <> 0",
                vec![P::Str(c.channel_id.clone())],
            )
            .await?;
        }
        NextStep::RetryIn(delay) => {
            let mut p = guard;
            p.push(P::Floating64(delay.as_secs_f64()));
            db::execute(
                db,
                "retry later",
                "UPDATE alert_deliveries SET next_attempt_at = last_attempt_at + make_interval(secs => $5), \
                 last_status = $3, last_error = $4 WHERE id = $1::uuid AND attempts = $2 AND status = 'pending'",
                p,
            )
            .await?;
        }
        NextStep::Failed(reason) => {
            db::execute(
                db,
                "failed",
                "UPDATE alert_deliveries SET status = 'failed', last_status = $3, last_error = $4 \
                 WHERE id = $1::uuid AND attempts = $2 AND status = 'pending'",
                guard,
            )
            .await?;
            endpoint_failed(db, c, reason).await?;
        }
    }
    Ok(())
}

/// A failed delivery counts against its endpoint (tessera-alerting's `EndpointHealth`),
/// read and written in one transaction so concurrent dispatchers count every failure.
async fn endpoint_failed(db: &Connection, c: &Claimed, reason: FailReason) -> Result<(), ApiError> {
    db::begin(db).await?;
    let counted = count_failure(db, c).await;
    let health = match counted {
        Ok(h) => {
            db::commit(db).await?;
            h
        }
        Err(e) => {
            db::rollback(db).await;
            return Err(e);
        }
    };
    if let Some(failures) = health {
        eprintln!(
            "alert: tenant {} channel {} disabled after {failures} failed deliveries (last: {reason:?})",
            c.tenant, c.channel_id
        );
        operator_alert(db, c, failures).await?;
    }
    Ok(())
}

/// Records the failure; `Some(consecutive failures)` when this one disabled the endpoint.
async fn count_failure(db: &Connection, c: &Claimed) -> Result<Option<u32>, ApiError> {
    let Some(row) = db::one(
        db,
        "endpoint health",
        "SELECT consecutive_failed_deliveries, disabled FROM alert_channels WHERE id = $1::uuid FOR UPDATE",
        vec![P::Str(c.channel_id.clone())],
    )
    .await?
    else {
        return Ok(None);
    };
    let mut health = EndpointHealth {
        consecutive_failed_deliveries: db::int(&row, 0).max(0) as u32,
        disabled: db::boolean(&row, 1),
    };
    let newly_disabled = health.record_failed(DEFAULT_DISABLE_AFTER);
    db::execute(
        db,
        "endpoint health",
        "UPDATE alert_channels SET consecutive_failed_deliveries = $2, disabled = $3, updated_at = now() \
         WHERE id = $1::uuid",
        vec![
            P::Str(c.channel_id.clone()),
            P::Int64(i64::from(health.consecutive_failed_deliveries)),
            P::Boolean(health.disabled),
        ],
    )
    .await?;
    Ok(newly_disabled.then_some(health.consecutive_failed_deliveries))
}

/// The type of the event raised when the dispatcher disables an endpoint.
pub const ENDPOINT_DISABLED: &str = "alert.endpoint_disabled";

/// Raises `alert.endpoint_disabled` for the tenant, routed like any event (a rule on it
/// reaches the operators; the disabled channel itself is skipped).
async fn operator_alert(db: &Connection, c: &Claimed, failures: u32) -> Result<(), ApiError> {
    let now = now_ms();
    let event = tessera_alerting::Event {
        event_type: ENDPOINT_DISABLED.into(),
        severity: tessera_alerting::Severity::Critical,
        labels: [("channel".to_string(), c.channel_id.clone())].into(),
        summary: Some(format!(
            "alert channel {} disabled after {failures} failed deliveries",
            c.channel_id
        )),
        payload: json!({ "channel_id": c.channel_id, "last_delivery": c.id }),
        occurred_at_ms: now,
    };
    db::begin(db).await?;
    match crate::events::raise_in(db, &c.tenant, &event, None, now).await {
        Ok(_) => db::commit(db).await,
        Err(e) => {
            db::rollback(db).await;
            Err(e)
        }
    }
}

/// `POST /v1/alerts/deliveries/{id}/replay`: the delivery is due again with a fresh
/// schedule and the same `webhook-id`, and attempted at once.
pub async fn replay(tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let row = db::one(
        &db,
        "replay delivery",
        "UPDATE alert_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), \
         last_error = NULL, delivered_at = NULL WHERE tenant_id = $1 AND id = $2::uuid \
         RETURNING webhook_id",
        vec![P::Str(tenant.into()), P::Str(id.clone())],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("delivery_not_found", format!("no delivery {id}")))?;
    let webhook_id = db::text(&row, 0);
    attempt(&db, Some(std::slice::from_ref(&id))).await;
    let state = db::one(
        &db,
        "delivery state",
        "SELECT status, attempts FROM alert_deliveries WHERE id = $1::uuid",
        vec![P::Str(id.clone())],
    )
    .await?;
    let (status, attempts) = state
        .map(|r| (db::text(&r, 0), db::int(&r, 1)))
        .unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        json!({ "id": id, "webhook_id": webhook_id, "status": status, "attempts": attempts }),
    ))
}
