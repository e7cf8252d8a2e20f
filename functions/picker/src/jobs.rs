//! The scheduled jobs, for every tenant with market data: `POST /internal/cron?ts=` runs
//! what `tessera_picking::schedule::due_jobs` says the tick is due (snapshot every hour,
//! discovery every four session hours, forward returns nightly); `POST
//! /internal/jobs/{snapshot|discovery|forward-returns}` runs one job now. A tenant's failure
//! is reported in the answer and does not stop the others.

use serde_json::{Map, Value, json};
use spin_sdk::pg::Connection;
use tessera_api::Query;
use tessera_picking::pick::Portfolio;
use tessera_picking::schedule::{DueJobs, due_jobs};
use tessera_spin_kit::{ApiError, StatusCode};

use crate::db;
use crate::{Handled, discovery, returns, snapshot};

#[derive(Clone, Copy)]
enum Job {
    Snapshot,
    Discovery,
    ForwardReturns,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Snapshot => "snapshot",
            Job::Discovery => "discovery",
            Job::ForwardReturns => "forward-returns",
        }
    }
}

async fn tenants(db: &Connection, query: &Query) -> Result<Vec<String>, ApiError> {
    if let Some(t) = query.get("tenant") {
        return Ok(vec![t.to_string()]);
    }
    Ok(db::rows(
        db,
        "tenants",
        "SELECT DISTINCT tenant_id FROM market_symbols ORDER BY 1",
        vec![],
    )
    .await?
    .iter()
    .map(|r| db::text(r, 0))
    .collect())
}

async fn run_job(db: &Connection, tenant: &str, job: Job) -> Value {
    let result = match job {
        Job::Snapshot => snapshot::take(db, tenant).await,
        Job::ForwardReturns => returns::fill(db, tenant).await,
        Job::Discovery => {
            match discovery::start_and_run(db, tenant, "cron", None, &Portfolio::default()).await {
                Ok((id, status)) => Ok(json!({ "run_id": id, "status": status })),
                Err(e) if e.status == 409 => Ok(json!({ "skipped": e.message })),
                Err(e) => Err(e),
            }
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("picker {} for {tenant}: {e}", job.name());
        json!({ "error": e.message })
    })
}

async fn run_jobs(query: &Query, jobs: &[Job]) -> Handled {
    let db = tessera_spin_kit::connect_across_tenants().await?;
    let mut out = Map::new();
    for tenant in tenants(&db, query).await? {
        let mut results = Map::new();
        for job in jobs {
            results.insert(job.name().into(), run_job(&db, &tenant, *job).await);
        }
        out.insert(tenant, Value::Object(results));
    }
    Ok((StatusCode::OK, json!({ "tenants": out })))
}

pub async fn cron(query: &Query) -> Handled {
    let ts = match query.get("ts") {
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("ts", "ts must be Unix seconds"))?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    let due: DueJobs = due_jobs(ts);
    let jobs: Vec<Job> = [
        (due.snapshot, Job::Snapshot),
        (due.discovery, Job::Discovery),
        (due.forward_returns, Job::ForwardReturns),
    ]
    .into_iter()
    .filter_map(|(on, job)| on.then_some(job))
    .collect();
    let (status, mut body) = run_jobs(query, &jobs).await?;
    body["ts"] = json!(ts);
    body["due"] = json!(due);
    Ok((status, body))
}

pub async fn one(job: &str, query: &Query) -> Handled {
    let job = match job {
        "snapshot" => Job::Snapshot,
        "discovery" => Job::Discovery,
        "forward-returns" => Job::ForwardReturns,
        other => {
            return Err(ApiError::not_found(
                "not_found",
                format!("no picker job {}", tessera_api::echo(other)),
            ));
        }
    };
    run_jobs(query, &[job]).await
}
