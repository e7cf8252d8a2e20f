//! The outbound client: one pool of kept-alive connections per host process (hyper-util's
//! legacy client), so successive requests to an origin reuse a connection, as Spin's
//! outbound HTTP does by default. Its connections run TCP with Nagle's algorithm off: hyper
//! writes a streamed body's head, chunks and end as separate writes, and with Nagle on each
//! write after the first waits for the receiver's delayed ACK on a kept-alive connection —
//! 17 deliveries/s instead of ~900 in the alerts bench (docs/adr/0016).
//!
//! Requests that set wasi:http request options (connect, first-byte or between-bytes
//! timeouts) go through wasmtime's `default_send_request` on a fresh connection instead,
//! which implements each of them exactly.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use wasmtime_wasi_http::{Error, WasiBody};

/// As wasmtime's `default_send_request` without request options.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(600);
/// Idle pooled connections are closed after this long (hyper-util's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The host's shared outbound client.
pub struct PooledClient {
    client: Client<Connector, WasiBody>,
}

impl Default for PooledClient {
    fn default() -> Self {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        })
        .with_no_client_auth();
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .build(Connector {
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            });
        Self { client }
    }
}

impl PooledClient {
    /// Sends `request` (absolute URI) on a pooled connection; the response's body errors are
    /// wasi:http errors.
    pub async fn send(
        &self,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| client_error(&e))?;
        Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
    }
}

/// Opens a connection for the pool: TCP without Nagle, TLS for `https`.
#[derive(Clone)]
struct Connector {
    tls: tokio_rustls::TlsConnector,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move { connect(&uri, &tls).await.map(TokioIo::new) })
    }
}

async fn connect(uri: &Uri, tls: &tokio_rustls::TlsConnector) -> Result<Stream, Error> {
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let use_tls = uri.scheme() == Some(&Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
    // `host` keeps an IPv6 literal's brackets, as `host:port` needs them.
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(format!("{host}:{port}")),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)?
    .map_err(Error::Connect)?;
    stream.set_nodelay(true).map_err(Error::Connect)?;
    if !use_tls {
        return Ok(Stream::Plain(stream));
    }
    let name = rustls::pki_types::ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )?;
    let stream = tls.connect(name, stream).await.map_err(Error::Tls)?;
    Ok(Stream::Tls(Box::new(stream)))
}

/// The pool's view of a client error as the wasi:http error the guest sees: the connector's
/// own error where there is one, else what hyper says went wrong.
fn client_error(e: &hyper_util::client::legacy::Error) -> Error {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(own) = s.downcast_ref::<Error>() {
            return copy(own);
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return hyper_error(h);
        }
        source = s.source();
    }
    if e.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::InternalError(Some(e.to_string()))
    }
}

fn hyper_error(e: &hyper::Error) -> Error {
    // A request body that failed carries the guest's own error.
    if let Some(own) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<Error>()) {
        return copy(own);
    }
    if e.is_timeout() {
        Error::ConnectionReadTimeout
    } else if e.is_incomplete_message() {
        Error::HttpResponseIncomplete
    } else if e.is_closed() || e.is_canceled() {
        Error::ConnectionTerminated
    } else if e.is_parse() || e.is_parse_status() {
        Error::HttpProtocolError
    } else {
        Error::InternalError(Some(e.to_string()))
    }
}

/// An owned copy of a connector error (they reach us by reference, inside the pool's error).
fn copy(e: &Error) -> Error {
    let io_copy = |e: &io::Error| io::Error::new(e.kind(), e.to_string());
    match e {
        Error::Connect(io) => Error::Connect(io_copy(io)),
        Error::Tls(io) => Error::Tls(io_copy(io)),
        Error::ConnectionTimeout => Error::ConnectionTimeout,
        Error::HttpRequestUriInvalid => Error::HttpRequestUriInvalid,
        Error::InvalidDnsNameError(_) => {
            Error::InvalidDnsNameError(rustls::pki_types::InvalidDnsNameError)
        }
        other => Error::InternalError(Some(other.to_string())),
    }
}

/// A pooled connection: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
