//! An incremental Server-Sent Events decoder (WHATWG HTML, "event stream interpretation"),
//! fed with arbitrary byte chunks, and a matching encoder.
//!
//! Follows the specification: lines end in CRLF, LF or CR (a CRLF split across two chunks is
//! one line end); `field: value` with one optional space after the colon; lines starting with
//! `:` are comments; `data` lines accumulate joined by `\n`; a blank line dispatches; an event
//! with no data is not dispatched; a leading UTF-8 BOM is skipped; `id` persists across events.
//!
//! Two deliberate differences, both because this reads API responses, not a browser feed:
//! - invalid UTF-8 is an error, not U+FFFD: silently replaced characters in a model's answer
//!   are corruption we would rather report;
//! - [`SseDecoder::finish`] hands back an event still pending at end of input (the spec drops
//!   it), so a caller can tell "ended without the final blank line" from "ended cleanly".

use thiserror::Error;

/// Default bound on one line, so a stream that never sends a newline cannot exhaust memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// Bound on the stray lines kept (see [`SseDecoder::take_stray_lines`]): enough for an error
/// object, not a way to buffer a whole non-SSE body.
const MAX_STRAY_BYTES: usize = 64 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, `None` when absent (the spec's default type is "message").
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id seen so far in the stream (the spec's "last event ID buffer").
    pub id: Option<String>,
    /// A `retry:` reconnection time in milliseconds sent with this event.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// An event with only data.
    pub fn data(data: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            ..Self::default()
        }
    }

    /// An event with a type and data.
    pub fn named(event: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            event: Some(event.into()),
            data: data.into(),
            ..Self::default()
        }
    }

    /// The event type, with the specification's default.
    pub fn event_type(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// The wire form: `event:`/`id:`/`retry:` lines, one `data:` line per line of data, and the
    /// blank line that dispatches it. Newlines in `event`/`id` are not representable and are
    /// replaced by spaces.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + 32);
        if let Some(e) = &self.event {
            out.push_str("event: ");
            out.push_str(&one_line(e));
            out.push('\n');
        }
        if let Some(id) = &self.id {
            out.push_str("id: ");
            out.push_str(&one_line(id));
            out.push('\n');
        }
        if let Some(r) = self.retry {
            out.push_str(&format!("retry: {r}\n"));
        }
        // `lines()` would drop a trailing empty line and treat "\r\n" as one break; split on
        // '\n' only, after normalising CR/CRLF, so the decoder gives back exactly `data`.
        let data = self.data.replace("\r\n", "\n").replace('\r', "\n");
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// A comment line (`: text`), which clients ignore: used for heartbeats.
pub fn encode_comment(text: &str) -> String {
    format!(": {}\n\n", one_line(text))
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SseError {
    #[error("SSE line {line} is not valid UTF-8")]
    InvalidUtf8 { line: u64 },
    #[error("SSE line {line} is longer than {max} bytes")]
    LineTooLong { line: u64, max: usize },
}

/// The decoder state; feed it chunks as they arrive.
#[derive(Debug, Clone)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a line end.
    scanned: usize,
    /// The previous chunk ended in CR: a LF at the start of the next one belongs to it.
    skip_lf: bool,
    started: bool,
    line_no: u64,
    event: Option<String>,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    retry: Option<u64>,
    max_line: usize,
    /// Lines that are not SSE fields, kept for callers that look for a bare error object.
    stray: String,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::with_max_line_bytes(DEFAULT_MAX_LINE_BYTES)
    }

    pub fn with_max_line_bytes(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            skip_lf: false,
            started: false,
            line_no: 0,
            event: None,
            data: String::new(),
            has_data: false,
            last_id: None,
            retry: None,
            max_line,
            stray: String::new(),
        }
    }

    /// Takes the lines seen so far whose field is none of `event`, `data`, `id` and `retry`
    /// (the spec ignores them), joined by `\n`: a provider that writes a bare JSON error after
    /// its events (Vertex AI) is detected from them. At most 64 KiB are kept.
    pub fn take_stray_lines(&mut self) -> String {
        std::mem::take(&mut self.stray)
    }

    /// Feeds bytes; returns the events completed by them, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        self.feed_into(chunk, &mut out)?;
        Ok(out)
    }

    /// Like [`feed`](Self::feed), appending to `out`.
    pub fn feed_into(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.skip_lf && !chunk.is_empty() {
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
            self.skip_lf = false;
        }
        self.buf.extend_from_slice(chunk);
        if !self.started {
            // The BOM may itself arrive split; wait until three bytes (or a non-BOM prefix).
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            let n = self.buf.len().min(3);
            if self.buf[..n] != BOM[..n] {
                self.started = true;
            } else if n == 3 {
                self.buf.drain(..3);
                self.started = true;
            } else {
                return Ok(());
            }
        }
        let mut start = 0;
        let mut i = self.scanned;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                let line = std::mem::take(&mut self.buf);
                let res = self.process_line(&line[start..i], out);
                self.buf = line;
                res?;
                i += 1;
                if b == b'\r' {
                    if i < self.buf.len() {
                        if self.buf[i] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.skip_lf = true;
                    }
                }
                start = i;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        if self.buf.len() > self.max_line {
            return Err(SseError::LineTooLong {
                line: self.line_no + 1,
                max: self.max_line,
            });
        }
        Ok(())
    }

    /// Ends the input. An unterminated last line is processed as a line; an event whose blank
    /// line never came is returned (see the module docs) rather than dispatched silently.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, SseError> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.scanned = 0;
            self.process_line(&line, &mut out)?;
        }
        // A complete line can only dispatch on a blank line, which `process_line` did not see.
        debug_assert!(out.is_empty());
        if self.has_data {
            Ok(Some(self.take_event()))
        } else {
            Ok(None)
        }
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.line_no += 1;
        if line.len() > self.max_line {
            return Err(SseError::LineTooLong {
                line: self.line_no,
                max: self.max_line,
            });
        }
        if line.is_empty() {
            if self.has_data {
                out.push(self.take_event());
            } else {
                // The spec resets only the type; a `retry` without data waits for the next event.
                self.event = None;
            }
            return Ok(());
        }
        let line =
            std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8 { line: self.line_no })?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.find(':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            "id" | "retry" => {}
            _ => {
                if self.stray.len() + line.len() < MAX_STRAY_BYTES {
                    self.stray.push_str(line);
                    self.stray.push('\n');
                }
            }
        }
        Ok(())
    }

    fn take_event(&mut self) -> SseEvent {
        self.has_data = false;
        SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
            retry: self.retry.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in two pieces split at `split`.
    fn decode_split(input: &[u8], split: usize) -> (Vec<SseEvent>, Option<SseEvent>) {
        let mut d = SseDecoder::new();
        let mut ev = d.feed(&input[..split]).unwrap();
        ev.extend(d.feed(&input[split..]).unwrap());
        (ev, d.finish().unwrap())
    }

    fn every_split(input: &[u8]) -> (Vec<SseEvent>, Option<SseEvent>) {
        let whole = decode_split(input, input.len());
        for i in 0..=input.len() {
            assert_eq!(decode_split(input, i), whole, "split at {i}");
        }
        // And one byte at a time.
        let mut d = SseDecoder::new();
        let mut ev = Vec::new();
        for b in input {
            ev.extend(d.feed(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!((ev, d.finish().unwrap()), whole, "byte at a time");
        whole
    }

    #[test]
    fn fields_comments_and_dispatch() {
        let input = b": keep-alive\n\nevent: delta\ndata: {\"a\":1}\nid: 7\nretry: 1500\n\ndata:no-space\ndata:  two spaces\n\n";
        let (ev, pending) = every_split(input);
        assert_eq!(pending, None);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].event.as_deref(), Some("delta"));
        assert_eq!(ev[0].data, "{\"a\":1}");
        assert_eq!(ev[0].id.as_deref(), Some("7"));
        assert_eq!(ev[0].retry, Some(1500));
        // Only one space is stripped; the id persists; the type resets.
        assert_eq!(ev[1].data, "no-space\n two spaces");
        assert_eq!(ev[1].event_type(), "message");
        assert_eq!(ev[1].id.as_deref(), Some("7"));
        assert_eq!(ev[1].retry, None);
        let (ev, _) = every_split(b"retry: 10\n\ndata: x\n\n");
        assert_eq!(ev[0].retry, Some(10));
    }

    #[test]
    fn crlf_cr_and_lf_line_ends_and_bom() {
        let input = "\u{FEFF}data: a\r\ndata: b\r\r\ndata: c\rdata: d\n\r".as_bytes();
        let (ev, pending) = every_split(input);
        assert_eq!(pending, None);
        assert_eq!(ev, vec![SseEvent::data("a\nb"), SseEvent::data("c\nd")]);
    }

    #[test]
    fn multibyte_chars_survive_any_split() {
        let input = "data: héllo € 𝄞 — ok\n\n".as_bytes();
        let (ev, _) = every_split(input);
        assert_eq!(ev[0].data, "héllo € 𝄞 — ok");
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let (ev, pending) = every_split(b"event: ping\n\nid: 3\n\ndata\n\n");
        // `data` with no colon is a field with an empty value: an event with empty data.
        assert_eq!(
            ev,
            vec![SseEvent {
                id: Some("3".into()),
                ..SseEvent::data("")
            }]
        );
        assert_eq!(pending, None);
    }

    #[test]
    fn pending_event_at_end_is_returned_not_dispatched() {
        let (ev, pending) = every_split(b"data: one\n\ndata: two");
        assert_eq!(ev, vec![SseEvent::data("one")]);
        assert_eq!(pending, Some(SseEvent::data("two")));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut d = SseDecoder::new();
        assert_eq!(
            d.feed(b"data: ok\n\ndata: \xff\xfe\n"),
            Err(SseError::InvalidUtf8 { line: 3 })
        );
    }

    #[test]
    fn overlong_line_is_an_error_even_without_newline() {
        let mut d = SseDecoder::with_max_line_bytes(16);
        assert!(d.feed(b"data: 0123456789").is_ok());
        assert_eq!(
            d.feed(b"abcdef"),
            Err(SseError::LineTooLong { line: 1, max: 16 })
        );
    }

    #[test]
    fn stray_lines_are_kept_for_the_caller() {
        let mut d = SseDecoder::new();
        let ev = d
            .feed(b"data: a\n\n{\n  \"error\": {\"code\": 499}\n}\nid: 1\n: note\n")
            .unwrap();
        assert_eq!(ev, vec![SseEvent::data("a")]);
        assert_eq!(d.take_stray_lines(), "{\n  \"error\": {\"code\": 499}\n}\n");
        assert_eq!(d.take_stray_lines(), "");
    }

    #[test]
    fn encode_round_trips() {
        let e = SseEvent {
            event: Some("step-start".into()),
            data: "line 1\nline 2\n\nend".into(),
            id: Some("42".into()),
            retry: Some(3000),
        };
        let wire = e.encode();
        let (ev, _) = every_split(wire.as_bytes());
        assert_eq!(ev, vec![e]);
        assert_eq!(encode_comment("ping\nx"), ": ping x\n\n");
    }
}
