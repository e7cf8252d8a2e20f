//! Whether and when to try a failed call again: exponential backoff with full jitter,
//! `Retry-After` honoured, a cap on attempts and a deadline for the whole step.
//!
//! The caller supplies the random number (jitter) and the elapsed time, so a decision is a
//! pure function of its inputs.

mod http_date;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use http_date::parse_http_date;

use crate::providers::{ErrorKind, FinishReason, ProviderError, StreamError};

/// Limits for retrying one provider and for the step as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts against one provider/model, the first included.
    pub max_attempts: u32,
    /// The first backoff ceiling; it doubles per attempt.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A longer `Retry-After` than this means "try another provider" rather than wait.
    pub max_retry_after: Duration,
    /// Total time for the step, all attempts and fallbacks together.
    pub deadline: Duration,
    /// Time for one call (request to last byte); the caller enforces it with its HTTP client.
    pub call_timeout: Duration,
}

impl RetryPolicy {
    /// The timeout for the next call, `elapsed` into the step: the per-call timeout, cut
    /// short by what is left of the deadline. Zero means "no time left: do not call".
    pub fn timeout_for_next_call(&self, elapsed: Duration) -> Duration {
        self.call_timeout.min(self.deadline.saturating_sub(elapsed))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(20),
            deadline: Duration::from_secs(60),
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// How a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// A non-2xx response; `retry_after` from [`parse_retry_after`].
    Http {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// An error reported inside a 200 stream; handled like its HTTP equivalent (see
    /// [`ErrorKind`]).
    Stream(ProviderError),
    /// No answer (or no next chunk) within the call's timeout.
    Timeout,
    /// Could not connect, or the connection broke.
    Connection,
    /// The stream could not be parsed or ended early ([`StreamError`] that blames the
    /// provider).
    MalformedStream,
    /// Well-formed events the parser could not follow ([`StreamError::Protocol`]): not the
    /// provider's fault, and the same again on a retry.
    UnsupportedStream,
    /// The stream ended normally but the answer is not usable: cut off by the length limit,
    /// refused, filtered, empty or ended with an unknown reason (see
    /// [`crate::providers::StreamedAnswer::is_complete`]).
    Unfinished(FinishReason),
}

impl CallFailure {
    /// The failure for a stream that could not be read.
    pub fn from_stream_error(e: &StreamError) -> Self {
        if e.blames_provider() {
            Self::MalformedStream
        } else {
            Self::UnsupportedStream
        }
    }

    /// Whether the failure says something about the provider's health (and so counts for
    /// its circuit breaker), rather than about this request or this parser.
    pub fn is_provider_fault(&self) -> bool {
        match self {
            Self::Http { status, .. } => !is_request_error(*status),
            Self::Stream(e) => match e.kind {
                ErrorKind::InvalidRequest | ErrorKind::ContentPolicy => false,
                ErrorKind::Other => e.retryable,
                // Quota and key errors count, as their HTTP 401/403/429 do.
                _ => true,
            },
            Self::Timeout | Self::Connection | Self::MalformedStream => true,
            // An empty "complete" answer or a provider-side generation error is the
            // provider's; a limit, a refusal or a filter is about this request.
            Self::Unfinished(r) => matches!(r, FinishReason::Error | FinishReason::Complete),
            Self::UnsupportedStream => false,
        }
    }
}

/// 4xx statuses that blame the request: the same request fails anywhere.
fn is_request_error(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 403 | 404 | 408 | 409 | 429)
}

/// What to do after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try the same provider and model again.
    RetryAfter(Duration),
    /// Stop trying this candidate; try the next one in the fallback chain.
    FallBack,
    /// Stop the step: the request itself is at fault, or time is up.
    GiveUp(String),
}

