//! `[[trigger.http]]`: the HTTP server, Spin's routing and `spin-*` headers, and dispatch
//! to component instances.

use crate::app::{App, Entry};
use crate::errors::{REQUEST_ID, full, json_response};
use crate::factors::outbound_http::SelfDispatch;
use crate::instances::ComponentHandler;
use crate::state::RequestClock;
use crate::triggers::coalesce::coalesce;
use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tessera_manifest::routes::{RouteMatch, Router};
use tokio::net::TcpListener;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError, ProxyHandler};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

pub struct HttpSettings {
    pub listen: SocketAddr,
    pub max_body_bytes: u64,
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
        for trigger in &app.manifest.http_triggers {
            let component = app.component(&trigger.component)?.clone();
            if handlers.contains_key(component.id()) {
                continue;
            }
            let Entry::Http(pre) = component.http_entry()? else {
                unreachable!("http_entry returns Entry::Http")
            };
            let handler = ProxyHandler::new(ComponentHandler {
                app: app.clone(),
                component: component.clone(),
                pre,
            });
            handlers.insert(component.id().to_string(), handler);
        }
        let trigger = Arc::new(Self {
            app: app.clone(),
            router,
            handlers,
            settings,
            probes,
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
            let trigger = self.clone();
            let service = hyper::service::service_fn(move |req| {
                let trigger = trigger.clone();
                async move { Ok::<_, std::convert::Infallible>(trigger.handle(req, client).await) }
            });
            // Small answers are the norm: one flattened write per response costs fewer
            // syscalls than writev with separate header and body buffers (measured in
            // benches/README.md).
            let conn = hyper::server::conn::http1::Builder::new()
                .writev(false)
                .serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
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
        req: http::Request<Incoming>,
        client: SocketAddr,
    ) -> http::Response<WasiBody> {
        let request_id = self.request_id();
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let started = std::time::Instant::now();

        let response = match path.as_str() {
            "/health" | "/.well-known/spin/health" => probe_response(StatusCode::OK, "ok", None),
            "/ready" => match self.probes.ready().await {
                Ok(()) => probe_response(StatusCode::OK, "ready", None),
                Err(reason) => {
                    probe_response(StatusCode::SERVICE_UNAVAILABLE, "not_ready", Some(reason))
                }
            },
            _ => self.route_external(req, client, &request_id).await,
        };
        let mut response = response;
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        tracing::info!(
            request_id = %request_id,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request"
        );
        response
    }

    async fn route_external(
        &self,
        req: http::Request<Incoming>,
        client: SocketAddr,
        request_id: &str,
    ) -> http::Response<WasiBody> {
        if let Some(len) = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > self.settings.max_body_bytes
        {
            return too_large(self.settings.max_body_bytes, request_id);
        }
        let Some(matched) = self.router.route(req.uri().path()) else {
            return json_response(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("no route matches {}", req.uri().path()),
                request_id,
            );
        };
        // A HEAD answer has no body to wait for; its length headers are the component's.
        let head = req.method() == http::Method::HEAD;
        let limit = self.settings.max_body_bytes as usize;
        // A chunked body has no length up front: the guest sees the limit as a body error,
        // and whatever it answers then is replaced by the host's 413.
        let exceeded = Arc::new(AtomicBool::new(false));
        let flag = exceeded.clone();
        let req = req.map(move |body| {
            Limited::new(body, limit)
                .map_err(move |e| match e.downcast::<hyper::Error>() {
                    Ok(e) => HttpError::Hyper(*e),
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        HttpError::HttpRequestBodySize(None)
                    }
                })
                .boxed_unsync()
        });
        let response = self
            .dispatch_matched(req, &matched, Some(client), request_id)
            .await;
        if exceeded.load(Ordering::Relaxed) {
            return too_large(self.settings.max_body_bytes, request_id);
        }
        if head {
            response
        } else {
            coalesce(response).await
        }
    }

    /// Sends a request to the component `matched` names, with Spin's headers set.
    async fn dispatch_matched(
        &self,
        req: http::Request<WasiBody>,
        matched: &RouteMatch,
        client: Option<SocketAddr>,
        request_id: &str,
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
        let req = http::Request::from_parts(parts, body);
        self.invoke(&matched.component_id, req, request_id).await
    }

    async fn invoke(
        &self,
        component: &str,
        req: http::Request<WasiBody>,
        request_id: &str,
    ) -> http::Response<WasiBody> {
        let Some(handler) = self.handlers.get(component) else {
            return json_response(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("component {component:?} has no HTTP trigger"),
                request_id,
            );
        };
        let clock = RequestClock::new(request_id.to_string());
        let result = handler.handle(clock.clone(), req).await;
        clock.mark_answered();
        match result {
            Ok(response) => response,
            Err(err) => self.failure(component, err, &clock, request_id),
        }
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
            tracing::error!(component, request_id, error = %e, "instantiation failed");
            (
                "component_unavailable",
                format!("component {component:?} could not be started (request {request_id})"),
            )
        } else {
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
        req: http::Request<WasiBody>,
    ) -> http::Response<WasiBody> {
        let request_id = self.request_id();
        let matched = match component {
            Some(id) => Some(RouteMatch::synthetic(&id, req.uri().path())),
            None => self.router.route(req.uri().path()),
        };
        let Some(matched) = matched else {
            return json_response(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("no route matches {}", req.uri().path()),
                &request_id,
            );
        };
        self.dispatch_matched(req, &matched, None, &request_id)
            .await
    }
}

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
