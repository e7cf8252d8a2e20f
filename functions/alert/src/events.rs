//! Raising events and listing them. An event is routed, grouped and any notification due
//! at once written to the outbox in the same transaction as the event itself, so nothing
//! accepted is lost; the new deliveries are then attempted straight away.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use tessera_alerting::event::EventError;
use tessera_alerting::{AlertGroup, Event, Labels, Observed, Severity, ingest};
use tessera_spin_kit::{ApiError, StatusCode, read_json};

use crate::clock::now_ms;
use crate::db::{self, ISO, P};
use crate::{BODY_LIMIT, Handled, dispatch, rules, silences};

/// `POST /v1/alerts/events`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AlertEventInput")]
pub(crate) struct EventInput {
    /// Dotted, without spaces: `price.move`, `circuit_breaker.tripped`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 200))]
    event_type: String,
    #[serde(default = "warning")]
    severity: Severity,
    /// Label name (`[a-zA-Z_][a-zA-Z0-9_]*`; not `type` or `severity`) → value, at most 64.
    #[serde(default)]
    labels: Labels,
    /// One line for humans.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    summary: Option<String>,
    #[serde(default)]
    payload: Value,
    /// Unix milliseconds; default now.
    #[serde(default)]
    occurred_at_ms: Option<i64>,
    /// The caller's key: the same key again answers the first event and does nothing.
    #[serde(default)]
    #[schemars(length(min = 1, max = 200))]
    idempotency_key: Option<String>,
}

fn warning() -> Severity {
    Severity::Warning
}

const TYPE_MAX: usize = 200;
const LABEL_VALUE_MAX: usize = 1024;
const LABELS_MAX: usize = 64;
const SUMMARY_MAX: usize = 1000;

impl EventInput {
    fn into_event(self, now: i64) -> Result<(Event, Option<String>), ApiError> {
        let event = Event {
            event_type: self.event_type.trim().to_string(),
            severity: self.severity,
            labels: self.labels,
            summary: self.summary,
            payload: self.payload,
            occurred_at_ms: self.occurred_at_ms.unwrap_or(now),
        };
        event.validate().map_err(|e| match &e {
            EventError::EmptyType => ApiError::missing("type"),
            EventError::BadLabelName(n) | EventError::ReservedLabel(n) => {
                ApiError::invalid(&format!("labels.{n}"), e.to_string())
            }
        })?;
        if event.event_type.len() > TYPE_MAX || event.event_type.contains(char::is_whitespace) {
            return Err(ApiError::invalid(
                "type",
                "`type` is a dotted name without spaces, at most 200 characters",
            ));
        }
        if event.labels.len() > LABELS_MAX {
            return Err(ApiError::invalid("labels", "at most 64 labels"));
        }
        if let Some((name, _)) = event
            .labels
            .iter()
            .find(|(_, v)| v.chars().count() > LABEL_VALUE_MAX)
        {
            return Err(ApiError::invalid(
                &format!("labels.{name}"),
                "a label value is at most 1024 characters",
            ));
        }
        if event
            .summary
            .as_ref()
            .is_some_and(|s| s.chars().count() > SUMMARY_MAX)
        {
            return Err(ApiError::invalid(
                "summary",
                "`summary` is at most 1000 characters",
            ));
        }
        if !(0..253_402_300_799_000).contains(&event.occurred_at_ms) {
            return Err(ApiError::invalid(
                "occurred_at_ms",
                "`occurred_at_ms` is out of range",
            ));
        }
        if let Some(key) = &self.idempotency_key
            && (key.is_empty() || key.len() > 200)
        {
            return Err(ApiError::invalid(
                "idempotency_key",
                "`idempotency_key` is 1-200 characters",
            ));
        }
        Ok((event, self.idempotency_key))
    }
}

