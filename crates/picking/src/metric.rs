//! MetricPicker: hard filters on liquidity, trading cost, size and market sensitivity.
//!
//! Each configured criterion is a filter. Verdicts: `Fail` if any known input breaks its
//! criterion (missing inputs are listed too); otherwise `Unavailable` if any needed input is
//! unknown; otherwise `Pass`. Score: 0 unless `Pass`; then the mean of the graded criteria —
//! volume `clamp(log10(avg_volume / min) / 2, 0, 1)` (full marks two decades above the
//! minimum) and spread `1 - spread / max` — or 1 when neither is configured. Market cap and
//! beta ranges only filter.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::pick::{Candidate, PickerId, PickerOutput, Reason, SymbolScore, Verdict};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricCriteria {
    /// Minimum average daily volume (shares).
    pub min_avg_volume: Option<f64>,
    /// Maximum average spread as a fraction of price.
    pub max_spread: Option<f64>,
    pub min_market_cap: Option<f64>,
    pub max_market_cap: Option<f64>,
    pub min_beta: Option<f64>,
    pub max_beta: Option<f64>,
}

impl Default for MetricCriteria {
    /// Liquid, cheap to trade, at least small-cap, not wildly levered to the market.
    fn default() -> Self {
        MetricCriteria {
            min_avg_volume: Some(500_000.0),
            max_spread: Some(0.002),
            min_market_cap: Some(1e9),
            max_market_cap: None,
            min_beta: Some(0.3),
            max_beta: Some(2.0),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricPicker {
    pub criteria: MetricCriteria,
}

/// The running state of one symbol's evaluation.
#[derive(Default)]
struct Judgement {
    failed: bool,
    missing: Vec<String>,
    grades: Vec<f64>,
    reasons: Vec<Reason>,
}

impl Judgement {
    fn unknown(&mut self, field: &str) {
        self.missing.push(field.to_string());
        self.reasons.push(Reason::new(
            "missing",
            None,
            None,
            format!("{field} is unknown"),
        ));
    }

    /// Checks `value` against `[min, max]` (either side optional) for field `name`.
    fn range(&mut self, name: &str, value: Option<f64>, min: Option<f64>, max: Option<f64>) {
        if min.is_none() && max.is_none() {
            return;
        }
        let Some(v) = value else {
            return self.unknown(name);
        };
        if let Some(lo) = min.filter(|lo| v < *lo) {
            self.failed = true;
            let msg = format!("{name} {v} is below the minimum {lo}");
            self.reasons.push(Reason::new(
                &format!("{name}_below_min"),
                Some(v),
                Some(lo),
                msg,
            ));
        } else if let Some(hi) = max.filter(|hi| v > *hi) {
            self.failed = true;
            let msg = format!("{name} {v} is above the maximum {hi}");
            self.reasons.push(Reason::new(
                &format!("{name}_above_max"),
                Some(v),
                Some(hi),
                msg,
            ));
        } else {
            let bound = |b: Option<f64>| b.map_or_else(|| "…".to_string(), |x| x.to_string());
            let msg = format!("{name} {v} is within [{}, {}]", bound(min), bound(max));
            self.reasons.push(Reason::new(
                &format!("{name}_ok"),
                Some(v),
                min.or(max),
                msg,
            ));
        }
    }
}

impl MetricPicker {
    pub fn new(criteria: MetricCriteria) -> MetricPicker {
        MetricPicker { criteria }
    }

    pub fn pick(&self, candidates: &[Candidate]) -> PickerOutput {
        PickerOutput {
            picker: PickerId::Metric,
            scores: candidates.iter().map(|c| self.judge(c)).collect(),
        }
    }

    pub fn judge(&self, candidate: &Candidate) -> SymbolScore {
        let c = &self.criteria;
        let (symbol, features) = (&candidate.symbol, &candidate.features);
        let mut j = Judgement::default();

        j.range("avg_volume", features.avg_volume, c.min_avg_volume, None);
        if let (Some(min), Some(v)) = (c.min_avg_volume, features.avg_volume) {
            // A non-positive minimum admits everything: full marks (and no log of ≤ 0).
            j.grades.push(if min > 0.0 {
                ((v / min).log10() / 2.0).clamp(0.0, 1.0)
            } else {
                1.0
            });
        }
        j.range("avg_spread", symbol.avg_spread, None, c.max_spread);
        if let (Some(max), Some(s)) = (c.max_spread, symbol.avg_spread) {
            j.grades.push(if max > 0.0 {
                (1.0 - s / max).clamp(0.0, 1.0)
            } else {
                1.0
            });
        }
        j.range(
            "market_cap",
            symbol.market_cap,
            c.min_market_cap,
            c.max_market_cap,
        );
        j.range("beta", symbol.beta, c.min_beta, c.max_beta);

        let verdict = if j.failed {
            Verdict::Fail
        } else if !j.missing.is_empty() {
            Verdict::Unavailable
        } else {
            Verdict::Pass
        };
        let score = match verdict {
            Verdict::Pass if j.grades.is_empty() => 1.0,
            Verdict::Pass => j.grades.iter().sum::<f64>() / j.grades.len() as f64,
            _ => 0.0,
        };
        SymbolScore {
            ticker: symbol.ticker.clone(),
            score,
            verdict: Some(verdict),
            missing: j.missing,
            reasons: j.reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::SymbolFeatures;
    use crate::market::Symbol;

    fn candidate(
        ticker: &str,
        volume: Option<f64>,
        spread: Option<f64>,
        cap: Option<f64>,
        beta: Option<f64>,
    ) -> Candidate {
        let mut symbol = Symbol::new(ticker);
        symbol.avg_spread = spread;
        symbol.market_cap = cap;
        symbol.beta = beta;
        Candidate {
            symbol,
            features: SymbolFeatures {
                ticker: ticker.into(),
                last_close: Some(10.0),
                avg_volume: volume,
                avg_dollar_volume: volume.map(|v| v * 10.0),
                volatility: None,
                momentum: None,
                max_drawdown: None,
            },
        }
    }

    fn picker() -> MetricPicker {
        MetricPicker::new(MetricCriteria {
            min_avg_volume: Some(1e6),
            max_spread: Some(0.002),
            min_market_cap: Some(1e9),
            max_market_cap: Some(1e12),
            min_beta: Some(0.5),
            max_beta: Some(1.5),
        })
    }

    fn codes(s: &SymbolScore) -> Vec<&str> {
        s.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn passing_symbols_are_graded_on_volume_and_spread() {
        // Volume one decade above the minimum: 0.5; spread half the maximum: 0.5.
        let a = picker().judge(&candidate(
            "A",
            Some(1e7),
            Some(0.001),
            Some(5e10),
            Some(1.0),
        ));
        assert_eq!(a.verdict, Some(Verdict::Pass));
        assert!((a.score - 0.5).abs() < 1e-12);
        assert_eq!(
            codes(&a),
            ["avg_volume_ok", "avg_spread_ok", "market_cap_ok", "beta_ok"]
        );
        // Two decades: 1.0; a quarter of the maximum spread: 0.75 → 0.875.
        let b = picker().judge(&candidate(
            "B",
            Some(1e8),
            Some(0.0005),
            Some(5e10),
            Some(1.0),
        ));
        assert!((b.score - 0.875).abs() < 1e-12);
    }

    #[test]
    fn failures_name_the_criterion_value_and_threshold() {
        let c = picker().judge(&candidate(
            "C",
            Some(5e5),
            Some(0.001),
            Some(5e10),
            Some(1.6),
        ));
        assert_eq!(c.verdict, Some(Verdict::Fail));
        assert_eq!(c.score, 0.0);
        let low = &c.reasons[0];
        assert_eq!(
            (low.code.as_str(), low.value, low.threshold),
            ("avg_volume_below_min", Some(5e5), Some(1e6))
        );
        assert_eq!(c.reasons[3].code, "beta_above_max");
        assert_eq!(c.reasons[3].threshold, Some(1.5));
        assert_eq!(
            c.reasons[2].message,
            "market_cap 50000000000 is within [1000000000, 1000000000000]"
        );
    }

    #[test]
    fn unknown_fundamentals_are_unavailable_with_the_missing_fields() {
        let d = picker().judge(&candidate("D", Some(1e7), Some(0.001), None, None));
        assert_eq!(d.verdict, Some(Verdict::Unavailable));
        assert_eq!(d.missing, ["market_cap", "beta"]);
        assert_eq!(d.score, 0.0);
        // A known failure still fails, and the unknowns are still listed.
        let e = picker().judge(&candidate("E", Some(1e5), None, None, Some(1.0)));
        assert_eq!(e.verdict, Some(Verdict::Fail));
        assert_eq!(e.missing, ["avg_spread", "market_cap"]);
    }

    #[test]
    fn unconfigured_criteria_are_ignored() {
        let none = MetricPicker::new(MetricCriteria {
            min_avg_volume: None,
            max_spread: None,
            min_market_cap: None,
            max_market_cap: None,
            min_beta: None,
            max_beta: None,
        });
        let s = none.judge(&candidate("F", None, None, None, None));
        assert_eq!((s.verdict, s.score), (Some(Verdict::Pass), 1.0));
        assert!(s.missing.is_empty());
        let out = picker().pick(&[candidate(
            "A",
            Some(1e7),
            Some(0.001),
            Some(5e10),
            Some(1.0),
        )]);
        assert_eq!(out.picker, PickerId::Metric);
        assert_eq!(out.scores.len(), 1);
    }
}
