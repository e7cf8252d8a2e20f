//! Forward returns of a suggestion, with no look-ahead.
//!
//! A suggestion made on day `D` is entered at the close of the first trading day after `D`
//! (the bar after the suggestion); the `h`-day return is close-to-close from that entry to
//! the close `h` trading days later, both days taken from the calendar. Bars dated on or
//! before `D` are dropped before anything else, so nothing known at suggestion time can leak
//! in; and a missing entry or exit bar gives `None` (pending or a data gap) rather than the
//! nearest bar, so the day count stays honest across weekends and holidays.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calendar::TradingCalendar;
use crate::date::Date;
use crate::indicators::mean;
use crate::market::{Bar, Interval};

/// The horizons the scorecard tracks, in trading days.
pub const HORIZONS: [u32; 3] = [1, 5, 20];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardReturns {
    pub suggested_on: Date,
    pub entry_day: Date,
    pub d1: Option<f64>,
    pub d5: Option<f64>,
    pub d20: Option<f64>,
}

/// Closes of the daily bars strictly after `day`, by date.
fn closes_after(bars: &[Bar], day: Date) -> BTreeMap<Date, f64> {
    bars.iter()
        .filter(|b| b.interval == Interval::Day && b.date() > day)
        .map(|b| (b.date(), b.close))
        .collect()
}

/// The `horizon`-day forward return of a suggestion made on `suggested_on`.
pub fn forward_return(
    calendar: &impl TradingCalendar,
    bars: &[Bar],
    suggested_on: Date,
    horizon: u32,
) -> Option<f64> {
    let closes = closes_after(bars, suggested_on);
    return_from(calendar, &closes, suggested_on, horizon)
}

fn return_from(
    calendar: &impl TradingCalendar,
    closes: &BTreeMap<Date, f64>,
    suggested_on: Date,
    horizon: u32,
) -> Option<f64> {
    let entry_day = calendar.next_trading_day(suggested_on);
    let exit_day = calendar.add_trading_days(entry_day, horizon);
    let entry = closes.get(&entry_day)?;
    let exit = closes.get(&exit_day)?;
    (*entry > 0.0).then(|| exit / entry - 1.0)
}

/// The 1-, 5- and 20-day forward returns of a suggestion made on `suggested_on`.
pub fn forward_returns(
    calendar: &impl TradingCalendar,
    bars: &[Bar],
    suggested_on: Date,
) -> ForwardReturns {
    let closes = closes_after(bars, suggested_on);
    let at = |h| return_from(calendar, &closes, suggested_on, h);
    ForwardReturns {
        suggested_on,
        entry_day: calendar.next_trading_day(suggested_on),
        d1: at(1),
        d5: at(5),
        d20: at(20),
    }
}

