//! Requests per key and minute: the decision and the headers of a 429 (IETF
//! draft-ietf-httpapi-ratelimit-headers: `RateLimit-Limit`, `-Remaining`, `-Reset`). Pure.

/// Shards a key's per-minute counter is spread over, so concurrent requests of one busy key
/// do not queue on one row (`api_key_usage`).
pub const SHARDS: i64 = 8;

/// A key over its limit: what the 429 says.
#[derive(Debug, PartialEq, Eq)]
pub struct Limited {
    pub limit: i64,
    /// Seconds until the window (the current minute) ends, at least 1.
    pub reset_s: u32,
}

/// Whether request number `used` (counting this one) of the current minute passes a limit
/// of `limit` per minute; `second` is the second within the minute (0–59).
pub fn check(limit: i64, used: i64, second: u32) -> Result<(), Limited> {
    if used <= limit {
        return Ok(());
    }
    Err(Limited {
        limit,
        reset_s: 60u32.saturating_sub(second.min(59)).max(1),
    })
}

impl Limited {
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", "0".to_string()),
            ("ratelimit-reset", self.reset_s.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_inclusive() {
        assert_eq!(check(3, 1, 0), Ok(()));
        assert_eq!(check(3, 3, 59), Ok(()));
        assert_eq!(
            check(3, 4, 15),
            Err(Limited {
                limit: 3,
                reset_s: 45
            })
        );
    }

    #[test]
    fn reset_is_the_rest_of_the_minute_and_never_zero() {
        assert_eq!(check(1, 2, 0).unwrap_err().reset_s, 60);
        assert_eq!(check(1, 2, 59).unwrap_err().reset_s, 1);
        assert_eq!(check(1, 2, 75).unwrap_err().reset_s, 1);
    }

    #[test]
    fn a_429_names_limit_remaining_and_reset() {
        let h = Limited {
            limit: 10,
            reset_s: 7,
        }
        .headers();
        assert_eq!(
            h,
            vec![
                ("ratelimit-limit", "10".to_string()),
                ("ratelimit-remaining", "0".to_string()),
                ("ratelimit-reset", "7".to_string()),
            ]
        );
    }
}
