//! When to attempt a delivery again: the retry schedule (Svix's), jitter, `Retry-After`,
//! what an attempt's outcome means, and when an endpoint is disabled.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Delay before each attempt, the first being immediate: 0, 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h (each counted from the previous attempt), as Svix retries.
pub const SCHEDULE_SECS: [u64; 8] = [
    0,
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    10 * 3600,
];
/// ±10 %: spreads the retries of many deliveries that failed together (one receiver outage)
/// so they do not all return at the same instant.
pub const DEFAULT_JITTER: f64 = 0.1;
/// A receiver's `Retry-After` beyond this is not believed (it would park the delivery).
pub const DEFAULT_RETRY_AFTER_CAP: Duration = Duration::from_secs(10 * 3600);
/// Consecutive failed deliveries (each one an exhausted schedule) before an endpoint is
/// disabled.
pub const DEFAULT_DISABLE_AFTER: u32 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before attempt n+1 at index n; its length is the number of attempts.
    pub schedule: Vec<Duration>,
    /// Multiplies every scheduled delay: tests shrink the schedule (e.g. 0.001), production
    /// keeps 1.0. `Retry-After` is not scaled: it is the receiver's word.
    pub scale: f64,
    /// Fraction of a delay the caller's random value moves it by, at most (0.1 = ±10 %).
    pub jitter: f64,
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            schedule: SCHEDULE_SECS
                .iter()
                .map(|&s| Duration::from_secs(s))
                .collect(),
            scale: 1.0,
            jitter: DEFAULT_JITTER,
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
        }
    }
}

/// What one attempt came to, as the dispatcher saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered. `retry_after` is its parsed `Retry-After` header, if any.
    Response {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer.
    Transport(TransportError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    Dns,
    Connect,
    Tls,
    /// Past the send timeout (15 s).
    Timeout,
    /// The connection dropped mid-exchange.
    Reset,
    /// The host is not among the component's allowed outbound hosts: retrying cannot help.
    NotAllowed,
    /// The request could not even be built (a bad URL).
    InvalidRequest,
}

/// The meaning of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Delivered,
    /// Worth another attempt, not before `not_before` if the receiver asked.
    Retry {
        not_before: Option<Duration>,
    },
    /// The receiver refused this message, or it cannot be sent; the same bytes would fail again.
    GiveUp,
}

/// Classifies an attempt: 2xx delivered; 408, 425, 429 and 5xx retried (`Retry-After` is
/// honoured on 429 and 503 only, as HTTP defines it there); any transport failure retried
/// except a refused host or a bad URL; other 4xx and 3xx (redirects are not followed, so a
/// moved endpoint must be reconfigured) give up.
pub fn classify(outcome: &AttemptOutcome) -> Disposition {
    match *outcome {
        AttemptOutcome::Response {
            status,
            retry_after,
        } => match status {
            200..=299 => Disposition::Delivered,
            429 | 503 => Disposition::Retry {
                not_before: retry_after,
            },
            408 | 425 | 500..=599 => Disposition::Retry { not_before: None },
            300..=499 => Disposition::GiveUp,
            // 1xx as a final status, or nonsense: a broken receiver that may recover.
            _ => Disposition::Retry { not_before: None },
        },
        AttemptOutcome::Transport(TransportError::NotAllowed | TransportError::InvalidRequest) => {
            Disposition::GiveUp
        }
        AttemptOutcome::Transport(_) => Disposition::Retry { not_before: None },
    }
}

/// What the dispatcher does with a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    /// Attempt again after this delay (from the attempt just made).
    RetryIn(Duration),
    Failed(FailReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// Every attempt of the schedule failed.
    Exhausted,
    /// Classified [`Disposition::GiveUp`].
    Refused,
}

impl RetryPolicy {
    /// The policy with every scheduled delay multiplied by `scale`.
    pub fn scaled(scale: f64) -> Self {
        Self {
            scale,
            ..Self::default()
        }
    }

    pub fn max_attempts(&self) -> u32 {
        self.schedule.len() as u32
    }

