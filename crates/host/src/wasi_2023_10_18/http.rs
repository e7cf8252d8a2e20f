//! The candidate's `wasi:http/types` and `outgoing-handler` on wasmtime-wasi-http's 0.2.x
//! implementation, so outbound requests pass the same `allowed_outbound_hosts` hooks.
//!
//! Where the candidate differs: `fields` is built from its entries and its setters cannot fail
//! (0.2.0 answers a header error; here a malformed header traps, as the candidate has no way to
//! say it); requests and responses take their method, path, scheme, authority and status in
//! the constructor; request options are a record, not a resource; and errors are four string
//! variants instead of 0.2.0's `error-code`.

use super::bindings::wasi::http::{outgoing_handler, types};
use types::{Error, Method, RequestOptions, Scheme};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable};
use wasmtime_wasi_http::p2::bindings::http::{
    outgoing_handler as latest_outgoing, types as latest,
};
use wasmtime_wasi_http::p2::body::{HostFutureTrailers, HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingRequest, HostIncomingResponse, HostOutgoingRequest,
    HostOutgoingResponse, HostResponseOutparam,
};
use wasmtime_wasi_http::{FieldMap, WasiHttpCtxView};

type Result<T> = wasmtime::Result<T>;

fn method_to_latest(m: Method) -> latest::Method {
    match m {
        Method::Get => latest::Method::Get,
        Method::Head => latest::Method::Head,
        Method::Post => latest::Method::Post,
        Method::Put => latest::Method::Put,
        Method::Delete => latest::Method::Delete,
        Method::Connect => latest::Method::Connect,
        Method::Options => latest::Method::Options,
        Method::Trace => latest::Method::Trace,
        Method::Patch => latest::Method::Patch,
        Method::Other(s) => latest::Method::Other(s),
    }
}

fn method_from_latest(m: latest::Method) -> Method {
    match m {
        latest::Method::Get => Method::Get,
        latest::Method::Head => Method::Head,
        latest::Method::Post => Method::Post,
        latest::Method::Put => Method::Put,
        latest::Method::Delete => Method::Delete,
        latest::Method::Connect => Method::Connect,
        latest::Method::Options => Method::Options,
        latest::Method::Trace => Method::Trace,
        latest::Method::Patch => Method::Patch,
        latest::Method::Other(s) => Method::Other(s),
    }
}

fn scheme_to_latest(s: Scheme) -> latest::Scheme {
    match s {
        Scheme::Http => latest::Scheme::Http,
        Scheme::Https => latest::Scheme::Https,
        Scheme::Other(s) => latest::Scheme::Other(s),
    }
}

fn scheme_from_latest(s: latest::Scheme) -> Scheme {
    match s {
        latest::Scheme::Http => Scheme::Http,
        latest::Scheme::Https => Scheme::Https,
        latest::Scheme::Other(s) => Scheme::Other(s),
    }
}

/// 0.2.0's error code as one of the candidate's four variants, the code named in the text.
pub(super) fn error_from_latest(code: latest::ErrorCode) -> Error {
    use latest::ErrorCode as C;
    let text = format!("{code:?}");
    match code {
        C::DnsTimeout
        | C::ConnectionTimeout
        | C::ConnectionReadTimeout
        | C::ConnectionWriteTimeout
        | C::HttpResponseTimeout => Error::TimeoutError(text),
        C::HttpRequestUriInvalid | C::HttpRequestUriTooLong => Error::InvalidUrl(text),
        C::HttpProtocolError
        | C::HttpResponseIncomplete
        | C::HttpResponseHeaderSectionSize(_)
        | C::HttpResponseHeaderSize(_)
        | C::HttpResponseBodySize(_)
        | C::HttpResponseTrailerSectionSize(_)
        | C::HttpResponseTrailerSize(_)
        | C::HttpResponseTransferCoding(_)
        | C::HttpResponseContentCoding(_) => Error::ProtocolError(text),
        _ => Error::UnexpectedError(text),
    }
}

fn error_to_latest(err: Error) -> latest::ErrorCode {
    let text = match err {
        Error::InvalidUrl(s) => format!("invalid url: {s}"),
        Error::TimeoutError(s) => format!("timeout: {s}"),
        Error::ProtocolError(s) => format!("protocol error: {s}"),
        Error::UnexpectedError(s) => s,
    };
    latest::ErrorCode::InternalError(Some(text))
}

/// A 0.2.0 header error has no place in the candidate: it ends the guest's call.
fn header_trap(err: wasmtime_wasi_http::p2::HeaderError) -> wasmtime::Error {
    match err.downcast() {
        Ok(e) => wasmtime::format_err!("invalid header operation: {e:?}"),
        Err(trap) => trap,
    }
}

