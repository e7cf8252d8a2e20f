//! `[[trigger.cron]]` with Spin's cron plugin semantics: six-field expressions (seconds
//! first, an optional seventh for the year), a fresh instance per event, and the export
//! `handle-cron-event` of `fermyon:spin-cron@2.0.0`.

use crate::app::{App, Entry, LoadedComponent};
use crate::bindings::cron::SpinCronPre;
use crate::bindings::cron::fermyon::spin_cron::cron_types::{Error as CronError, Metadata};
use crate::state::RequestClock;
use crate::trace::TraceParent;
use anyhow::{Context, Result};
use chrono::Utc;
use cron::Schedule;
use std::str::FromStr;
use std::sync::Arc;

pub struct CronJob {
    app: Arc<App>,
    component: Arc<LoadedComponent>,
    pre: SpinCronPre<crate::state::HostState>,
    schedule: Schedule,
    expression: String,
}

/// Parses every cron trigger and checks its component, so a bad expression stops start-up.
pub fn jobs(app: &Arc<App>) -> Result<Vec<CronJob>> {
    app.manifest
        .cron_triggers
        .iter()
        .enumerate()
        .map(|(i, trigger)| {
            let schedule = Schedule::from_str(&trigger.cron_expression).with_context(|| {
                format!(
                    "trigger.cron[{i}].cron_expression: {:?} is not a valid cron expression \
                     (six fields, seconds first: \"sec min hour day month weekday\")",
                    trigger.cron_expression
                )
            })?;
            let component = app.component(&trigger.component)?.clone();
            let Entry::Cron(pre) = component.cron_entry()? else {
                unreachable!("cron_entry returns Entry::Cron")
            };
            Ok(CronJob {
                app: app.clone(),
                component,
                pre,
                schedule,
                expression: trigger.cron_expression.clone(),
            })
        })
        .collect()
}

impl CronJob {
    /// Fires the component on schedule until the task is dropped. Events do not overlap: a
    /// run that outlasts its interval delays the next one, as with Spin's plugin.
    pub async fn run(self) {
        tracing::info!(component = self.component.id(), expression = %self.expression, "cron trigger armed");
        let mut counter = 0u64;
        loop {
            let Some(next) = self.schedule.upcoming(Utc).next() else {
                tracing::info!(
                    component = self.component.id(),
                    "cron schedule has no further events"
                );
                return;
            };
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            counter += 1;
            let event_id = format!("cron-{}-{counter}", self.component.id());
            match self.fire(next.timestamp() as u64, &event_id).await {
                Ok(()) => {
                    tracing::info!(component = self.component.id(), event = %event_id, "cron event handled")
                }
                Err(err) => tracing::error!(component = self.component.id(), event = %event_id,
                    error = format!("{err:?}"), "cron event failed"),
            }
        }
    }

    /// One run, a trace of its own: what the component calls and queries are children of
    /// the run's span (exported when spans are).
    async fn fire(&self, timestamp: u64, event_id: &str) -> Result<()> {
        let trace = TraceParent::start();
        let start = std::time::SystemTime::now();
        let started = std::time::Instant::now();
        let result = self.run_once(timestamp, event_id, trace).await;
        tessera_otlp::export(
            tessera_otlp::SpanRecord::new(
                &trace,
                None,
                format!("cron {}", self.component.id()),
                tessera_otlp::Kind::Internal,
                start,
                started.elapsed(),
            )
            .attribute("tessera.component", self.component.id())
            .attribute("tessera.cron.expression", self.expression.to_string())
            .attribute("tessera.request_id", event_id)
            .failed(result.as_ref().err().map(|e| format!("{e:#}"))),
        );
        result
    }

    async fn run_once(&self, timestamp: u64, event_id: &str, trace: TraceParent) -> Result<()> {
        let mut store = self.app.new_store(&self.component);
        store
            .data()
            .deadlines
            .start(RequestClock::traced(event_id.to_string(), Some(trace)));
        store.data_mut().set_trace(Some(trace));
        let timeout = self.app.config.request_timeout;
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance
                .call_handle_cron_event(&mut store, Metadata { timestamp })
                .await
        };
        match tokio::time::timeout(timeout, call).await {
            Err(_) => anyhow::bail!("timed out after {} ms", timeout.as_millis()),
            Ok(Err(trap)) => Err(anyhow::Error::from(trap)).context("component trapped"),
            Ok(Ok(Err(CronError::Other(message)))) => {
                anyhow::bail!("component reported: {message}")
            }
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}
