//! Small helpers shared by the provider parsers for reading loosely-typed JSON events.

use serde_json::Value;

use super::StreamParser;
use super::event::{StreamError, StreamEvent};
use super::sse::{SseDecoder, SseEvent};
use crate::usage::ReportedUsage;

/// Parses an event's data as JSON, naming the provider and quoting the start of the data.
pub fn parse(provider: &'static str, data: &str) -> Result<Value, StreamError> {
    serde_json::from_str(data).map_err(|e| StreamError::MalformedJson {
        provider,
        detail: e.to_string(),
        snippet: snippet(data),
    })
}

/// At most 120 characters of `s`, for error messages.
pub fn snippet(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

pub fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A string field or, for a number code (Gemini's `code: 429`), its text.
pub fn code_at(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Drives an [`SseDecoder`] for a parser: decodes `chunk` and hands each event to `on_event`
/// until the parser says the stream is over.
pub fn feed_sse(
    decoder: &mut SseDecoder,
    chunk: &[u8],
    done: &mut bool,
    mut on_event: impl FnMut(&SseEvent, &mut bool) -> Result<(), StreamError>,
) -> Result<(), StreamError> {
    if *done {
        // Bytes after the end marker (a trailing newline, a stray keep-alive) are ignored.
        return Ok(());
    }
    for ev in decoder.feed(chunk)? {
        on_event(&ev, done)?;
        if *done {
            break;
        }
    }
    Ok(())
}

/// The end of input for a parser: an unterminated final event is processed when it is
/// well-formed and reported as truncation when it is not.
pub fn finish_sse(
    provider: &'static str,
    decoder: &mut SseDecoder,
    done: &mut bool,
    mut on_event: impl FnMut(&SseEvent, &mut bool) -> Result<(), StreamError>,
) -> Result<(), StreamError> {
    if *done {
        return Ok(());
    }
    if let Some(ev) = decoder.finish()? {
        on_event(&ev, done).map_err(|e| match e {
            StreamError::MalformedJson { detail, .. } => StreamError::Truncated {
                provider,
                detail: format!("last event incomplete ({detail})"),
            },
            other => other,
        })?;
    }
    Ok(())
}

/// The provider-specific half of a streaming parser: reading one SSE event, and what the end
/// of input before the provider's own end marker means. [`SseJsonStream`] does the rest.
pub trait SseProtocol: Default {
    /// The provider, for errors.
    const NAME: &'static str;

    fn on_event(
        &mut self,
        ev: &SseEvent,
        done: &mut bool,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), StreamError>;

    /// Input ended without the end marker: complete the stream from what was seen, or say
    /// why it is truncated.
    fn on_eof(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), StreamError>;

    /// Input ended with lines that are not SSE (`stray`, joined by `\n`), such as the bare
    /// JSON error Vertex AI writes after its events. Returns whether they ended the stream;
    /// by default they are ignored, as the SSE specification says.
    fn on_stray_lines(
        &mut self,
        _stray: &str,
        _out: &mut Vec<StreamEvent>,
    ) -> Result<bool, StreamError> {
        Ok(false)
    }

    /// The tokens the provider has reported so far, for a call that fails before its end.
    fn reported_usage(&self) -> ReportedUsage {
        ReportedUsage::default()
    }
}

/// An incremental parser of one provider's SSE stream of JSON events.
#[derive(Debug, Clone, Default)]
pub struct SseJsonStream<P> {
    sse: SseDecoder,
    done: bool,
    state: P,
}

impl<P: SseProtocol> SseJsonStream<P> {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<P: SseProtocol> StreamParser for SseJsonStream<P> {
    fn feed(&mut self, chunk: &[u8]) -> Result<Vec<StreamEvent>, StreamError> {
        let mut out = Vec::new();
        let state = &mut self.state;
        feed_sse(&mut self.sse, chunk, &mut self.done, |ev, done| {
            state.on_event(ev, done, &mut out)
        })?;
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<StreamEvent>, StreamError> {
        let mut out = Vec::new();
        let state = &mut self.state;
        finish_sse(P::NAME, &mut self.sse, &mut self.done, |ev, done| {
            state.on_event(ev, done, &mut out)
        })?;
        if !self.done {
            let stray = self.sse.take_stray_lines();
            if stray.trim().is_empty() || !self.state.on_stray_lines(&stray, &mut out)? {
                self.state.on_eof(&mut out)?;
            }
            self.done = true;
        }
        Ok(out)
    }

    fn reported_usage(&self) -> ReportedUsage {
        self.state.reported_usage()
    }
}
