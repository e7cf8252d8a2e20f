//! One discovery run's rules beyond the pickers themselves: the tenant's settings and their
//! checks, the description a candidate is embedded by (to find similar past trades), which
//! ranked symbols a run keeps as suggestions and for whom, and the equal-weight index used
//! when the universe has no index of its own.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::ensemble::{EnsembleConfig, EnsembleResult, RankedSymbol};
use crate::fuzzy::{FuzzyConfig, FuzzyWeights};
use crate::indicators::FeatureWindows;
use crate::market::{Bar, FieldError, Interval};
use crate::metric::MetricCriteria;
use crate::pick::{Candidate, PickerId, PickerOutput, Verdict};

/// A tenant's discovery settings. Every field is optional in JSON (the default is used);
/// `metric` replaces the whole criteria (an absent criterion is off).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverySettings {
    pub metric: MetricCriteria,
    pub fuzzy_weights: FuzzyWeights,
    /// The ensemble's weight per picker.
    pub weights: BTreeMap<PickerId, f64>,
    /// How many ranked symbols are suggestions (for the ensemble, and per picker).
    pub suggestions: usize,
    pub watchlist_max_size: usize,
    /// The index ticker for market conditions; `None`: the universe's equal-weight index.
    pub index: Option<String>,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings {
            metric: MetricCriteria::default(),
            fuzzy_weights: FuzzyConfig::default().weights,
            weights: EnsembleConfig::default().weights,
            suggestions: 20,
            watchlist_max_size: 25,
            index: None,
        }
    }
}

pub const MAX_SUGGESTIONS: usize = 200;
pub const MAX_WATCHLIST: usize = 1000;

impl DiscoverySettings {
    /// Checks the numbers, naming the first bad field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let m = &self.metric;
        for (field, v) in [
            ("metric.min_avg_volume", m.min_avg_volume),
            ("metric.max_spread", m.max_spread),
            ("metric.min_market_cap", m.min_market_cap),
            ("metric.max_market_cap", m.max_market_cap),
            ("metric.min_beta", m.min_beta),
            ("metric.max_beta", m.max_beta),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(FieldError::new(
                    field,
                    format!("{field} must be a finite number"),
                ));
            }
        }
        let w = &self.fuzzy_weights;
        let fuzzy = [
            ("fuzzy_weights.liquidity", w.liquidity),
            ("fuzzy_weights.volatility", w.volatility),
            ("fuzzy_weights.momentum", w.momentum),
            ("fuzzy_weights.sector_balance", w.sector_balance),
        ];
        for (field, v) in fuzzy {
            if !v.is_finite() || v < 0.0 {
                return Err(FieldError::new(
                    field,
                    format!("{field} must be a number ≥ 0"),
                ));
            }
        }
        if fuzzy.iter().all(|(_, v)| *v == 0.0) {
            return Err(FieldError::new(
                "fuzzy_weights",
                "at least one fuzzy weight must be positive",
            ));
        }
        for (picker, v) in &self.weights {
            if !v.is_finite() || *v < 0.0 {
                return Err(FieldError::new(
                    &format!("weights.{}", picker.as_str()),
                    "a picker's weight must be a number ≥ 0",
                ));
            }
        }
        if !self.weights.values().any(|v| *v > 0.0) {
            return Err(FieldError::new(
                "weights",
                "at least one picker weight must be positive",
            ));
        }
        if !(1..=MAX_SUGGESTIONS).contains(&self.suggestions) {
            return Err(FieldError::new(
                "suggestions",
                format!("suggestions must be 1-{MAX_SUGGESTIONS}"),
            ));
        }
        if !(1..=MAX_WATCHLIST).contains(&self.watchlist_max_size) {
            return Err(FieldError::new(
                "watchlist_max_size",
                format!("watchlist_max_size must be 1-{MAX_WATCHLIST}"),
            ));
        }
        Ok(())
    }

    pub fn fuzzy(&self) -> FuzzyConfig {
        FuzzyConfig {
            weights: self.fuzzy_weights,
            ..FuzzyConfig::default()
        }
    }

    pub fn ensemble(&self) -> EnsembleConfig {
        EnsembleConfig {
            weights: self.weights.clone(),
            top_n: self.suggestions,
            ..EnsembleConfig::default()
        }
    }

    /// The look-backs features are computed over, and so how much history a run reads.
    pub fn windows(&self) -> FeatureWindows {
        FeatureWindows::default()
    }
}

/// Calendar days of daily bars a run must read for `windows` (trading days), with room for
/// weekends and holidays.
pub fn history_days(windows: &FeatureWindows) -> i32 {
    let longest = windows
        .volume
        .max(windows.volatility)
        .max(windows.momentum)
        .max(windows.drawdown) as i32;
    longest * 7 / 5 + 14
}

