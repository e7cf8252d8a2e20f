//! The trading circuit breaker of one tenant: `closed` (trading) → `open` (halted by an
//! activation rule) → `awaiting_approval` (the numbers recovered) → `closed` (an operator
//! resumed). Passing the auto-resume check never closes the breaker by itself; only an
//! operator does, and only from `awaiting_approval`. Every transition carries its reason.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    AwaitingApproval,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::AwaitingApproval => "awaiting_approval",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "closed" => BreakerState::Closed,
            "open" => BreakerState::Open,
            "awaiting_approval" => BreakerState::AwaitingApproval,
            _ => return None,
        })
    }
}

/// Activation rules (X, Y, N and the error rate) and the auto-resume conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerRules {
    /// Open when the drawdown from the peak reaches this percentage.
    pub max_drawdown_pct: f64,
    /// Open when today's loss reaches this percentage of the day's starting equity.
    pub max_daily_loss_pct: f64,
    /// Open after this many losing trades in a row.
    pub max_losing_streak: u32,
    /// Open when this fraction of recent trading cycles failed…
    pub max_error_rate: f64,
    /// …over at least this many cycles.
    pub min_cycles_for_error_rate: u32,
    /// Resume check: drawdown under this percentage.
    pub resume_max_drawdown_pct: f64,
    /// Resume check: at least this many winning trades in a row.
    pub resume_min_win_streak: u32,
    /// Resume check: the 7-day Sharpe ratio (annualised, daily returns) above this.
    pub resume_min_sharpe_7d: f64,
}

impl Default for BreakerRules {
    fn default() -> Self {
        Self {
            max_drawdown_pct: 20.0,
            max_daily_loss_pct: 5.0,
            max_losing_streak: 5,
            max_error_rate: 0.5,
            min_cycles_for_error_rate: 4,
            resume_max_drawdown_pct: 15.0,
            resume_min_win_streak: 3,
            resume_min_sharpe_7d: 0.3,
        }
    }
}

impl BreakerRules {
    /// The rules a tenant may set: `Err((field, message))` for the first unusable one.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let pct = |field: &'static str, x: f64, max: f64| {
            if x.is_finite() && x > 0.0 && x <= max {
                Ok(())
            } else {
                Err((
                    field,
                    format!("`{field}` must be above 0 and at most {max}"),
                ))
            }
        };
        pct("max_drawdown_pct", self.max_drawdown_pct, 100.0)?;
        pct("max_daily_loss_pct", self.max_daily_loss_pct, 100.0)?;
        pct("max_error_rate", self.max_error_rate, 1.0)?;
        pct(
            "resume_max_drawdown_pct",
            self.resume_max_drawdown_pct,
            100.0,
        )?;
        if !self.resume_min_sharpe_7d.is_finite() {
            return Err((
                "resume_min_sharpe_7d",
                "`resume_min_sharpe_7d` must be a number".into(),
            ));
        }
        let count = |field: &'static str, n: u32| {
            if (1..=1000).contains(&n) {
                Ok(())
            } else {
                Err((field, format!("`{field}` must be 1 to 1000")))
            }
        };
        count("max_losing_streak", self.max_losing_streak)?;
        count("min_cycles_for_error_rate", self.min_cycles_for_error_rate)?;
        count("resume_min_win_streak", self.resume_min_win_streak)?;
        Ok(())
    }
}

