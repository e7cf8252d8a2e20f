//! `GET /metrics`: the host's load in Prometheus' text format (0.0.4), written by hand as
//! the worker's are — a few gauges and counters need no metrics framework. What matters
//! under load: how full each component's instance slots and Postgres pool are, how many
//! requests wait for a connection, and how many were refused or failed.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the HTTP trigger bumps.
#[derive(Default)]
pub struct Counters {
    pub refused_component_busy: AtomicU64,
    pub refused_host_busy: AtomicU64,
    pub traps: AtomicU64,
    pub deadline_kills: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub connections_refused: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One component's instance slots.
pub struct SlotGauge<'a> {
    pub component: &'a str,
    pub slots: usize,
    pub in_flight: usize,
}

/// One component's Postgres pool.
pub struct PoolGauge<'a> {
    pub component: &'a str,
    pub max: usize,
    pub open: usize,
    pub idle: usize,
    pub waiting: usize,
}

pub fn render(counters: &Counters, slots: &[SlotGauge<'_>], pools: &[PoolGauge<'_>]) -> String {
    let mut out = String::new();
    gauge(
        &mut out,
        "tessera_instance_slots",
        "Requests a component may run at once.",
        slots.iter().map(|s| (s.component, s.slots)),
    );
    gauge(
        &mut out,
        "tessera_instance_in_flight",
        "Requests a component is running.",
        slots.iter().map(|s| (s.component, s.in_flight)),
    );
    gauge(
        &mut out,
        "tessera_pg_pool_max",
        "Postgres connections a component may hold.",
        pools.iter().map(|p| (p.component, p.max)),
    );
    gauge(
        &mut out,
        "tessera_pg_pool_open",
        "Postgres connections a component holds open.",
        pools.iter().map(|p| (p.component, p.open)),
    );
    gauge(
        &mut out,
        "tessera_pg_pool_idle",
        "Open Postgres connections not in use.",
        pools.iter().map(|p| (p.component, p.idle)),
    );
    gauge(
        &mut out,
        "tessera_pg_pool_waiting",
        "Guests waiting for a Postgres connection.",
        pools.iter().map(|p| (p.component, p.waiting)),
    );
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    counter(
        &mut out,
        "tessera_requests_refused_total",
        "Requests refused with 503 for want of a slot.",
        &[
            (
                "reason=\"component_busy\"",
                load(&counters.refused_component_busy),
            ),
            ("reason=\"host_busy\"", load(&counters.refused_host_busy)),
        ],
    );
    counter(
        &mut out,
        "tessera_request_failures_total",
        "Requests ended by the host.",
        &[
            ("cause=\"trap\"", load(&counters.traps)),
            ("cause=\"deadline\"", load(&counters.deadline_kills)),
            ("cause=\"body_timeout\"", load(&counters.body_timeouts)),
        ],
    );
    counter(
        &mut out,
        "tessera_connections_refused_total",
        "Connections past a client's limit.",
        &[("", load(&counters.connections_refused))],
    );
    out
}

fn gauge<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'a str, usize)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (component, value) in values {
        let _ = writeln!(out, "{name}{{component=\"{}\"}} {value}", escape(component));
    }
}

fn counter(out: &mut String, name: &str, help: &str, values: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, value) in values {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_gauges_per_component_and_counters() {
        let counters = Counters::default();
        Counters::bump(&counters.refused_component_busy);
        let text = render(
            &counters,
            &[SlotGauge {
                component: "kb",
                slots: 3,
                in_flight: 2,
            }],
            &[PoolGauge {
                component: "chat",
                max: 16,
                open: 5,
                idle: 1,
                waiting: 4,
            }],
        );
        assert!(
            text.contains("tessera_instance_slots{component=\"kb\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("tessera_instance_in_flight{component=\"kb\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tessera_pg_pool_waiting{component=\"chat\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("tessera_requests_refused_total{reason=\"component_busy\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tessera_pg_pool_open gauge\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
