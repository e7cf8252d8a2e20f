//! Raising an alert from any component: a row in `alert_inbox`, written on the caller's
//! connection so it commits or rolls back with whatever caused it (the outbox pattern); the
//! alert component routes it to rules and channels on its next tick. Types are dotted
//! (`validation.rejected`, `circuit_breaker.opened`); label names follow Prometheus.

use crate::ApiError;
use crate::pg::{self, P};
use spin_sdk::pg::Connection;

/// How urgent an alert is; rules and templates see it as the `severity` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One alert event to raise.
#[derive(Debug, Clone)]
pub struct Alert {
    pub event_type: String,
    pub severity: Severity,
    pub labels: serde_json::Map<String, serde_json::Value>,
    pub summary: Option<String>,
    pub payload: serde_json::Value,
}

/// The INSERT of [`raise`], for callers that fold it into a statement of their own.
pub const INSERT: &str = "INSERT INTO alert_inbox (tenant_id, type, severity, labels, summary, payload) \
                          VALUES ($1, $2, $3, $4, $5, $6)";

/// Queues `alert` for `tenant` on `db`, inside the caller's transaction if one is open.
pub async fn raise(db: &Connection, tenant: &str, alert: &Alert) -> Result<(), ApiError> {
    pg::execute(db, "raise alert", INSERT, params(tenant, alert)).await?;
    Ok(())
}

/// The parameters `$1`–`$6` of [`INSERT`].
pub fn params(tenant: &str, alert: &Alert) -> Vec<P> {
    vec![
        P::Str(tenant.into()),
        P::Str(alert.event_type.clone()),
        P::Str(alert.severity.as_str().into()),
        pg::jsonb(&serde_json::Value::Object(alert.labels.clone())),
        pg::opt_str(alert.summary.as_deref()),
        pg::jsonb(&alert.payload),
    ]
}
