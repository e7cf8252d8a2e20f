//! Small helpers shared by the provider parsers for reading loosely-typed JSON events.

use serde_json::Value;

use super::event::{ProviderError, StreamError};
use super::sse::{SseDecoder, SseEvent};

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

/// A provider error object's fields, with retryability decided by the caller's list.
pub fn provider_error(
    code: Option<String>,
    message: Option<&str>,
    retryable: bool,
) -> ProviderError {
    ProviderError {
        http_status: None,
        message: message
            .unwrap_or("provider reported an error without a message")
            .to_owned(),
        code,
        retryable,
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
