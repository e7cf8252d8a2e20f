//! Channels: where notifications go (Discord, Slack, Postmark e-mail, a Standard Webhooks
//! endpoint). A secret is never stored or answered: `secret_variable` names the component
//! variable that holds it.

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use tessera_alerting::templates::email::EmailChannel;
use tessera_spin_kit::pg::parse_uuid;
use tessera_spin_kit::{ApiError, StatusCode, read_json};

use crate::db::{self, ISO, P};
use crate::{BODY_LIMIT, Handled};

pub const KINDS: [&str; 4] = ["discord", "slack", "email", "webhook"];

/// A channel as created or replaced (`POST /v1/alerts/channels`, `PUT …/{id}`).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AlertChannelInput")]
pub(crate) struct ChannelInput {
    #[schemars(length(min = 1, max = 100))]
    name: String,
    #[schemars(schema_with = "kind_schema")]
    kind: String,
    /// An http(s) URL without spaces.
    #[schemars(length(max = 2048))]
    url: String,
    /// An object; an `email` channel's is `{"from", "to": [..], "message_stream"?}`.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    config: Option<Value>,
    /// The Spin variable holding the channel's secret (a webhook's `whsec_` signing
    /// secret(s), an e-mail channel's Postmark server token); needed by those two kinds.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,63}$"))]
    secret_variable: Option<String>,
    /// `false` re-enables an endpoint the dispatcher disabled (its failure count restarts).
    #[serde(default)]
    disabled: Option<bool>,
    /// Deliver in the order written, one at a time (default `true`); `false` sends
    /// concurrently, faster, for receivers that do not care about order.
    #[serde(default)]
    ordered: Option<bool>,
}

/// `kind` is a string checked against [`KINDS`] by `validate`.
fn kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": KINDS})
}

impl ChannelInput {
    fn validate(&mut self) -> Result<(), ApiError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::invalid("name", "`name` must be 1-100 characters"));
        }
        self.name = name.to_string();
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(ApiError::invalid(
                "kind",
                format!("`kind` must be one of {}", KINDS.join(", ")),
            ));
        }
        let url = self.url.trim();
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok || url.len() > 2048 || url.contains(char::is_whitespace) {
            return Err(ApiError::invalid(
                "url",
                "`url` must be an http(s) URL without spaces, at most 2048 characters",
            ));
        }
        self.url = url.to_string();
        if let Some(var) = &self.secret_variable {
            let ok = !var.is_empty()
                && var.len() <= 64
                && var.starts_with(|c: char| c.is_ascii_lowercase())
                && var
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(ApiError::invalid(
                    "secret_variable",
                    "`secret_variable` must be a Spin variable name (lowercase letters, digits, '_')",
                ));
            }
        }
        match self.kind.as_str() {
            // Unsigned Standard Webhooks would let anyone forge alerts to the receiver.
            "webhook" if self.secret_variable.is_none() => {
                return Err(ApiError::invalid(
                    "secret_variable",
                    "a webhook channel needs `secret_variable`: the variable holding its whsec_ signing secret(s)",
                ));
            }
            "email" => {
                let config = self.config.clone().unwrap_or(Value::Null);
                let email: EmailChannel = serde_json::from_value(config).map_err(|e| {
                    ApiError::invalid(
                        "config",
                        format!("an e-mail channel's `config` needs `from` and `to`: {e}"),
                    )
                })?;
                if email.to.is_empty() {
                    return Err(ApiError::invalid("config.to", "`config.to` is empty"));
                }
                if email.to.len() > tessera_alerting::templates::email::RECIPIENTS_MAX {
                    return Err(ApiError::invalid(
                        "config.to",
                        "`config.to` has more than 50 recipients",
                    ));
                }
                if self.secret_variable.is_none() {
                    return Err(ApiError::invalid(
                        "secret_variable",
                        "an e-mail channel needs `secret_variable`: the variable holding the Postmark server token",
                    ));
                }
            }
            _ => {}
        }
        if let Some(c) = &self.config
            && !c.is_object()
        {
            return Err(ApiError::invalid("config", "`config` must be an object"));
        }
        Ok(())
    }
}

const COLUMNS: &str = "id::text, name, kind, url, config, secret_variable, disabled, \
    consecutive_failed_deliveries, ordered, to_char(created_at AT TIME ZONE 'UTC', ";

fn select(filter: &str) -> String {
    format!(
        "SELECT {COLUMNS}{ISO}), to_char(updated_at AT TIME ZONE 'UTC', {ISO}) \
         FROM alert_channels WHERE tenant_id = $1 {filter}"
    )
}

