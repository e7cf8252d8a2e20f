//! Rules: which events go to which channels and how they are grouped. Stored as
//! tessera-alerting's `Rule` JSON (its id is the row's).

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use tessera_alerting::event::is_label_name;
use tessera_alerting::routing::GROUP_BY_ALL;
use tessera_alerting::{GroupTiming, Matcher, Rule};
use tessera_spin_kit::pg::parse_uuid;
use tessera_spin_kit::{ApiError, StatusCode, read_json};

use crate::db::{self, ISO, P};
use crate::{BODY_LIMIT, Handled};

/// A rule as created or replaced (`POST /v1/alerts/rules`, `PUT …/{id}`).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AlertRuleInput")]
pub(crate) struct RuleInput {
    #[schemars(length(min = 1, max = 100))]
    name: String,
    /// Type patterns: exact (`price.move`), a prefix (`circuit_breaker.*`) or `*`; empty:
    /// every type.
    #[serde(default)]
    event_types: Vec<String>,
    /// Alertmanager matchers in their text form, e.g. `symbol=~"AAPL|MSFT"`.
    #[serde(default)]
    matchers: Vec<Matcher>,
    /// Channel ids (at least one) the group's notifications go to.
    #[schemars(length(min = 1))]
    channels: Vec<String>,
    /// Label names (or `"..."`: every label) whose values split groups.
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default)]
    timing: GroupTiming,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// Longest wait a rule may ask for (a week): beyond it a typo, not a policy.
const TIMING_MAX_MS: u128 = 7 * 24 * 3600 * 1000;

impl RuleInput {
    async fn into_rule(
        mut self,
        db: &spin_sdk::pg::Connection,
        tenant: &str,
    ) -> Result<(String, Rule), ApiError> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > 100 {
            return Err(ApiError::invalid("name", "`name` must be 1-100 characters"));
        }
        for (i, t) in self.event_types.iter().enumerate() {
            let ok = !t.trim().is_empty() && t.len() <= 200 && !t.contains(char::is_whitespace);
            if !ok {
                return Err(ApiError::invalid(
                    &format!("event_types[{i}]"),
                    "an event type pattern is `*`, `prefix.*` or an exact type, without spaces",
                ));
            }
        }
        for (i, g) in self.group_by.iter().enumerate() {
            if g != GROUP_BY_ALL && !is_label_name(g) {
                return Err(ApiError::invalid(
                    &format!("group_by[{i}]"),
                    "`group_by` holds label names or \"...\"",
                ));
            }
        }
        let t = &self.timing;
        for (field, d) in [
            ("timing.group_wait_ms", t.group_wait),
            ("timing.group_interval_ms", t.group_interval),
            ("timing.repeat_interval_ms", t.repeat_interval),
            ("timing.resolve_timeout_ms", t.resolve_timeout),
        ] {
            if d.as_millis() > TIMING_MAX_MS {
                return Err(ApiError::invalid(field, "at most 7 days (604800000 ms)"));
            }
        }
        if t.group_interval.is_zero() {
            return Err(ApiError::invalid(
                "timing.group_interval_ms",
                "`group_interval_ms` must be positive",
            ));
        }
        if self.channels.is_empty() {
            return Err(ApiError::invalid(
                "channels",
                "`channels` needs at least one channel id",
            ));
        }
        let mut channels = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            channels.push(parse_uuid(c, &format!("channels[{i}]"))?);
        }
        channels.dedup();
        let known = db::rows(
            db,
            "rule channels",
            "SELECT id::text FROM alert_channels WHERE tenant_id = $1 AND id::text = ANY($2)",
            vec![P::Str(tenant.into()), db::str_array_param(&channels)],
        )
        .await?;
        let known: Vec<String> = known.iter().map(|r| db::text(r, 0)).collect();
        if let Some((i, missing)) = channels
            .iter()
            .enumerate()
            .find(|(_, c)| !known.contains(c))
        {
            return Err(ApiError::invalid(
                &format!("channels[{i}]"),
                format!("no channel {missing}"),
            ));
        }
        Ok((
            self.name,
            Rule {
                id: String::new(),
                event_types: self.event_types,
                matchers: self.matchers,
                channels,
                group_by: self.group_by,
                timing: self.timing,
                enabled: self.enabled,
            },
        ))
    }
}

const SELECT: &str =
    "SELECT id::text, name, rule, enabled, to_char(created_at AT TIME ZONE 'UTC', ";

fn select(filter: &str) -> String {
    format!(
        "{SELECT}{ISO}), to_char(updated_at AT TIME ZONE 'UTC', {ISO}) FROM alert_rules \
         WHERE tenant_id = $1 {filter}"
    )
}

