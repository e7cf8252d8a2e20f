//! One discovery day end to end on a generated universe, the way `functions/picker` and the
//! walk-forward benchmark will chain the crate: candidates as of a day, the metric and fuzzy
//! pickers, the ensemble, the watchlist, then forward returns and the scorecard.

use std::collections::BTreeMap;

use tessera_picking::calendar::{Nyse, TradingCalendar};
use tessera_picking::ensemble::EnsembleCombiner;
use tessera_picking::forward::{forward_return, universe_forward_return};
use tessera_picking::fuzzy::FuzzyPicker;
use tessera_picking::indicators::FeatureWindows;
use tessera_picking::metric::MetricPicker;
use tessera_picking::pick::{Candidate, Portfolio, Verdict};
use tessera_picking::scorecard::{Bootstrap, Outcome, scorecard};
use tessera_picking::synth::{SynthParams, generate};
use tessera_picking::watchlist::Watchlist;

#[test]
fn a_discovery_day_on_the_synthetic_universe() {
    let u = generate(&SynthParams {
        symbols: 80,
        unknown_fundamentals_fraction: 0.1,
        ..SynthParams::default()
    });
    let day = u.days[400];
    let windows = FeatureWindows::default();
    let candidates: Vec<Candidate> = u
        .symbols
        .iter()
        .zip(&u.bars)
        .map(|(s, bars)| Candidate::as_of(s, bars, day, &windows))
        .collect();

    let metric = MetricPicker::default().pick(&candidates);
    let fuzzy = FuzzyPicker::default().pick(&candidates, &Portfolio::default(), &BTreeMap::new());
    let unknown = u.symbols.iter().filter(|s| s.market_cap.is_none()).count();
    assert!(
        unknown > 0,
        "the parameters ask for some unknown fundamentals"
    );
    let unavailable_or_failed_with_missing = metric
        .scores
        .iter()
        .filter(|s| {
            matches!(s.verdict, Some(Verdict::Unavailable | Verdict::Fail)) && !s.missing.is_empty()
        })
        .count();
    assert_eq!(
        unavailable_or_failed_with_missing, unknown,
        "no unknown symbol silently passed"
    );
    assert!(
        metric
            .scores
            .iter()
            .any(|s| s.verdict == Some(Verdict::Pass))
    );
    assert!(fuzzy.scores.iter().all(|s| (0.0..=1.0).contains(&s.score)));

    let result = EnsembleCombiner::default().combine(&[metric, fuzzy]);
    assert_eq!(
        result.ranked.len() + result.unscored.len(),
        80,
        "every symbol accounted for"
    );
    let ranks: Vec<usize> = result.ranked.iter().map(|r| r.rank).collect();
    assert_eq!(ranks, (1..=result.ranked.len()).collect::<Vec<_>>());

    let top: Vec<(String, f64)> = result
        .ranked
        .iter()
        .filter(|r| r.rejected_by.is_empty())
        .take(15)
        .map(|r| (r.ticker.clone(), r.score))
        .collect();
    let mut watchlist = Watchlist::new(10);
    let changes = watchlist.merge_discovered(&top, day.midnight_utc());
    assert_eq!(watchlist.len(), 10.min(top.len()));
    assert_eq!(
        changes.len(),
        watchlist.len(),
        "only the kept ones are recorded as added"
    );

    let universe: Vec<&[_]> = u.bars.iter().map(Vec::as_slice).collect();
    let benchmark = universe_forward_return(&Nyse, &universe, day, 5).unwrap();
    let outcomes: Vec<Outcome> = top
        .iter()
        .map(|(ticker, _)| {
            let i = u.symbols.iter().position(|s| &s.ticker == ticker).unwrap();
            Outcome {
                source: "ensemble".into(),
                ticker: ticker.clone(),
                suggested_on: day,
                forward_return: forward_return(&Nyse, &u.bars[i], day, 5).unwrap(),
                universe_return: benchmark,
            }
        })
        .collect();
    let card = scorecard(&outcomes, &Bootstrap::default());
    assert_eq!(card.len(), 1);
    assert_eq!(card[0].count, top.len());
    assert!(
        card[0].excess_ci.low <= card[0].mean_excess
            && card[0].mean_excess <= card[0].excess_ci.high
    );
    // The 5-day exit is five trading days after the first trading day after `day`.
    assert_eq!(
        Nyse.add_trading_days(Nyse.next_trading_day(day), 5),
        u.days[406]
    );
}
