//! A circuit breaker per provider, as a serialisable state machine.
//!
//! Components are stateless, so the state lives in Postgres (one row per provider): read it,
//! ask [`BreakerConfig::allows`], record the attempt with [`BreakerConfig::on_attempt`]
//! (which claims a half-open trial slot), then the result with [`BreakerConfig::on_result`],
//! and write it back (compare-and-set on the row, so concurrent instances do not lose updates).
//!
//! - **Closed**: calls flow; outcomes within `window_ms` are kept. It opens after
//!   `failure_threshold` failures in the window, or when at least `min_calls_for_rate` calls
//!   in the window failed at `failure_rate` or more.
//! - **Open**: no calls until `cooldown_ms` has passed since it opened.
//! - **Half-open**: up to `half_open_max_trials` trial calls; `half_open_successes_to_close`
//!   successes close it, any failure opens it again. A trial whose result never comes (the
//!   instance died) frees its slot after `trial_timeout_ms`.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, from the caller's clock.
pub type UnixMillis = u64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub window_ms: u64,
    pub failure_rate: f64,
    pub min_calls_for_rate: u32,
    pub cooldown_ms: u64,
    pub half_open_max_trials: u32,
    pub half_open_successes_to_close: u32,
    pub trial_timeout_ms: u64,
    /// Outcomes kept while closed (the oldest go first), bounding the stored row.
    pub max_samples: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window_ms: 60_000,
            failure_rate: 0.5,
            min_calls_for_rate: 10,
            cooldown_ms: 30_000,
            half_open_max_trials: 1,
            half_open_successes_to_close: 1,
            trial_timeout_ms: 60_000,
            max_samples: 64,
        }
    }
}

/// One recorded outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub at: UnixMillis,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    Closed {
        recent: Vec<Sample>,
    },
    Open {
        since: UnixMillis,
    },
    HalfOpen {
        since: UnixMillis,
        trials: u32,
        successes: u32,
        last_trial: UnixMillis,
    },
}

impl Default for BreakerState {
    fn default() -> Self {
        Self::Closed { recent: Vec::new() }
    }
}

/// The state's name, for the `circuit_breaker` row and transition events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn phase(&self) -> Phase {
        match self {
            Self::Closed { .. } => Phase::Closed,
            Self::Open { .. } => Phase::Open,
            Self::HalfOpen { .. } => Phase::HalfOpen,
        }
    }
}