/// Settings made through a constructor, where 0.2.0 has a fallible setter.
fn set(what: &str, result: Result<std::result::Result<(), ()>>) -> Result<()> {
    result?.map_err(|()| wasmtime::format_err!("invalid {what}"))
}

/// A borrowed `fields` copied into an owned one (the candidate's constructors borrow theirs).
fn owned_copy(
    view: &mut WasiHttpCtxView<'_>,
    fields: &Resource<FieldMap>,
) -> Result<Resource<FieldMap>> {
    latest::HostFields::clone(view, Resource::new_borrow(fields.rep()))
}

impl types::Host for WasiHttpCtxView<'_> {}

impl types::HostFields for WasiHttpCtxView<'_> {
    fn new(&mut self, entries: Vec<(String, Vec<u8>)>) -> Result<Resource<FieldMap>> {
        latest::HostFields::from_list(self, entries).map_err(header_trap)
    }

    fn get(&mut self, fields: Resource<FieldMap>, name: String) -> Result<Vec<Vec<u8>>> {
        latest::HostFields::get(self, fields, name)
    }

    fn set(&mut self, fields: Resource<FieldMap>, name: String, value: Vec<Vec<u8>>) -> Result<()> {
        latest::HostFields::set(self, fields, name, value).map_err(header_trap)
    }

    fn delete(&mut self, fields: Resource<FieldMap>, name: String) -> Result<()> {
        latest::HostFields::delete(self, fields, name).map_err(header_trap)
    }

    fn append(&mut self, fields: Resource<FieldMap>, name: String, value: Vec<u8>) -> Result<()> {
        latest::HostFields::append(self, fields, name, value).map_err(header_trap)
    }

    fn entries(&mut self, fields: Resource<FieldMap>) -> Result<Vec<(String, Vec<u8>)>> {
        latest::HostFields::entries(self, fields)
    }

    fn clone(&mut self, fields: Resource<FieldMap>) -> Result<Resource<FieldMap>> {
        latest::HostFields::clone(self, fields)
    }

    fn drop(&mut self, fields: Resource<FieldMap>) -> Result<()> {
        latest::HostFields::drop(self, fields)
    }
}

impl types::HostIncomingRequest for WasiHttpCtxView<'_> {
    fn method(&mut self, req: Resource<HostIncomingRequest>) -> Result<Method> {
        latest::HostIncomingRequest::method(self, req).map(method_from_latest)
    }

    fn path_with_query(&mut self, req: Resource<HostIncomingRequest>) -> Result<Option<String>> {
        latest::HostIncomingRequest::path_with_query(self, req)
    }

    fn scheme(&mut self, req: Resource<HostIncomingRequest>) -> Result<Option<Scheme>> {
        Ok(latest::HostIncomingRequest::scheme(self, req)?.map(scheme_from_latest))
    }

    fn authority(&mut self, req: Resource<HostIncomingRequest>) -> Result<Option<String>> {
        latest::HostIncomingRequest::authority(self, req)
    }

    fn headers(&mut self, req: Resource<HostIncomingRequest>) -> Result<Resource<FieldMap>> {
        latest::HostIncomingRequest::headers(self, req)
    }

    fn consume(
        &mut self,
        req: Resource<HostIncomingRequest>,
    ) -> Result<std::result::Result<Resource<HostIncomingBody>, ()>> {
        latest::HostIncomingRequest::consume(self, req)
    }

    fn drop(&mut self, req: Resource<HostIncomingRequest>) -> Result<()> {
        latest::HostIncomingRequest::drop(self, req)
    }
}

impl types::HostOutgoingRequest for WasiHttpCtxView<'_> {
    fn new(
        &mut self,
        method: Method,
        path_with_query: Option<String>,
        scheme: Option<Scheme>,
        authority: Option<String>,
        headers: Resource<FieldMap>,
    ) -> Result<Resource<HostOutgoingRequest>> {
        let headers = owned_copy(self, &headers)?;
        let req = latest::HostOutgoingRequest::new(self, headers)?;
        let this = || Resource::new_borrow(req.rep());
        let method = method_to_latest(method);
        set(
            "method",
            latest::HostOutgoingRequest::set_method(self, this(), method),
        )?;
        set(
            "path with query",
            latest::HostOutgoingRequest::set_path_with_query(self, this(), path_with_query),
        )?;
        let scheme = scheme.map(scheme_to_latest);
        set(
            "scheme",
            latest::HostOutgoingRequest::set_scheme(self, this(), scheme),
        )?;
        set(
            "authority",
            latest::HostOutgoingRequest::set_authority(self, this(), authority),
        )?;
        Ok(req)
    }

    fn write(
        &mut self,
        req: Resource<HostOutgoingRequest>,
    ) -> Result<std::result::Result<Resource<HostOutgoingBody>, ()>> {
        latest::HostOutgoingRequest::body(self, req)
    }

    fn drop(&mut self, req: Resource<HostOutgoingRequest>) -> Result<()> {
        latest::HostOutgoingRequest::drop(self, req)
    }
}

