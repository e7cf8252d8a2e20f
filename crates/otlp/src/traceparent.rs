//! W3C trace context (<https://www.w3.org/TR/trace-context/>): the `traceparent` header,
//! parsed as the specification tells a receiver to, and made for new traces and spans.

use std::fmt;

/// The request header that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Vendor state that belongs to a `traceparent`; dropped when that is replaced.
pub const TRACESTATE: &str = "tracestate";

/// A parsed `traceparent`: `00-<trace id>-<parent id>-<flags>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    /// The span of the caller (for a request the host received) or of the host's own call
    /// (for a request it sends).
    pub parent_id: [u8; 8],
    pub flags: u8,
}

/// The `sampled` flag. A trace the host starts is marked sampled: the host records it, in
/// its log lines, and a downstream service that samples by its parent then keeps it too.
pub const SAMPLED: u8 = 0x01;

impl TraceParent {
    /// Parses a header value as the specification says a receiver must: version `ff` is
    /// invalid; version `00` is exactly 55 characters; a later version may add fields after
    /// a `-`, which are ignored. Hex is lowercase; an all-zero trace or parent id is invalid.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        if bytes.len() < 55 {
            return None;
        }
        let version = hex_byte(&bytes[0..2])?;
        if version == 0xff || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        match (version, bytes.len()) {
            (0, 55) => {}
            (0, _) => return None,
            (_, 55) => {}
            (_, _) if bytes[55] == b'-' => {}
            _ => return None,
        }
        let mut trace_id = [0u8; 16];
        decode_into(&bytes[3..35], &mut trace_id)?;
        let mut parent_id = [0u8; 8];
        decode_into(&bytes[36..52], &mut parent_id)?;
        let flags = hex_byte(&bytes[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A new trace with random ids.
    pub fn start() -> Self {
        let mut trace_id = *uuid::Uuid::new_v4().as_bytes();
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        Self {
            trace_id,
            parent_id: new_span_id(),
            flags: SAMPLED,
        }
    }

    /// The context for a call made within this one: same trace and flags, a new span id.
    pub fn child(&self) -> Self {
        Self {
            parent_id: new_span_id(),
            ..*self
        }
    }

    /// The trace id as 32 lowercase hex digits (the `trace_id` log field).
    /// The `sampled` flag: the caller records this trace.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }
}

/// The header value, always version 00 (a later version is passed on as 00, as the
/// specification asks).
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            self.flags
        )
    }
}

/// The trace context of a request's headers: the one `traceparent` it carries if that is
/// valid, else `None` (several `traceparent` fields are as invalid as a malformed one).
pub fn from_headers(headers: &http::HeaderMap) -> Option<TraceParent> {
    let mut values = headers.get_all(TRACEPARENT).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    TraceParent::parse(first.to_str().ok()?)
}

/// Sets the `traceparent` of `headers` to `trace` (version 00).
pub fn set(headers: &mut http::HeaderMap, trace: &TraceParent) {
    if let Ok(value) = http::HeaderValue::from_str(&trace.to_string()) {
        headers.insert(TRACEPARENT, value);
    }
}

/// A random span id (never all zeros, which the specification reserves).
pub fn new_span_id() -> [u8; 8] {
    loop {
        let bytes = *uuid::Uuid::new_v4().as_bytes();
        // The last eight bytes of a v4 UUID are random but for the variant's two bits.
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[8..]);
        if id != [0; 8] {
            return id;
        }
    }
}

/// Two lowercase hex digits.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let mut out = [0u8; 1];
    decode_into(pair, &mut out)?;
    Some(out[0])
}

/// Lowercase hex into `out` (uppercase is invalid in `traceparent`).
fn decode_into(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2
        || !text
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    hex::decode_to_slice(text, out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_specifications_example() {
        let t = TraceParent::parse(VALID).expect("valid");
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(t.parent_id), "00f067aa0ba902b7");
        assert_eq!(t.flags, 1);
        assert_eq!(t.to_string(), VALID);
    }

    #[test]
    fn rejects_what_the_specification_calls_invalid() {
        let cases = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            // all-zero trace id, all-zero parent id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // version ff
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // uppercase hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            // version 00 with more after it
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // wrong separators, non-hex
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",
            // short trace id, long parent id
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            // a later version with a field run on without a dash
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            // multi-byte characters where hex is due
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ];
        for case in cases {
            assert_eq!(TraceParent::parse(case), None, "{case:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_and_passed_on_as_00() {
        let t = TraceParent::parse(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-adds",
        )
        .expect("valid");
        assert_eq!(
            t.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"
        );
    }

    #[test]
    fn children_keep_the_trace_and_get_a_new_span() {
        let parent = TraceParent::parse(VALID).expect("valid");
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.flags, parent.flags);
        assert_ne!(child.parent_id, parent.parent_id);
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
    }

    #[test]
    fn started_traces_are_valid_and_distinct() {
        let a = TraceParent::start();
        let b = TraceParent::start();
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(TraceParent::parse(&a.to_string()), Some(a));
    }
}