fn to_json(r: &spin_sdk::pg::Row) -> Value {
    json!({
        "id": db::text(r, 0),
        "name": db::text(r, 1),
        "kind": db::text(r, 2),
        "url": db::text(r, 3),
        "config": db::json(r, 4),
        "secret_variable": db::opt_text(r, 5),
        "disabled": db::boolean(r, 6),
        "consecutive_failed_deliveries": db::int(r, 7),
        "ordered": db::boolean(r, 8),
        "created_at": db::text(r, 9),
        "updated_at": db::text(r, 10),
    })
}

fn conflict_or(e: ApiError) -> ApiError {
    // 23505: the tenant already has a channel of that name.
    if e.status == 409 || e.detail.as_deref().is_some_and(|d| d.contains("23505")) {
        ApiError::conflict("name_taken", "a channel with this `name` exists").with_field("name")
    } else {
        e
    }
}

pub async fn create(req: Request, tenant: &str) -> Handled {
    let mut input: ChannelInput = read_json(req, BODY_LIMIT).await?;
    input.validate()?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let exists = db::one(
        &db,
        "channel name",
        "SELECT 1 FROM alert_channels WHERE tenant_id = $1 AND name = $2",
        vec![P::Str(tenant.into()), P::Str(input.name.clone())],
    )
    .await?;
    if exists.is_some() {
        return Err(conflict_or(ApiError::conflict("name_taken", "")));
    }
    let row = db::one(
        &db,
        "insert channel",
        &format!(
            "WITH c AS (INSERT INTO alert_channels (tenant_id, name, kind, url, config, secret_variable, disabled, ordered) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *) \
             SELECT {COLUMNS}{ISO}), to_char(updated_at AT TIME ZONE 'UTC', {ISO}) FROM c"
        ),
        vec![
            P::Str(tenant.into()),
            P::Str(input.name),
            P::Str(input.kind),
            P::Str(input.url),
            db::jsonb(&input.config.unwrap_or_else(|| json!({}))),
            db::opt_str(input.secret_variable.as_deref()),
            P::Boolean(input.disabled.unwrap_or(false)),
            P::Boolean(input.ordered.unwrap_or(true)),
        ],
    )
    .await
    .map_err(conflict_or)?
    .ok_or_else(|| ApiError::internal("insert channel: no row"))?;
    Ok((StatusCode::CREATED, to_json(&row)))
}

pub async fn list(tenant: &str) -> Handled {
    let db = tessera_spin_kit::connect(tenant).await?;
    let rows = db::rows(
        &db,
        "list channels",
        &select("ORDER BY created_at, id"),
        vec![P::Str(tenant.into())],
    )
    .await?;
    Ok((
        StatusCode::OK,
        json!({ "channels": rows.iter().map(to_json).collect::<Vec<_>>() }),
    ))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("channel_not_found", format!("no channel {id}"))
}

pub async fn get(tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let row = db::one(
        &db,
        "get channel",
        &select("AND id = $2::uuid"),
        vec![P::Str(tenant.into()), P::Str(id.clone())],
    )
    .await?
    .ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::OK, to_json(&row)))
}

/// Replaces the channel's settings. `disabled: false` re-enables it with a clean failure
/// count (tessera-alerting's `EndpointHealth::re_enable`).
pub async fn update(req: Request, tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let mut input: ChannelInput = read_json(req, BODY_LIMIT).await?;
    input.validate()?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let row = db::one(
        &db,
        "update channel",
        &format!(
            "WITH c AS (UPDATE alert_channels SET name = $3, kind = $4, url = $5, config = $6, \
             secret_variable = $7, disabled = COALESCE($8, disabled), ordered = COALESCE($9, ordered), \
             consecutive_failed_deliveries = CASE WHEN $8 = false THEN 0 ELSE consecutive_failed_deliveries END, \
             updated_at = now() WHERE tenant_id = $1 AND id = $2::uuid RETURNING *) \
             SELECT {COLUMNS}{ISO}), to_char(updated_at AT TIME ZONE 'UTC', {ISO}) FROM c"
        ),
        vec![
            P::Str(tenant.into()),
            P::Str(id.clone()),
            P::Str(input.name),
            P::Str(input.kind),
            P::Str(input.url),
            db::jsonb(&input.config.unwrap_or_else(|| json!({}))),
            db::opt_str(input.secret_variable.as_deref()),
            match input.disabled {
                Some(b) => P::Boolean(b),
                None => P::DbNull,
            },
            match input.ordered {
                Some(b) => P::Boolean(b),
                None => P::DbNull,
            },
        ],
    )
    .await
    .map_err(conflict_or)?
    .ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::OK, to_json(&row)))
}

pub async fn delete(tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let n = db::execute(
        &db,
        "delete channel",
        "DELETE FROM alert_channels WHERE tenant_id = $1 AND id = $2::uuid",
        vec![P::Str(tenant.into()), P::Str(id.clone())],
    )
    .await?;
    if n == 0 {
        return Err(not_found(&id));
    }
    Ok((StatusCode::OK, json!({ "deleted": id })))
}
