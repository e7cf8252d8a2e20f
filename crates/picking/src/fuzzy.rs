//! FuzzyPicker: graded membership in "good candidate" on four criteria, weighted, then nudged
//! by how the most similar past trades turned out.
//!
//! Membership functions ([`Membership`]) map a measurement to [0, 1]:
//! - trapezoid `(a, b, c, d)`: 0 below `a`, rising linearly to 1 at `b`, 1 on `[b, c]`,
//!   falling linearly to 0 at `d`, 0 above. Infinite ends make shoulders: `a = b = -inf` is
//!   1 for everything up to `c`.
//! - triangle `(a, b, c)`: the trapezoid `(a, b, b, c)`.
//!
//! Criteria (inputs from [`SymbolFeatures`] and the portfolio):
//! - liquidity on `log10(average dollar volume)`,
//! - volatility on annualised realised volatility,
//! - momentum on the n-day return,
//! - sector balance on the symbol's sector's share of the current portfolio (less held is
//!   better, so the portfolio diversifies).
//!
//! Base score = `Σ wᵢ μᵢ / Σ wᵢ` over the criteria whose input is known (unknown ones are
//! listed in `missing` and drop out of both sums). The adjustment from past trades takes the
//! `k` most similar (similarity clamped to [0, 1], ties in input order):
//! `r̄ = Σ sᵢ rᵢ / Σ sᵢ`, `adjustment = max_adjustment · clamp(r̄ / return_scale, -1, 1) · mean(sᵢ)`,
//! so good outcomes of close matches lift the score most. Final = `clamp(base + adjustment, 0, 1)`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::indicators::SymbolFeatures;
use crate::pick::{Candidate, PickerId, PickerOutput, Portfolio, Reason, SymbolScore};

/// A fuzzy membership function; see the module doc for the shapes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "lowercase")]
pub enum Membership {
    Trapezoid { a: f64, b: f64, c: f64, d: f64 },
    Triangle { a: f64, b: f64, c: f64 },
}

impl Membership {
    /// The degree of membership of `x`, in [0, 1] (0 for NaN).
    pub fn grade(&self, x: f64) -> f64 {
        let (a, b, c, d) = match *self {
            Membership::Trapezoid { a, b, c, d } => (a, b, c, d),
            Membership::Triangle { a, b, c } => (a, b, b, c),
        };
        if x.is_nan() || x < a || x > d {
            0.0
        } else if x < b {
            (x - a) / (b - a)
        } else if x <= c {
            1.0
        } else {
            (d - x) / (d - c)
        }
    }
}

/// Relative weights of the four criteria (need not sum to 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FuzzyWeights {
    pub liquidity: f64,
    pub volatility: f64,
    pub momentum: f64,
    pub sector_balance: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FuzzyConfig {
    /// Over `log10(average dollar volume)`.
    pub liquidity: Membership,
    /// Over annualised volatility.
    pub volatility: Membership,
    /// Over the momentum return.
    pub momentum: Membership,
    /// Over the sector's share of the portfolio.
    pub sector_balance: Membership,
    pub weights: FuzzyWeights,
    /// How many similar past trades to consult.
    pub k: usize,
    /// The largest change the past trades can make to the score.
    pub max_adjustment: f64,
    /// The mean past return that earns the full adjustment.
    pub return_scale: f64,
}

impl Default for FuzzyConfig {
    /// $1M/day is illiquid and $100M/day fully liquid; 15–35 % volatility is ideal, past
    /// 70 % none; a quarter's return from -10 % (0) to +10 % (1), fading beyond +60 %; a
    /// sector up to 10 % of the portfolio is welcome, 30 % or more is not.
    fn default() -> Self {
        let inf = f64::INFINITY;
        FuzzyConfig {
            liquidity: Membership::Trapezoid {
                a: 6.0,
                b: 8.0,
                c: inf,
                d: inf,
            },
            volatility: Membership::Trapezoid {
                a: 0.05,
                b: 0.15,
                c: 0.35,
                d: 0.70,
            },
            momentum: Membership::Trapezoid {
                a: -0.10,
                b: 0.10,
                c: 0.60,
                d: 1.50,
            },
            sector_balance: Membership::Trapezoid {
                a: -inf,
                b: -inf,
                c: 0.10,
                d: 0.30,
            },
            weights: FuzzyWeights {
                liquidity: 0.3,
                volatility: 0.2,
                momentum: 0.3,
                sector_balance: 0.2,
            },
            k: 5,
            max_adjustment: 0.1,
            return_scale: 0.05,
        }
    }
}

/// A past trade found similar to the candidate's setup, and the return it made.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarTrade {
    /// In [0, 1]; 1 is identical.
    pub similarity: f64,
    /// The trade's realised return (0.04 = +4 %).
    pub return_pct: f64,
}

/// The score change from similar past trades, with what went into it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TradeAdjustment {
    pub trades_used: usize,
    pub mean_similarity: f64,
    pub weighted_return: f64,
    pub adjustment: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FuzzyPicker {
    pub config: FuzzyConfig,
}

