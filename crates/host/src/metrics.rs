//! `GET /metrics`: the host's load in Prometheus' text format (0.0.4), written by hand as
//! the worker's are — a few gauges, counters and fixed-bucket histograms need no metrics
//! framework. What matters under load: how full each component's instance slots and
//! Postgres pool are, how long requests and connection waits take, and how many requests
//! were refused or failed. Labels are bounded: components, manifest route patterns (never
//! raw paths), status classes and allowed outbound hosts. docs/observability.md lists them.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the request latency buckets: a cached answer to a model call.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds (seconds) of the Postgres pool wait buckets: mostly no wait at all, up to
/// the default wait limit of five seconds.
pub const POOL_WAIT_BUCKETS: &[f64] = &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// A histogram with fixed buckets, updated with atomics only.
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        // `le` is inclusive: a value equal to a bound belongs to that bound's bucket.
        let index = self
            .bounds
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (`+Inf` last, which is the total) and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (cumulative, sum)
    }
}

/// Where a request came from: a client, or a component (`http://self`, service chaining).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Source {
    Client,
    Internal,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Internal => "internal",
        }
    }
}

/// `2xx` and so on; anything outside 100–599 is `other`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

fn class_index(class: &str) -> usize {
    CLASSES.iter().position(|c| *c == class).unwrap_or(5)
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct RouteKey {
    component: String,
    route: String,
    source: Source,
}

struct RouteStats {
    by_class: [AtomicU64; 6],
    latency: Histogram,
}

/// Requests and their latency per component, manifest route and source. The map lock is
/// held only to find a route's entry; counting is atomic.
#[derive(Default)]
pub struct RequestMetrics {
    routes: Mutex<HashMap<RouteKey, Arc<RouteStats>>>,
}

impl RequestMetrics {
    /// One answered request. `route` is the manifest's pattern, so labels stay bounded.
    pub fn record(
        &self,
        component: &str,
        route: &str,
        source: Source,
        status: u16,
        elapsed: Duration,
    ) {
        let key = RouteKey {
            component: component.to_string(),
            route: route.to_string(),
            source,
        };
        let stats = {
            let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            routes
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(RouteStats {
                        by_class: Default::default(),
                        latency: Histogram::new(LATENCY_BUCKETS),
                    })
                })
                .clone()
        };
        stats.by_class[class_index(status_class(status))].fetch_add(1, Ordering::Relaxed);
        stats.latency.observe(elapsed);
    }

    fn sorted(&self) -> Vec<(RouteKey, Arc<RouteStats>)> {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = routes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|(a, _), (b, _)| {
            (&a.component, &a.route, a.source.label()).cmp(&(
                &b.component,
                &b.route,
                b.source.label(),
            ))
        });
        all
    }
}

/// Instances one component created, and requests that found an instance already running.
#[derive(Default)]
pub struct InstanceStats {
    pub created: AtomicU64,
    pub reused: AtomicU64,
}

/// Outbound HTTP calls per component, destination host and status class (`error` when no
/// answer came), and the calls refused by `allowed_outbound_hosts` (per component only: the
/// refused host is the guest's choice, so not a bounded label).
#[derive(Default)]
pub struct OutboundMetrics {
    calls: Mutex<HashMap<OutboundKey, u64>>,
    denied: Mutex<HashMap<Arc<str>, u64>>,
}

/// Component, destination host, status class.
type OutboundKey = (Arc<str>, String, &'static str);

impl OutboundMetrics {
    pub fn record(&self, component: &Arc<str>, host: &str, class: &'static str) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls
            .entry((component.clone(), host.to_string(), class))
            .or_default() += 1;
    }

    pub fn record_denied(&self, component: &Arc<str>) {
        let mut denied = self.denied.lock().unwrap_or_else(|e| e.into_inner());
        *denied.entry(component.clone()).or_default() += 1;
    }
}

/// `llm.generate-embeddings` calls per component, where they ran (`host`: the model in
/// this process; `worker`: the embedding worker; `none`: refused before running) and how
/// they ended, with the texts embedded.
#[derive(Default)]
pub struct LlmMetrics {
    calls: Mutex<HashMap<LlmKey, (u64, u64)>>,
}

/// Component, backend, result.
type LlmKey = (Arc<str>, &'static str, &'static str);

impl LlmMetrics {
    pub fn record(
        &self,
        component: &Arc<str>,
        backend: &'static str,
        result: &'static str,
        texts: usize,
    ) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let entry = calls
            .entry((component.clone(), backend, result))
            .or_default();
        entry.0 += 1;
        entry.1 += texts as u64;
    }
}

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

