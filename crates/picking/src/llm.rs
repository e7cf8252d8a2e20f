//! LLMPicker's pure part: the shortlist the model judges ([`shortlist`]), what the index did
//! after a similar past day ([`what_followed`]), the prompt, and the strict check of the
//! model's answer.
//!
//! The answer must be exactly one JSON object (optionally inside a single ```json fence):
//!
//! ```json
//! {"picks": [{"symbol": "AAPL", "score": 0.72, "reasons": ["..."]}]}
//! ```
//!
//! No other keys anywhere; every `symbol` one of the candidates and listed once; `score` a
//! number in [0, 1]; `reasons` a non-empty array of non-empty strings. Every problem is
//! reported with its JSON path, and [`AnswerError::repair_message`] is the text to send back
//! for the single repair attempt. Candidates the model leaves out get no score (the ensemble
//! renormalises over the pickers that did score them).

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conditions::{MarketConditions, pct};
use crate::date::Date;
use crate::market::Bar;
use crate::pick::{Candidate, PickerId, PickerOutput, Portfolio, Reason, SymbolScore};

/// A past day whose conditions resembled today's, and what the index did next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarConditions {
    pub similarity: f64,
    pub conditions: MarketConditions,
    pub index_return_5d: Option<f64>,
    pub index_return_20d: Option<f64>,
}

/// Everything the prompt is built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmContext {
    pub portfolio: Portfolio,
    pub market: MarketConditions,
    pub similar: Vec<SimilarConditions>,
    pub candidates: Vec<Candidate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

const SYSTEM: &str = "You rank trading candidates for a portfolio. Judge each candidate from \
the data given only. Answer with exactly one JSON object and nothing else, of the form \
{\"picks\": [{\"symbol\": string, \"score\": number between 0 and 1, \"reasons\": [string, ...]}]}. \
Use only symbols from the candidate list, each at most once; give at least one reason per pick; \
no other keys.";

fn opt<T>(x: Option<T>, f: impl Fn(T) -> String) -> String {
    x.map_or_else(|| "unknown".to_string(), f)
}

/// Builds the prompt. Deterministic: the same context gives the same text (so responses can
/// be cached and runs reproduced).
pub fn build_prompt(ctx: &LlmContext) -> Prompt {
    let mut u = String::new();
    u.push_str("## Portfolio\n");
    if ctx.portfolio.positions.is_empty() {
        u.push_str("(empty)\n");
    }
    for p in &ctx.portfolio.positions {
        let sector = p.sector.as_deref().unwrap_or("unknown sector");
        let _ = writeln!(
            u,
            "- {} ({sector}): {:.1}% of portfolio",
            p.ticker,
            p.weight * 100.0
        );
    }
    let _ = write!(u, "\n## Market on {}\n", ctx.market.as_of);
    u.push_str(&ctx.market.describe());
    u.push_str("\n\n## Similar past market conditions and what followed\n");
    if ctx.similar.is_empty() {
        u.push_str("(none recorded)\n");
    }
    for s in &ctx.similar {
        let _ = write!(
            u,
            "- {} (similarity {:.2}): ",
            s.conditions.as_of, s.similarity
        );
        u.push_str(&s.conditions.describe());
        let _ = writeln!(
            u,
            ". Then: index {} over 5 days, {} over 20 days",
            opt(s.index_return_5d, pct),
            opt(s.index_return_20d, pct)
        );
    }
    u.push_str("\n## Candidates\n");
    for c in &ctx.candidates {
        let f = &c.features;
        let _ = writeln!(
            u,
            "- {} ({}): last close {}, avg dollar volume {}, volatility {}, momentum {}, \
             market cap {}, beta {}",
            c.symbol.ticker,
            c.symbol.sector.as_deref().unwrap_or("unknown sector"),
            opt(f.last_close, |x| format!("{x:.2}")),
            opt(f.avg_dollar_volume, |x| format!("{x:.3e}")),
            opt(f.volatility, |x| format!("{:.1}%", x * 100.0)),
            opt(f.momentum, pct),
            opt(c.symbol.market_cap, |x| format!("{x:.3e}")),
            opt(c.symbol.beta, |x| format!("{x:.2}")),
        );
    }
    u.push_str("\nScore each candidate you have a view on.");
    Prompt {
        system: SYSTEM.to_string(),
        user: u,
    }
}

/// Trading days ahead over which [`what_followed`] reports the index's return.
pub const FOLLOW_DAYS: [usize; 2] = [5, 20];

