//! What a provider error means ([`ErrorKind`]), from its code or type and, for error
//! responses, its HTTP status: the same table for in-stream errors and error bodies, so a
//! quota error inside a 200 stream is handled like the same error as an HTTP 429.

use super::event::{ErrorKind, ProviderError};

/// A provider error from its fields. `codes` are the provider's code and type, most specific
/// first; `http_status` is the response status for error bodies, `None` inside a stream.
pub(crate) fn provider_error(
    codes: &[Option<&str>],
    message: Option<&str>,
    http_status: Option<u16>,
) -> ProviderError {
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or("provider reported an error without a message");
    let kind = codes
        .iter()
        .flatten()
        .find_map(|c| kind_of_code(c))
        .or_else(|| http_status.and_then(kind_of_status))
        .unwrap_or(ErrorKind::Other);
    ProviderError {
        http_status,
        code: codes.iter().flatten().next().map(|c| (*c).to_owned()),
        message: message.to_owned(),
        retryable: is_retryable(kind, message, http_status),
        kind,
    }
}

fn is_retryable(kind: ErrorKind, message: &str, http_status: Option<u16>) -> bool {
    match kind {
        // OpenAI reports a request larger than the per-minute limit as a rate limit: it
        // will never fit, so waiting is pointless (another provider may take it).
        ErrorKind::RateLimit if message.starts_with("Request too large") => false,
        ErrorKind::Other => http_status.is_some_and(status_is_retryable),
        k => k.is_transient(),
    }
}

/// Statuses worth trying again: timeouts, conflicts, rate limits and server errors.
fn status_is_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500..=599)
}

fn kind_of_status(status: u16) -> Option<ErrorKind> {
    Some(match status {
        401 | 403 => ErrorKind::Auth,
        402 => ErrorKind::Quota,
        404 => ErrorKind::NotFound,
        408 | 504 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimit,
        503 | 529 => ErrorKind::Overloaded,
        400 | 413 | 422 => ErrorKind::InvalidRequest,
        500..=599 => ErrorKind::Server,
        _ => return None,
    })
}

/// Codes and types of OpenAI (and compatible servers), Anthropic and Google APIs.
fn kind_of_code(code: &str) -> Option<ErrorKind> {
    Some(match code.to_ascii_lowercase().as_str() {
        "insufficient_quota" | "billing_error" | "billing_hard_limit_reached"
        | "billing_not_active" | "quota_exceeded" => ErrorKind::Quota,
        "rate_limit_exceeded" | "rate_limit_error" | "rate_limit" | "requests" | "tokens"
        | "resource_exhausted" => ErrorKind::RateLimit,
        "invalid_api_key" | "invalid_authentication" | "authentication_error"
        | "permission_error" | "permission_denied" | "unauthenticated"
        | "account_deactivated" | "unsupported_country_region_territory"
        // Gemini: e.g. the free tier is not available in the caller's region.
        | "failed_precondition" => ErrorKind::Auth,
        "not_found_error" | "not_found" | "model_not_found" => ErrorKind::NotFound,
        "overloaded_error" | "overloaded" | "engine_overloaded" | "unavailable"
        | "service_unavailable" => ErrorKind::Overloaded,
        // Vertex AI's CANCELLED mid-stream: the caller did not cancel, so the server did.
        "server_error" | "api_error" | "internal" | "internal_error" | "internal_server_error"
        | "cancelled" => ErrorKind::Server,
        "timeout" | "timeout_error" | "deadline_exceeded" => ErrorKind::Timeout,
        "invalid_request_error" | "invalid_argument" | "context_length_exceeded"
        | "request_too_large" | "string_above_max_length" | "invalid_value" => {
            ErrorKind::InvalidRequest
        }
        "invalid_prompt" | "content_policy_violation" | "content_filter" => {
            ErrorKind::ContentPolicy
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_win_over_statuses_and_decide_retryability() {
        let e = provider_error(
            &[Some("insufficient_quota")],
            Some("You exceeded your current quota"),
            Some(429),
        );
        assert_eq!((e.kind, e.retryable), (ErrorKind::Quota, false));
        let e = provider_error(&[None, Some("server_error")], Some("boom"), None);
        assert_eq!((e.kind, e.retryable), (ErrorKind::Server, true));
        assert_eq!(e.code.as_deref(), Some("server_error"));
        let e = provider_error(
            &[Some("rate_limit_exceeded")],
            Some("Request too large for gpt-4o-mini on tokens per min (TPM)"),
            None,
        );
        assert_eq!((e.kind, e.retryable), (ErrorKind::RateLimit, false));
        let e = provider_error(&[Some("something_new")], None, Some(502));
        assert_eq!((e.kind, e.retryable), (ErrorKind::Server, true));
        assert_eq!(e.message, "provider reported an error without a message");
        let e = provider_error(&[Some("something_new")], Some("x"), None);
        assert_eq!((e.kind, e.retryable), (ErrorKind::Other, false));
        let e = provider_error(&[Some("RESOURCE_EXHAUSTED")], Some("x"), Some(429));
        assert_eq!((e.kind, e.retryable), (ErrorKind::RateLimit, true));
    }
}
