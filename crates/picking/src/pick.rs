//! What every picker returns: a score per symbol, a verdict where it filters, and reasons.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::indicators::{FeatureWindows, SymbolFeatures};
use crate::market::{Bar, Symbol};

/// The pickers the ensemble knows.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PickerId {
    Metric,
    Fuzzy,
    Llm,
}

impl PickerId {
    pub fn as_str(self) -> &'static str {
        match self {
            PickerId::Metric => "metric",
            PickerId::Fuzzy => "fuzzy",
            PickerId::Llm => "llm",
        }
    }
}

/// A filtering picker's decision on a symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// The inputs needed to decide are unknown; [`SymbolScore::missing`] lists them.
    Unavailable,
}

/// One reason behind a score: machine-readable code, the measured value and the threshold it
/// was compared with (where there is one), and a sentence for people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
}

impl Reason {
    pub fn new(
        code: &str,
        value: Option<f64>,
        threshold: Option<f64>,
        message: impl Into<String>,
    ) -> Reason {
        Reason {
            code: code.to_string(),
            value,
            threshold,
            message: message.into(),
        }
    }
}

/// A picker's judgement of one symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymbolScore {
    pub ticker: String,
    /// In [0, 1]; higher is better.
    pub score: f64,
    /// `None` for pickers that only score.
    pub verdict: Option<Verdict>,
    /// Names of unknown inputs (non-empty exactly when some input was missing).
    pub missing: Vec<String>,
    pub reasons: Vec<Reason>,
}

impl SymbolScore {
    /// Whether this picker rejects the symbol: a `Fail` verdict, or for a picker without
    /// verdicts a score at or below `reject_below`.
    pub fn rejects(&self, reject_below: f64) -> bool {
        match self.verdict {
            Some(Verdict::Fail) => true,
            Some(Verdict::Pass | Verdict::Unavailable) => false,
            None => self.score <= reject_below,
        }
    }
}

/// Everything one picker said in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PickerOutput {
    pub picker: PickerId,
    pub scores: Vec<SymbolScore>,
}

/// A symbol up for judgement, with its trading features as of the decision day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub symbol: Symbol,
    pub features: SymbolFeatures,
}

impl Candidate {
    /// The candidate as known at the end of `day`: features from daily bars dated on or
    /// before it only (bars in ascending order), so a walk-forward run cannot peek ahead.
    pub fn as_of(symbol: &Symbol, bars: &[Bar], day: Date, windows: &FeatureWindows) -> Candidate {
        let known = bars.partition_point(|b| b.date() <= day);
        Candidate {
            symbol: symbol.clone(),
            features: SymbolFeatures::from_bars(&symbol.ticker, &bars[..known], windows),
        }
    }
}

/// A holding in the current portfolio; `weight` is its share of the portfolio's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "PickerPosition")]
pub struct Position {
    pub ticker: String,
    pub sector: Option<String>,
    pub weight: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "PickerPortfolio")]
pub struct Portfolio {
    pub positions: Vec<Position>,
}

impl Portfolio {
    /// The share of the portfolio held in `sector` (absolute weights, so shorts count as
    /// exposure); 0 for an empty portfolio.
    pub fn sector_weight(&self, sector: &str) -> f64 {
        let total: f64 = self.positions.iter().map(|p| p.weight.abs()).sum();
        if total <= 0.0 {
            return 0.0;
        }
        let in_sector: f64 = self
            .positions
            .iter()
            .filter(|p| p.sector.as_deref() == Some(sector))
            .map(|p| p.weight.abs())
            .sum();
        in_sector / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(verdict: Option<Verdict>, score: f64) -> SymbolScore {
        SymbolScore {
            ticker: "X".into(),
            score,
            verdict,
            missing: vec![],
            reasons: vec![],
        }
    }

    #[test]
    fn rejection_is_a_fail_or_a_low_score_without_verdict() {
        assert!(score(Some(Verdict::Fail), 0.9).rejects(0.2));
        assert!(!score(Some(Verdict::Unavailable), 0.0).rejects(0.2));
        assert!(!score(Some(Verdict::Pass), 0.1).rejects(0.2));
        assert!(score(None, 0.2).rejects(0.2));
        assert!(!score(None, 0.21).rejects(0.2));
    }

    #[test]
    fn candidates_see_only_bars_up_to_their_day() {
        let start: Date = "2024-04-01".parse().unwrap();
        let bars: Vec<Bar> = [10.0, 11.0, 12.0, 99.0]
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar {
                symbol: "X".into(),
                interval: crate::market::Interval::Day,
                time: start.add_days(i as i32).midnight_utc(),
                open: c,
                high: c,
                low: c,
                close: c,
                volume: 100.0 * (i + 1) as f64,
            })
            .collect();
        let w = FeatureWindows {
            volume: 3,
            volatility: 2,
            momentum: 2,
            drawdown: 10,
        };
        let c = Candidate::as_of(&Symbol::new("X"), &bars, start.add_days(2), &w);
        assert_eq!(c.features.last_close, Some(12.0));
        assert_eq!(c.features.avg_volume, Some(200.0)); // (100 + 200 + 300) / 3
        assert!((c.features.momentum.unwrap() - 0.2).abs() < 1e-12); // 12 / 10 - 1
    }

    #[test]
    fn sector_weight_is_share_of_absolute_exposure() {
        let p = Portfolio {
            positions: vec![
                Position {
                    ticker: "A".into(),
                    sector: Some("Tech".into()),
                    weight: 0.3,
                },
                Position {
                    ticker: "B".into(),
                    sector: Some("Energy".into()),
                    weight: 0.5,
                },
                Position {
                    ticker: "C".into(),
                    sector: Some("Tech".into()),
                    weight: -0.2,
                },
            ],
        };
        assert!((p.sector_weight("Tech") - 0.5).abs() < 1e-12);
        assert_eq!(p.sector_weight("Health"), 0.0);
        assert_eq!(Portfolio::default().sector_weight("Tech"), 0.0);
    }
}