/// Everything `/metrics` shows.
pub struct Report<'a> {
    pub counters: &'a Counters,
    pub slots: &'a [SlotGauge<'a>],
    pub pools: &'a [PoolGauge<'a>],
    pub requests: &'a RequestMetrics,
    pub instances: &'a [(&'a str, &'a InstanceStats)],
    /// Postgres pool waits per component.
    pub pool_waits: &'a [(Arc<str>, Arc<Histogram>)],
    pub outbound: &'a OutboundMetrics,
    pub llm: &'a LlmMetrics,
}

pub fn render(report: &Report<'_>) -> String {
    let Report {
        counters,
        slots,
        pools,
        ..
    } = *report;
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
    render_requests(&mut out, report.requests);
    render_instances(&mut out, report.instances);
    render_pool_waits(&mut out, report.pool_waits);
    render_outbound(&mut out, report.outbound);
    render_llm(&mut out, report.llm);
    out
}

fn render_llm(out: &mut String, llm: &LlmMetrics) {
    let mut calls: Vec<_> = {
        let calls = llm.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.iter().map(|(k, v)| (k.clone(), *v)).collect()
    };
    calls.sort();
    for (name, help, pick) in [
        (
            "tessera_llm_embedding_requests_total",
            "llm.generate-embeddings calls per component, backend (host, worker, none) and result.",
            0,
        ),
        (
            "tessera_llm_embedding_texts_total",
            "Texts in those calls.",
            1,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for ((component, backend, result), (requests, texts)) in &calls {
            let value = if pick == 0 { requests } else { texts };
            let _ = writeln!(
                out,
                "{name}{{component=\"{}\",backend=\"{backend}\",result=\"{result}\"}} {value}",
                escape(component)
            );
        }
    }
}

fn render_requests(out: &mut String, requests: &RequestMetrics) {
    let routes = requests.sorted();
    let name = "tessera_http_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} Answered requests per component, manifest route, source and status \
         class.\n# TYPE {name} counter"
    );
    for (key, stats) in &routes {
        for (class, count) in CLASSES.iter().zip(&stats.by_class) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let _ = writeln!(
                    out,
                    "{name}{{{},status=\"{class}\"}} {count}",
                    route_labels(key)
                );
            }
        }
    }
    let name = "tessera_http_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time to a request's response head, per component, manifest route and \
         source.\n# TYPE {name} histogram"
    );
    for (key, stats) in &routes {
        histogram(out, name, &route_labels(key), &stats.latency);
    }
}

fn route_labels(key: &RouteKey) -> String {
    format!(
        "component=\"{}\",route=\"{}\",source=\"{}\"",
        escape(&key.component),
        escape(&key.route),
        key.source.label()
    )
}

fn render_instances(out: &mut String, instances: &[(&str, &InstanceStats)]) {
    let mut sorted = instances.to_vec();
    sorted.sort_by_key(|(component, _)| *component);
    for (name, help, pick) in [
        (
            "tessera_instances_created_total",
            "Component instances created.",
            (|s: &InstanceStats| &s.created) as fn(&InstanceStats) -> &AtomicU64,
        ),
        (
            "tessera_instances_reused_total",
            "Requests served by an instance that had served one before.",
            |s: &InstanceStats| &s.reused,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (component, stats) in &sorted {
            let value = pick(stats).load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{component=\"{}\"}} {value}", escape(component));
        }
    }
}

fn render_pool_waits(out: &mut String, waits: &[(Arc<str>, Arc<Histogram>)]) {
    let mut sorted = waits.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let name = "tessera_pg_pool_wait_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time a guest waited for a Postgres connection (timeouts included).\n\
         # TYPE {name} histogram"
    );
    for (component, waits) in &sorted {
        histogram(
            out,
            name,
            &format!("component=\"{}\"", escape(component)),
            waits,
        );
    }
}

fn render_outbound(out: &mut String, outbound: &OutboundMetrics) {
    let mut calls: Vec<_> = {
        let calls = outbound.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.iter().map(|(k, v)| (k.clone(), *v)).collect()
    };
    calls.sort();
    let name = "tessera_outbound_http_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} Outbound HTTP requests per component, destination host and status \
         class (error: no answer).\n# TYPE {name} counter"
    );
    for ((component, host, class), count) in calls {
        let _ = writeln!(
            out,
            "{name}{{component=\"{}\",host=\"{}\",status=\"{class}\"}} {count}",
            escape(&component),
            escape(&host)
        );
    }
    let mut denied: Vec<_> = {
        let denied = outbound.denied.lock().unwrap_or_else(|e| e.into_inner());
        denied.iter().map(|(k, v)| (k.clone(), *v)).collect()
    };
    denied.sort();
    let name = "tessera_outbound_http_denied_total";
    let _ = writeln!(
        out,
        "# HELP {name} Outbound HTTP requests refused by allowed_outbound_hosts.\n\
         # TYPE {name} counter"
    );
    for (component, count) in denied {
        let _ = writeln!(
            out,
            "{name}{{component=\"{}\"}} {count}",
            escape(&component)
        );
    }
}

