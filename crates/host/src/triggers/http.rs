//! `[[trigger.http]]`: the HTTP server, Spin's routing and `spin-*` headers, and dispatch
//! to component instances.

use crate::admission::{Admission, AdmissionSettings, Refused};
use crate::app::{App, Entry};
use crate::error_watch::{ErrorReport, ErrorWatch, ErrorWatchSettings, REPORT_PATH};
use crate::errors::{REQUEST_ID, full, json_response};
use crate::factors::outbound_http::SelfDispatch;
use crate::instances::ComponentHandler;
use crate::metrics::{self, Counters, InstanceStats, PoolGauge, RequestMetrics, SlotGauge, Source};
use crate::state::RequestClock;
use crate::trace;
use crate::triggers::body::{Holding, ReadDeadline};
use crate::triggers::clients::ClientConnections;
use crate::triggers::coalesce::coalesce;
use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tessera_manifest::routes::{RouteMatch, Router};
use tokio::net::TcpListener;
use tracing::Instrument;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError, ProxyHandler};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

pub struct HttpSettings {
    pub listen: SocketAddr,
    pub max_body_bytes: u64,
    /// Time a client has to send a request head; hyper starts it when the connection waits
    /// for a request, so it is also how long an idle keep-alive connection stays open.
    pub header_timeout: Duration,
    /// Time a client has to send the whole request body, from its head (408 past it).
    pub body_timeout: Duration,
    /// Open connections one client address may have.
    pub max_connections_per_client: usize,
    /// Longest request target (path and query) accepted (414 past it).
    pub max_uri_bytes: usize,
    /// Largest header section accepted, names and values (431 past it).
    pub max_header_bytes: usize,
    /// Most header fields accepted (431 past it).
    pub max_headers: usize,
    /// A response header that carries the request id (none by default, as on Spin).
    pub request_id_header: Option<HeaderName>,
    pub admission: AdmissionSettings,
    /// The component told when another's answers to clients turn 5xx (none: nobody).
    pub report_errors_to: Option<String>,
    pub error_watch: ErrorWatchSettings,
}

impl HttpSettings {
    /// Defaults for everything but the address and body size.
    pub fn new(listen: SocketAddr, max_body_bytes: u64) -> Self {
        Self {
            listen,
            max_body_bytes,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections_per_client: 256,
            max_uri_bytes: 8 << 10,
            max_header_bytes: 32 << 10,
            max_headers: 100,
            request_id_header: None,
            admission: AdmissionSettings::default(),
            report_errors_to: None,
            error_watch: ErrorWatchSettings::default(),
        }
    }
}

/// Host endpoints answered before routing.
pub trait Probes: Send + Sync + 'static {
    fn ready(&self) -> futures::future::BoxFuture<'static, Result<(), String>>;
}

pub struct HttpTrigger {
    app: Arc<App>,
    router: Router,
    handlers: HashMap<String, ProxyHandler<ComponentHandler>>,
    settings: HttpSettings,
    probes: Arc<dyn Probes>,
    admission: Admission,
    clients: Arc<ClientConnections>,
    counters: Counters,
    requests: RequestMetrics,
    instances: HashMap<String, Arc<InstanceStats>>,
    errors: ErrorWatch,
    started: std::time::Instant,
    next_id: AtomicU64,
    id_prefix: String,
}