/// The text a candidate's setup is embedded as, in the same shape as a trade's description
/// ([`trade_description`]), so the nearest trades are those on similar setups.
pub fn candidate_description(c: &Candidate) -> String {
    setup_line(
        "buy",
        &c.symbol.ticker,
        c.symbol.sector.as_deref(),
        c.features.momentum,
        c.features.volatility,
    )
}

/// The text an executed trade is embedded as.
pub fn trade_description(
    side: &str,
    ticker: &str,
    sector: Option<&str>,
    momentum: Option<f64>,
    volatility: Option<f64>,
    reasoning: &str,
) -> String {
    let mut line = setup_line(side, ticker, sector, momentum, volatility);
    if !reasoning.trim().is_empty() {
        line.push_str("; reasoning: ");
        line.push_str(reasoning.trim());
    }
    line
}

fn setup_line(
    side: &str,
    ticker: &str,
    sector: Option<&str>,
    momentum: Option<f64>,
    volatility: Option<f64>,
) -> String {
    let pct = |v: Option<f64>| v.map_or("unknown".to_string(), |v| format!("{:+.1}%", v * 100.0));
    format!(
        "{side} {ticker}, sector {}, 3-month momentum {}, volatility {}",
        sector.unwrap_or("unknown"),
        pct(momentum),
        pct(volatility),
    )
}

/// A ranked symbol kept by a run, and whose suggestion it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub ranked: RankedSymbol,
    /// `"ensemble"` and/or picker ids.
    pub sources: Vec<String>,
}

/// The ensemble's top `n` symbols that no picker rejected, and each picker's own top `n`
/// (its score, ticker A–Z on ties; `Pass` or verdict-free scores only), merged: one row per
/// symbol listing every source that suggests it, in ensemble rank order.
pub fn select_suggestions(
    result: &EnsembleResult,
    outputs: &[PickerOutput],
    n: usize,
) -> Vec<Suggestion> {
    let mut sources: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in result
        .ranked
        .iter()
        .filter(|r| r.rejected_by.is_empty())
        .take(n)
    {
        sources
            .entry(&r.ticker)
            .or_default()
            .push("ensemble".into());
    }
    for output in outputs {
        let mut own: Vec<_> = output
            .scores
            .iter()
            .filter(|s| matches!(s.verdict, None | Some(Verdict::Pass)))
            .collect();
        own.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.ticker.cmp(&b.ticker)));
        own.dedup_by(|a, b| a.ticker == b.ticker);
        for s in own.into_iter().take(n) {
            sources
                .entry(&s.ticker)
                .or_default()
                .push(output.picker.as_str().into());
        }
    }
    result
        .ranked
        .iter()
        .filter_map(|r| {
            sources.get(r.ticker.as_str()).map(|s| Suggestion {
                ranked: r.clone(),
                sources: s.clone(),
            })
        })
        .collect()
}

/// An equal-weight index of `universe`'s daily bars: each day the mean simple return of the
/// symbols that traded that day and the day before, chained from 100. Volume is the sum.
pub fn equal_weight_index(ticker: &str, universe: &[&[Bar]]) -> Vec<Bar> {
    // Per date: (sum of returns, count, volume).
    let mut days: BTreeMap<Date, (f64, usize, f64)> = BTreeMap::new();
    for bars in universe {
        for pair in bars.windows(2) {
            let (prev, bar) = (&pair[0], &pair[1]);
            if prev.interval != Interval::Day || bar.interval != Interval::Day || prev.close <= 0.0
            {
                continue;
            }
            let e = days.entry(bar.date()).or_insert((0.0, 0, 0.0));
            e.0 += bar.close / prev.close - 1.0;
            e.1 += 1;
            e.2 += bar.volume;
        }
    }
    let mut level = 100.0;
    days.into_iter()
        .map(|(day, (sum, count, volume))| {
            level *= 1.0 + sum / count as f64;
            Bar {
                symbol: ticker.to_string(),
                interval: Interval::Day,
                time: day.midnight_utc(),
                open: level,
                high: level,
                low: level,
                close: level,
                volume,
            }
        })
        .collect()
}