/// `_bucket` lines (cumulative, `+Inf` last), `_sum` and `_count` for one label set.
fn histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let (cumulative, sum) = histogram.snapshot();
    let total = cumulative.last().copied().unwrap_or(0);
    for (bound, count) in histogram
        .bounds
        .iter()
        .map(|b| b.to_string())
        .chain(std::iter::once("+Inf".to_string()))
        .zip(&cumulative)
    {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
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
        let llm = LlmMetrics::default();
        llm.record(&Arc::from("kb"), "host", "ok", 1);
        llm.record(&Arc::from("kb"), "host", "ok", 20);
        let text = render(&Report {
            counters: &counters,
            slots: &[SlotGauge {
                component: "kb",
                slots: 3,
                in_flight: 2,
            }],
            pools: &[PoolGauge {
                component: "chat",
                max: 16,
                open: 5,
                idle: 1,
                waiting: 4,
            }],
            requests: &RequestMetrics::default(),
            instances: &[],
            pool_waits: &[],
            outbound: &OutboundMetrics::default(),
            llm: &llm,
        });
        assert!(
            text.contains(
                "tessera_llm_embedding_requests_total{component=\"kb\",backend=\"host\",result=\"ok\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_llm_embedding_texts_total{component=\"kb\",backend=\"host\",result=\"ok\"} 21\n"
            ),
            "{text}"
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
    fn histogram_buckets_are_inclusive_and_cumulative() {
        let h = Histogram::new(&[0.01, 0.1, 1.0]);
        h.observe(Duration::from_millis(10)); // on a bound: that bucket
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3)); // past the last bound: +Inf only
        let (cumulative, sum) = h.snapshot();
        assert_eq!(cumulative, vec![1, 3, 3, 4]);
        assert!((sum - 3.11).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn requests_render_per_route_with_status_classes_and_histograms() {
        let requests = RequestMetrics::default();
        let ms = Duration::from_millis;
        requests.record("echo", "/echo/...", Source::Client, 200, ms(3));
        requests.record("echo", "/echo/...", Source::Client, 201, ms(30));
        requests.record("echo", "/echo/...", Source::Client, 404, ms(2));
        requests.record("echo", "/echo/...", Source::Internal, 200, ms(1));
        let outbound = OutboundMetrics::default();
        let component: Arc<str> = "echo".into();
        outbound.record(&component, "api.example.com", "2xx");
        outbound.record(&component, "api.example.com", "2xx");
        outbound.record_denied(&component);
        let stats = InstanceStats::default();
        stats.created.fetch_add(2, Ordering::Relaxed);
        stats.reused.fetch_add(5, Ordering::Relaxed);
        let waits = Arc::new(Histogram::new(POOL_WAIT_BUCKETS));
        waits.observe(Duration::from_micros(200));
        let text = render(&Report {
            counters: &Counters::default(),
            slots: &[],
            pools: &[],
            requests: &requests,
            instances: &[("echo", &stats)],
            pool_waits: &[(component.clone(), waits)],
            outbound: &outbound,
            llm: &LlmMetrics::default(),
        });
        let labels = "component=\"echo\",route=\"/echo/...\",source=\"client\"";
        for line in [
            format!("tessera_http_requests_total{{{labels},status=\"2xx\"}} 2"),
            format!("tessera_http_requests_total{{{labels},status=\"4xx\"}} 1"),
            "tessera_http_requests_total{component=\"echo\",route=\"/echo/...\",\
             source=\"internal\",status=\"2xx\"} 1"
                .to_string(),
            format!("tessera_http_request_duration_seconds_bucket{{{labels},le=\"0.001\"}} 0"),
            format!("tessera_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 2"),
            format!("tessera_http_request_duration_seconds_bucket{{{labels},le=\"0.05\"}} 3"),
            format!("tessera_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3"),
            format!("tessera_http_request_duration_seconds_count{{{labels}}} 3"),
            format!("tessera_http_request_duration_seconds_sum{{{labels}}} 0.035"),
            "# TYPE tessera_http_request_duration_seconds histogram".to_string(),
            "tessera_instances_created_total{component=\"echo\"} 2".to_string(),
            "tessera_instances_reused_total{component=\"echo\"} 5".to_string(),
            "tessera_pg_pool_wait_seconds_bucket{component=\"echo\",le=\"0.0005\"} 1".to_string(),
            "tessera_pg_pool_wait_seconds_count{component=\"echo\"} 1".to_string(),
            "tessera_outbound_http_requests_total{component=\"echo\",host=\"api.example.com\",\
             status=\"2xx\"} 2"
                .to_string(),
            "tessera_outbound_http_denied_total{component=\"echo\"} 1".to_string(),
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "missing {line:?} in\n{text}"
            );
        }
        // No status class that never happened.
        assert!(!text.contains("status=\"5xx\""), "{text}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(101), "1xx");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(308), "3xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(999), "other");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