    /// The delay before attempt `attempt` (1-based), scaled and jittered by `random` (a
    /// caller-drawn value in [0, 1); 0.5 means no jitter). `None` past the schedule.
    pub fn delay_before(&self, attempt: u32, random: f64) -> Option<Duration> {
        let base = *self.schedule.get(attempt.checked_sub(1)? as usize)?;
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = self.scale.max(0.0) * (1.0 + jitter * (2.0 * random - 1.0));
        Some(Duration::from_secs_f64(base.as_secs_f64() * factor))
    }

    /// After attempt number `attempts_made` (1-based) came to `disposition`.
    pub fn next_step(&self, attempts_made: u32, disposition: Disposition, random: f64) -> NextStep {
        match disposition {
            Disposition::Delivered => NextStep::Delivered,
            Disposition::GiveUp => NextStep::Failed(FailReason::Refused),
            Disposition::Retry { not_before } => {
                let Some(delay) = self.delay_before(attempts_made.saturating_add(1), random) else {
                    return NextStep::Failed(FailReason::Exhausted);
                };
                // The receiver's wish is a floor, never a way to come back sooner.
                let floor = not_before.map_or(Duration::ZERO, |d| d.min(self.retry_after_cap));
                NextStep::RetryIn(delay.max(floor))
            }
        }
    }
}

/// Parses a `Retry-After` value, delay-seconds or an HTTP-date (all three formats HTTP
/// allows), into a delay from `now` (unix seconds). A date in the past is no delay.
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    // `httpdate` answers a `SystemTime`; only converted here, the clock is never read.
    let at = httpdate::parse_http_date(value).ok()?;
    let at = at.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(Duration::from_secs(at.saturating_sub(now).max(0) as u64))
}

/// An endpoint's health across deliveries, stored with the endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHealth {
    pub consecutive_failed_deliveries: u32,
    pub disabled: bool,
}

impl EndpointHealth {
    pub fn record_delivered(&mut self) {
        self.consecutive_failed_deliveries = 0;
    }

    /// Records a failed delivery; true exactly when this one disabled the endpoint, so the
    /// operator alert is raised once.
    pub fn record_failed(&mut self, disable_after: u32) -> bool {
        self.consecutive_failed_deliveries = self.consecutive_failed_deliveries.saturating_add(1);
        if !self.disabled && self.consecutive_failed_deliveries >= disable_after.max(1) {
            self.disabled = true;
            return true;
        }
        false
    }

