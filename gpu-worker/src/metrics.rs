//! Prometheus metrics in the text exposition format (0.0.4), written by hand: a handful of
//! counters, gauges and histograms do not need a metrics framework, and the format is small
//! enough to test here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Sequences per model call.
const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Padded tokens per model call (sequences × longest).
const BATCH_TOKEN_BUCKETS: &[f64] = &[
    64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
];

/// A cumulative histogram with fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    state: Mutex<HistogramState>,
}

#[derive(Debug, Default, Clone)]
struct HistogramState {
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            state: Mutex::new(HistogramState {
                buckets: vec![0; bounds.len() + 1],
                ..Default::default()
            }),
        }
    }

    pub fn observe(&self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.buckets[slot] += 1;
        s.sum += value;
        s.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += s.buckets[i];
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{}\"}} {cumulative}",
                format_float(*bound)
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", s.count);
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), format_float(s.sum));
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), s.count);
    }
}

/// Prometheus floats: integers without a fraction, others as Rust prints them.
fn format_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Endpoints that requests are counted and timed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    /// `POST /embed` (Spin's remote-LLM protocol).
    Embed,
    /// `POST /v1/embeddings` (OpenAI's shape).
    OpenAi,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Embed => "/embed",
            Endpoint::OpenAi => "/v1/embeddings",
        }
    }
}

/// Outcomes of a queued embedding job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JobOutcome {
    Done,
    /// Failed this attempt; back in the queue.
    Retried,
    /// Out of attempts.
    Failed,
}

impl JobOutcome {
    fn label(self) -> &'static str {
        match self {
            JobOutcome::Done => "done",
            JobOutcome::Retried => "retried",
            JobOutcome::Failed => "failed",
        }
    }
}

/// Everything the worker reports on `GET /metrics`.
#[derive(Debug)]
pub struct Metrics {
    queue_depth: AtomicU64,
    queue_tokens: AtomicU64,
    batch_size: Histogram,
    batch_tokens: Histogram,
    inference_seconds: Histogram,
    tokens_total: AtomicU64,
    embeddings_total: AtomicU64,
    /// Tokens per second of inference time, smoothed over recent batches (f64 bits).
    tokens_per_second: AtomicU64,
    queue_rejections: AtomicU64,
    requests: Mutex<BTreeMap<(Endpoint, u16), u64>>,
    latency: [Histogram; 2],
    jobs: Mutex<BTreeMap<JobOutcome, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            queue_depth: AtomicU64::new(0),
            queue_tokens: AtomicU64::new(0),
            batch_size: Histogram::new(BATCH_SIZE_BUCKETS),
            batch_tokens: Histogram::new(BATCH_TOKEN_BUCKETS),
            inference_seconds: Histogram::new(LATENCY_BUCKETS),
            tokens_total: AtomicU64::new(0),
            embeddings_total: AtomicU64::new(0),
            tokens_per_second: AtomicU64::new(0f64.to_bits()),
            queue_rejections: AtomicU64::new(0),
            requests: Mutex::new(BTreeMap::new()),
            latency: [
                Histogram::new(LATENCY_BUCKETS),
                Histogram::new(LATENCY_BUCKETS),
            ],
            jobs: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    pub fn set_queue(&self, depth: usize, tokens: usize) {
        self.queue_depth.store(depth as u64, Ordering::Relaxed);
        self.queue_tokens.store(tokens as u64, Ordering::Relaxed);
    }

