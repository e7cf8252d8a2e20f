//! Spans exported over OTLP/HTTP (protobuf), for the host and the embedding worker.
//!
//! Configured as every OpenTelemetry SDK is, by environment: `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`/v1/traces` is appended) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is),
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_BSP_*` for batching and
//! `OTEL_SDK_DISABLED`. Without an endpoint nothing is set up and recording costs nothing.
//!
//! Callers describe finished spans as plain [`SpanRecord`]s with the ids they already carry
//! in `traceparent` headers ([`traceparent`]), so they need no OpenTelemetry types and the
//! ids exported are exactly those sent downstream. A process [`install`]s the exporter once
//! and [`export`]s spans from anywhere. Spans go through the SDK's batch processor on the caller's
//! tokio runtime and are sent with hyper over plain HTTP: the usual set-up is a collector
//! beside the process (an OpenTelemetry Collector sidecar or agent), which forwards over TLS.

pub mod traceparent;

pub use traceparent::TraceParent;

use anyhow::{Context, Result, bail};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context as OtelContext, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// How long one export may take before it is given up (the collector is local).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A span that has ended, with the W3C ids it was known by.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The span this one is a child of; `None` for a trace's root.
    pub parent_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: Kind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, Attribute)>,
    /// `Some(description)` marks the span failed.
    pub error: Option<String>,
    /// Only spans of sampled traces are exported.
    pub sampled: bool,
}

impl SpanRecord {
    /// The span whose context is `own` (its `parent_id` is this span's id), a child of
    /// `parent`, that ran `elapsed` from `start`.
    pub fn new(
        own: &TraceParent,
        parent: Option<[u8; 8]>,
        name: impl Into<String>,
        kind: Kind,
        start: SystemTime,
        elapsed: Duration,
    ) -> Self {
        SpanRecord {
            trace_id: own.trace_id,
            span_id: own.parent_id,
            parent_id: parent,
            name: name.into(),
            kind,
            start,
            end: start + elapsed,
            attributes: Vec::new(),
            error: None,
            sampled: own.sampled(),
        }
    }

    /// A request this process served, named and described by OpenTelemetry's HTTP
    /// conventions (`http.request.method`, `http.response.status_code`), failed on a 5xx.
    pub fn http_server(
        own: &TraceParent,
        caller: Option<[u8; 8]>,
        name: impl Into<String>,
        method: &str,
        status: u16,
        start: SystemTime,
        elapsed: Duration,
    ) -> Self {
        SpanRecord::new(own, caller, name, Kind::Server, start, elapsed)
            .attribute("http.request.method", method)
            .attribute("http.response.status_code", i64::from(status))
            .failed((status >= 500).then(|| format!("answered {status}")))
    }

    pub fn attribute(mut self, key: &'static str, value: impl Into<Attribute>) -> Self {
        self.attributes.push((key, value.into()));
        self
    }

    /// Marks the span failed when `error` says why.
    pub fn failed(mut self, error: Option<String>) -> Self {
        self.error = error;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request this process served.
    Server,
    /// A request this process sent (HTTP, or a statement to Postgres).
    Client,
    /// Work this process started itself (a scheduled run).
    Internal,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Attribute {
    Text(String),
    Int(i64),
}

impl From<&str> for Attribute {
    fn from(value: &str) -> Self {
        Attribute::Text(value.to_string())
    }
}

impl From<String> for Attribute {
    fn from(value: String) -> Self {
        Attribute::Text(value)
    }
}

impl From<&String> for Attribute {
    fn from(value: &String) -> Self {
        Attribute::Text(value.clone())
    }
}

impl From<i64> for Attribute {
    fn from(value: i64) -> Self {
        Attribute::Int(value)
    }
}

static INSTALLED: OnceLock<Exporter> = OnceLock::new();

/// Sets up this process's exporter from the environment (see the crate's documentation);
/// call it once, inside the tokio runtime. Returns the endpoint, fit for a log line (user
/// info masked), when spans will be exported.
pub fn install(default_service: &str) -> Result<Option<String>> {
    let Some(exporter) = Exporter::from_env(default_service)? else {
        return Ok(None);
    };
    let _ = INSTALLED.set(exporter);
    Ok(configured_endpoint().map(|e| redacted(&e)))
}

/// `endpoint` with its user info, if any, replaced by `***` (a token may stand there as
/// well as a password).
fn redacted(endpoint: &str) -> String {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return endpoint.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
        None => endpoint.to_string(),
    }
}

/// Whether a span of `trace` would be exported: an exporter is installed and the trace is
/// sampled (a caller that does not sample its trace is respected).
pub fn exporting(trace: &TraceParent) -> bool {
    trace.sampled() && INSTALLED.get().is_some()
}

/// Exports `span` through the installed exporter, if any, when its trace is sampled.
pub fn export(span: SpanRecord) {
    if let Some(exporter) = INSTALLED.get()
        && span.sampled
    {
        exporter.record(span);
    }
}

/// Sends what is queued (at exit). Blocks until the export task has finished: from a tokio
/// worker thread, call it inside `tokio::task::block_in_place`.
pub fn shutdown() {
    if let Some(exporter) = INSTALLED.get() {
        exporter.shutdown();
    }
}

/// Where spans go, once configured.
pub struct Exporter {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// The endpoint the environment names, if any (`None` also when `OTEL_SDK_DISABLED=true`).
pub fn configured_endpoint() -> Option<String> {
    endpoint_from(|name| std::env::var(name).ok())
}

fn endpoint_from(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .filter_map(var)
    .map(|v| v.trim().to_string())
    .find(|v| !v.is_empty())
}

/// Checks an endpoint before the exporter is built, so a typo stops start-up with a reason.
fn check_endpoint(endpoint: &str) -> Result<()> {
    let uri: http::Uri = endpoint
        .parse()
        .with_context(|| format!("OTLP endpoint {endpoint:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(()),
        Some("https") => bail!(
            "OTLP endpoint {endpoint:?}: only http:// is supported; send to a collector \
             beside the process (an OpenTelemetry Collector sidecar), which forwards over TLS"
        ),
        _ => bail!("OTLP endpoint {endpoint:?} needs the form http://host:port"),
    }
}

impl Exporter {
    /// The exporter the environment configures, `None` when it names no endpoint. Call it
    /// inside the tokio runtime the spans will be sent from; `default_service` names the
    /// process unless `OTEL_SERVICE_NAME` does.
    pub fn from_env(default_service: &str) -> Result<Option<Exporter>> {
        let Some(endpoint) = configured_endpoint() else {
            return Ok(None);
        };
        check_endpoint(&endpoint)?;
        let client =
            opentelemetry_http::hyper::HyperClient::with_default_connector(EXPORT_TIMEOUT, None);
        let exporter = {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(client)
                .with_timeout(EXPORT_TIMEOUT)
                .build()
                .context("building the OTLP span exporter")?
        };
        let processor = BatchSpanProcessor::builder(exporter, Tokio).build();
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(default_service.to_string());
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource.build())
            .build();
        let tracer = {
            use opentelemetry::trace::TracerProvider;
            provider.tracer("tessera")
        };
        Ok(Some(Exporter { provider, tracer }))
    }

    /// Queues a finished span for export (never blocks; a full queue drops it).
    pub fn record(&self, span: SpanRecord) {
        let trace_id = TraceId::from_bytes(span.trace_id);
        let mut builder = self
            .tracer
            .span_builder(span.name)
            .with_kind(match span.kind {
                Kind::Server => SpanKind::Server,
                Kind::Client => SpanKind::Client,
                Kind::Internal => SpanKind::Internal,
            })
            .with_start_time(span.start)
            .with_attributes(span.attributes.into_iter().map(|(key, value)| match value {
                Attribute::Text(text) => KeyValue::new(key, text),
                Attribute::Int(n) => KeyValue::new(key, n),
            }));
        builder.span_id = Some(SpanId::from_bytes(span.span_id));
        builder.trace_id = Some(trace_id);
        if let Some(error) = span.error {
            builder.status = Status::error(error);
        }
        // The parent is named by its ids: a remote, sampled span context. Spans are only
        // recorded for sampled traces (the caller checks the flag).
        let parent = match span.parent_id {
            Some(parent) => OtelContext::new().with_remote_span_context(SpanContext::new(
                trace_id,
                SpanId::from_bytes(parent),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            )),
            None => OtelContext::new(),
        };
        let mut started = self.tracer.build_with_context(builder, &parent);
        use opentelemetry::trace::Span;
        started.end_with_timestamp(span.end);
    }

    /// Sends what is queued and stops (at exit).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("OTLP: exporting the last spans failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_traces_endpoint_wins_over_the_general_one() {
        let both = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://b:4318/v1/traces",
            ),
        ];
        assert_eq!(
            endpoint_from(vars(&both)).as_deref(),
            Some("http://b:4318/v1/traces")
        );
        let general = [("OTEL_EXPORTER_OTLP_ENDPOINT", " http://a:4318 ")];
        assert_eq!(
            endpoint_from(vars(&general)).as_deref(),
            Some("http://a:4318")
        );
    }

    #[test]
    fn nothing_is_configured_without_an_endpoint_or_when_disabled() {
        assert_eq!(endpoint_from(vars(&[])), None);
        assert_eq!(
            endpoint_from(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")])),
            None
        );
        let disabled = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ];
        assert_eq!(endpoint_from(vars(&disabled)), None);
    }

    #[test]
    fn the_logged_endpoint_hides_its_user_info() {
        assert_eq!(
            redacted("http://u:secret@collector:4318/v1"),
            "http://***@collector:4318/v1"
        );
        assert_eq!(
            redacted("http://token@collector:4318"),
            "http://***@collector:4318"
        );
        assert_eq!(
            redacted("http://collector:4318/a@b"),
            "http://collector:4318/a@b"
        );
        assert_eq!(redacted("http://127.0.0.1:4318"), "http://127.0.0.1:4318");
    }

    #[test]
    fn endpoints_must_be_plain_http_urls() {
        assert!(check_endpoint("http://127.0.0.1:4318").is_ok());
        let https = check_endpoint("https://collector:4318").unwrap_err();
        assert!(https.to_string().contains("only http://"), "{https}");
        assert!(check_endpoint("collector:4318").is_err());
        assert!(check_endpoint("not a url").is_err());
    }
}
