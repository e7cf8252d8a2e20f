//! Indicators from daily bars, and the per-symbol feature set the pickers read.
//!
//! All functions take closes or bars in ascending time order and look only at the last
//! `window` observations, so a caller that truncates history at a day gets exactly what was
//! known that day. A result that needs more history than is given is `None`, never a guess.

use serde::{Deserialize, Serialize};

use crate::market::Bar;

/// Trading days per year, for annualising daily volatility.
pub const TRADING_DAYS_PER_YEAR: f64 = 252.0;

/// Mean volume of the last `window` bars.
pub fn average_volume(bars: &[Bar], window: usize) -> Option<f64> {
    let tail = last(bars, window)?;
    Some(tail.iter().map(|b| b.volume).sum::<f64>() / window as f64)
}

/// Mean traded value (close × volume) of the last `window` bars: liquidity comparable across
/// prices.
pub fn average_dollar_volume(bars: &[Bar], window: usize) -> Option<f64> {
    let tail = last(bars, window)?;
    Some(tail.iter().map(|b| b.close * b.volume).sum::<f64>() / window as f64)
}

/// `ln(c[t] / c[t-1])` for each consecutive pair.
pub fn log_returns(closes: &[f64]) -> Vec<f64> {
    closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

/// `c[t] / c[t-1] - 1` for each consecutive pair.
pub fn simple_returns(closes: &[f64]) -> Vec<f64> {
    closes.windows(2).map(|w| w[1] / w[0] - 1.0).collect()
}

/// Annualised realised volatility: the sample standard deviation (n - 1) of the last
/// `window` daily log returns, times √252. Needs `window + 1` closes and `window ≥ 2`.
pub fn realised_volatility(closes: &[f64], window: usize) -> Option<f64> {
    if window < 2 {
        return None;
    }
    let returns = log_returns(last(closes, window + 1)?);
    Some(sample_std(&returns) * TRADING_DAYS_PER_YEAR.sqrt())
}

/// The `n`-day return `c[last] / c[last - n] - 1`.
pub fn momentum(closes: &[f64], n: usize) -> Option<f64> {
    let tail = last(closes, n + 1)?;
    Some(tail[n] / tail[0] - 1.0)
}

/// Beta of an asset against an index over the last `window` simple daily returns:
/// `cov(asset, index) / var(index)`. The two close series must be aligned day by day
/// (see [`align_closes`]); `None` when too short or the index never moved.
pub fn beta(asset_closes: &[f64], index_closes: &[f64], window: usize) -> Option<f64> {
    if asset_closes.len() != index_closes.len() || window < 2 {
        return None;
    }
    let a = simple_returns(last(asset_closes, window + 1)?);
    let i = simple_returns(last(index_closes, window + 1)?);
    let (ma, mi) = (mean(&a), mean(&i));
    let cov: f64 = a.iter().zip(&i).map(|(x, y)| (x - ma) * (y - mi)).sum();
    let var: f64 = i.iter().map(|y| (y - mi).powi(2)).sum();
    (var > 0.0).then(|| cov / var)
}

/// The largest peak-to-trough fall as a fraction of the peak (0.25 = 25 % below the high).
pub fn max_drawdown(closes: &[f64]) -> f64 {
    let mut peak = f64::NEG_INFINITY;
    let mut worst: f64 = 0.0;
    for &c in closes {
        peak = peak.max(c);
        worst = worst.max(1.0 - c / peak);
    }
    worst
}

/// How far the last close sits below the highest close of the series.
pub fn current_drawdown(closes: &[f64]) -> f64 {
    let peak = closes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    closes.last().map_or(0.0, |c| 1.0 - c / peak)
}

/// Closes of two bar series on the days both have a bar, in date order.
pub fn align_closes(asset: &[Bar], index: &[Bar]) -> (Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < asset.len() && j < index.len() {
        match asset[i].time.cmp(&index[j].time) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                a.push(asset[i].close);
                b.push(index[j].close);
                i += 1;
                j += 1;
            }
        }
    }
    (a, b)
}

pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn sample_std(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

fn last<T>(xs: &[T], n: usize) -> Option<&[T]> {
    (n > 0 && xs.len() >= n).then(|| &xs[xs.len() - n..])
}

/// Look-back lengths, in trading days, for [`SymbolFeatures::from_bars`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureWindows {
    pub volume: usize,
    pub volatility: usize,
    pub momentum: usize,
    pub drawdown: usize,
}

impl Default for FeatureWindows {
    /// One month of volume, three months of volatility and momentum, a year of drawdown.
    fn default() -> Self {
        FeatureWindows {
            volume: 20,
            volatility: 63,
            momentum: 63,
            drawdown: 252,
        }
    }
}

/// What the pickers know about one symbol's trading on a given day; `None` where history is
/// too short.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymbolFeatures {
    pub ticker: String,
    pub last_close: Option<f64>,
    pub avg_volume: Option<f64>,
    pub avg_dollar_volume: Option<f64>,
    pub volatility: Option<f64>,
    pub momentum: Option<f64>,
    pub max_drawdown: Option<f64>,
}