/// What the index did after `day`: its close-to-close return from the last bar on or before
/// `day` to the 5th and the 20th bar after it (`None` where the bars do not reach that far,
/// or the base close is not positive). `index_bars` are ascending and hold only what was
/// known on the decision day, so nothing after it is seen.
pub fn what_followed(index_bars: &[Bar], day: Date) -> (Option<f64>, Option<f64>) {
    let base = index_bars.partition_point(|b| b.date() <= day);
    let Some(entry) = base.checked_sub(1).map(|i| &index_bars[i]) else {
        return (None, None);
    };
    // The entry bar is at `base - 1`; the n-th bar after it at `base - 1 + n`.
    let ret = |n: usize| {
        let exit = index_bars.get(base - 1 + n)?;
        (entry.close > 0.0).then(|| exit.close / entry.close - 1.0)
    };
    (ret(FOLLOW_DAYS[0]), ret(FOLLOW_DAYS[1]))
}

/// The candidates the model is asked about: the `n` best-scored by `ranking` (ties by
/// ticker), in that order. The prompt and the answer grow with every candidate, so the model
/// judges a shortlist; the others get no LLM score and the ensemble renormalises over the
/// pickers that scored them.
pub fn shortlist(candidates: &[Candidate], ranking: &PickerOutput, n: usize) -> Vec<Candidate> {
    let mut scored: Vec<(&str, f64)> = ranking
        .scores
        .iter()
        .map(|s| (s.ticker.as_str(), s.score))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    scored
        .iter()
        .take(n)
        .filter_map(|(t, _)| candidates.iter().find(|c| c.symbol.ticker == *t).cloned())
        .collect()
}

/// Everything wrong with an answer, each problem prefixed by its JSON path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerError {
    pub problems: Vec<String>,
}

impl AnswerError {
    /// The follow-up message for the one repair attempt.
    pub fn repair_message(&self) -> String {
        format!(
            "Your answer did not match the required JSON schema:\n- {}\nReply again with only \
             the corrected JSON object: {{\"picks\": [{{\"symbol\", \"score\", \"reasons\"}}]}}.",
            self.problems.join("\n- ")
        )
    }
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid model answer: {}", self.problems.join("; "))
    }
}

impl std::error::Error for AnswerError {}

/// Drops one surrounding ```json … ``` fence, the only leniency allowed.
fn strip_fence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").map_or(t, str::trim)
}