/// The equal-weight mean forward return of every symbol in `universe` that has one: the
/// benchmark a suggestion's excess return is measured against.
pub fn universe_forward_return(
    calendar: &impl TradingCalendar,
    universe: &[&[Bar]],
    suggested_on: Date,
    horizon: u32,
) -> Option<f64> {
    let returns: Vec<f64> = universe
        .iter()
        .filter_map(|bars| forward_return(calendar, bars, suggested_on, horizon))
        .collect();
    (!returns.is_empty()).then(|| mean(&returns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Nyse;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn bar(day: Date, close: f64) -> Bar {
        Bar {
            symbol: "T".into(),
            interval: Interval::Day,
            time: day.midnight_utc(),
            open: close,
            high: close,
            low: close,
            close,
            volume: 1.0,
        }
    }

    /// Bars on every NYSE day of March–May 2024 at 50, with chosen closes overridden.
    fn bars(overrides: &[(&str, f64)]) -> Vec<Bar> {
        Nyse.trading_days(date("2024-03-01"), date("2024-05-31"))
            .into_iter()
            .map(|d| {
                let close = overrides
                    .iter()
                    .find(|(s, _)| date(s) == d)
                    .map_or(50.0, |o| o.1);
                bar(d, close)
            })
            .collect()
    }

    // Suggested Thursday 2024-03-28: Good Friday and the weekend follow, so the entry is
    // Monday 1 April; +1 = 2 April, +5 = 8 April, +20 = 29 April (22 April trading days).
    const CASE: [(&str, f64); 4] = [
        ("2024-04-01", 100.0),
        ("2024-04-02", 101.0),
        ("2024-04-08", 95.0),
        ("2024-04-29", 110.0),
    ];

    #[test]
    fn entry_skips_holiday_and_weekend_by_calendar() {
        let f = forward_returns(&Nyse, &bars(&CASE), date("2024-03-28"));
        assert_eq!(f.entry_day, date("2024-04-01"));
        assert!((f.d1.unwrap() - 0.01).abs() < 1e-12);
        assert!((f.d5.unwrap() + 0.05).abs() < 1e-12);
        assert!((f.d20.unwrap() - 0.10).abs() < 1e-12);
        // Suggested on Saturday: the same entry.
        assert_eq!(
            forward_returns(&Nyse, &bars(&CASE), date("2024-03-30")),
            ForwardReturns {
                suggested_on: date("2024-03-30"),
                ..f
            }
        );
    }

    #[test]
    fn bars_on_or_before_the_suggestion_day_never_enter() {
        let honest = forward_returns(&Nyse, &bars(&CASE), date("2024-03-28"));
        // Wild prices on and before the suggestion day change nothing…
        let mut tampered = bars(&CASE);
        for b in tampered
            .iter_mut()
            .filter(|b| b.date() <= date("2024-03-28"))
        {
            b.close *= 1000.0;
        }
        let f = forward_returns(&Nyse, &tampered, date("2024-03-28"));
        assert_eq!((f.d1, f.d5, f.d20), (honest.d1, honest.d5, honest.d20));
        // …and a bar on the suggestion day is not the entry even when the day trades.
        let on_day = forward_return(
            &Nyse,
            &bars(&[
                ("2024-04-01", 80.0),
                ("2024-04-02", 100.0),
                ("2024-04-03", 102.0),
            ]),
            date("2024-04-01"),
            1,
        );
        assert!((on_day.unwrap() - 0.02).abs() < 1e-12);
    }

    #[test]
    fn missing_bars_and_the_future_give_none() {
        let mut gap = bars(&CASE);
        gap.retain(|b| b.date() != date("2024-04-08"));
        let f = forward_returns(&Nyse, &gap, date("2024-03-28"));
        assert!(f.d1.is_some());
        assert_eq!(f.d5, None, "no nearest-bar substitute for a missing exit");
        let late = forward_returns(&Nyse, &bars(&CASE), date("2024-05-20"));
        assert!(late.d5.is_some());
        assert_eq!(late.d20, None, "not yet known");
        // Minute bars are not daily closes.
        let mut minutes = bars(&CASE);
        for b in minutes.iter_mut() {
            b.interval = Interval::Minute;
        }
        assert_eq!(forward_return(&Nyse, &minutes, date("2024-03-28"), 1), None);
    }

    #[test]
    fn universe_return_is_the_equal_weight_mean_of_available_symbols() {
        let a = bars(&[("2024-04-01", 100.0), ("2024-04-02", 110.0)]);
        let b = bars(&[("2024-04-01", 100.0), ("2024-04-02", 96.0)]);
        let empty: Vec<Bar> = vec![];
        let u = universe_forward_return(&Nyse, &[&a, &b, &empty], date("2024-03-28"), 1).unwrap();
        assert!((u - 0.03).abs() < 1e-12); // (0.10 - 0.04) / 2
        assert_eq!(
            universe_forward_return(&Nyse, &[&empty], date("2024-03-28"), 1),
            None
        );
    }
}