pub async fn raise(req: Request, tenant: &str) -> Handled {
    let input: EventInput = read_json(req, BODY_LIMIT).await?;
    let now = now_ms();
    let (event, idempotency_key) = input.into_event(now)?;
    let db = tessera_spin_kit::connect(tenant).await?;
    db::begin(&db).await?;
    match raise_in(&db, tenant, &event, idempotency_key.as_deref(), now).await {
        Ok(Raised::Existing(id)) => {
            db::rollback(&db).await;
            Ok((
                StatusCode::OK,
                json!({ "id": id, "idempotent_replay": true }),
            ))
        }
        Ok(Raised::New {
            id,
            groups,
            duplicate,
            deliveries,
        }) => {
            db::commit(&db).await?;
            // The first attempt right after commit; the cron dispatcher retries.
            dispatch::attempt(&db, Some(deliveries.as_slice())).await;
            Ok((
                StatusCode::ACCEPTED,
                json!({
                    "id": id,
                    "fingerprint": event.fingerprint(),
                    "groups": groups,
                    "duplicate": duplicate,
                    "deliveries": deliveries,
                }),
            ))
        }
        Err(e) => {
            db::rollback(&db).await;
            Err(e)
        }
    }
}

pub enum Raised {
    Existing(String),
    New {
        id: String,
        groups: Vec<Value>,
        duplicate: bool,
        deliveries: Vec<String>,
    },
}

pub async fn raise_in(
    db: &spin_sdk::pg::Connection,
    tenant: &str,
    event: &Event,
    idempotency_key: Option<&str>,
    now: i64,
) -> Result<Raised, ApiError> {
    let t = P::Str(tenant.into());
    let inserted = db::one(
        db,
        "insert event",
        "INSERT INTO alert_events (tenant_id, type, severity, labels, summary, payload, fingerprint, \
         idempotency_key, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9 / 1000.0)) \
         ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING id::text",
        vec![
            t.clone(),
            P::Str(event.event_type.clone()),
            P::Str(event.severity.as_str().into()),
            db::jsonb(&serde_json::to_value(&event.labels).unwrap_or_default()),
            db::opt_str(event.summary.as_deref()),
            db::jsonb(&event.payload),
            P::Str(event.fingerprint().0),
            db::opt_str(idempotency_key),
            P::Int64(event.occurred_at_ms),
        ],
    )
    .await?;
    let Some(inserted) = inserted else {
        let existing = db::one(
            db,
            "idempotent event",
            "SELECT id::text FROM alert_events WHERE tenant_id = $1 AND idempotency_key = $2",
            vec![t, db::opt_str(idempotency_key)],
        )
        .await?
        .ok_or_else(|| ApiError::internal("idempotent event vanished"))?;
        return Ok(Raised::Existing(db::text(&existing, 0)));
    };
    let id = db::text(&inserted, 0);

    let rules = rules::load_enabled(db, tenant).await?;
    let routes = tessera_alerting::route(&rules, event);
    let keys: Vec<String> = routes.iter().map(|r| r.group.id()).collect();
    // Create missing groups first so that `FOR UPDATE` below serialises concurrent events
    // of one group (a row that does not exist cannot be locked).
    for r in &routes {
        db::execute(
            db,
            "create group",
            "INSERT INTO alert_groups (tenant_id, group_key, rule_id, state, next_flush_at) \
             VALUES ($1, $2, $3::uuid, NULL, now()) ON CONFLICT DO NOTHING",
            vec![t.clone(), P::Str(r.group.id()), P::Str(r.rule.id.clone())],
        )
        .await?;
    }
    let mut groups: BTreeMap<String, AlertGroup> = BTreeMap::new();
    for row in db::rows(
        db,
        "lock groups",
        "SELECT group_key, state FROM alert_groups WHERE tenant_id = $1 AND group_key = ANY($2) \
         ORDER BY group_key FOR UPDATE",
        vec![t.clone(), db::str_array_param(&keys)],
    )
    .await?
    {
        let state = db::json(&row, 1);
        if !state.is_null() {
            let group: AlertGroup = serde_json::from_value(state)
                .map_err(|e| ApiError::internal(format!("stored group: {e}")))?;
            groups.insert(db::text(&row, 0), group);
        }
    }
    let ingested = ingest(&rules, &mut groups, event, now);
    let silences = silences::load_current(db, tenant).await?;
    let mut deliveries = Vec::new();
    for key in &keys {
        let Some(group) = groups.get_mut(key) else {
            continue;
        };
        // A group whose wait is zero notifies now, in this transaction.
        if let Some(n) = group.flush_due(&silences, now) {
            let channels = rules
                .iter()
                .find(|r| r.id == n.rule_id)
                .map(|r| r.channels.clone())
                .unwrap_or_default();
            deliveries.extend(dispatch::write_notification(db, tenant, &n, &channels).await?);
        }
        dispatch::save_group(db, tenant, key, group).await?;
    }
    let duplicate =
        !ingested.is_empty() && ingested.iter().all(|i| i.observed == Observed::Duplicate);
    db::execute(
        db,
        "event groups",
        "UPDATE alert_events SET group_keys = $2, duplicate = $3 WHERE id = $1::uuid",
        vec![
            P::Str(id.clone()),
            db::str_array_param(&keys),
            P::Boolean(duplicate),
        ],
    )
    .await?;
    let groups = ingested
        .iter()
        .map(|i| {
            json!({
                "group_key": i.group_key,
                "observed": match i.observed { Observed::New => "new", Observed::Duplicate => "duplicate" },
            })
        })
        .collect();
    Ok(Raised::New {
        id,
        groups,
        duplicate,
        deliveries,
    })
}