impl types::HostResponseOutparam for WasiHttpCtxView<'_> {
    fn set(
        &mut self,
        param: Resource<HostResponseOutparam>,
        response: std::result::Result<Resource<HostOutgoingResponse>, Error>,
    ) -> Result<()> {
        latest::HostResponseOutparam::set(self, param, response.map_err(error_to_latest))
    }

    fn drop(&mut self, param: Resource<HostResponseOutparam>) -> Result<()> {
        latest::HostResponseOutparam::drop(self, param)
    }
}

impl types::HostIncomingResponse for WasiHttpCtxView<'_> {
    fn status(&mut self, resp: Resource<HostIncomingResponse>) -> Result<u16> {
        latest::HostIncomingResponse::status(self, resp)
    }

    fn headers(&mut self, resp: Resource<HostIncomingResponse>) -> Result<Resource<FieldMap>> {
        latest::HostIncomingResponse::headers(self, resp)
    }

    fn consume(
        &mut self,
        resp: Resource<HostIncomingResponse>,
    ) -> Result<std::result::Result<Resource<HostIncomingBody>, ()>> {
        latest::HostIncomingResponse::consume(self, resp)
    }

    fn drop(&mut self, resp: Resource<HostIncomingResponse>) -> Result<()> {
        latest::HostIncomingResponse::drop(self, resp)
    }
}

impl types::HostIncomingBody for WasiHttpCtxView<'_> {
    fn stream(
        &mut self,
        body: Resource<HostIncomingBody>,
    ) -> Result<std::result::Result<Resource<DynInputStream>, ()>> {
        latest::HostIncomingBody::stream(self, body)
    }

    fn finish(&mut self, body: Resource<HostIncomingBody>) -> Result<Resource<HostFutureTrailers>> {
        latest::HostIncomingBody::finish(self, body)
    }

    fn drop(&mut self, body: Resource<HostIncomingBody>) -> Result<()> {
        latest::HostIncomingBody::drop(self, body)
    }
}

impl types::HostFutureTrailers for WasiHttpCtxView<'_> {
    fn subscribe(
        &mut self,
        trailers: Resource<HostFutureTrailers>,
    ) -> Result<Resource<DynPollable>> {
        latest::HostFutureTrailers::subscribe(self, trailers)
    }

    fn get(
        &mut self,
        trailers: Resource<HostFutureTrailers>,
    ) -> Result<Option<std::result::Result<Resource<FieldMap>, Error>>> {
        Ok(match latest::HostFutureTrailers::get(self, trailers)? {
            None => None,
            // 0.2.0 answers "no trailers"; the candidate has an empty set for it.
            Some(Ok(Ok(None))) => Some(Ok(latest::HostFields::new(self)?)),
            Some(Ok(Ok(Some(fields)))) => Some(Ok(fields)),
            Some(Ok(Err(code))) => Some(Err(error_from_latest(code))),
            Some(Err(())) => Some(Err(Error::UnexpectedError(
                "the trailers were already taken".into(),
            ))),
        })
    }

    fn drop(&mut self, trailers: Resource<HostFutureTrailers>) -> Result<()> {
        latest::HostFutureTrailers::drop(self, trailers)
    }
}

impl types::HostOutgoingResponse for WasiHttpCtxView<'_> {
    fn new(
        &mut self,
        status: u16,
        headers: Resource<FieldMap>,
    ) -> Result<Resource<HostOutgoingResponse>> {
        let headers = owned_copy(self, &headers)?;
        let resp = latest::HostOutgoingResponse::new(self, headers)?;
        let this = Resource::new_borrow(resp.rep());
        set(
            &format!("status code {status}"),
            latest::HostOutgoingResponse::set_status_code(self, this, status),
        )?;
        Ok(resp)
    }

    fn write(
        &mut self,
        resp: Resource<HostOutgoingResponse>,
    ) -> Result<std::result::Result<Resource<HostOutgoingBody>, ()>> {
        latest::HostOutgoingResponse::body(self, resp)
    }

    fn drop(&mut self, resp: Resource<HostOutgoingResponse>) -> Result<()> {
        latest::HostOutgoingResponse::drop(self, resp)
    }
}