/// The numbers the rules read, computed from snapshots and recorded trades.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub drawdown_pct: f64,
    pub daily_loss_pct: f64,
    pub losing_streak: u32,
    pub win_streak: u32,
    /// Failed cycles over recent cycles, with how many cycles that is.
    pub error_rate: Option<f64>,
    pub cycles: u32,
    /// `None` while there are fewer than 3 daily returns or they do not vary.
    pub sharpe_7d: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trip {
    pub code: &'static str,
    pub limit: f64,
    pub value: f64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    /// `activation`, `auto_resume_check` or `operator_resume`.
    pub trigger: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    pub name: &'static str,
    pub value: Option<f64>,
    pub threshold: f64,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResumeCheck {
    pub passed: bool,
    pub conditions: Vec<Condition>,
}

/// Every activation rule the metrics break.
pub fn trips(m: &Metrics, r: &BreakerRules) -> Vec<Trip> {
    let mut out = Vec::new();
    if m.drawdown_pct >= r.max_drawdown_pct {
        out.push(Trip {
            code: "drawdown",
            limit: r.max_drawdown_pct,
            value: m.drawdown_pct,
            message: format!("drawdown {:.2}% ≥ {}%", m.drawdown_pct, r.max_drawdown_pct),
        });
    }
    if m.daily_loss_pct >= r.max_daily_loss_pct {
        out.push(Trip {
            code: "daily_loss",
            limit: r.max_daily_loss_pct,
            value: m.daily_loss_pct,
            message: format!(
                "daily loss {:.2}% ≥ {}%",
                m.daily_loss_pct, r.max_daily_loss_pct
            ),
        });
    }
    if m.losing_streak >= r.max_losing_streak {
        out.push(Trip {
            code: "losing_streak",
            limit: f64::from(r.max_losing_streak),
            value: f64::from(m.losing_streak),
            message: format!(
                "{} losing trades in a row ≥ {}",
                m.losing_streak, r.max_losing_streak
            ),
        });
    }
    if let Some(rate) = m.error_rate
        && m.cycles >= r.min_cycles_for_error_rate
        && rate >= r.max_error_rate
    {
        out.push(Trip {
            code: "error_rate",
            limit: r.max_error_rate,
            value: rate,
            message: format!(
                "{:.0}% of the last {} trading cycles failed ≥ {:.0}%",
                rate * 100.0,
                m.cycles,
                r.max_error_rate * 100.0
            ),
        });
    }
    out
}

/// After new numbers: a closed breaker opens when a rule trips; one awaiting approval opens
/// again (the recovery it waited on no longer holds).
pub fn observe(state: BreakerState, m: &Metrics, r: &BreakerRules) -> Option<Transition> {
    let tripped = trips(m, r);
    if tripped.is_empty() || state == BreakerState::Open {
        return None;
    }
    Some(Transition {
        from: state,
        to: BreakerState::Open,
        trigger: "activation",
        reason: tripped
            .iter()
            .map(|t| t.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// The three auto-resume conditions, each with its current value.
pub fn resume_check(m: &Metrics, r: &BreakerRules) -> ResumeCheck {
    let conditions = vec![
        Condition {
            name: "drawdown_recovered",
            value: Some(m.drawdown_pct),
            threshold: r.resume_max_drawdown_pct,
            passed: m.drawdown_pct < r.resume_max_drawdown_pct,
        },
        Condition {
            name: "win_streak",
            value: Some(f64::from(m.win_streak)),
            threshold: f64::from(r.resume_min_win_streak),
            passed: m.win_streak >= r.resume_min_win_streak,
        },
        Condition {
            name: "sharpe_7d",
            value: m.sharpe_7d,
            threshold: r.resume_min_sharpe_7d,
            passed: m.sharpe_7d.is_some_and(|s| s > r.resume_min_sharpe_7d),
        },
    ];
    ResumeCheck {
        passed: conditions.iter().all(|c| c.passed),
        conditions,
    }
}

/// The check before a trading cycle: an open breaker whose conditions all pass awaits an
/// operator's approval; nothing else moves.
pub fn auto_resume(state: BreakerState, check: &ResumeCheck) -> Option<Transition> {
    if state != BreakerState::Open || !check.passed {
        return None;
    }
    let values: Vec<String> = check
        .conditions
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c.name,
                c.value.map_or("n/a".into(), |v| format!("{v:.2}"))
            )
        })
        .collect();
    Some(Transition {
        from: state,
        to: BreakerState::AwaitingApproval,
        trigger: "auto_resume_check",
        reason: format!("recovery conditions passed ({})", values.join(", ")),
    })
}

/// An operator's resume: closes a breaker awaiting approval; refuses otherwise, saying why.
pub fn operator_resume(
    state: BreakerState,
    operator: &str,
    note: Option<&str>,
) -> Result<Transition, String> {
    match state {
        BreakerState::AwaitingApproval => Ok(Transition {
            from: state,
            to: BreakerState::Closed,
            trigger: "operator_resume",
            reason: match note {
                Some(n) => format!("resumed by {operator}: {n}"),
                None => format!("resumed by {operator}"),
            },
        }),
        BreakerState::Open => Err(
            "the breaker is open and its recovery conditions have not passed; it can be resumed once it is awaiting approval"
                .into(),
        ),
        BreakerState::Closed => Err("the breaker is already closed".into()),
    }
}

/// Drawdown of the last value from the highest, in percent.
pub fn drawdown_pct(equities: &[f64], peak_hint: Option<f64>) -> f64 {
    let Some(&last) = equities.last() else {
        return 0.0;
    };
    let peak = equities
        .iter()
        .copied()
        .chain(peak_hint)
        .fold(f64::MIN, f64::max);
    if peak <= 0.0 || last >= peak {
        0.0
    } else {
        (peak - last) / peak * 100.0
    }
}

/// Trailing losing and winning streaks of closed trades' P&L, oldest first.
pub fn streaks(pnls: &[f64]) -> (u32, u32) {
    let count = |f: &dyn Fn(f64) -> bool| pnls.iter().rev().take_while(|p| f(**p)).count() as u32;
    (count(&|p| p < 0.0), count(&|p| p > 0.0))
}

/// Annualised Sharpe ratio (√252 × mean / sample standard deviation, risk-free rate 0) of
/// the returns between consecutive daily closing equities.
pub fn sharpe(daily_closes: &[f64]) -> Option<f64> {
    let returns: Vec<f64> = daily_closes
        .windows(2)
        .filter(|w| w[0] > 0.0)
        .map(|w| w[1] / w[0] - 1.0)
        .collect();
    if returns.len() < 3 {
        return None;
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    (sd > 0.0).then(|| mean / sd * 252f64.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> Metrics {
        Metrics {
            drawdown_pct: 2.0,
            daily_loss_pct: 0.0,
            losing_streak: 0,
            win_streak: 4,
            error_rate: Some(0.0),
            cycles: 10,
            sharpe_7d: Some(1.1),
        }
    }

    #[test]
    fn each_activation_rule_opens_the_breaker() {
        let r = BreakerRules::default();
        assert_eq!(observe(BreakerState::Closed, &calm(), &r), None);
        let cases = [
            (
                Metrics {
                    drawdown_pct: 20.0,
                    ..calm()
                },
                "drawdown",
            ),
            (
                Metrics {
                    daily_loss_pct: 6.0,
                    ..calm()
                },
                "daily_loss",
            ),
            (
                Metrics {
                    losing_streak: 5,
                    ..calm()
                },
                "losing_streak",
            ),
            (
                Metrics {
                    error_rate: Some(0.5),
                    cycles: 4,
                    ..calm()
                },
                "error_rate",
            ),
        ];
        for (m, code) in cases {
            let t = trips(&m, &r);
            assert_eq!(t.iter().map(|t| t.code).collect::<Vec<_>>(), vec![code]);
            let tr = observe(BreakerState::Closed, &m, &r).unwrap();
            assert_eq!((tr.to, tr.trigger), (BreakerState::Open, "activation"));
            assert_eq!(tr.reason, t[0].message);
        }
        // Too few cycles to judge an error rate.
        assert!(
            trips(
                &Metrics {
                    error_rate: Some(1.0),
                    cycles: 3,
                    ..calm()
                },
                &r
            )
            .is_empty()
        );
        // Already open: no new event.
        assert_eq!(
            observe(
                BreakerState::Open,
                &Metrics {
                    drawdown_pct: 30.0,
                    ..calm()
                },
                &r
            ),
            None
        );
    }

    #[test]
    fn the_full_cycle_closed_open_awaiting_closed() {
        let r = BreakerRules::default();
        let bad = Metrics {
            drawdown_pct: 22.0,
            win_streak: 0,
            sharpe_7d: Some(-0.4),
            ..calm()
        };
        let open = observe(BreakerState::Closed, &bad, &r).unwrap();
        assert_eq!(open.to, BreakerState::Open);
        let check = resume_check(&bad, &r);
        assert!(!check.passed);
        assert_eq!(auto_resume(BreakerState::Open, &check), None);
        assert!(
            operator_resume(BreakerState::Open, "ops", None).is_err(),
            "no resume before recovery"
        );

        let partly = Metrics {
            drawdown_pct: 14.0,
            win_streak: 2,
            sharpe_7d: Some(0.5),
            ..calm()
        };
        let check = resume_check(&partly, &r);
        let passed: Vec<bool> = check.conditions.iter().map(|c| c.passed).collect();
        assert_eq!(passed, vec![true, false, true]);
        assert_eq!(check.conditions[1].value, Some(2.0));
        assert_eq!(auto_resume(BreakerState::Open, &check), None);

        let recovered = Metrics {
            drawdown_pct: 14.0,
            win_streak: 3,
            sharpe_7d: Some(0.31),
            ..calm()
        };
        let check = resume_check(&recovered, &r);
        let t = auto_resume(BreakerState::Open, &check).unwrap();
        assert_eq!(
            (t.from, t.to),
            (BreakerState::Open, BreakerState::AwaitingApproval)
        );
        assert!(t.reason.contains("sharpe_7d 0.31"), "{}", t.reason);
        // Passing again while awaiting approval does not close it.
        assert_eq!(auto_resume(BreakerState::AwaitingApproval, &check), None);
        // A new trip while waiting opens it again.
        assert_eq!(
            observe(BreakerState::AwaitingApproval, &bad, &r)
                .unwrap()
                .to,
            BreakerState::Open
        );
        let closed =
            operator_resume(BreakerState::AwaitingApproval, "alice", Some("reviewed")).unwrap();
        assert_eq!(closed.to, BreakerState::Closed);
        assert_eq!(closed.reason, "resumed by alice: reviewed");
        assert!(operator_resume(BreakerState::Closed, "alice", None).is_err());
    }

    #[test]
    fn rules_are_checked() {
        assert!(BreakerRules::default().check().is_ok());
        let r = BreakerRules {
            max_error_rate: 1.5,
            ..BreakerRules::default()
        };
        assert_eq!(r.check().unwrap_err().0, "max_error_rate");
        let r = BreakerRules {
            max_losing_streak: 0,
            ..BreakerRules::default()
        };
        assert_eq!(r.check().unwrap_err().0, "max_losing_streak");
    }

    #[test]
    fn metrics_from_history() {
        assert_eq!(drawdown_pct(&[100.0, 120.0, 90.0], None), 25.0);
        assert_eq!(drawdown_pct(&[100.0], Some(200.0)), 50.0);
        assert_eq!(drawdown_pct(&[], None), 0.0);
        assert_eq!(streaks(&[5.0, -1.0, -2.0, -3.0]), (3, 0));
        assert_eq!(streaks(&[-5.0, 1.0, 2.0]), (0, 2));
        assert_eq!(sharpe(&[100.0, 101.0]), None, "too few returns");
        assert_eq!(sharpe(&[100.0, 100.0, 100.0, 100.0]), None, "no variation");
        let s = sharpe(&[100.0, 101.0, 100.5, 102.0, 103.0]).unwrap();
        // Returns 1%, -0.495%, 1.493%, 0.980%: mean/sd × √252.
        let r = [
            0.01,
            100.5 / 101.0 - 1.0,
            102.0 / 100.5 - 1.0,
            103.0 / 102.0 - 1.0,
        ];
        let mean = r.iter().sum::<f64>() / 4.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!((s - mean / sd * 252f64.sqrt()).abs() < 1e-12);
    }
}
