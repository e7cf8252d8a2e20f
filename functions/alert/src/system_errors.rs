//! `POST /internal/system-errors`: the host's report that a component's answers to clients
//! turned 5xx over a window (`tessera up --report-errors-to alert`; reached by service
//! chaining only). It becomes a `system.error` alert in `alert_inbox` for the operators'
//! tenant (the `system_alerts_tenant` variable, `default` unless set), routed to rules and
//! channels on the next dispatcher tick like any queued alert.

use serde::Deserialize;
use serde_json::{Map, json};
use spin_sdk::http::Request;
use std::collections::BTreeMap;
use tessera_spin_kit::alert_inbox::{self, Alert, Severity};
use tessera_spin_kit::{ApiError, StatusCode, read_body};

use crate::{BODY_LIMIT, Handled};

/// The host's report (crates/host/src/error_watch.rs).
#[derive(Deserialize)]
struct ErrorReport {
    component: String,
    window_s: u64,
    requests: u64,
    errors: u64,
    rate: f64,
    #[serde(default)]
    statuses: BTreeMap<String, u64>,
}

/// The alert a report raises: critical when at least half the answers failed.
fn alert(report: &ErrorReport) -> Alert {
    let mut labels = Map::new();
    labels.insert("component".into(), json!(report.component));
    Alert {
        event_type: "system.error".into(),
        severity: if report.rate >= 0.5 {
            Severity::Critical
        } else {
            Severity::Warning
        },
        labels,
        summary: Some(format!(
            "component {} answered {} of {} requests with a server error in the last {} s",
            report.component, report.errors, report.requests, report.window_s
        )),
        payload: json!({
            "component": report.component,
            "window_s": report.window_s,
            "requests": report.requests,
            "errors": report.errors,
            "rate": report.rate,
            "statuses": report.statuses,
        }),
    }
}

pub async fn receive(req: Request) -> Handled {
    let body = read_body(req, BODY_LIMIT).await?;
    let report: ErrorReport = tessera_api::parse_json(&body)?;
    if report.component.is_empty() || !(0.0..=1.0).contains(&report.rate) {
        return Err(ApiError::invalid(
            "component",
            "a report names a component and a rate in [0, 1]",
        ));
    }
    let tenant = spin_sdk::variables::get("system_alerts_tenant")
        .await
        .ok()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "default".into());
    let db = tessera_spin_kit::connect(tenant.trim()).await?;
    alert_inbox::raise(&db, tenant.trim(), &alert(&report)).await?;
    Ok((
        StatusCode::ACCEPTED,
        json!({ "queued": true, "tenant": tenant.trim() }),
    ))
}