impl HttpTrigger {
    pub fn new(
        app: Arc<App>,
        settings: HttpSettings,
        probes: Arc<dyn Probes>,
    ) -> Result<Arc<Self>> {
        let router = Router::new(&app.manifest).context("building HTTP routes")?;
        let mut handlers = HashMap::new();
        let mut instances = HashMap::new();
        for trigger in &app.manifest.http_triggers {
            let component = app.component(&trigger.component)?.clone();
            if handlers.contains_key(component.id()) {
                continue;
            }
            let Entry::Http(pre) = component.http_entry()? else {
                unreachable!("http_entry returns Entry::Http")
            };
            let stats = Arc::new(InstanceStats::default());
            instances.insert(component.id().to_string(), stats.clone());
            let handler = ProxyHandler::new(ComponentHandler {
                app: app.clone(),
                component: component.clone(),
                pre,
                stats,
            });
            handlers.insert(component.id().to_string(), handler);
        }
        let admission = Admission::new(
            settings.admission,
            handlers
                .keys()
                .filter_map(|id| Some((id.clone(), app.components.get(id)?.image_bytes))),
        );
        for id in handlers.keys() {
            tracing::debug!(component = %id, slots = ?admission.slots(id), "instance slots");
        }
        let clients = ClientConnections::new(settings.max_connections_per_client);
        if let Some(target) = &settings.report_errors_to
            && !handlers.contains_key(target)
        {
            anyhow::bail!(
                "--report-errors-to {target:?}: the app has no component {target:?} with an \
                 HTTP trigger"
            );
        }
        let errors = ErrorWatch::new(settings.error_watch);
        let trigger = Arc::new(Self {
            app: app.clone(),
            router,
            handlers,
            settings,
            probes,
            admission,
            clients,
            counters: Counters::default(),
            requests: RequestMetrics::default(),
            instances,
            errors,
            started: std::time::Instant::now(),
            next_id: AtomicU64::new(1),
            id_prefix: format!("{:08x}", rand_u32()),
        });
        let dispatch: Arc<dyn SelfDispatch> = Arc::new(SelfRoute(Arc::downgrade(&trigger)));
        let _ = app.factors.outbound_http.self_dispatch.set(dispatch);
        Ok(trigger)
    }