impl types::HostOutgoingBody for WasiHttpCtxView<'_> {
    fn write(
        &mut self,
        body: Resource<HostOutgoingBody>,
    ) -> Result<std::result::Result<Resource<DynOutputStream>, ()>> {
        latest::HostOutgoingBody::write(self, body)
    }

    fn finish(
        &mut self,
        body: Resource<HostOutgoingBody>,
        trailers: Option<Resource<FieldMap>>,
    ) -> Result<()> {
        // A body shorter or longer than its content-length is an error code in 0.2.0; the
        // candidate returns nothing, so the request fails as 0.2.x fails it and the guest
        // goes on.
        match latest::HostOutgoingBody::finish(self, body, trailers) {
            Ok(()) => Ok(()),
            Err(err) => err.downcast().map(|_code| ()),
        }
    }

    fn drop(&mut self, body: Resource<HostOutgoingBody>) -> Result<()> {
        latest::HostOutgoingBody::drop(self, body)
    }
}

impl types::HostFutureIncomingResponse for WasiHttpCtxView<'_> {
    fn get(
        &mut self,
        future: Resource<HostFutureIncomingResponse>,
    ) -> Result<
        Option<std::result::Result<std::result::Result<Resource<HostIncomingResponse>, Error>, ()>>,
    > {
        Ok(latest::HostFutureIncomingResponse::get(self, future)?
            .map(|taken| taken.map(|result| result.map_err(error_from_latest))))
    }

    fn subscribe(
        &mut self,
        future: Resource<HostFutureIncomingResponse>,
    ) -> Result<Resource<DynPollable>> {
        latest::HostFutureIncomingResponse::subscribe(self, future)
    }

    fn drop(&mut self, future: Resource<HostFutureIncomingResponse>) -> Result<()> {
        latest::HostFutureIncomingResponse::drop(self, future)
    }
}

impl outgoing_handler::Host for WasiHttpCtxView<'_> {
    fn handle(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<RequestOptions>,
    ) -> Result<std::result::Result<Resource<HostFutureIncomingResponse>, Error>> {
        let options = match options {
            Some(o) => Some(request_options(self, o)?),
            None => None,
        };
        match latest_outgoing::Host::handle(self, request, options) {
            Ok(future) => Ok(Ok(future)),
            Err(err) => Ok(Err(error_from_latest(err.downcast()?))),
        }
    }
}

/// The candidate's options record as 0.2.0's options resource (milliseconds → a duration in ns).
fn request_options(
    view: &mut WasiHttpCtxView<'_>,
    options: RequestOptions,
) -> Result<Resource<wasmtime_wasi_http::RequestOptions>> {
    let ns = |ms: Option<u32>| ms.map(|ms| u64::from(ms) * 1_000_000);
    let opts = latest::HostRequestOptions::new(view)?;
    let this = || Resource::new_borrow(opts.rep());
    set(
        "connect timeout",
        latest::HostRequestOptions::set_connect_timeout(
            view,
            this(),
            ns(options.connect_timeout_ms),
        ),
    )?;
    set(
        "first-byte timeout",
        latest::HostRequestOptions::set_first_byte_timeout(
            view,
            this(),
            ns(options.first_byte_timeout_ms),
        ),
    )?;
    set(
        "between-bytes timeout",
        latest::HostRequestOptions::set_between_bytes_timeout(
            view,
            this(),
            ns(options.between_bytes_timeout_ms),
        ),
    )?;
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_become_the_candidates_variants_naming_the_code() {
        assert!(matches!(
            error_from_latest(latest::ErrorCode::ConnectionTimeout),
            Error::TimeoutError(s) if s.contains("ConnectionTimeout")
        ));
        assert!(matches!(
            error_from_latest(latest::ErrorCode::HttpRequestDenied),
            Error::UnexpectedError(s) if s.contains("HttpRequestDenied")
        ));
        assert!(matches!(
            error_from_latest(latest::ErrorCode::HttpRequestUriInvalid),
            Error::InvalidUrl(_)
        ));
        assert!(matches!(
            error_from_latest(latest::ErrorCode::HttpProtocolError),
            Error::ProtocolError(_)
        ));
        assert!(matches!(
            error_to_latest(Error::ProtocolError("bad".into())),
            latest::ErrorCode::InternalError(Some(s)) if s == "protocol error: bad"
        ));
    }

    #[test]
    fn methods_and_schemes_round_trip() {
        for m in [Method::Get, Method::Patch, Method::Other("PURGE".into())] {
            let back = method_from_latest(method_to_latest(m.clone()));
            assert_eq!(format!("{back:?}"), format!("{m:?}"));
        }
        for s in [Scheme::Http, Scheme::Https, Scheme::Other("ws".into())] {
            let back = scheme_from_latest(scheme_to_latest(s.clone()));
            assert_eq!(format!("{back:?}"), format!("{s:?}"));
        }
    }
}