    /// One model call: `sequences` inputs padded to `padded_tokens` in all, of which
    /// `tokens` were real, taking `elapsed`.
    pub fn record_batch(
        &self,
        sequences: usize,
        tokens: usize,
        padded_tokens: usize,
        elapsed: Duration,
    ) {
        self.batch_size.observe(sequences as f64);
        self.batch_tokens.observe(padded_tokens as f64);
        self.inference_seconds.observe(elapsed.as_secs_f64());
        self.tokens_total
            .fetch_add(tokens as u64, Ordering::Relaxed);
        self.embeddings_total
            .fetch_add(sequences as u64, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        if seconds > 0.0 {
            let rate = tokens as f64 / seconds;
            // Exponential smoothing: recent batches dominate, one odd batch does not.
            let _ =
                self.tokens_per_second
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                        let old = f64::from_bits(old);
                        let new = if old == 0.0 {
                            rate
                        } else {
                            0.8 * old + 0.2 * rate
                        };
                        Some(new.to_bits())
                    });
        }
    }

    /// Smoothed tokens per second of inference (0 before the first batch).
    pub fn tokens_per_second(&self) -> f64 {
        f64::from_bits(self.tokens_per_second.load(Ordering::Relaxed))
    }

    pub fn record_rejection(&self) {
        self.queue_rejections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_request(&self, endpoint: Endpoint, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((endpoint, status))
            .or_default() += 1;
        self.latency[endpoint as usize].observe(elapsed.as_secs_f64());
    }

    pub fn record_jobs(&self, outcome: JobOutcome, count: usize) {
        if count > 0 {
            *self
                .jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(outcome)
                .or_default() += count as u64;
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        header(
            &mut out,
            "tessera_worker_queue_depth",
            "gauge",
            "Inputs waiting for a batch.",
        );
        let _ = writeln!(
            out,
            "tessera_worker_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "tessera_worker_queue_tokens",
            "gauge",
            "Tokens of the inputs waiting for a batch.",
        );
        let _ = writeln!(
            out,
            "tessera_worker_queue_tokens {}",
            self.queue_tokens.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "tessera_worker_queue_rejections_total",
            "counter",
            "Requests refused with 429 because the queue was full.",
        );
        let _ = writeln!(
            out,
            "tessera_worker_queue_rejections_total {}",
            self.queue_rejections.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "tessera_worker_batch_size",
            "histogram",
            "Inputs per model call.",
        );
        self.batch_size
            .render(&mut out, "tessera_worker_batch_size", "");
        header(
            &mut out,
            "tessera_worker_batch_padded_tokens",
            "histogram",
            "Tokens per model call including padding (inputs x longest).",
        );
        self.batch_tokens
            .render(&mut out, "tessera_worker_batch_padded_tokens", "");
        header(
            &mut out,
            "tessera_worker_inference_duration_seconds",
            "histogram",
            "Time per model call.",
        );
        self.inference_seconds
            .render(&mut out, "tessera_worker_inference_duration_seconds", "");
        header(
            &mut out,
            "tessera_worker_tokens_total",
            "counter",
            "Tokens embedded (after truncation, without padding); rate() gives tokens/s.",
        );
        let _ = writeln!(
            out,
            "tessera_worker_tokens_total {}",
            self.tokens_total.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "tessera_worker_tokens_per_second",
            "gauge",
            "Tokens per second of inference time, smoothed over recent model calls.",
        );
        let _ = writeln!(
            out,
            "tessera_worker_tokens_per_second {}",
            format_float(self.tokens_per_second())
        );
        header(
            &mut out,
            "tessera_worker_embeddings_total",
            "counter",
            "Embeddings computed.",
        );
        let _ = writeln!(
            out,
            "tessera_worker_embeddings_total {}",
            self.embeddings_total.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "tessera_worker_requests_total",
            "counter",
            "HTTP embedding requests by endpoint and status.",
        );
        for ((endpoint, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "tessera_worker_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}",
                endpoint.label()
            );
        }
        header(
            &mut out,
            "tessera_worker_request_duration_seconds",
            "histogram",
            "HTTP embedding request latency by endpoint.",
        );
        for endpoint in [Endpoint::Embed, Endpoint::OpenAi] {
            self.latency[endpoint as usize].render(
                &mut out,
                "tessera_worker_request_duration_seconds",
                &format!("endpoint=\"{}\"", endpoint.label()),
            );
        }
        header(
            &mut out,
            "tessera_worker_jobs_total",
            "counter",
            "Queued embedding jobs handled, by outcome.",
        );
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for outcome in [JobOutcome::Done, JobOutcome::Retried, JobOutcome::Failed] {
            let _ = writeln!(
                out,
                "tessera_worker_jobs_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                jobs.get(&outcome).copied().unwrap_or(0)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line `name{labels}` (exact match of everything before the value).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.rsplit_once(' ').filter(|(s, _)| *s == series))
            .map(|(_, v)| v.parse().unwrap())
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let m = Metrics::default();
        for (n, tokens) in [(1, 10), (3, 30), (3, 30), (40, 400), (300, 3000)] {
            m.record_batch(n, tokens, tokens * 2, Duration::from_millis(20));
        }
        let text = m.render();
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("tessera_worker_batch_size_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("1"), Some(1.0));
        assert_eq!(bucket("2"), Some(1.0));
        assert_eq!(bucket("4"), Some(3.0));
        assert_eq!(bucket("32"), Some(3.0));
        assert_eq!(bucket("64"), Some(4.0));
        assert_eq!(bucket("256"), Some(4.0));
        assert_eq!(bucket("+Inf"), Some(5.0));
        assert_eq!(sample(&text, "tessera_worker_batch_size_sum"), Some(347.0));
        assert_eq!(sample(&text, "tessera_worker_batch_size_count"), Some(5.0));
        assert_eq!(sample(&text, "tessera_worker_tokens_total"), Some(3470.0));
        assert_eq!(
            sample(&text, "tessera_worker_embeddings_total"),
            Some(347.0)
        );
        assert!(sample(&text, "tessera_worker_tokens_per_second").unwrap() > 0.0);
    }

    #[test]
    fn every_sample_has_help_and_type_and_parses() {
        let m = Metrics::default();
        m.set_queue(7, 700);
        m.record_rejection();
        m.record_request(Endpoint::Embed, 200, Duration::from_millis(30));
        m.record_request(Endpoint::OpenAi, 400, Duration::from_millis(1));
        m.record_request(Endpoint::OpenAi, 400, Duration::from_millis(2));
        m.record_jobs(JobOutcome::Done, 12);
        m.record_jobs(JobOutcome::Failed, 0);
        let text = m.render();
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                typed.insert(name.to_string());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
            value.parse::<f64>().unwrap_or_else(|_| panic!("{line:?}"));
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                .unwrap_or(name);
            assert!(typed.contains(family), "no # TYPE before {line:?}");
            if let Some(labels) = series.split_once('{').map(|(_, l)| l) {
                assert!(labels.ends_with('}'), "{line:?}");
            }
        }
        assert_eq!(sample(&text, "tessera_worker_queue_depth"), Some(7.0));
        assert_eq!(sample(&text, "tessera_worker_queue_tokens"), Some(700.0));
        assert_eq!(
            sample(&text, "tessera_worker_queue_rejections_total"),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "tessera_worker_requests_total{endpoint=\"/v1/embeddings\",status=\"400\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "tessera_worker_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"0.025\"}"
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                "tessera_worker_request_duration_seconds_bucket{endpoint=\"/embed\",le=\"0.05\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "tessera_worker_request_duration_seconds_count{endpoint=\"/v1/embeddings\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "tessera_worker_jobs_total{outcome=\"done\"}"),
            Some(12.0)
        );
        assert_eq!(
            sample(&text, "tessera_worker_jobs_total{outcome=\"failed\"}"),
            Some(0.0)
        );
    }

    #[test]
    fn floats_print_as_prometheus_reads_them() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.005), "0.005");
        assert_eq!(format_float(2.5), "2.5");
    }
}