/// Checks the model's answer against the schema and the candidate list.
pub fn parse_answer(text: &str, candidates: &[&str]) -> Result<PickerOutput, AnswerError> {
    let fail = |p: String| AnswerError { problems: vec![p] };
    let value: Value = serde_json::from_str(strip_fence(text))
        .map_err(|e| fail(format!("$: not valid JSON ({e})")))?;
    let Value::Object(top) = value else {
        return Err(fail("$: expected a JSON object".into()));
    };
    let mut problems = Vec::new();
    for key in top.keys().filter(|k| *k != "picks") {
        problems.push(format!("$.{key}: unexpected key"));
    }
    let picks = match top.get("picks") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(fail("$.picks: expected an array".into())),
        None => return Err(fail("$.picks: missing".into())),
    };
    let known: BTreeSet<&str> = candidates.iter().copied().collect();
    let mut seen = BTreeSet::new();
    let mut scores = Vec::new();
    for (i, pick) in picks.iter().enumerate() {
        let at = format!("$.picks[{i}]");
        let Value::Object(obj) = pick else {
            problems.push(format!("{at}: expected an object"));
            continue;
        };
        for key in obj
            .keys()
            .filter(|k| !["symbol", "score", "reasons"].contains(&k.as_str()))
        {
            problems.push(format!("{at}.{key}: unexpected key"));
        }
        let symbol = match obj.get("symbol") {
            Some(Value::String(s)) if known.contains(s.as_str()) => {
                if !seen.insert(s.clone()) {
                    problems.push(format!("{at}.symbol: `{s}` is listed more than once"));
                }
                Some(s.clone())
            }
            Some(Value::String(s)) => {
                problems.push(format!("{at}.symbol: `{s}` is not one of the candidates"));
                None
            }
            _ => {
                problems.push(format!("{at}.symbol: expected a string"));
                None
            }
        };
        let score = match obj.get("score").and_then(Value::as_f64) {
            Some(x) if (0.0..=1.0).contains(&x) => Some(x),
            Some(x) => {
                problems.push(format!("{at}.score: {x} is outside [0, 1]"));
                None
            }
            None => {
                problems.push(format!("{at}.score: expected a number"));
                None
            }
        };
        let reasons = match obj.get("reasons") {
            Some(Value::Array(rs)) if rs.is_empty() => {
                problems.push(format!("{at}.reasons: must not be empty"));
                None
            }
            Some(Value::Array(rs)) => {
                let texts: Vec<&str> = rs
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .collect();
                if texts.len() == rs.len() {
                    Some(texts)
                } else {
                    problems.push(format!(
                        "{at}.reasons: every reason must be a non-empty string"
                    ));
                    None
                }
            }
            _ => {
                problems.push(format!("{at}.reasons: expected an array of strings"));
                None
            }
        };
        if let (Some(ticker), Some(score), Some(reasons)) = (symbol, score, reasons) {
            let reasons = reasons
                .into_iter()
                .map(|r| Reason::new("llm", None, None, r))
                .collect();
            scores.push(SymbolScore {
                ticker,
                score,
                verdict: None,
                missing: vec![],
                reasons,
            });
        }
    }
    if problems.is_empty() {
        Ok(PickerOutput {
            picker: PickerId::Llm,
            scores,
        })
    } else {
        Err(AnswerError { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::Weekday;
    use crate::indicators::SymbolFeatures;
    use crate::market::Symbol;
    use crate::pick::Position;

    const KNOWN: [&str; 2] = ["AAPL", "MSFT"];

    fn problems(text: &str) -> Vec<String> {
        parse_answer(text, &KNOWN).unwrap_err().problems
    }

    #[test]
    fn a_valid_answer_becomes_scores_with_reasons() {
        let text = r#"```json
{"picks": [{"symbol": "MSFT", "score": 0.8, "reasons": ["steady trend", "cheap"]},
           {"symbol": "AAPL", "score": 0, "reasons": ["overweight sector"]}]}
```"#;
        let out = parse_answer(text, &KNOWN).unwrap();
        assert_eq!(out.picker, PickerId::Llm);
        assert_eq!(out.scores.len(), 2);
        assert_eq!(out.scores[0].ticker, "MSFT");
        assert_eq!(out.scores[0].score, 0.8);
        assert_eq!(out.scores[0].reasons[1].message, "cheap");
        assert_eq!(out.scores[1].score, 0.0);
    }

    #[test]
    fn every_schema_problem_is_reported_with_its_path() {
        let text = r#"{"picks": [
            {"symbol": "TSLA", "score": 1.2, "reasons": []},
            {"symbol": "AAPL", "score": "high", "reasons": ["ok"], "note": "x"},
            {"symbol": "MSFT", "score": 0.5, "reasons": ["a", ""]},
            {"symbol": "MSFT", "score": 0.5, "reasons": ["b"]}
        ], "extra": 1}"#;
        assert_eq!(
            problems(text),
            [
                "$.extra: unexpected key",
                "$.picks[0].symbol: `TSLA` is not one of the candidates",
                "$.picks[0].score: 1.2 is outside [0, 1]",
                "$.picks[0].reasons: must not be empty",
                "$.picks[1].note: unexpected key",
                "$.picks[1].score: expected a number",
                "$.picks[2].reasons: every reason must be a non-empty string",
                "$.picks[3].symbol: `MSFT` is listed more than once",
            ]
        );
    }

    #[test]
    fn non_json_and_wrong_shapes_are_rejected() {
        assert!(problems("Sure! Here are my picks")[0].starts_with("$: not valid JSON"));
        assert_eq!(problems("[1, 2]"), ["$: expected a JSON object"]);
        assert_eq!(problems("{}"), ["$.picks: missing"]);
        assert_eq!(problems(r#"{"picks": {}}"#), ["$.picks: expected an array"]);
        let err = parse_answer("{}", &KNOWN).unwrap_err();
        assert!(err.repair_message().contains("- $.picks: missing\n"));
    }

    fn day_bar(day: &str, close: f64) -> Bar {
        Bar {
            symbol: "IDX".into(),
            interval: crate::market::Interval::Day,
            time: day.parse::<Date>().unwrap().midnight_utc(),
            open: close,
            high: close,
            low: close,
            close,
            volume: 0.0,
        }
    }

    /// The 30 weekdays from 2024-01-01 (a Monday), closes 100, 101, 102, …
    fn index_bars() -> Vec<Bar> {
        let start: Date = "2024-01-01".parse().unwrap();
        (0..42)
            .map(|i| start.add_days(i))
            .filter(|d| !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday))
            .enumerate()
            .map(|(i, d)| day_bar(&d.to_string(), 100.0 + i as f64))
            .collect()
    }

    #[test]
    fn what_followed_is_close_to_close_from_the_day_in_trading_days() {
        let bars = index_bars();
        assert_eq!(bars.len(), 30);
        // 2024-01-02 is bar 1 (close 101): 5 bars later close 106, 20 later 121.
        let (r5, r20) = what_followed(&bars, "2024-01-02".parse().unwrap());
        assert!((r5.unwrap() - (106.0 / 101.0 - 1.0)).abs() < 1e-12);
        assert!((r20.unwrap() - (121.0 / 101.0 - 1.0)).abs() < 1e-12);
        // A Saturday enters at Friday's close (bar 4, close 104): 5 bars on is 109.
        let (r5, _) = what_followed(&bars, "2024-01-06".parse().unwrap());
        assert!((r5.unwrap() - (109.0 / 104.0 - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn what_followed_never_reads_past_the_bars_known() {
        let bars = index_bars();
        // Bar 24 (close 124): 5 bars later is bar 29, the last; 20 later is unknown.
        let day = bars[24].date();
        let (r5, r20) = what_followed(&bars, day);
        assert!((r5.unwrap() - (129.0 / 124.0 - 1.0)).abs() < 1e-12);
        assert_eq!(r20, None);
        assert_eq!(what_followed(&bars, bars[29].date()), (None, None));
        // Before the first bar there is no entry close.
        assert_eq!(
            what_followed(&bars, "2023-12-29".parse().unwrap()),
            (None, None)
        );
        assert_eq!(what_followed(&[], day), (None, None));
    }

    #[test]
    fn shortlist_takes_the_best_scored_with_ties_by_ticker() {
        let cand = |t: &str| Candidate {
            symbol: Symbol::new(t),
            features: SymbolFeatures {
                ticker: t.into(),
                last_close: None,
                avg_volume: None,
                avg_dollar_volume: None,
                volatility: None,
                momentum: None,
                max_drawdown: None,
            },
        };
        let candidates: Vec<Candidate> = ["AAA", "BBB", "CCC", "DDD"].map(cand).to_vec();
        let score = |t: &str, score: f64| SymbolScore {
            ticker: t.into(),
            score,
            verdict: None,
            missing: vec![],
            reasons: vec![],
        };
        let ranking = PickerOutput {
            picker: PickerId::Fuzzy,
            scores: vec![
                score("AAA", 0.2),
                score("BBB", 0.9),
                score("CCC", 0.5),
                score("DDD", 0.9),
            ],
        };
        let tickers = |n| -> Vec<String> {
            shortlist(&candidates, &ranking, n)
                .into_iter()
                .map(|c| c.symbol.ticker)
                .collect()
        };
        assert_eq!(tickers(3), ["BBB", "DDD", "CCC"]);
        assert_eq!(tickers(10).len(), 4);
        assert!(tickers(0).is_empty());
    }

    #[test]
    fn prompt_carries_portfolio_market_history_and_candidates() {
        let market = MarketConditions {
            as_of: "2024-04-01".parse().unwrap(),
            index_trend: 0.031,
            realised_volatility: 0.142,
            breadth: 0.61,
            sector_returns: vec![("Tech".into(), 0.05)],
        };
        let mut symbol = Symbol::new("MSFT");
        symbol.sector = Some("Tech".into());
        let ctx = LlmContext {
            portfolio: Portfolio {
                positions: vec![Position {
                    ticker: "AAPL".into(),
                    sector: Some("Tech".into()),
                    weight: 0.25,
                }],
            },
            similar: vec![SimilarConditions {
                similarity: 0.93,
                conditions: MarketConditions {
                    as_of: "2021-03-01".parse().unwrap(),
                    ..market.clone()
                },
                index_return_5d: Some(-0.012),
                index_return_20d: None,
            }],
            market,
            candidates: vec![Candidate {
                symbol,
                features: SymbolFeatures {
                    ticker: "MSFT".into(),
                    last_close: Some(420.5),
                    avg_volume: None,
                    avg_dollar_volume: Some(8.0e9),
                    volatility: Some(0.21),
                    momentum: Some(0.07),
                    max_drawdown: None,
                },
            }],
        };
        let p = build_prompt(&ctx);
        assert!(p.system.contains("\"picks\""));
        let u = &p.user;
        assert!(u.contains("- AAPL (Tech): 25.0% of portfolio"), "{u}");
        assert!(u.contains("## Market on 2024-04-01\nindex trend +3.10%, realised volatility 14.2%, breadth 61%; sectors: Tech +5.00%"), "{u}");
        assert!(u.contains("- 2021-03-01 (similarity 0.93): "), "{u}");
        assert!(
            u.contains("Then: index -1.20% over 5 days, unknown over 20 days"),
            "{u}"
        );
        assert!(u.contains("- MSFT (Tech): last close 420.50, avg dollar volume 8.000e9, volatility 21.0%, momentum +7.00%, market cap unknown, beta unknown"), "{u}");
        assert_eq!(build_prompt(&ctx), p);
    }
}