/// A call's result as the breaker sees it; see
/// [`crate::retry::CallFailure::is_provider_fault`] for which failures count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl BreakerConfig {
    /// Whether a call may be made now.
    pub fn allows(&self, state: &BreakerState, now: UnixMillis) -> bool {
        match *state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { since } => now.saturating_sub(since) >= self.cooldown_ms,
            BreakerState::HalfOpen {
                trials, last_trial, ..
            } => {
                trials < self.half_open_max_trials
                    || now.saturating_sub(last_trial) >= self.trial_timeout_ms
            }
        }
    }

    /// Records that a call starts now: an open breaker past its cooldown becomes half-open,
    /// and a half-open one counts the trial. Call only when [`allows`](Self::allows) said yes.
    pub fn on_attempt(&self, state: BreakerState, now: UnixMillis) -> BreakerState {
        match state {
            BreakerState::Open { since } if now.saturating_sub(since) >= self.cooldown_ms => {
                BreakerState::HalfOpen {
                    since: now,
                    trials: 1,
                    successes: 0,
                    last_trial: now,
                }
            }
            BreakerState::HalfOpen {
                since,
                trials,
                successes,
                last_trial,
            } => {
                let trials = if trials >= self.half_open_max_trials
                    && now.saturating_sub(last_trial) >= self.trial_timeout_ms
                {
                    // The earlier trials never reported: their slots are free again.
                    1
                } else {
                    trials.saturating_add(1)
                };
                BreakerState::HalfOpen {
                    since,
                    trials,
                    successes,
                    last_trial: now,
                }
            }
            other => other,
        }
    }

    /// The state after a call's outcome.
    pub fn on_result(
        &self,
        state: BreakerState,
        outcome: Outcome,
        now: UnixMillis,
    ) -> BreakerState {
        match state {
            BreakerState::Closed { mut recent } => {
                recent.push(Sample {
                    at: now,
                    ok: outcome == Outcome::Success,
                });
                // `max(1)`: a zero window still judges the outcome just recorded.
                let window = self.window_ms.max(1);
                recent.retain(|s| now.saturating_sub(s.at) < window);
                if recent.len() > self.max_samples {
                    recent.drain(..recent.len() - self.max_samples);
                }
                if self.should_open(&recent) {
                    BreakerState::Open { since: now }
                } else {
                    BreakerState::Closed { recent }
                }
            }
            BreakerState::Open { since } => {
                if now.saturating_sub(since) < self.cooldown_ms {
                    // A late result of a call started before the breaker opened: no news.
                    BreakerState::Open { since }
                } else {
                    // A trial made without `on_attempt`: judge it as one.
                    let trial = BreakerState::HalfOpen {
                        since: now,
                        trials: 1,
                        successes: 0,
                        last_trial: now,
                    };
                    self.on_result(trial, outcome, now)
                }
            }
            BreakerState::HalfOpen {
                since,
                trials,
                successes,
                last_trial,
            } => match outcome {
                Outcome::Failure => BreakerState::Open { since: now },
                Outcome::Success if successes + 1 >= self.half_open_successes_to_close => {
                    BreakerState::Closed { recent: Vec::new() }
                }
                Outcome::Success => BreakerState::HalfOpen {
                    since,
                    // The trial is over: its slot is free for the next one.
                    trials: trials.saturating_sub(1),
                    successes: successes + 1,
                    last_trial,
                },
            },
        }
    }

    fn should_open(&self, recent: &[Sample]) -> bool {
        let failures = recent.iter().filter(|s| !s.ok).count();
        if failures == 0 {
            return false;
        }
        if failures >= self.failure_threshold as usize {
            return true;
        }
        recent.len() >= self.min_calls_for_rate as usize
            && failures as f64 / recent.len() as f64 >= self.failure_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    fn run(
        cfg: &BreakerConfig,
        mut s: BreakerState,
        steps: &[(Outcome, UnixMillis)],
    ) -> BreakerState {
        for &(o, t) in steps {
            s = cfg.on_result(s, o, t);
        }
        s
    }

    #[test]
    fn closed_opens_after_threshold_failures_within_the_window() {
        let cfg = BreakerConfig::default();
        let s = run(
            &cfg,
            BreakerState::default(),
            &[
                (Failure, 1_000),
                (Failure, 2_000),
                (Failure, 3_000),
                (Failure, 4_000),
            ],
        );
        assert_eq!(s.phase(), Phase::Closed);
        assert!(cfg.allows(&s, 4_000));
        let s = cfg.on_result(s, Failure, 5_000);
        assert_eq!(s, BreakerState::Open { since: 5_000 });
        assert!(!cfg.allows(&s, 5_001));
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let cfg = BreakerConfig::default();
        let s = run(
            &cfg,
            BreakerState::default(),
            &[(Failure, 0), (Failure, 1), (Failure, 2), (Failure, 3)],
        );
        let s = cfg.on_result(s, Failure, 70_000);
        let BreakerState::Closed { recent } = &s else {
            panic!("{s:?}")
        };
        assert_eq!(recent.len(), 1);
    }

    #[test]
    fn closed_opens_on_failure_rate() {
        let cfg = BreakerConfig {
            failure_threshold: 100,
            ..BreakerConfig::default()
        };
        // 5 failures out of 10 in the window: 50 %.
        let steps: Vec<_> = (0..10)
            .map(|i| (if i % 2 == 0 { Success } else { Failure }, i * 100))
            .collect();
        let s = run(&cfg, BreakerState::default(), &steps[..9]);
        assert_eq!(
            s.phase(),
            Phase::Closed,
            "9 calls: below min_calls_for_rate"
        );
        assert_eq!(
            cfg.on_result(s, steps[9].0, steps[9].1).phase(),
            Phase::Open
        );
        // All successes never open it.
        let ok: Vec<_> = (0..200).map(|i| (Success, i)).collect();
        let s = run(&cfg, BreakerState::default(), &ok);
        let BreakerState::Closed { recent } = &s else {
            panic!()
        };
        assert_eq!(recent.len(), cfg.max_samples, "samples are bounded");
    }

    #[test]
    fn open_waits_for_cooldown_then_half_open_trial_closes_it() {
        let cfg = BreakerConfig::default();
        let open = BreakerState::Open { since: 10_000 };
        assert!(!cfg.allows(&open, 39_999));
        // A late success during the cooldown changes nothing.
        assert_eq!(cfg.on_result(open.clone(), Success, 20_000), open);
        assert!(cfg.allows(&open, 40_000));
        let half = cfg.on_attempt(open, 40_000);
        assert_eq!(
            half,
            BreakerState::HalfOpen {
                since: 40_000,
                trials: 1,
                successes: 0,
                last_trial: 40_000
            }
        );
        // One trial at a time.
        assert!(!cfg.allows(&half, 40_001));
        assert_eq!(
            cfg.on_result(half, Success, 41_000),
            BreakerState::Closed { recent: vec![] }
        );
    }

    #[test]
    fn half_open_failure_reopens() {
        let cfg = BreakerConfig::default();
        let half = cfg.on_attempt(BreakerState::Open { since: 0 }, 30_000);
        let s = cfg.on_result(half, Failure, 30_500);
        assert_eq!(s, BreakerState::Open { since: 30_500 });
        assert!(!cfg.allows(&s, 31_000));
        assert!(cfg.allows(&s, 60_500));
    }

    #[test]
    fn half_open_needs_enough_successes_and_limits_trials() {
        let cfg = BreakerConfig {
            half_open_max_trials: 2,
            half_open_successes_to_close: 2,
            ..BreakerConfig::default()
        };
        let s = cfg.on_attempt(BreakerState::Open { since: 0 }, 30_000);
        assert!(cfg.allows(&s, 30_001));
        let s = cfg.on_attempt(s, 30_001);
        assert!(!cfg.allows(&s, 30_002), "two trials in flight");
        let s = cfg.on_result(s, Success, 30_100);
        assert_eq!(s.phase(), Phase::HalfOpen);
        assert!(cfg.allows(&s, 30_101), "a finished trial frees its slot");
        let s = cfg.on_result(s, Success, 30_200);
        assert_eq!(s.phase(), Phase::Closed);
    }

    #[test]
    fn lost_trials_expire_and_unannounced_trials_count() {
        let cfg = BreakerConfig::default();
        let s = cfg.on_attempt(BreakerState::Open { since: 0 }, 30_000);
        assert!(!cfg.allows(&s, 89_999));
        assert!(cfg.allows(&s, 90_000), "trial timed out");
        let s = cfg.on_attempt(s, 90_000);
        assert_eq!(
            s,
            BreakerState::HalfOpen {
                since: 30_000,
                trials: 1,
                successes: 0,
                last_trial: 90_000
            }
        );
        // A result arriving for an open breaker past its cooldown is treated as a trial.
        assert_eq!(
            cfg.on_result(BreakerState::Open { since: 0 }, Success, 30_000)
                .phase(),
            Phase::Closed
        );
        assert_eq!(
            cfg.on_result(BreakerState::Open { since: 0 }, Failure, 30_000),
            BreakerState::Open { since: 30_000 }
        );
        // on_attempt leaves a closed breaker alone.
        assert_eq!(
            cfg.on_attempt(BreakerState::default(), 5),
            BreakerState::default()
        );
    }

    #[test]
    fn state_round_trips_through_json() {
        let s = BreakerState::HalfOpen {
            since: 1,
            trials: 1,
            successes: 0,
            last_trial: 2,
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "half_open");
        assert_eq!(serde_json::from_value::<BreakerState>(v).unwrap(), s);
        let c = BreakerState::Closed {
            recent: vec![Sample { at: 5, ok: false }],
        };
        assert_eq!(
            serde_json::from_str::<BreakerState>(&serde_json::to_string(&c).unwrap()).unwrap(),
            c
        );
    }
}
