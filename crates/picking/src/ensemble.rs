//! EnsembleCombiner: merges the pickers' scores into one ranking and records where they
//! disagree.
//!
//! - Dedupe: a ticker a picker scored twice keeps its higher score (first on a tie).
//! - Merge: `score = Σ wₚ sₚ / Σ wₚ` over the pickers that scored the symbol with a known
//!   verdict (not `Unavailable`) and a positive weight, so a picker that was skipped, or could
//!   not judge this symbol, is renormalised away rather than counted as 0. Each contribution
//!   shows its normalised weight. A symbol no picker could score is listed in `unscored`.
//! - Rank: symbols no filter rejected first, then score (high first), then the number of
//!   contributing pickers (more first), then ticker (A–Z) — fully deterministic.
//! - Divergence: for each picker, its `top_n` (by its own score, ticker on ties, excluding what
//!   it rejected); every other picker that rejects one of those ([`SymbolScore::rejects`]) is
//!   a [`Divergence`] record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pick::{PickerId, PickerOutput, Reason, SymbolScore, Verdict};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnsembleConfig {
    /// Weight per picker; a picker not listed (or weighted ≤ 0) does not contribute.
    pub weights: BTreeMap<PickerId, f64>,
    /// How deep into each picker's ranking divergence is checked.
    pub top_n: usize,
    /// A picker without verdicts rejects a symbol it scores at or below this.
    pub reject_below: f64,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            weights: BTreeMap::from([
                (PickerId::Metric, 0.4),
                (PickerId::Fuzzy, 0.35),
                (PickerId::Llm, 0.25),
            ]),
            top_n: 10,
            reject_below: 0.2,
        }
    }
}

/// One picker's part in a ranked symbol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub picker: PickerId,
    pub score: f64,
    pub verdict: Option<Verdict>,
    /// The picker's share of this symbol's score after renormalisation; 0 when it did not
    /// contribute (unavailable or unweighted).
    pub weight: f64,
    pub missing: Vec<String>,
    pub reasons: Vec<Reason>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankedSymbol {
    /// 1-based.
    pub rank: usize,
    pub ticker: String,
    pub score: f64,
    /// Filtering pickers that failed this symbol.
    pub rejected_by: Vec<PickerId>,
    pub contributions: Vec<Contribution>,
}