/// `GET /v1/alerts?limit=&type=`: the latest events, newest first, each with the deliveries
/// that carried it (notifications made since it arrived that include its fingerprint).
pub async fn list(tenant: &str, query: &tessera_api::Query) -> Handled {
    let limit = match query.get("limit") {
        None => 50,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "`limit` is an integer from 1 to 500"))?,
    };
    let db = tessera_spin_kit::connect(tenant).await?;
    let rows = db::rows(
        &db,
        "list alerts",
        &format!(
            "SELECT e.id::text, e.type, e.severity, e.labels, e.summary, e.payload, e.fingerprint, \
             e.group_keys, e.duplicate, to_char(e.occurred_at AT TIME ZONE 'UTC', {ISO}), \
             to_char(e.received_at AT TIME ZONE 'UTC', {ISO}), \
             COALESCE((SELECT jsonb_agg(jsonb_build_object('id', d.id, 'webhook_id', d.webhook_id, \
               'channel_id', d.channel_id, 'kind', d.kind, 'status', d.status, 'attempts', d.attempts, \
               'last_status', d.last_status, 'last_error', d.last_error, \
               'next_attempt_at', d.next_attempt_at, 'delivered_at', d.delivered_at, \
               'created_at', d.created_at) ORDER BY d.created_at, d.id) \
               FROM alert_deliveries d WHERE d.tenant_id = e.tenant_id \
               AND e.fingerprint = ANY(d.fingerprints) AND d.created_at >= e.received_at), '[]'::jsonb) \
             FROM alert_events e WHERE e.tenant_id = $1 AND ($2::text IS NULL OR e.type = $2) \
             ORDER BY e.received_at DESC, e.id LIMIT $3"
        ),
        vec![
            P::Str(tenant.into()),
            db::opt_str(query.get("type")),
            P::Int64(limit),
        ],
    )
    .await?;
    let alerts: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": db::text(r, 0),
                "type": db::text(r, 1),
                "severity": db::text(r, 2),
                "labels": db::json(r, 3),
                "summary": db::opt_text(r, 4),
                "payload": db::json(r, 5),
                "fingerprint": db::text(r, 6),
                "group_keys": db::str_array(r, 7),
                "duplicate": db::boolean(r, 8),
                "occurred_at": db::text(r, 9),
                "received_at": db::text(r, 10),
                "deliveries": db::json(r, 11),
            })
        })
        .collect();
    Ok((StatusCode::OK, json!({ "alerts": alerts })))
}