    /// Binds the listener; a clear error when the port is taken.
    pub async fn bind(&self) -> Result<TcpListener> {
        let addr = self.settings.listen;
        TcpListener::bind(addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "{addr} is already in use (another tessera or service is listening there); \
                     stop it or choose another address with --listen"
                )
            } else {
                anyhow::anyhow!("cannot listen on {addr}: {e}")
            }
        })
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests (up to `drain`).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        drain: Duration,
    ) -> Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let slot = self.clients.open(client.ip());
            let trigger = self.clone();
            let admitted = slot.is_some();
            let service = hyper::service::service_fn(move |req| {
                let trigger = trigger.clone();
                async move {
                    let response = if admitted {
                        trigger.handle(req, client).await
                    } else {
                        trigger.too_many_connections()
                    };
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            // Small answers are the norm: one flattened write per response costs fewer
            // syscalls than writev with separate header and body buffers (measured in
            // benches/README.md). hyper's own header limit is set above ours so that the
            // trigger, not hyper, answers an oversized head (with a JSON body).
            let conn = hyper::server::conn::http1::Builder::new()
                .writev(false)
                .timer(TokioTimer::new())
                .header_read_timeout(self.settings.header_timeout)
                .max_headers(self.settings.max_headers.saturating_mul(4).max(100))
                .keep_alive(admitted)
                .serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                drop(slot);
            });
        }
        tracing::info!("shutting down: draining in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(drain) => tracing::warn!("drain timed out; closing remaining connections"),
        }
        Ok(())
    }

    fn request_id(&self) -> String {
        format!(
            "{}-{:x}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    async fn handle(
        self: Arc<Self>,
        mut req: http::Request<Incoming>,
        client: SocketAddr,
    ) -> http::Response<WasiBody> {
        let request_id = self.request_id();
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let started = std::time::Instant::now();
        let started_at = std::time::SystemTime::now();
        // The client's trace context when valid, else a new trace; the component sees the
        // host's span for this request as its parent.
        let trace = trace::adopt_or_start(req.headers_mut());
        let trace_id = trace.trace_id_hex();
        // Every line logged while the request runs carries its ids.
        let span = tracing::info_span!("request", request_id = %request_id, trace_id = %trace_id);

        let routed = async {
            match path.as_str() {
                "/health" | "/.well-known/spin/health" => {
                    probe_response(StatusCode::OK, "ok", None)
                }
                "/ready" => match self.probes.ready().await {
                    Ok(()) => probe_response(StatusCode::OK, "ready", None),
                    Err(reason) => {
                        probe_response(StatusCode::SERVICE_UNAVAILABLE, "not_ready", Some(reason))
                    }
                },
                "/metrics" => self.metrics(),
                _ => {
                    let (response, matched) = self.route_external(req, client, &request_id).await;
                    let (component, route) = match &matched {
                        Some(m) => (m.component_id.as_str(), m.based_route.as_str()),
                        // Answered by the host before any route matched (404, 413, 414, 431).
                        None => (NO_COMPONENT, NO_ROUTE),
                    };
                    let elapsed = started.elapsed();
                    let status = response.status().as_u16();
                    self.requests
                        .record(component, route, Source::Client, status, elapsed);
                    export_request_span(
                        &trace,
                        RequestSpan {
                            method: &method,
                            component,
                            route: matched.as_ref().map(|m| m.based_route.as_str()),
                            status,
                            request_id: &request_id,
                        },
                        started_at,
                        elapsed,
                    );
                    response
                }
            }
        };
        let response = routed.instrument(span).await;
        // Answers go out as the component wrote them, as on Spin; the id is in the log (and
        // in the host's own JSON errors), and in a header only when the operator asks.
        let mut response = response;
        if let Some(name) = &self.settings.request_id_header
            && let Ok(id) = HeaderValue::from_str(&request_id)
        {
            response.headers_mut().insert(name.clone(), id);
        }
        tracing::info!(
            request_id = %request_id,
            trace_id = %trace_id,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request"
        );
        response
    }

    fn metrics(&self) -> http::Response<WasiBody> {
        let slots: Vec<_> = self
            .admission
            .usage()
            .map(|(component, slots, in_flight)| SlotGauge {
                component,
                slots,
                in_flight,
            })
            .collect();
        let status = self.app.factors.postgres.pool_status();
        let pools: Vec<_> = status
            .iter()
            .map(|(component, s)| PoolGauge {
                component: component.as_ref(),
                max: s.max_size,
                open: s.size,
                idle: s.available,
                waiting: s.waiting,
            })
            .collect();
        let instances: Vec<_> = self
            .instances
            .iter()
            .map(|(component, stats)| (component.as_str(), stats.as_ref()))
            .collect();
        let pool_waits = self.app.factors.postgres.pool_waits();
        let text = metrics::render(&metrics::Report {
            counters: &self.counters,
            slots: &slots,
            pools: &pools,
            requests: &self.requests,
            instances: &instances,
            pool_waits: &pool_waits,
            outbound: &self.app.factors.outbound_http.metrics,
            llm: &self.app.factors.llm.metrics,
        });
        let mut response = http::Response::new(full(text));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
    }

    /// The answer on a connection past the client's limit (sent once, then closed).
    fn too_many_connections(&self) -> http::Response<WasiBody> {
        Counters::bump(&self.counters.connections_refused);
        let request_id = self.request_id();
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!(
                "this client already has {} connections open; reuse them or close some",
                self.clients.limit()
            ),
            &request_id,
        );
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }

    /// 414 or 431 for a request head past the limits, with the JSON error every answer has.
    fn oversized_head(
        &self,
        req: &http::Request<Incoming>,
        request_id: &str,
    ) -> Option<http::Response<WasiBody>> {
        let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if target > self.settings.max_uri_bytes {
            return Some(json_response(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!(
                    "the request target is {target} bytes, over the limit of {}",
                    self.settings.max_uri_bytes
                ),
                request_id,
            ));
        }
        let headers = req.headers();
        let bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if headers.len() > self.settings.max_headers || bytes > self.settings.max_header_bytes {
            return Some(json_response(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!(
                    "the request has {} header fields in {bytes} bytes; the limits are {} fields \
                     and {} bytes",
                    headers.len(),
                    self.settings.max_headers,
                    self.settings.max_header_bytes
                ),
                request_id,
            ));
        }
        None
    }

    /// Routes a client's request; returns the answer and the route that matched, if any.
    async fn route_external(
        self: &Arc<Self>,
        req: http::Request<Incoming>,
        client: SocketAddr,
        request_id: &str,
    ) -> (http::Response<WasiBody>, Option<RouteMatch>) {
        if let Some(response) = self.oversized_head(&req, request_id) {
            return (response, None);
        }
        if let Some(len) = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > self.settings.max_body_bytes
        {
            return (too_large(self.settings.max_body_bytes, request_id), None);
        }
        let Some(matched) = self.router.route(req.uri().path()) else {
            let response = json_response(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("no route matches {}", req.uri().path()),
                request_id,
            );
            return (response, None);
        };
        let response = self.answer_matched(req, &matched, client, request_id).await;
        (response, Some(matched))
    }

    /// Runs a routed client request with the host's body limits and deadline.
    async fn answer_matched(
        self: &Arc<Self>,
        req: http::Request<Incoming>,
        matched: &RouteMatch,
        client: SocketAddr,
        request_id: &str,
    ) -> http::Response<WasiBody> {
        // A HEAD answer has no body to wait for; its length headers are the component's.
        let head = req.method() == http::Method::HEAD;
        let limit = self.settings.max_body_bytes as usize;
        // A chunked body has no length up front: the guest sees the limit as a body error,
        // and whatever it answers then is replaced by the host's 413.
        let exceeded = Arc::new(AtomicBool::new(false));
        let flag = exceeded.clone();
        let body_timeout = self.settings.body_timeout;
        let mut read_expired = None;
        let req = req.map(|body| {
            let limited = Limited::new(body, limit)
                .map_err(move |e| match e.downcast::<hyper::Error>() {
                    Ok(e) => HttpError::Hyper(*e),
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        HttpError::HttpRequestBodySize(None)
                    }
                })
                .boxed_unsync();
            let (body, expired) = ReadDeadline::new(limited, body_timeout);
            read_expired = Some(expired);
            body.boxed_unsync()
        });
        let response = self
            .dispatch_matched(req, matched, Some(client), request_id, true)
            .await;
        self.watch_errors(&matched.component_id, response.status());
        if exceeded.load(Ordering::Relaxed) {
            return too_large(self.settings.max_body_bytes, request_id);
        }
        if read_expired.is_some_and(|e| e.load(Ordering::Relaxed)) {
            Counters::bump(&self.counters.body_timeouts);
            return json_response(
                StatusCode::REQUEST_TIMEOUT,
                "request_body_timeout",
                format!(
                    "the request body did not arrive within {} ms",
                    body_timeout.as_millis()
                ),
                request_id,
            );
        }
        if head {
            response
        } else {
            coalesce(response).await
        }
    }

    /// Counts a client's answer; when it makes `component` fail, tells the reporting
    /// component (in the background: the client's answer does not wait for it).
    fn watch_errors(self: &Arc<Self>, component: &str, status: StatusCode) {
        let Some(target) = self.settings.report_errors_to.clone() else {
            return;
        };
        let now_ms = self.started.elapsed().as_millis() as u64;
        let Some(report) = self.errors.record(component, status.as_u16(), now_ms) else {
            return;
        };
        tracing::warn!(
            component,
            errors = report.errors,
            requests = report.requests,
            window_s = report.window_s,
            "component is failing; reporting to {target}"
        );
        tokio::spawn(self.clone().send_error_report(target, report));
    }

    async fn send_error_report(self: Arc<Self>, target: String, report: ErrorReport) {
        let body = serde_json::to_vec(&report).unwrap_or_default();
        let req = http::Request::post(format!("http://{target}.spin.internal{REPORT_PATH}"))
            .header(http::header::HOST, format!("{target}.spin.internal"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(full(Bytes::from(body)));
        let Ok(req) = req else {
            return;
        };
        let component = report.component.clone();
        let response = self.route_internal(Some(target.clone()), req).await;
        let status = response.status();
        // Read to the end so the instance finishes its answer before it is dropped.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            tracing::info!(component, "system-error report taken by {target}");
        } else {
            tracing::error!(component, %status, "system-error report refused by {target}");
        }
    }

    /// Sends a request to the component `matched` names, with Spin's headers set.
    async fn dispatch_matched(
        &self,
        req: http::Request<WasiBody>,
        matched: &RouteMatch,
        client: Option<SocketAddr>,
        request_id: &str,
        external: bool,
    ) -> http::Response<WasiBody> {
        let (mut parts, body) = req.into_parts();
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| self.settings.listen.to_string());
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let full_url = format!("http://{host}{path_and_query}");
        if let Ok(uri) = http::Uri::builder()
            .scheme("http")
            .authority(host.as_str())
            .path_and_query(path_and_query.as_str())
            .build()
        {
            parts.uri = uri;
        }
        let client = client.map(|c| c.to_string()).unwrap_or_default();
        for (name, value) in tessera_manifest::routes::spin_headers(matched, &full_url, &client) {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                parts.headers.insert(name, value);
            }
        }
        // Components log with the id the host logs the request under.
        if let Ok(id) = HeaderValue::from_str(request_id) {
            parts.headers.insert(REQUEST_ID, id);
        }
        let req = http::Request::from_parts(parts, body);
        self.invoke(&matched.component_id, req, request_id, external)
            .await
    }

    async fn invoke(
        &self,
        component: &str,
        req: http::Request<WasiBody>,
        request_id: &str,
        external: bool,
    ) -> http::Response<WasiBody> {
        let Some(handler) = self.handlers.get(component) else {
            return json_response(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("component {component:?} has no HTTP trigger"),
                request_id,
            );
        };
        let permit = match self.admission.admit(component, external).await {
            Ok(permit) => permit,
            Err(refused) => return self.busy(component, refused, request_id),
        };
        let clock =
            RequestClock::traced(request_id.to_string(), trace::from_headers(req.headers()));
        let result = handler.handle(clock.clone(), req).await;
        clock.mark_answered();
        match result {
            Ok(response) => response.map(|body| Holding::wrap(body, permit)),
            Err(err) => self.failure(component, err, &clock, request_id),
        }
    }

    /// 503 with `Retry-After` when no instance slot freed up within the wait.
    fn busy(
        &self,
        component: &str,
        refused: Refused,
        request_id: &str,
    ) -> http::Response<WasiBody> {
        Counters::bump(match refused {
            Refused::ComponentBusy { .. } => &self.counters.refused_component_busy,
            Refused::HostBusy { .. } => &self.counters.refused_host_busy,
        });
        let (code, message) = match refused {
            Refused::ComponentBusy { limit } => (
                "component_busy",
                format!(
                    "component {component:?} is already serving {limit} requests; retry shortly"
                ),
            ),
            Refused::HostBusy { limit } => (
                "host_busy",
                format!("the host is already serving {limit} requests; retry shortly"),
            ),
        };
        tracing::warn!(
            component,
            request_id,
            code,
            "request refused: no instance slot"
        );
        let mut response =
            json_response(StatusCode::SERVICE_UNAVAILABLE, code, message, request_id);
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }

    fn failure(
        &self,
        component: &str,
        err: wasmtime::Error,
        clock: &RequestClock,
        request_id: &str,
    ) -> http::Response<WasiBody> {
        let timeout = self.app.config.request_timeout;
        let (code, message) = if err.downcast_ref::<ExpirationError>().is_some()
            || clock.started.elapsed() >= timeout
        {
            Counters::bump(&self.counters.deadline_kills);
            (
                "component_timeout",
                format!(
                    "component {component:?} did not answer within {} ms (request {request_id})",
                    timeout.as_millis()
                ),
            )
        } else if let Some(e) =
            err.downcast_ref::<InstantiationError<std::sync::Arc<RequestClock>>>()
        {
            // Every pooling-allocator slot is taken (by idle instances of other components,
            // at worst for their one-second idle time): the host is full, not broken.
            if e.error
                .chain()
                .any(|c| c.is::<wasmtime::PoolConcurrencyLimitError>())
            {
                return self.busy(
                    component,
                    Refused::HostBusy {
                        limit: crate::engine::EngineLimits::default().max_instances as usize,
                    },
                    request_id,
                );
            }
            tracing::error!(component, request_id, error = %e, "instantiation failed");
            (
                "component_unavailable",
                format!("component {component:?} could not be started (request {request_id})"),
            )
        } else {
            Counters::bump(&self.counters.traps);
            tracing::error!(
                component,
                request_id,
                error = format!("{err:?}"),
                "request failed"
            );
            (
                "component_trapped",
                format!("component {component:?} failed while handling request {request_id}"),
            )
        };
        json_response(StatusCode::INTERNAL_SERVER_ERROR, code, message, request_id)
    }
}

