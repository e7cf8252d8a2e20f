//! Market conditions on a day, from bars: what the hourly snapshot stores (and embeds) and
//! what the LLMPicker's prompt describes. Only bars dated on or before the day are read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::indicators::{mean, momentum, realised_volatility};
use crate::market::{Bar, Symbol};

/// A return as a signed percentage with two decimals (`+3.10%`).
pub(crate) fn pct(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

/// A snapshot of the market on one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarketConditions {
    pub as_of: Date,
    /// The index's return over the trend window (0.03 = +3 %).
    pub index_trend: f64,
    /// The index's annualised realised volatility.
    pub realised_volatility: f64,
    /// Share of the universe closing above its moving average, in [0, 1].
    pub breadth: f64,
    /// Each sector's equal-weight return over the trend window, by sector name.
    pub sector_returns: Vec<(String, f64)>,
}

/// Look-backs in trading days.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionWindows {
    pub trend: usize,
    pub volatility: usize,
    /// Length of the moving average breadth compares against.
    pub breadth_average: usize,
}

impl Default for ConditionWindows {
    fn default() -> Self {
        ConditionWindows {
            trend: 20,
            volatility: 20,
            breadth_average: 50,
        }
    }
}

impl MarketConditions {
    /// The snapshot on `as_of`; `None` when the index has too little history. Symbols with too
    /// little history for a measure are left out of it.
    pub fn from_bars(
        as_of: Date,
        index_bars: &[Bar],
        universe: &[(&Symbol, &[Bar])],
        w: &ConditionWindows,
    ) -> Option<MarketConditions> {
        let closes_until = |bars: &[Bar]| -> Vec<f64> {
            bars.iter()
                .filter(|b| b.date() <= as_of)
                .map(|b| b.close)
                .collect()
        };
        let index = closes_until(index_bars);
        let index_trend = momentum(&index, w.trend)?;
        let realised_volatility = realised_volatility(&index, w.volatility)?;

        let mut above = Vec::new();
        let mut by_sector: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (symbol, bars) in universe {
            let closes = closes_until(bars);
            if w.breadth_average > 0 && closes.len() >= w.breadth_average {
                let average = mean(&closes[closes.len() - w.breadth_average..]);
                above.push(if closes[closes.len() - 1] > average {
                    1.0
                } else {
                    0.0
                });
            }
            if let (Some(sector), Some(r)) = (&symbol.sector, momentum(&closes, w.trend)) {
                by_sector.entry(sector).or_default().push(r);
            }
        }
        Some(MarketConditions {
            as_of,
            index_trend,
            realised_volatility,
            breadth: if above.is_empty() { 0.0 } else { mean(&above) },
            sector_returns: by_sector
                .into_iter()
                .map(|(s, r)| (s.to_string(), mean(&r)))
                .collect(),
        })
    }

    /// One line for people, prompts and the embedding of the snapshot.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "index trend {}, realised volatility {:.1}%, breadth {:.0}%",
            pct(self.index_trend),
            self.realised_volatility * 100.0,
            self.breadth * 100.0
        );
        if !self.sector_returns.is_empty() {
            let sectors: Vec<String> = self
                .sector_returns
                .iter()
                .map(|(s, r)| format!("{s} {}", pct(*r)))
                .collect();
            out.push_str("; sectors: ");
            out.push_str(&sectors.join(", "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::Interval;

    fn series(ticker: &str, closes: &[f64]) -> Vec<Bar> {
        let start: Date = "2024-04-01".parse().unwrap();
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar {
                symbol: ticker.into(),
                interval: Interval::Day,
                time: start.add_days(i as i32).midnight_utc(),
                open: c,
                high: c,
                low: c,
                close: c,
                volume: 1.0,
            })
            .collect()
    }

    fn symbol(ticker: &str, sector: &str) -> Symbol {
        Symbol {
            sector: Some(sector.into()),
            ..Symbol::new(ticker)
        }
    }

    #[test]
    fn conditions_by_hand_and_without_later_bars() {
        let w = ConditionWindows {
            trend: 2,
            volatility: 2,
            breadth_average: 3,
        };
        // The last bar of each series (day index 3) is after `as_of` and must not count.
        let index = series("IDX", &[100.0, 110.0, 99.0, 1.0]);
        let (a, b, c) = (
            symbol("A", "Tech"),
            symbol("B", "Tech"),
            symbol("C", "Energy"),
        );
        let (ab, bb, cb) = (
            series("A", &[1.0, 2.0, 3.0, 0.1]),
            series("B", &[3.0, 2.0, 1.0, 9.0]),
            series("C", &[2.0, 2.0, 2.0, 9.0]),
        );
        let universe = [
            (&a, ab.as_slice()),
            (&b, bb.as_slice()),
            (&c, cb.as_slice()),
        ];
        let as_of: Date = "2024-04-03".parse().unwrap();
        let m = MarketConditions::from_bars(as_of, &index, &universe, &w).unwrap();
        assert!((m.index_trend + 0.01).abs() < 1e-12); // 99 / 100 - 1
        // Log returns ln 1.1 and ln 0.9: sample sd 0.141894…, × √252.
        assert!(
            (m.realised_volatility - 2.252523).abs() < 1e-5,
            "{}",
            m.realised_volatility
        );
        // Above the 3-day average: A (3 > 2) only; C is level, which is not above.
        assert!((m.breadth - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.sector_returns[0].0, "Energy");
        assert_eq!(m.sector_returns[0].1, 0.0);
        // Tech: A 3/1 - 1 = 2, B 1/3 - 1 = -2/3 → 2/3.
        assert!((m.sector_returns[1].1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            m.describe(),
            "index trend -1.00%, realised volatility 225.3%, breadth 33%; \
             sectors: Energy +0.00%, Tech +66.67%"
        );
        assert_eq!(
            MarketConditions::from_bars("2024-04-02".parse().unwrap(), &index, &universe, &w),
            None
        );
    }
}