    /// The operator re-enabled it: it starts from a clean count.
    pub fn re_enable(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn retry(status: u16) -> Disposition {
        classify(&AttemptOutcome::Response {
            status,
            retry_after: Some(S(60)),
        })
    }

    #[test]
    fn the_schedule_without_jitter() {
        let p = RetryPolicy::default();
        let delays: Vec<_> = (1..=9).map(|n| p.delay_before(n, 0.5)).collect();
        assert_eq!(
            delays,
            vec![
                Some(S(0)),
                Some(S(5)),
                Some(S(300)),
                Some(S(1800)),
                Some(S(7200)),
                Some(S(18000)),
                Some(S(36000)),
                Some(S(36000)),
                None
            ]
        );
        assert_eq!(p.delay_before(0, 0.5), None);
        assert_eq!(p.max_attempts(), 8);
    }

    #[test]
    fn jitter_is_bounded_by_ten_percent() {
        let p = RetryPolicy::default();
        // 5 min: 270 s at random 0, 330 s at random 1, 315 s at 0.75.
        assert_eq!(p.delay_before(3, 0.0), Some(S(270)));
        assert_eq!(p.delay_before(3, 1.0), Some(S(330)));
        assert_eq!(p.delay_before(3, 0.75), Some(S(315)));
        // Out-of-range randoms are clamped, not trusted.
        assert_eq!(p.delay_before(3, 7.0), Some(S(330)));
        assert_eq!(p.delay_before(3, f64::NAN), Some(S(300)));
        // The immediate attempt stays immediate.
        assert_eq!(p.delay_before(1, 1.0), Some(S(0)));
    }

    #[test]
    fn scale_shrinks_the_schedule() {
        let p = RetryPolicy::scaled(0.001);
        assert_eq!(p.delay_before(2, 0.5), Some(Duration::from_millis(5)));
        assert_eq!(p.delay_before(8, 0.5), Some(S(36)));
    }

    #[test]
    fn classification() {
        let ok = AttemptOutcome::Response {
            status: 204,
            retry_after: None,
        };
        assert_eq!(classify(&ok), Disposition::Delivered);
        assert_eq!(
            retry(429),
            Disposition::Retry {
                not_before: Some(S(60))
            }
        );
        assert_eq!(
            retry(503),
            Disposition::Retry {
                not_before: Some(S(60))
            }
        );
        // Retry-After on a 500 means nothing in HTTP.
        assert_eq!(retry(500), Disposition::Retry { not_before: None });
        assert_eq!(retry(408), Disposition::Retry { not_before: None });
        for status in [301, 400, 401, 404, 410, 422] {
            assert_eq!(retry(status), Disposition::GiveUp, "{status}");
        }
        assert_eq!(
            classify(&AttemptOutcome::Transport(TransportError::Timeout)),
            Disposition::Retry { not_before: None }
        );
        assert_eq!(
            classify(&AttemptOutcome::Transport(TransportError::NotAllowed)),
            Disposition::GiveUp
        );
    }

    #[test]
    fn retry_after_is_a_capped_floor() {
        let p = RetryPolicy::default();
        let r = |d| Disposition::Retry {
            not_before: Some(d),
        };
        // After attempt 2 the schedule says 5 min; a 20 min Retry-After wins…
        assert_eq!(p.next_step(2, r(S(1200)), 0.5), NextStep::RetryIn(S(1200)));
        // …a 1 s one does not bring the attempt forward…
        assert_eq!(p.next_step(2, r(S(1)), 0.5), NextStep::RetryIn(S(300)));
        // …and a year is not believed.
        assert_eq!(
            p.next_step(2, r(S(365 * 86400)), 0.5),
            NextStep::RetryIn(S(36000))
        );
        // Not scaled with the schedule.
        assert_eq!(
            RetryPolicy::scaled(0.001).next_step(1, r(S(2)), 0.5),
            NextStep::RetryIn(S(2))
        );
    }

    #[test]
    fn exhaustion_and_refusal() {
        let p = RetryPolicy::default();
        let again = Disposition::Retry { not_before: None };
        assert_eq!(p.next_step(1, again, 0.5), NextStep::RetryIn(S(5)));
        assert_eq!(p.next_step(7, again, 0.5), NextStep::RetryIn(S(36000)));
        assert_eq!(
            p.next_step(8, again, 0.5),
            NextStep::Failed(FailReason::Exhausted)
        );
        assert_eq!(
            p.next_step(3, Disposition::GiveUp, 0.5),
            NextStep::Failed(FailReason::Refused)
        );
        assert_eq!(
            p.next_step(8, Disposition::Delivered, 0.5),
            NextStep::Delivered
        );
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(parse_retry_after("120", 0), Some(S(120)));
        // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 (date -u -d … +%s).
        let now = 1445412480 - 90;
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(S(90))
        );
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now),
            Some(S(90))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:00 2015", now),
            Some(S(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now + 1000),
            Some(S(0))
        );
        assert_eq!(parse_retry_after("-5", 0), None);
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("", 0), None);
    }

    #[test]
    fn endpoint_disabled_once_after_consecutive_failures() {
        let mut h = EndpointHealth::default();
        assert!(!h.record_failed(3));
        assert!(!h.record_failed(3));
        h.record_delivered();
        assert!(!h.record_failed(3));
        assert!(!h.record_failed(3));
        assert!(h.record_failed(3));
        assert!(h.disabled);
        assert!(!h.record_failed(3), "the operator alert is raised once");
        h.re_enable();
        assert_eq!(h, EndpointHealth::default());
    }
}