/// Decides after attempt number `attempt` (1-based) failed, `elapsed` into the step.
/// `random` is a uniform number in [0, 1) from the caller (values outside are clamped).
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    elapsed: Duration,
    failure: &CallFailure,
    random: f64,
) -> RetryDecision {
    if elapsed >= policy.deadline {
        return RetryDecision::GiveUp(format!(
            "step deadline of {} s reached",
            policy.deadline.as_secs_f64()
        ));
    }
    let retry_after = match failure {
        CallFailure::Http { status, .. } if is_request_error(*status) => {
            return RetryDecision::GiveUp(format!(
                "the provider rejected the request (HTTP {status})"
            ));
        }
        // A bad key or a model this key cannot use: another provider may work.
        CallFailure::Http {
            status: 401 | 403 | 404,
            ..
        } => return RetryDecision::FallBack,
        CallFailure::Http { retry_after, .. } => *retry_after,
        // The same request fails anywhere, as with HTTP 400.
        CallFailure::Stream(e) if e.kind == ErrorKind::InvalidRequest => {
            return RetryDecision::GiveUp(format!(
                "the provider rejected the request: {}",
                e.code.as_deref().unwrap_or(&e.message)
            ));
        }
        // Quota, key, model or policy errors, as with HTTP 401/403/404: another provider
        // may answer.
        CallFailure::Stream(e) if !e.retryable => return RetryDecision::FallBack,
        CallFailure::UnsupportedStream => return RetryDecision::FallBack,
        CallFailure::Unfinished(reason) => match reason {
            // An empty answer or a generation error may well not recur.
            FinishReason::Complete | FinishReason::Error => None,
            // Cut off, refused, filtered, unknown: the same call would end the same way;
            // whether to retry with a larger budget or answer elsewhere is the caller's
            // policy, and the next candidate is the default.
            _ => return RetryDecision::FallBack,
        },
        CallFailure::Stream(_)
        | CallFailure::Timeout
        | CallFailure::Connection
        | CallFailure::MalformedStream => None,
    };
    if attempt >= policy.max_attempts {
        return RetryDecision::FallBack;
    }
    let delay = match retry_after {
        Some(wait) if wait > policy.max_retry_after => return RetryDecision::FallBack,
        Some(wait) => wait,
        None => backoff(policy, attempt, random),
    };
    // Waiting past the deadline is pointless; another provider may answer at once.
    if elapsed + delay >= policy.deadline {
        return RetryDecision::FallBack;
    }
    RetryDecision::RetryAfter(delay)
}

/// Full jitter: uniform in [0, min(max_delay, base · 2^(attempt-1))).
pub fn backoff(policy: &RetryPolicy, attempt: u32, random: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(31);
    let ceiling = policy
        .base_delay
        .saturating_mul(1u32 << exp)
        .min(policy.max_delay);
    let r = if random.is_nan() {
        0.0
    } else {
        random.clamp(0.0, 1.0)
    };
    ceiling.mul_f64(r)
}