/// Routes a component's request to `http://self/...` back into this trigger. Weak, so the
/// trigger and the outbound factor do not keep each other alive.
struct SelfRoute(std::sync::Weak<HttpTrigger>);

impl SelfDispatch for SelfRoute {
    fn dispatch(
        &self,
        component: Option<String>,
        request: http::Request<WasiBody>,
    ) -> futures::future::BoxFuture<'static, Result<http::Response<WasiBody>, HttpError>> {
        let trigger = self.0.upgrade();
        Box::pin(async move {
            match trigger {
                Some(trigger) => Ok(trigger.route_internal(component, request).await),
                None => Err(HttpError::DestinationUnavailable),
            }
        })
    }
}

impl HttpTrigger {
    /// A request from a component to `http://self/...` (routed like an external one) or to
    /// `http://<component>.spin.internal/...` (straight to that component).
    async fn route_internal(
        self: Arc<Self>,
        component: Option<String>,
        mut req: http::Request<WasiBody>,
    ) -> http::Response<WasiBody> {
        let request_id = self.request_id();
        let started = std::time::Instant::now();
        let started_at = std::time::SystemTime::now();
        let method = req.method().clone();
        // The calling component's outbound request carries its trace on (its client span
        // is this request's parent).
        let trace = trace::adopt_or_start(req.headers_mut());
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            trace_id = %trace.trace_id_hex()
        );
        let span_of = |component: &str, route: Option<&str>, status: u16| {
            export_request_span(
                &trace,
                RequestSpan {
                    method: &method,
                    component,
                    route,
                    status,
                    request_id: &request_id,
                },
                started_at,
                started.elapsed(),
            )
        };
        let matched = match component {
            Some(id) => Some(RouteMatch::synthetic(&id, req.uri().path())),
            None => self.router.route(req.uri().path()),
        };
        let Some(matched) = matched else {
            self.requests.record(
                NO_COMPONENT,
                NO_ROUTE,
                Source::Internal,
                StatusCode::NOT_FOUND.as_u16(),
                started.elapsed(),
            );
            span_of(NO_COMPONENT, None, StatusCode::NOT_FOUND.as_u16());
            return json_response(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("no route matches {}", req.uri().path()),
                &request_id,
            );
        };
        let response = self
            .dispatch_matched(req, &matched, None, &request_id, false)
            .instrument(span)
            .await;
        self.requests.record(
            &matched.component_id,
            &matched.based_route,
            Source::Internal,
            response.status().as_u16(),
            started.elapsed(),
        );
        span_of(
            &matched.component_id,
            Some(&matched.based_route),
            response.status().as_u16(),
        );
        response
    }
}