impl FuzzyPicker {
    pub fn new(config: FuzzyConfig) -> FuzzyPicker {
        FuzzyPicker { config }
    }

    /// Scores every candidate; `similar_trades` maps a ticker to past trades similar to it.
    pub fn pick(
        &self,
        candidates: &[Candidate],
        portfolio: &Portfolio,
        similar_trades: &BTreeMap<String, Vec<SimilarTrade>>,
    ) -> PickerOutput {
        let scores = candidates
            .iter()
            .map(|c| {
                let trades = similar_trades
                    .get(&c.symbol.ticker)
                    .map_or(&[][..], Vec::as_slice);
                self.judge(c, portfolio, trades)
            })
            .collect();
        PickerOutput {
            picker: PickerId::Fuzzy,
            scores,
        }
    }

    pub fn judge(
        &self,
        candidate: &Candidate,
        portfolio: &Portfolio,
        similar_trades: &[SimilarTrade],
    ) -> SymbolScore {
        let cfg = &self.config;
        let f: &SymbolFeatures = &candidate.features;
        let sector_weight = candidate
            .symbol
            .sector
            .as_deref()
            .map(|s| portfolio.sector_weight(s));
        let criteria = [
            (
                "liquidity",
                f.avg_dollar_volume.filter(|v| *v > 0.0).map(f64::log10),
                &cfg.liquidity,
                cfg.weights.liquidity,
            ),
            (
                "volatility",
                f.volatility,
                &cfg.volatility,
                cfg.weights.volatility,
            ),
            ("momentum", f.momentum, &cfg.momentum, cfg.weights.momentum),
            (
                "sector_balance",
                sector_weight,
                &cfg.sector_balance,
                cfg.weights.sector_balance,
            ),
        ];

        let (mut weighted, mut total_weight) = (0.0, 0.0);
        let mut missing = Vec::new();
        let mut reasons = Vec::new();
        for (name, input, membership, weight) in criteria {
            let Some(x) = input else {
                missing.push(name.to_string());
                reasons.push(Reason::new(
                    "missing",
                    None,
                    None,
                    format!("{name} is unknown"),
                ));
                continue;
            };
            let grade = membership.grade(x);
            weighted += weight * grade;
            total_weight += weight;
            reasons.push(Reason::new(
                &format!("{name}_membership"),
                Some(grade),
                None,
                format!("{name} input {x:.4} has membership {grade:.3} (weight {weight})"),
            ));
        }
        let base = if total_weight > 0.0 {
            weighted / total_weight
        } else {
            0.0
        };
        reasons.push(Reason::new(
            "base_score",
            Some(base),
            None,
            format!("weighted membership {base:.4}"),
        ));

        let mut score = base;
        if let Some(adj) = self.adjustment(similar_trades) {
            score = (base + adj.adjustment).clamp(0.0, 1.0);
            reasons.push(Reason::new(
                "similar_trades_adjustment",
                Some(adj.adjustment),
                Some(cfg.max_adjustment),
                format!(
                    "{} similar past trades (mean similarity {:.3}) returned {:.4} weighted; \
                     score {base:.4} {:+.4} = {score:.4}",
                    adj.trades_used, adj.mean_similarity, adj.weighted_return, adj.adjustment
                ),
            ));
        }
        SymbolScore {
            ticker: candidate.symbol.ticker.clone(),
            score,
            verdict: None,
            missing,
            reasons,
        }
    }