fn to_json(r: &spin_sdk::pg::Row) -> Value {
    let mut rule = db::json(r, 2);
    rule["id"] = json!(db::text(r, 0));
    rule["name"] = json!(db::text(r, 1));
    rule["enabled"] = json!(db::boolean(r, 3));
    rule["created_at"] = json!(db::text(r, 4));
    rule["updated_at"] = json!(db::text(r, 5));
    rule
}

/// The tenant's enabled rules as tessera-alerting sees them.
pub async fn load_enabled(
    db: &spin_sdk::pg::Connection,
    tenant: &str,
) -> Result<Vec<Rule>, ApiError> {
    let rows = db::rows(
        db,
        "load rules",
        "SELECT id::text, rule FROM alert_rules WHERE tenant_id = $1 AND enabled ORDER BY created_at, id",
        vec![P::Str(tenant.into())],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let mut stored = db::json(r, 1);
            stored["id"] = json!(db::text(r, 0));
            serde_json::from_value(stored)
                .map_err(|e| ApiError::internal(format!("stored rule {}: {e}", db::text(r, 0))))
        })
        .collect()
}

fn stored(rule: &Rule) -> Value {
    let mut v = serde_json::to_value(rule).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
    }
    v
}

pub async fn create(req: Request, tenant: &str) -> Handled {
    let input: RuleInput = read_json(req, BODY_LIMIT).await?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let (name, rule) = input.into_rule(&db, tenant).await?;
    taken(&db, tenant, &name, None).await?;
    let row = db::one(
        &db,
        "insert rule",
        &format!(
            "WITH r AS (INSERT INTO alert_rules (tenant_id, name, rule, enabled) VALUES ($1, $2, $3, $4) RETURNING *) \
             {SELECT}{ISO}), to_char(updated_at AT TIME ZONE 'UTC', {ISO}) FROM r"
        ),
        vec![
            P::Str(tenant.into()),
            P::Str(name),
            db::jsonb(&stored(&rule)),
            P::Boolean(rule.enabled),
        ],
    )
    .await?
    .ok_or_else(|| ApiError::internal("insert rule: no row"))?;
    Ok((StatusCode::CREATED, to_json(&row)))
}

async fn taken(
    db: &spin_sdk::pg::Connection,
    tenant: &str,
    name: &str,
    except: Option<&str>,
) -> Result<(), ApiError> {
    let row = db::one(
        db,
        "rule name",
        "SELECT 1 FROM alert_rules WHERE tenant_id = $1 AND name = $2 AND id::text IS DISTINCT FROM $3",
        vec![P::Str(tenant.into()), P::Str(name.into()), db::opt_str(except)],
    )
    .await?;
    match row {
        Some(_) => Err(
            ApiError::conflict("name_taken", "a rule with this `name` exists").with_field("name"),
        ),
        None => Ok(()),
    }
}

pub async fn list(tenant: &str) -> Handled {
    let db = tessera_spin_kit::connect(tenant).await?;
    let rows = db::rows(
        &db,
        "list rules",
        &select("ORDER BY created_at, id"),
        vec![P::Str(tenant.into())],
    )
    .await?;
    Ok((
        StatusCode::OK,
        json!({ "rules": rows.iter().map(to_json).collect::<Vec<_>>() }),
    ))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("rule_not_found", format!("no rule {id}"))
}

pub async fn get(tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let row = db::one(
        &db,
        "get rule",
        &select("AND id = $2::uuid"),
        vec![P::Str(tenant.into()), P::Str(id.clone())],
    )
    .await?
    .ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::OK, to_json(&row)))
}

pub async fn update(req: Request, tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let input: RuleInput = read_json(req, BODY_LIMIT).await?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let (name, rule) = input.into_rule(&db, tenant).await?;
    taken(&db, tenant, &name, Some(&id)).await?;
    let row = db::one(
        &db,
        "update rule",
        &format!(
            "WITH r AS (UPDATE alert_rules SET name = $3, rule = $4, enabled = $5, updated_at = now() \
             WHERE tenant_id = $1 AND id = $2::uuid RETURNING *) \
             {SELECT}{ISO}), to_char(updated_at AT TIME ZONE 'UTC', {ISO}) FROM r"
        ),
        vec![
            P::Str(tenant.into()),
            P::Str(id.clone()),
            P::Str(name),
            db::jsonb(&stored(&rule)),
            P::Boolean(rule.enabled),
        ],
    )
    .await?
    .ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::OK, to_json(&row)))
}

pub async fn delete(tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let n = db::execute(
        &db,
        "delete rule",
        "DELETE FROM alert_rules WHERE tenant_id = $1 AND id = $2::uuid",
        vec![P::Str(tenant.into()), P::Str(id.clone())],
    )
    .await?;
    if n == 0 {
        return Err(not_found(&id));
    }
    Ok((StatusCode::OK, json!({ "deleted": id })))
}
