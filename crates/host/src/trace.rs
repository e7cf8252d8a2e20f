//! W3C trace context (<https://www.w3.org/TR/trace-context/>): the `traceparent` header a
//! request arrives with is kept when it is valid, otherwise the host starts a trace. The
//! host's own span for the request becomes the parent the component sees, and the
//! component's outgoing requests and Postgres statements are its children. Spans are
//! exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`tessera_otlp`); without
//! it the trace id still ties together the host's log lines, the component's and those of
//! whatever it calls.

pub use tessera_otlp::traceparent::{TRACEPARENT, TRACESTATE, TraceParent, from_headers, set};

/// The trace a request runs in: the caller's span it continues (`None` when the host
/// started the trace) and the host's own span for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestTrace {
    pub caller: Option<[u8; 8]>,
    /// Trace id and flags of the trace, with the host's span id as `parent_id`: what the
    /// component receives, and the parent of its outgoing calls.
    pub own: TraceParent,
}

impl RequestTrace {
    pub fn trace_id_hex(&self) -> String {
        self.own.trace_id_hex()
    }
}

/// Continues the request's valid `traceparent` with a span of the host's own, or starts a
/// trace (and drops a `tracestate` that belonged to an invalid one); the header is set to
/// the host's span, so that is the parent the component sees.
pub fn adopt_or_start(headers: &mut http::HeaderMap) -> RequestTrace {
    let trace = match from_headers(headers) {
        Some(incoming) => RequestTrace {
            caller: Some(incoming.parent_id),
            own: incoming.child(),
        },
        None => {
            headers.remove(TRACESTATE);
            RequestTrace {
                caller: None,
                own: TraceParent::start(),
            }
        }
    };
    set(headers, &trace.own);
    trace
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn headers_continue_a_valid_context_and_replace_others() {
        let client = TraceParent::parse(VALID).expect("valid");
        let mut headers = http::HeaderMap::new();
        headers.insert(TRACEPARENT, VALID.parse().expect("value"));
        headers.insert(TRACESTATE, "vendor=1".parse().expect("value"));
        let kept = adopt_or_start(&mut headers);
        // Same trace and flags; the host's span is the component's parent.
        assert_eq!(kept.caller, Some(client.parent_id));
        assert_eq!(kept.own.trace_id, client.trace_id);
        assert_eq!(kept.own.flags, client.flags);
        assert_ne!(kept.own.parent_id, client.parent_id);
        assert_eq!(headers[TRACEPARENT], kept.own.to_string().as_str());
        assert_eq!(headers[TRACESTATE], "vendor=1");

        let mut headers = http::HeaderMap::new();
        headers.insert(TRACEPARENT, "garbage".parse().expect("value"));
        headers.insert(TRACESTATE, "vendor=1".parse().expect("value"));
        let made = adopt_or_start(&mut headers);
        assert_eq!(made.caller, None);
        assert_eq!(headers[TRACEPARENT], made.own.to_string().as_str());
        assert!(headers.get(TRACESTATE).is_none());

        // Two traceparent fields: neither is trusted.
        let mut headers = http::HeaderMap::new();
        headers.append(TRACEPARENT, VALID.parse().expect("value"));
        headers.append(TRACEPARENT, VALID.parse().expect("value"));
        let made = adopt_or_start(&mut headers);
        assert_eq!(made.caller, None);
        assert_ne!(made.own.trace_id, client.trace_id);
        assert_eq!(headers.get_all(TRACEPARENT).iter().count(), 1);
    }
}