    /// The adjustment from the `k` most similar trades; `None` when there are none to use.
    pub fn adjustment(&self, trades: &[SimilarTrade]) -> Option<TradeAdjustment> {
        let cfg = &self.config;
        let mut usable: Vec<(f64, f64)> = trades
            .iter()
            .filter(|t| t.similarity.is_finite() && t.return_pct.is_finite())
            .map(|t| (t.similarity.clamp(0.0, 1.0), t.return_pct))
            .collect();
        // Stable sort: equally similar trades keep their input order.
        usable.sort_by(|x, y| y.0.total_cmp(&x.0));
        usable.truncate(cfg.k);
        let total_similarity: f64 = usable.iter().map(|(s, _)| s).sum();
        if usable.is_empty() || total_similarity <= 0.0 || cfg.return_scale <= 0.0 {
            return None;
        }
        let weighted_return = usable.iter().map(|(s, r)| s * r).sum::<f64>() / total_similarity;
        let mean_similarity = total_similarity / usable.len() as f64;
        let adjustment = cfg.max_adjustment
            * (weighted_return / cfg.return_scale).clamp(-1.0, 1.0)
            * mean_similarity;
        Some(TradeAdjustment {
            trades_used: usable.len(),
            mean_similarity,
            weighted_return,
            adjustment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::Symbol;
    use crate::pick::Position;

    fn near(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn trapezoid_grades_by_hand() {
        let t = Membership::Trapezoid {
            a: 0.0,
            b: 1.0,
            c: 2.0,
            d: 4.0,
        };
        for (x, want) in [(-1.0, 0.0), (0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (1.5, 1.0)] {
            near(t.grade(x), want);
        }
        for (x, want) in [(2.0, 1.0), (3.0, 0.5), (3.5, 0.25), (4.0, 0.0), (5.0, 0.0)] {
            near(t.grade(x), want);
        }
        assert_eq!(t.grade(f64::NAN), 0.0);
    }

    #[test]
    fn triangle_and_shoulders_by_hand() {
        let tri = Membership::Triangle {
            a: 0.0,
            b: 1.0,
            c: 3.0,
        };
        near(tri.grade(0.25), 0.25);
        near(tri.grade(1.0), 1.0);
        near(tri.grade(2.0), 0.5);
        near(tri.grade(3.0), 0.0);
        let inf = f64::INFINITY;
        let left = Membership::Trapezoid {
            a: -inf,
            b: -inf,
            c: 0.1,
            d: 0.3,
        };
        near(left.grade(-100.0), 1.0);
        near(left.grade(0.2), 0.5);
        let right = Membership::Trapezoid {
            a: 6.0,
            b: 8.0,
            c: inf,
            d: inf,
        };
        near(right.grade(7.0), 0.5);
        near(right.grade(1e9), 1.0);
    }

    fn candidate(sector: Option<&str>) -> Candidate {
        let mut symbol = Symbol::new("AAA");
        symbol.sector = sector.map(str::to_string);
        Candidate {
            symbol,
            features: SymbolFeatures {
                ticker: "AAA".into(),
                last_close: Some(50.0),
                avg_volume: Some(200_000.0),
                avg_dollar_volume: Some(1e7), // log10 = 7 → liquidity 0.5
                volatility: Some(0.25),       // plateau → 1.0
                momentum: Some(0.0),          // halfway up -0.1..0.1 → 0.5
                max_drawdown: None,
            },
        }
    }

    fn portfolio() -> Portfolio {
        // Tech is 20 % of the book → sector balance (0.3 - 0.2) / 0.2 = 0.5.
        Portfolio {
            positions: vec![
                Position {
                    ticker: "T1".into(),
                    sector: Some("Tech".into()),
                    weight: 0.2,
                },
                Position {
                    ticker: "E1".into(),
                    sector: Some("Energy".into()),
                    weight: 0.8,
                },
            ],
        }
    }

    #[test]
    fn base_score_by_hand() {
        // 0.3·0.5 + 0.2·1 + 0.3·0.5 + 0.2·0.5 = 0.6
        let s = FuzzyPicker::default().judge(&candidate(Some("Tech")), &portfolio(), &[]);
        near(s.score, 0.6);
        assert!(s.missing.is_empty());
        assert_eq!(s.verdict, None);
        assert!(
            s.reasons
                .iter()
                .all(|r| r.code != "similar_trades_adjustment")
        );
    }

    #[test]
    fn unknown_sector_drops_out_and_weights_renormalise() {
        // (0.15 + 0.2 + 0.15) / 0.8 = 0.625
        let s = FuzzyPicker::default().judge(&candidate(None), &portfolio(), &[]);
        near(s.score, 0.625);
        assert_eq!(s.missing, ["sector_balance"]);
    }

    #[test]
    fn similar_trades_adjust_the_score_and_show_it() {
        let trades = [
            SimilarTrade {
                similarity: 0.5,
                return_pct: -0.02,
            },
            SimilarTrade {
                similarity: 0.9,
                return_pct: 0.04,
            },
            SimilarTrade {
                similarity: 0.1,
                return_pct: -0.50,
            },
        ];
        // k = 2 keeps 0.9 and 0.5: r̄ = (0.036 - 0.010) / 1.4, mean similarity 0.7,
        // adjustment = 0.1 · (r̄ / 0.05) · 0.7 = 0.026.
        let picker = FuzzyPicker::new(FuzzyConfig {
            k: 2,
            ..FuzzyConfig::default()
        });
        let adj = picker.adjustment(&trades).unwrap();
        assert_eq!(adj.trades_used, 2);
        near(adj.adjustment, 0.026);
        let s = picker.judge(&candidate(Some("Tech")), &portfolio(), &trades);
        near(s.score, 0.626);
        let shown = s
            .reasons
            .iter()
            .find(|r| r.code == "similar_trades_adjustment")
            .unwrap();
        near(shown.value.unwrap(), 0.026);
    }

    #[test]
    fn adjustment_is_capped_and_score_clamped() {
        let picker = FuzzyPicker::default();
        // One identical trade that lost 20 %: the full -0.1.
        let bad = [SimilarTrade {
            similarity: 1.0,
            return_pct: -0.20,
        }];
        near(picker.adjustment(&bad).unwrap().adjustment, -0.1);
        assert_eq!(picker.adjustment(&[]), None);
        let zero = [SimilarTrade {
            similarity: 0.0,
            return_pct: 0.3,
        }];
        assert_eq!(picker.adjustment(&zero), None);
        let big = FuzzyPicker::new(FuzzyConfig {
            max_adjustment: 0.9,
            ..FuzzyConfig::default()
        });
        let good = [SimilarTrade {
            similarity: 1.0,
            return_pct: 0.5,
        }];
        near(
            big.judge(&candidate(Some("Tech")), &portfolio(), &good)
                .score,
            1.0,
        );
    }
}
