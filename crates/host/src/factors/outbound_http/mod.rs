//! Outbound HTTP (`wasi:http` client, p2 and p3): every request is checked against the
//! component's `allowed_outbound_hosts`. A denied request is an error the guest sees
//! (`HTTP-request-denied`) and a warning in the log, never a crash. Requests to `self`
//! (a URL without a host, or host `self`) are routed to this application in-process, and
//! `http://<component>.spin.internal/...` reaches that component directly (Spin's service
//! chaining). Each request is counted per destination host for `/metrics`, and carries the
//! trace context of the request the component is serving unless the guest set its own.
//! Other requests go out on the host's pool of kept-alive connections (`client`).

mod client;

use super::Factor;
use crate::app::ComponentConfig;
use crate::metrics::{OutboundMetrics, status_class};
use crate::state::HostState;
use crate::trace::{self, TraceParent};
use anyhow::Result;
use std::sync::{Arc, OnceLock};
use tessera_manifest::AllowedHosts;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Serves a request inside this process (the HTTP trigger implements it).
pub trait SelfDispatch: Send + Sync + 'static {
    /// `component`: `Some(id)` for service chaining (`http://<id>.spin.internal/...`),
    /// which reaches the component directly, private routes included; `None` for
    /// `http://self/...`, which is routed like an external request.
    fn dispatch(
        &self,
        component: Option<String>,
        request: http::Request<WasiBody>,
    ) -> futures::future::BoxFuture<'static, Result<http::Response<WasiBody>, HttpError>>;
}

#[derive(Default)]
pub struct OutboundHttpFactor {
    /// Set once the HTTP trigger exists; `self` requests fail until then.
    pub self_dispatch: OnceLock<Arc<dyn SelfDispatch>>,
    pub metrics: OutboundMetrics,
    client: Arc<client::PooledClient>,
}

pub struct OutboundHttp {
    factor: Arc<OutboundHttpFactor>,
    allowed: Arc<AllowedHosts>,
    component: Arc<str>,
    /// The trace of the request the instance is serving (`None` when unknown).
    trace: Option<TraceParent>,
}

impl Factor for Arc<OutboundHttpFactor> {
    type InstanceState = OutboundHttp;

    fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        wasmtime_wasi_http::p3::add_to_linker(linker)?;
        Ok(())
    }

    fn instance_state(&self, component: &ComponentConfig) -> OutboundHttp {
        OutboundHttp {
            factor: self.clone(),
            allowed: component.allowed_hosts.clone(),
            component: component.id.clone(),
            trace: None,
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    fn default_scheme(&mut self) -> Option<http::uri::Scheme> {
        Some(http::uri::Scheme::HTTP)
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        // The request is a child span of the one the instance serves, unless the guest set
        // its own context.
        let mut span = None;
        if let Some(current) = &self.trace
            && !request.headers().contains_key(trace::TRACEPARENT)
        {
            let child = current.child();
            trace::set(request.headers_mut(), &child);
            span = tessera_otlp::exporting(&child).then(|| ClientSpan {
                own: child,
                parent: current.parent_id,
                method: request.method().clone(),
                start: std::time::SystemTime::now(),
                started: std::time::Instant::now(),
            });
        }
        let uri = request.uri().clone();
        let host = uri.host().unwrap_or("self");
        let scheme = uri.scheme_str().unwrap_or("http");
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let chained = tessera_manifest::outbound::service_chaining_target(host).map(str::to_string);
        if host == "self" || chained.is_some() {
            let allowed = if host == "self" {
                self.allowed.allows_self()
            } else {
                self.allowed.allows(scheme, host, port)
            };
            if !allowed {
                return self.deny(&uri);
            }
            let Some(dispatch) = self.factor.self_dispatch.get().cloned() else {
                return Box::new(async { Err(HttpError::DestinationUnavailable) });
            };
            let record = self.recorder(host.to_string(), span);
            return Box::new(async move {
                let response = record.outcome(dispatch.dispatch(chained, request).await)?;
                Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                ))
            });
        }
        if !self.allowed.allows(scheme, host, port) {
            return self.deny(&uri);
        }
        let record = self.recorder(
            match uri.port_u16() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_string(),
            },
            span,
        );
        if options.is_none_or(|o| {
            o.connect_timeout.is_none()
                && o.first_byte_timeout.is_none()
                && o.between_bytes_timeout.is_none()
        }) {
            let client = self.factor.client.clone();
            return Box::new(async move {
                let response = record.outcome(client.send(request).await)?;
                Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                ))
            });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) =
                record.outcome(wasmtime_wasi_http::default_send_request(request, options).await)?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

impl OutboundHttp {
    /// The trace context the next outbound requests carry on (set as each request starts).
    pub fn set_trace(&mut self, trace: Option<TraceParent>) {
        self.trace = trace;
    }

    fn deny(&self, uri: &http::Uri) -> SendFuture {
        self.factor.metrics.record_denied(&self.component);
        // Scheme and authority only: a path or query may hold a token, the authority a
        // password.
        let host = uri.host().unwrap_or("");
        tracing::warn!(component = %self.component, host, port = ?uri.port_u16(),
            "denied outbound HTTP request (not in allowed_outbound_hosts)");
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }

    fn recorder(&self, host: String, span: Option<ClientSpan>) -> Recorder {
        Recorder {
            factor: self.factor.clone(),
            component: self.component.clone(),
            host,
            span,
        }
    }
}

/// Counts one outbound request once its answer (or failure) is known, and exports its span.
struct Recorder {
    factor: Arc<OutboundHttpFactor>,
    component: Arc<str>,
    host: String,
    span: Option<ClientSpan>,
}

/// An outbound request's span while it runs (only when spans are exported).
struct ClientSpan {
    own: TraceParent,
    parent: [u8; 8],
    method: http::Method,
    start: std::time::SystemTime,
    started: std::time::Instant,
}

impl Recorder {
    fn outcome<T: AnswerStatus, E: std::fmt::Debug>(self, result: Result<T, E>) -> Result<T, E> {
        let status = result.as_ref().ok().map(|answer| answer.answer_status());
        self.factor.metrics.record(
            &self.component,
            &self.host,
            status.map_or("error", status_class),
        );
        if let Some(span) = self.span {
            let mut record = tessera_otlp::SpanRecord::new(
                &span.own,
                Some(span.parent),
                span.method.as_str(),
                tessera_otlp::Kind::Client,
                span.start,
                span.started.elapsed(),
            )
            .attribute("http.request.method", span.method.as_str())
            .attribute("server.address", self.host.as_str())
            .attribute("tessera.component", self.component.as_ref())
            .failed(match (&result, status) {
                (Err(e), _) => Some(format!("{e:?}")),
                (Ok(_), Some(s)) if s >= 500 => Some(format!("answered {s}")),
                _ => None,
            });
            if let Some(status) = status {
                record = record.attribute("http.response.status_code", i64::from(status));
            }
            tessera_otlp::export(record);
        }
        result
    }
}

trait AnswerStatus {
    fn answer_status(&self) -> u16;
}

impl<B> AnswerStatus for http::Response<B> {
    fn answer_status(&self) -> u16 {
        self.status().as_u16()
    }
}

impl<B, I> AnswerStatus for (http::Response<B>, I) {
    fn answer_status(&self) -> u16 {
        self.0.status().as_u16()
    }
}
