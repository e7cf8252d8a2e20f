//! Silences: matchers and a time window during which matching events are not notified.
//! Applied when a group is flushed (as in Alertmanager), so a silence created after an alert
//! arrived still holds it back, and an alert still firing when the silence ends is notified.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::matcher::{Matcher, all_match};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    /// Unix milliseconds; active on `[starts_at_ms, ends_at_ms)`.
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceError {
    NoMatchers,
    /// Every matcher also matches an absent label: the silence would mute nearly everything,
    /// so Alertmanager refuses it too.
    MatchesEverything,
    EndsBeforeStart,
}

impl std::fmt::Display for SilenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NoMatchers => "a silence needs at least one matcher",
            Self::MatchesEverything => {
                "at least one matcher must not match the empty string, or the silence mutes everything"
            }
            Self::EndsBeforeStart => "the silence must end after it starts",
        })
    }
}

impl std::error::Error for SilenceError {}

impl Silence {
    pub fn validate(&self) -> Result<(), SilenceError> {
        if self.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        if self.matchers.iter().all(Matcher::matches_empty) {
            return Err(SilenceError::MatchesEverything);
        }
        if self.ends_at_ms <= self.starts_at_ms {
            return Err(SilenceError::EndsBeforeStart);
        }
        Ok(())
    }

    pub fn is_active(&self, now_ms: i64) -> bool {
        self.starts_at_ms <= now_ms && now_ms < self.ends_at_ms
    }

    pub fn mutes(&self, event: &Event, now_ms: i64) -> bool {
        self.is_active(now_ms) && all_match(&self.matchers, event)
    }
}

/// The first silence muting `event` at `now_ms`, if any.
pub fn muted_by<'a>(silences: &'a [Silence], event: &Event, now_ms: i64) -> Option<&'a Silence> {
    silences.iter().find(|s| s.mutes(event, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::test_event;

    pub(crate) fn silence(matchers: &[&str], starts: i64, ends: i64) -> Silence {
        Silence {
            id: "s1".into(),
            matchers: matchers.iter().map(|m| m.parse().unwrap()).collect(),
            starts_at_ms: starts,
            ends_at_ms: ends,
            created_by: "ops".into(),
            comment: String::new(),
        }
    }

    #[test]
    fn active_window_is_half_open() {
        let s = silence(&["symbol=AAPL"], 100, 200);
        let e = test_event("price.move", &[("symbol", "AAPL")]);
        assert!(!s.mutes(&e, 99));
        assert!(s.mutes(&e, 100));
        assert!(s.mutes(&e, 199));
        assert!(!s.mutes(&e, 200));
        assert!(!s.mutes(&test_event("price.move", &[("symbol", "MSFT")]), 150));
    }

    #[test]
    fn first_muting_silence() {
        let silences = vec![
            silence(&["type=system.error"], 0, 1000),
            Silence {
                id: "s2".into(),
                ..silence(&["symbol=~\"A.*\""], 0, 1000)
            },
        ];
        let e = test_event("price.move", &[("symbol", "AAPL")]);
        assert_eq!(
            muted_by(&silences, &e, 10).map(|s| s.id.as_str()),
            Some("s2")
        );
        assert_eq!(muted_by(&silences, &e, 1000), None);
    }

    #[test]
    fn validation() {
        assert_eq!(silence(&["a=b"], 0, 1).validate(), Ok(()));
        assert_eq!(silence(&[], 0, 1).validate(), Err(SilenceError::NoMatchers));
        assert_eq!(
            silence(&["a=~\".*\"", "b=\"\""], 0, 1).validate(),
            Err(SilenceError::MatchesEverything)
        );
        assert_eq!(
            silence(&["a=b"], 5, 5).validate(),
            Err(SilenceError::EndsBeforeStart)
        );
    }
}