impl SymbolFeatures {
    /// Features from daily bars in ascending order, all dated on or before the decision day.
    pub fn from_bars(ticker: &str, bars: &[Bar], windows: &FeatureWindows) -> SymbolFeatures {
        let closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
        let drawdown_tail = &closes[closes.len().saturating_sub(windows.drawdown)..];
        SymbolFeatures {
            ticker: ticker.to_string(),
            last_close: closes.last().copied(),
            avg_volume: average_volume(bars, windows.volume),
            avg_dollar_volume: average_dollar_volume(bars, windows.volume),
            volatility: realised_volatility(&closes, windows.volatility),
            momentum: momentum(&closes, windows.momentum),
            max_drawdown: (drawdown_tail.len() >= 2).then(|| max_drawdown(drawdown_tail)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::Interval;

    fn close_near(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    fn bar(day: i64, close: f64, volume: f64) -> Bar {
        Bar {
            symbol: "T".into(),
            interval: Interval::Day,
            time: day * 86_400,
            open: close,
            high: close,
            low: close,
            close,
            volume,
        }
    }

    fn closes_from_returns(start: f64, returns: &[f64]) -> Vec<f64> {
        let mut out = vec![start];
        for r in returns {
            out.push(out.last().unwrap() * (1.0 + r));
        }
        out
    }

    const CLOSES: [f64; 4] = [100.0, 110.0, 99.0, 108.9];

    #[test]
    fn average_volumes_use_the_last_window_only() {
        let bars = [
            bar(0, 10.0, 100.0),
            bar(1, 20.0, 200.0),
            bar(2, 30.0, 400.0),
        ];
        close_near(average_volume(&bars, 2).unwrap(), 300.0);
        // (20·200 + 30·400) / 2 = 8000
        close_near(average_dollar_volume(&bars, 2).unwrap(), 8000.0);
        assert_eq!(average_volume(&bars, 4), None);
    }

    #[test]
    fn realised_volatility_by_hand() {
        // Log returns ln 1.1, ln 0.9, ln 1.1; sample std 0.115857…; × √252.
        let v = realised_volatility(&CLOSES, 3).unwrap();
        assert!((v - 1.839177).abs() < 1e-5, "{v}");
        assert_eq!(realised_volatility(&CLOSES, 4), None);
    }

    #[test]
    fn momentum_and_drawdowns_by_hand() {
        close_near(momentum(&CLOSES, 2).unwrap(), 108.9 / 110.0 - 1.0);
        close_near(momentum(&CLOSES, 3).unwrap(), 0.089);
        assert_eq!(momentum(&CLOSES, 4), None);
        close_near(max_drawdown(&CLOSES), 0.1); // 110 → 99
        close_near(current_drawdown(&CLOSES), 0.01); // 108.9 vs 110
        close_near(max_drawdown(&[1.0, 2.0, 3.0]), 0.0);
    }

    #[test]
    fn beta_by_hand() {
        let index = closes_from_returns(100.0, &[0.02, -0.02, 0.02]);
        let doubled = closes_from_returns(50.0, &[0.04, -0.04, 0.04]);
        close_near(beta(&doubled, &index, 3).unwrap(), 2.0);
        // Means 0.01 and 1/150; Σ(dx·dy) = -0.0008, Σ(dy²) = 0.0010667 → -0.75.
        let other = closes_from_returns(10.0, &[0.01, 0.03, -0.01]);
        close_near(beta(&other, &index, 3).unwrap(), -0.75);
        let flat = vec![5.0; 4];
        assert_eq!(beta(&other, &flat, 3), None);
    }

    #[test]
    fn alignment_keeps_common_days() {
        let a = [bar(1, 1.0, 0.0), bar(2, 2.0, 0.0), bar(4, 4.0, 0.0)];
        let b = [bar(2, 20.0, 0.0), bar(3, 30.0, 0.0), bar(4, 40.0, 0.0)];
        assert_eq!(align_closes(&a, &b), (vec![2.0, 4.0], vec![20.0, 40.0]));
    }

    #[test]
    fn features_are_none_when_history_is_short() {
        let bars: Vec<Bar> = (0..5).map(|d| bar(d, 10.0 + d as f64, 100.0)).collect();
        let w = FeatureWindows {
            volume: 3,
            volatility: 10,
            momentum: 4,
            drawdown: 252,
        };
        let f = SymbolFeatures::from_bars("T", &bars, &w);
        close_near(f.avg_volume.unwrap(), 100.0);
        assert_eq!(f.volatility, None);
        close_near(f.momentum.unwrap(), 14.0 / 10.0 - 1.0);
        close_near(f.max_drawdown.unwrap(), 0.0);
        assert_eq!(f.last_close, Some(14.0));
    }
}
