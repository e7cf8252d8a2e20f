//! The scorecard: how each picker's (and the ensemble's) suggestions did afterwards.
//!
//! Per source: count, win rate (forward return strictly above 0), mean and median forward
//! return, mean excess over the universe's equal-weight return for the same day and horizon,
//! and percentile-bootstrap confidence intervals for the mean excess and the win rate, drawn
//! from a seeded PRNG so the same data and seed give the same interval.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::indicators::mean;
use crate::rng::SeededRng;

/// One suggestion's result at one horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `"metric"`, `"fuzzy"`, `"llm"` or `"ensemble"`.
    pub source: String,
    pub ticker: String,
    pub suggested_on: Date,
    pub forward_return: f64,
    /// The universe's equal-weight forward return for the same day and horizon.
    pub universe_return: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    pub resamples: usize,
    /// Two-sided coverage, e.g. 0.95.
    pub confidence: f64,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: 2000,
            confidence: 0.95,
            seed: 0x7e55e7a,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    pub low: f64,
    pub high: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    pub source: String,
    pub count: usize,
    pub win_rate: f64,
    pub mean_return: f64,
    pub median_return: f64,
    pub mean_excess: f64,
    pub excess_ci: ConfidenceInterval,
    pub win_rate_ci: ConfidenceInterval,
}

/// Statistics per source, sorted by source name.
pub fn scorecard(outcomes: &[Outcome], bootstrap: &Bootstrap) -> Vec<SourceStats> {
    let mut by_source: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes
        .iter()
        .filter(|o| o.forward_return.is_finite() && o.universe_return.is_finite())
    {
        by_source.entry(o.source.as_str()).or_default().push(o);
    }
    by_source
        .into_iter()
        .map(|(source, os)| {
            let returns: Vec<f64> = os.iter().map(|o| o.forward_return).collect();
            let excess: Vec<f64> = os
                .iter()
                .map(|o| o.forward_return - o.universe_return)
                .collect();
            let wins: Vec<f64> = returns
                .iter()
                .map(|r| if *r > 0.0 { 1.0 } else { 0.0 })
                .collect();
            SourceStats {
                source: source.to_string(),
                count: os.len(),
                win_rate: mean(&wins),
                mean_return: mean(&returns),
                median_return: median(&returns),
                mean_excess: mean(&excess),
                excess_ci: bootstrap_mean_ci(&excess, bootstrap),
                win_rate_ci: bootstrap_mean_ci(&wins, bootstrap),
            }
        })
        .collect()
}

/// The middle value (mean of the two middle values for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Percentile bootstrap interval of the mean: resample with replacement, take the
/// `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles (linear interpolation) of the
/// resampled means. The interval of an empty sample is NaN.
pub fn bootstrap_mean_ci(values: &[f64], cfg: &Bootstrap) -> ConfidenceInterval {
    if values.is_empty() || cfg.resamples == 0 {
        return ConfidenceInterval {
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    let mut rng = SeededRng::new(cfg.seed);
    let n = values.len();
    let mut means: Vec<f64> = (0..cfg.resamples)
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - cfg.confidence) / 2.0;
    ConfidenceInterval {
        low: quantile(&means, alpha),
        high: quantile(&means, 1.0 - alpha),
    }
}

/// Linear-interpolation quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(source: &str, r: f64, u: f64) -> Outcome {
        Outcome {
            source: source.into(),
            ticker: "T".into(),
            suggested_on: "2024-04-01".parse().unwrap(),
            forward_return: r,
            universe_return: u,
        }
    }

    fn near(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn statistics_by_hand() {
        let os = [
            outcome("metric", 0.02, 0.01),
            outcome("metric", -0.01, 0.01),
            outcome("metric", 0.03, 0.01),
            outcome("metric", 0.00, 0.01),
            outcome("ensemble", 0.05, 0.0),
            outcome("ensemble", -0.02, 0.0),
            outcome("ensemble", 0.01, 0.03),
            outcome("ensemble", f64::NAN, 0.0), // not yet known: ignored
        ];
        let card = scorecard(&os, &Bootstrap::default());
        let names: Vec<&str> = card.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(names, ["ensemble", "metric"]);
        let m = &card[1];
        assert_eq!(m.count, 4);
        near(m.win_rate, 0.5); // a zero return is not a win
        near(m.mean_return, 0.01);
        near(m.median_return, 0.01); // (0.00 + 0.02) / 2
        near(m.mean_excess, 0.0);
        let e = &card[0];
        assert_eq!(e.count, 3);
        near(e.win_rate, 2.0 / 3.0);
        near(e.median_return, 0.01);
        near(e.mean_excess, (0.05 - 0.02 - 0.02) / 3.0);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let xs = [0.03, -0.01, 0.02, 0.05, -0.04, 0.01, 0.00, 0.02];
        let cfg = Bootstrap::default();
        let ci = bootstrap_mean_ci(&xs, &cfg);
        assert_eq!(ci, bootstrap_mean_ci(&xs, &cfg), "same seed, same interval");
        assert_ne!(ci, bootstrap_mean_ci(&xs, &Bootstrap { seed: 1, ..cfg }));
        let m = mean(&xs);
        assert!(ci.low < m && m < ci.high, "{ci:?} around {m}");
        // Constant data: the interval collapses to the value.
        let c = bootstrap_mean_ci(&[0.02; 5], &cfg);
        near(c.low, 0.02);
        near(c.high, 0.02);
        // Two values 0 and 1: resampled means are 0, ½ or 1 with chances ¼, ½, ¼, so the
        // 2.5 % and 97.5 % quantiles are 0 and 1.
        let two = bootstrap_mean_ci(&[0.0, 1.0], &cfg);
        assert_eq!((two.low, two.high), (0.0, 1.0));
        assert!(bootstrap_mean_ci(&[], &cfg).low.is_nan());
    }

    #[test]
    fn median_of_odd_even_and_unsorted() {
        near(median(&[3.0, 1.0, 2.0]), 2.0);
        near(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