/// The realised return of a closed trade: long `exit/entry − 1`, short `(entry − exit)/entry`;
/// `None` unless both prices are positive and finite.
pub fn trade_return(side: &str, entry: f64, exit: f64) -> Option<f64> {
    let ok = |p: f64| p.is_finite() && p > 0.0;
    if !ok(entry) || !ok(exit) {
        return None;
    }
    match side {
        "buy" => Some(exit / entry - 1.0),
        "sell" => Some((entry - exit) / entry),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ensemble::EnsembleCombiner;
    use crate::pick::{Reason, SymbolScore};

    fn score(ticker: &str, score: f64, verdict: Option<Verdict>) -> SymbolScore {
        SymbolScore {
            ticker: ticker.into(),
            score,
            verdict,
            missing: vec![],
            reasons: vec![Reason::new("t", None, None, "test")],
        }
    }

    #[test]
    fn suggestions_name_every_source_in_ensemble_order() {
        let metric = PickerOutput {
            picker: PickerId::Metric,
            scores: vec![
                score("A", 0.9, Some(Verdict::Pass)),
                score("B", 0.5, Some(Verdict::Pass)),
                score("C", 0.0, Some(Verdict::Fail)),
            ],
        };
        let fuzzy = PickerOutput {
            picker: PickerId::Fuzzy,
            scores: vec![
                score("A", 0.2, None),
                score("B", 0.4, None),
                score("C", 0.95, None),
            ],
        };
        let outputs = [metric, fuzzy];
        let result = EnsembleCombiner::default().combine(&outputs);
        let picked = select_suggestions(&result, &outputs, 1);
        let rows: Vec<(&str, Vec<&str>)> = picked
            .iter()
            .map(|s| {
                (
                    s.ranked.ticker.as_str(),
                    s.sources.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        // Ensemble: A = (0.4·0.9 + 0.35·0.2)/0.75 = 0.573, B = (0.2 + 0.14)/0.75 = 0.453; C is
        // rejected by metric, so last. Metric's top is A; fuzzy's top is C.
        assert_eq!(
            rows,
            vec![("A", vec!["ensemble", "metric"]), ("C", vec!["fuzzy"])]
        );
    }

    #[test]
    fn settings_name_the_bad_field() {
        let mut s = DiscoverySettings::default();
        assert!(s.validate().is_ok());
        s.weights.insert(PickerId::Fuzzy, -1.0);
        assert_eq!(s.validate().unwrap_err().field, "weights.fuzzy");
        let s = DiscoverySettings {
            suggestions: 0,
            ..DiscoverySettings::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "suggestions");
        let s: Result<DiscoverySettings, _> = serde_json::from_str(r#"{"nope": 1}"#);
        assert!(s.is_err());
        let s: DiscoverySettings = serde_json::from_str(r#"{"watchlist_max_size": 3}"#).unwrap();
        assert_eq!((s.watchlist_max_size, s.suggestions), (3, 20));
    }

    #[test]
    fn equal_weight_index_chains_mean_returns() {
        let bar = |day: i64, close: f64| Bar {
            symbol: "X".into(),
            interval: Interval::Day,
            time: day * 86_400,
            open: close,
            high: close,
            low: close,
            close,
            volume: 10.0,
        };
        let a = [bar(0, 10.0), bar(1, 11.0), bar(2, 11.0)];
        let b = [bar(0, 20.0), bar(1, 20.0), bar(2, 18.0)];
        let index = equal_weight_index("EW", &[&a, &b]);
        // Day 1: (+10 % + 0 %)/2 = +5 % → 105; day 2: (0 % − 10 %)/2 = −5 % → 99.75.
        let closes: Vec<f64> = index.iter().map(|b| b.close).collect();
        assert_eq!(closes.len(), 2);
        assert!((closes[0] - 105.0).abs() < 1e-9 && (closes[1] - 99.75).abs() < 1e-9);
        assert_eq!(index[0].volume, 20.0);
    }

    #[test]
    fn trade_returns_follow_the_side() {
        assert!((trade_return("buy", 100.0, 110.0).unwrap() - 0.10).abs() < 1e-12);
        assert!((trade_return("sell", 100.0, 110.0).unwrap() + 0.10).abs() < 1e-12);
        assert!((trade_return("sell", 100.0, 90.0).unwrap() - 0.10).abs() < 1e-12);
        assert_eq!(trade_return("buy", 0.0, 1.0), None);
        assert_eq!(trade_return("hold", 1.0, 1.0), None);
    }

    #[test]
    fn history_covers_the_longest_window() {
        assert!(history_days(&FeatureWindows::default()) >= 252 * 7 / 5);
    }

    #[test]
    fn a_trade_and_a_candidate_read_alike() {
        let t = trade_description("buy", "AAA", Some("Energy"), Some(0.1), None, "breakout");
        assert_eq!(
            t,
            "buy AAA, sector Energy, 3-month momentum +10.0%, volatility unknown; reasoning: breakout"
        );
    }
}
