//! Error responses (non-2xx status) of each provider, read into a [`ProviderError`].

use serde_json::Value;

use super::classify;
use super::event::ProviderError;
use super::json::snippet;
use super::{ProviderKind, anthropic, gemini, openai_chat};

/// Reads an error response body. What the error means ([`super::ErrorKind`]) follows the
/// provider's error code first (a 429 `insufficient_quota` is a quota error, not a rate
/// limit), then the status; a body that is not the provider's JSON keeps its first characters
/// as the message.
pub fn parse_error_body(kind: ProviderKind, status: u16, body: &[u8]) -> ProviderError {
    let text = String::from_utf8_lossy(body);
    let v: Option<Value> = serde_json::from_str(&text).ok();
    let http = Some(status);
    v.as_ref()
        .and_then(|v| match kind {
            ProviderKind::Anthropic => v.get("error").map(|e| anthropic::error_event(e, http)),
            // Google wraps errors of streaming methods in a one-element array.
            ProviderKind::Gemini => gemini::error_in(v, http),
            _ => v.get("error").map(|e| openai_chat::error_event(e, http)),
        })
        .unwrap_or_else(|| {
            let message = if text.trim().is_empty() {
                format!("HTTP {status}")
            } else {
                snippet(text.trim())
            };
            classify::provider_error(&[], Some(&message), http)
        })
}

#[cfg(test)]
mod tests {
    use super::super::ErrorKind;
    use super::*;

    #[test]
    fn openai_rate_limit() {
        let body = br#"{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let e = parse_error_body(ProviderKind::OpenAi, 429, body);
        assert_eq!(e.http_status, Some(429));
        assert_eq!(e.code.as_deref(), Some("rate_limit_exceeded"));
        assert!(e.message.starts_with("Rate limit"));
        assert!(e.retryable);
        assert_eq!(e.kind, ErrorKind::RateLimit);
        // The same status for a used-up quota: no point waiting.
        let body = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
        let e = parse_error_body(ProviderKind::OpenAi, 429, body);
        assert_eq!((e.kind, e.retryable), (ErrorKind::Quota, false));
    }

    #[test]
    fn anthropic_overloaded_and_invalid() {
        let e = parse_error_body(
            ProviderKind::Anthropic,
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert!(e.retryable);
        assert_eq!(e.code.as_deref(), Some("overloaded_error"));
        let e = parse_error_body(
            ProviderKind::Anthropic,
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}}"#,
        );
        assert!(!e.retryable);
        assert_eq!(e.message, "max_tokens: required");
    }

    #[test]
    fn gemini_array_wrapped_error() {
        let body = br#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#;
        let e = parse_error_body(ProviderKind::Gemini, 503, body);
        assert!(e.retryable);
        assert_eq!(e.code.as_deref(), Some("UNAVAILABLE"));
        let body =
            br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#;
        assert!(!parse_error_body(ProviderKind::Gemini, 400, body).retryable);
    }

    #[test]
    fn non_json_bodies() {
        let e = parse_error_body(
            ProviderKind::OpenAiCompatible,
            502,
            b"<html>Bad Gateway</html>",
        );
        assert_eq!(e.message, "<html>Bad Gateway</html>");
        assert!(e.retryable);
        let e = parse_error_body(ProviderKind::OpenAi, 401, b"");
        assert_eq!(e.message, "HTTP 401");
        assert!(!e.retryable);
        assert_eq!(e.kind, ErrorKind::Auth);
    }
}