/// What the span of a request says about it.
struct RequestSpan<'a> {
    method: &'a http::Method,
    component: &'a str,
    /// The manifest's route pattern, `None` when no route matched.
    route: Option<&'a str>,
    status: u16,
    request_id: &'a str,
}

/// Exports the host's server span of a request, when spans are exported (OpenTelemetry's
/// HTTP conventions: named `METHOD route`, failed on a 5xx).
fn export_request_span(
    trace: &trace::RequestTrace,
    request: RequestSpan<'_>,
    start: std::time::SystemTime,
    elapsed: std::time::Duration,
) {
    if !tessera_otlp::exporting(&trace.own) {
        return;
    }
    let name = match request.route {
        Some(route) => format!("{} {route}", request.method),
        None => request.method.to_string(),
    };
    let mut span = tessera_otlp::SpanRecord::http_server(
        &trace.own,
        trace.caller,
        name,
        request.method.as_str(),
        request.status,
        start,
        elapsed,
    )
    .attribute("tessera.component", request.component)
    .attribute("tessera.request_id", request.request_id);
    if let Some(route) = request.route {
        span = span.attribute("http.route", route);
    }
    tessera_otlp::export(span);
}

/// Metric labels of requests the host answered before any component was chosen.
const NO_COMPONENT: &str = "(host)";
const NO_ROUTE: &str = "(none)";

impl HttpTrigger {}

fn too_large(limit: u64, request_id: &str) -> http::Response<WasiBody> {
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body is larger than the limit of {limit} bytes"),
        request_id,
    )
}

fn probe_response(
    status: StatusCode,
    word: &str,
    reason: Option<String>,
) -> http::Response<WasiBody> {
    let mut body = serde_json::json!({ "status": word });
    if let Some(reason) = reason {
        body["reason"] = reason.into();
    }
    let mut response = http::Response::new(full(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_fields().0
}
