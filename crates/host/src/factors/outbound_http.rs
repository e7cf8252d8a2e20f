//! Outbound HTTP (`wasi:http` client, p2 and p3): every request is checked against the
//! component's `allowed_outbound_hosts`. A denied request is an error the guest sees
//! (`HTTP-request-denied`) and a warning in the log, never a crash. Requests to `self`
//! (a URL without a host, or host `self`) are routed to this application in-process, and
//! `http://<component>.spin.internal/...` reaches that component directly (Spin's service
//! chaining).

use super::Factor;
use crate::app::ComponentConfig;
use crate::state::HostState;
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
}

pub struct OutboundHttp {
    factor: Arc<OutboundHttpFactor>,
    allowed: Arc<AllowedHosts>,
    component: Arc<str>,
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
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
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
            return Box::new(async move {
                let response = dispatch.dispatch(chained, request).await?;
                Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                ))
            });
        }
        if !self.allowed.allows(scheme, host, port) {
            return self.deny(&uri);
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

impl OutboundHttp {
    fn deny(&self, uri: &http::Uri) -> SendFuture {
        tracing::warn!(component = %self.component, url = %uri,
            "denied outbound HTTP request (not in allowed_outbound_hosts)");
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}