/// A picker rejecting what another ranks in its top N.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    pub ticker: String,
    pub ranked_by: PickerId,
    /// 1-based rank within `ranked_by`'s own ranking.
    pub rank: usize,
    pub ranked_score: f64,
    pub rejected_by: PickerId,
    pub rejecting_score: f64,
    /// The rejecting picker's reason codes.
    pub rejection_codes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnsembleResult {
    pub ranked: Vec<RankedSymbol>,
    pub unscored: Vec<String>,
    pub divergences: Vec<Divergence>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnsembleCombiner {
    pub config: EnsembleConfig,
}

impl EnsembleCombiner {
    pub fn new(config: EnsembleConfig) -> EnsembleCombiner {
        EnsembleCombiner { config }
    }

    fn weight(&self, picker: PickerId) -> f64 {
        let w = self.config.weights.get(&picker).copied().unwrap_or(0.0);
        if w.is_finite() && w > 0.0 { w } else { 0.0 }
    }

    pub fn combine(&self, outputs: &[PickerOutput]) -> EnsembleResult {
        let deduped: Vec<(PickerId, BTreeMap<&str, &SymbolScore>)> = outputs
            .iter()
            .map(|o| (o.picker, dedupe(&o.scores)))
            .collect();

        let mut by_ticker: BTreeMap<&str, Vec<(PickerId, &SymbolScore)>> = BTreeMap::new();
        for (picker, scores) in &deduped {
            for (ticker, s) in scores {
                by_ticker.entry(ticker).or_default().push((*picker, s));
            }
        }

        let mut ranked = Vec::new();
        let mut unscored = Vec::new();
        for (ticker, entries) in by_ticker {
            let counts = |s: &SymbolScore, p: PickerId| {
                s.verdict != Some(Verdict::Unavailable) && self.weight(p) > 0.0
            };
            let total: f64 = entries
                .iter()
                .filter(|(p, s)| counts(s, *p))
                .map(|(p, _)| self.weight(*p))
                .sum();
            if total <= 0.0 {
                unscored.push(ticker.to_string());
                continue;
            }
            let contributions: Vec<Contribution> = entries
                .iter()
                .map(|(p, s)| Contribution {
                    picker: *p,
                    score: s.score,
                    verdict: s.verdict,
                    weight: if counts(s, *p) {
                        self.weight(*p) / total
                    } else {
                        0.0
                    },
                    missing: s.missing.clone(),
                    reasons: s.reasons.clone(),
                })
                .collect();
            let score = contributions.iter().map(|c| c.weight * c.score).sum();
            let rejected_by = entries
                .iter()
                .filter(|(_, s)| s.verdict == Some(Verdict::Fail))
                .map(|(p, _)| *p)
                .collect();
            ranked.push(RankedSymbol {
                rank: 0,
                ticker: ticker.to_string(),
                score,
                rejected_by,
                contributions,
            });
        }
        ranked.sort_by(|a, b| {
            let contributing =
                |r: &RankedSymbol| r.contributions.iter().filter(|c| c.weight > 0.0).count();
            a.rejected_by
                .is_empty()
                .cmp(&b.rejected_by.is_empty())
                .reverse()
                .then(b.score.total_cmp(&a.score))
                .then(contributing(b).cmp(&contributing(a)))
                .then(a.ticker.cmp(&b.ticker))
        });
        for (i, r) in ranked.iter_mut().enumerate() {
            r.rank = i + 1;
        }
        EnsembleResult {
            ranked,
            unscored,
            divergences: self.divergences(&deduped),
        }
    }

    fn divergences(&self, deduped: &[(PickerId, BTreeMap<&str, &SymbolScore>)]) -> Vec<Divergence> {
        let reject_below = self.config.reject_below;
        let mut out = Vec::new();
        for (ranker, scores) in deduped {
            let mut own: Vec<&SymbolScore> = scores
                .values()
                .copied()
                .filter(|s| s.verdict != Some(Verdict::Unavailable) && !s.rejects(reject_below))
                .collect();
            // BTreeMap order is by ticker, and the sort is stable: ties stay A–Z.
            own.sort_by(|a, b| b.score.total_cmp(&a.score));
            for (i, ranked) in own.iter().take(self.config.top_n).enumerate() {
                for (rejecter, other) in deduped.iter().filter(|(p, _)| p != ranker) {
                    let Some(rejecting) = other.get(ranked.ticker.as_str()) else {
                        continue;
                    };
                    if rejecting.rejects(reject_below) {
                        out.push(Divergence {
                            ticker: ranked.ticker.clone(),
                            ranked_by: *ranker,
                            rank: i + 1,
                            ranked_score: ranked.score,
                            rejected_by: *rejecter,
                            rejecting_score: rejecting.score,
                            rejection_codes: rejecting
                                .reasons
                                .iter()
                                .map(|r| r.code.clone())
                                .collect(),
                        });
                    }
                }
            }
        }
        out
    }
}

/// One entry per ticker: the higher score wins, the first on a tie.
fn dedupe(scores: &[SymbolScore]) -> BTreeMap<&str, &SymbolScore> {
    let mut out: BTreeMap<&str, &SymbolScore> = BTreeMap::new();
    for s in scores {
        out.entry(s.ticker.as_str())
            .and_modify(|kept| {
                if s.score > kept.score {
                    *kept = s;
                }
            })
            .or_insert(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ticker: &str, score: f64, verdict: Option<Verdict>) -> SymbolScore {
        let code = match verdict {
            Some(Verdict::Fail) => "avg_volume_below_min",
            _ => "ok",
        };
        SymbolScore {
            ticker: ticker.into(),
            score,
            verdict,
            missing: vec![],
            reasons: vec![Reason::new(code, None, None, "")],
        }
    }

    fn combiner(top_n: usize) -> EnsembleCombiner {
        EnsembleCombiner::new(EnsembleConfig {
            weights: BTreeMap::from([
                (PickerId::Metric, 0.5),
                (PickerId::Fuzzy, 0.3),
                (PickerId::Llm, 0.2),
            ]),
            top_n,
            reject_below: 0.2,
        })
    }

    fn outputs() -> Vec<PickerOutput> {
        let pass = Some(Verdict::Pass);
        vec![
            PickerOutput {
                picker: PickerId::Metric,
                scores: vec![
                    s("AAA", 0.8, pass),
                    s("BBB", 0.6, pass),
                    s("CCC", 0.0, Some(Verdict::Fail)),
                    s("DDD", 0.0, Some(Verdict::Unavailable)),
                ],
            },
            PickerOutput {
                picker: PickerId::Fuzzy,
                scores: vec![
                    s("AAA", 0.6, None),
                    s("BBB", 0.9, None),
                    s("CCC", 0.95, None),
                    s("DDD", 0.5, None),
                    s("AAA", 0.2, None), // duplicate: the higher 0.6 is kept
                ],
            },
            PickerOutput {
                picker: PickerId::Llm,
                scores: vec![
                    s("AAA", 0.9, None),
                    s("CCC", 0.95, None),
                    s("DDD", 0.5, None),
                ],
            },
        ]
    }

    #[test]
    fn weighted_merge_renormalises_missing_pickers_and_ranks_rejected_last() {
        let r = combiner(1).combine(&outputs());
        let order: Vec<(&str, usize)> = r
            .ranked
            .iter()
            .map(|x| (x.ticker.as_str(), x.rank))
            .collect();
        assert_eq!(order, [("AAA", 1), ("BBB", 2), ("DDD", 3), ("CCC", 4)]);
        let score = |t: &str| r.ranked.iter().find(|x| x.ticker == t).unwrap().score;
        // AAA: 0.5·0.8 + 0.3·0.6 + 0.2·0.9 = 0.76
        assert!((score("AAA") - 0.76).abs() < 1e-12);
        // BBB: no LLM score → (0.5·0.6 + 0.3·0.9) / 0.8 = 0.7125
        assert!((score("BBB") - 0.7125).abs() < 1e-12);
        // DDD: metric unavailable → (0.3·0.5 + 0.2·0.5) / 0.5 = 0.5
        assert!((score("DDD") - 0.5).abs() < 1e-12);
        // CCC: failed by metric, which still counts as 0 → 0.285 + 0.19 = 0.475
        assert!((score("CCC") - 0.475).abs() < 1e-12);
        assert_eq!(r.ranked[3].rejected_by, [PickerId::Metric]);
        let bbb = &r.ranked[1];
        assert_eq!(bbb.contributions.len(), 2, "deduped and no LLM entry");
        assert!((bbb.contributions[0].weight - 0.625).abs() < 1e-12);
        assert!(r.unscored.is_empty());
    }

    #[test]
    fn ties_break_by_contributors_then_ticker() {
        let out = vec![
            PickerOutput {
                picker: PickerId::Fuzzy,
                scores: vec![
                    s("ZZZ", 0.5, None),
                    s("MMM", 0.5, None),
                    s("AAA", 0.5, None),
                ],
            },
            PickerOutput {
                picker: PickerId::Llm,
                scores: vec![s("ZZZ", 0.5, None)],
            },
        ];
        let r = combiner(3).combine(&out);
        let order: Vec<&str> = r.ranked.iter().map(|x| x.ticker.as_str()).collect();
        assert_eq!(order, ["ZZZ", "AAA", "MMM"]);
    }

    #[test]
    fn divergence_records_a_rejection_of_anothers_top_pick() {
        let r = combiner(1).combine(&outputs());
        let found: Vec<(&str, PickerId, usize, PickerId)> = r
            .divergences
            .iter()
            .map(|d| (d.ticker.as_str(), d.ranked_by, d.rank, d.rejected_by))
            .collect();
        // Fuzzy's and LLM's #1 (CCC, 0.95) is failed by Metric; Metric's #1 (AAA) is fine.
        assert_eq!(
            found,
            [
                ("CCC", PickerId::Fuzzy, 1, PickerId::Metric),
                ("CCC", PickerId::Llm, 1, PickerId::Metric)
            ]
        );
        assert_eq!(r.divergences[0].rejection_codes, ["avg_volume_below_min"]);
        // A low score from a non-filtering picker also counts as a rejection.
        let low = vec![
            PickerOutput {
                picker: PickerId::Metric,
                scores: vec![s("AAA", 0.9, Some(Verdict::Pass))],
            },
            PickerOutput {
                picker: PickerId::Llm,
                scores: vec![s("AAA", 0.1, None)],
            },
        ];
        let d = combiner(5).combine(&low).divergences;
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].ranked_by, d[0].rejected_by),
            (PickerId::Metric, PickerId::Llm)
        );
    }

    #[test]
    fn symbols_no_weighted_picker_could_judge_are_unscored() {
        let out = vec![
            PickerOutput {
                picker: PickerId::Metric,
                scores: vec![s("AAA", 0.0, Some(Verdict::Unavailable))],
            },
            PickerOutput {
                picker: PickerId::Fuzzy,
                scores: vec![s("BBB", 0.4, None)],
            },
        ];
        let mut c = combiner(5);
        c.config.weights.remove(&PickerId::Fuzzy);
        let r = c.combine(&out);
        assert!(r.ranked.is_empty());
        assert_eq!(r.unscored, ["AAA", "BBB"]);
    }
}