/// A `Retry-After` header value: delay-seconds or an HTTP date (relative to `now_unix_ms`).
/// A date in the past is a zero wait; anything else unreadable is `None`.
pub fn parse_retry_after(value: &str, now_unix_ms: u64) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long values saturate rather than fail: they still mean "not soon".
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    let at_ms = parse_http_date(v)?.checked_mul(1000)?;
    let wait = at_ms.saturating_sub(i64::try_from(now_unix_ms).ok()?);
    Some(Duration::from_millis(wait.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> CallFailure {
        CallFailure::Http {
            status,
            retry_after: None,
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn retries_transient_failures_with_growing_jittered_backoff() {
        let p = RetryPolicy::default();
        for f in [
            http(429),
            http(500),
            http(503),
            http(529),
            http(408),
            CallFailure::Timeout,
            CallFailure::Connection,
            CallFailure::MalformedStream,
        ] {
            assert!(
                matches!(decide(&p, 1, MS(0), &f, 0.5), RetryDecision::RetryAfter(_)),
                "{f:?}"
            );
        }
        assert_eq!(
            decide(&p, 1, MS(0), &http(500), 0.5),
            RetryDecision::RetryAfter(MS(125))
        );
        assert_eq!(
            decide(&p, 2, MS(0), &http(500), 0.5),
            RetryDecision::RetryAfter(MS(250))
        );
        assert_eq!(
            decide(&p, 2, MS(0), &http(500), 0.0),
            RetryDecision::RetryAfter(MS(0))
        );
        // The ceiling stops doubling at max_delay.
        assert_eq!(backoff(&p, 20, 0.999_999), p.max_delay.mul_f64(0.999_999));
        assert_eq!(backoff(&p, u32::MAX, 2.0), p.max_delay);
        assert_eq!(backoff(&p, 1, f64::NAN), MS(0));
    }

    #[test]
    fn request_errors_give_up_and_key_errors_fall_back() {
        let p = RetryPolicy::default();
        for s in [400, 413, 422] {
            assert!(
                matches!(decide(&p, 1, MS(0), &http(s), 0.5), RetryDecision::GiveUp(r) if r.contains(&s.to_string()))
            );
            assert!(!http(s).is_provider_fault());
        }
        for s in [401, 403, 404] {
            assert_eq!(decide(&p, 1, MS(0), &http(s), 0.5), RetryDecision::FallBack);
        }
        let (bad, overloaded) = (
            stream(ErrorKind::InvalidRequest, "invalid_request_error"),
            stream(ErrorKind::Overloaded, "overloaded_error"),
        );
        assert!(
            matches!(decide(&p, 1, MS(0), &bad, 0.5), RetryDecision::GiveUp(r) if r.contains("invalid_request_error"))
        );
        assert!(!bad.is_provider_fault());
        assert!(matches!(
            decide(&p, 1, MS(0), &overloaded, 0.5),
            RetryDecision::RetryAfter(_)
        ));
        assert!(
            overloaded.is_provider_fault()
                && http(503).is_provider_fault()
                && http(429).is_provider_fault()
        );
    }

    fn stream(kind: ErrorKind, code: &str) -> CallFailure {
        CallFailure::Stream(ProviderError {
            http_status: None,
            code: Some(code.into()),
            message: "m".into(),
            retryable: kind.is_transient(),
            kind,
        })
    }

    #[test]
    fn in_stream_errors_fall_back_like_their_http_equivalents() {
        let p = RetryPolicy::default();
        // insufficient_quota inside a 200 stream: the next provider, not the end of the chain.
        for (kind, code) in [
            (ErrorKind::Quota, "insufficient_quota"),
            (ErrorKind::Auth, "authentication_error"),
            (ErrorKind::NotFound, "not_found_error"),
            (ErrorKind::ContentPolicy, "invalid_prompt"),
            (ErrorKind::Other, "something_new"),
        ] {
            let f = stream(kind, code);
            assert_eq!(
                decide(&p, 1, MS(0), &f, 0.5),
                RetryDecision::FallBack,
                "{code}"
            );
        }
        assert!(stream(ErrorKind::Quota, "insufficient_quota").is_provider_fault());
        assert!(!stream(ErrorKind::ContentPolicy, "invalid_prompt").is_provider_fault());
        for kind in [ErrorKind::RateLimit, ErrorKind::Server, ErrorKind::Timeout] {
            assert!(matches!(
                decide(&p, 1, MS(0), &stream(kind, "x"), 0.5),
                RetryDecision::RetryAfter(_)
            ));
        }
    }

    #[test]
    fn unreadable_and_unfinished_streams() {
        let p = RetryPolicy::default();
        let protocol = StreamError::Protocol {
            provider: "anthropic",
            detail: "x".into(),
        };
        let f = CallFailure::from_stream_error(&protocol);
        assert_eq!(f, CallFailure::UnsupportedStream);
        assert!(!f.is_provider_fault());
        assert_eq!(decide(&p, 1, MS(0), &f, 0.5), RetryDecision::FallBack);
        let cut = StreamError::Truncated {
            provider: "openai",
            detail: "x".into(),
        };
        let f = CallFailure::from_stream_error(&cut);
        assert_eq!(f, CallFailure::MalformedStream);
        assert!(f.is_provider_fault());

        for r in [
            FinishReason::Length,
            FinishReason::Refusal,
            FinishReason::ContentFilter,
            FinishReason::Unknown("FAKE_ENUM".into()),
        ] {
            let f = CallFailure::Unfinished(r);
            assert_eq!(decide(&p, 1, MS(0), &f, 0.5), RetryDecision::FallBack);
            assert!(!f.is_provider_fault());
        }
        let empty = CallFailure::Unfinished(FinishReason::Complete);
        assert!(matches!(
            decide(&p, 1, MS(0), &empty, 0.5),
            RetryDecision::RetryAfter(_)
        ));
        assert!(empty.is_provider_fault());
    }

    #[test]
    fn attempts_and_deadline() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, 3, MS(0), &http(500), 0.5),
            RetryDecision::FallBack
        );
        assert!(matches!(
            decide(&p, 1, Duration::from_secs(60), &http(500), 0.5),
            RetryDecision::GiveUp(_)
        ));
        // A wait that would cross the deadline: fall back instead.
        let f = CallFailure::Http {
            status: 429,
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            decide(&p, 1, Duration::from_secs(56), &f, 0.5),
            RetryDecision::FallBack
        );
    }

    #[test]
    fn call_timeout_is_cut_by_the_deadline() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.timeout_for_next_call(Duration::ZERO),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.timeout_for_next_call(Duration::from_secs(50)),
            Duration::from_secs(10)
        );
        assert_eq!(
            p.timeout_for_next_call(Duration::from_secs(90)),
            Duration::ZERO
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_limit() {
        let p = RetryPolicy::default();
        let f = CallFailure::Http {
            status: 429,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            decide(&p, 1, MS(0), &f, 0.9),
            RetryDecision::RetryAfter(Duration::from_secs(7))
        );
        let f = CallFailure::Http {
            status: 503,
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(decide(&p, 1, MS(0), &f, 0.9), RetryDecision::FallBack);
    }

    #[test]
    fn parses_retry_after_values() {
        let now = 784_111_777_000; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
