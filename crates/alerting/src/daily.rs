//! The daily P&L summary: when it is due (after the New York close of a trading day, by the
//! NYSE calendar of tessera-picking, early closes included) and the `pnl.daily` event made
//! from the day's portfolio snapshots.

use serde_json::json;
use tessera_picking::calendar::{Nyse, new_york_utc_offset};
use tessera_picking::date::{Date, Timestamp};

use crate::event::{Event, Severity};

pub const EVENT_TYPE: &str = "pnl.daily";

/// Which days get a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Days {
    /// NYSE trading days, after their (possibly early) close.
    Trading,
    /// Every day, after 16:00 New York time (markets that never close, tests).
    Every,
}

impl Days {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "trading" => Some(Self::Trading),
            "every" => Some(Self::Every),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub days: Days,
    /// Seconds after the close the summary waits for the last snapshots (15 min by default;
    /// may be negative).
    pub after_close_s: i64,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            days: Days::Trading,
            after_close_s: 15 * 60,
        }
    }
}

/// The New York day whose summary is due at `now` (Unix seconds), if any.
pub fn due_day(now: Timestamp, schedule: &Schedule) -> Option<Date> {
    let day = Date::from_timestamp(now + new_york_utc_offset(now));
    let close = match schedule.days {
        Days::Trading => Nyse.session_utc(day)?.1,
        Days::Every => {
            let midnight = day.midnight_utc();
            midnight + 16 * 3600 - new_york_utc_offset(midnight + 12 * 3600)
        }
    };
    (now >= close + schedule.after_close_s).then_some(day)
}

/// `[start, end)` of a New York day in Unix seconds: the snapshots that belong to it.
pub fn day_bounds(day: Date) -> (Timestamp, Timestamp) {
    // New York's midnight is 04:00 or 05:00 UTC, before the 02:00 local DST switch, so the
    // offset read at 04:00 UTC is the one in force at that midnight.
    let local_midnight = |d: Date| {
        let midnight = d.midnight_utc();
        midnight - new_york_utc_offset(midnight + 4 * 3600)
    };
    (local_midnight(day), local_midnight(day.add_days(1)))
}

/// What the day's snapshots say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayFigures {
    /// Equity at the day's last snapshot.
    pub equity: f64,
    /// The day's profit or loss, as that snapshot reported it.
    pub day_pnl: f64,
    /// The highest equity of any snapshot so far (for the drawdown).
    pub peak_equity: f64,
    pub snapshots: u32,
}

/// The `pnl.daily` event for `day`, labelled with the day.
pub fn summary_event(day: Date, f: &DayFigures, now_ms: i64) -> Event {
    let start_equity = f.equity - f.day_pnl;
    let pct = if start_equity > 0.0 {
        f.day_pnl / start_equity * 100.0
    } else {
        0.0
    };
    let drawdown_pct = if f.peak_equity > 0.0 {
        ((f.peak_equity - f.equity) / f.peak_equity * 100.0).max(0.0)
    } else {
        0.0
    };
    let sign = if f.day_pnl >= 0.0 { "+" } else { "-" };
    Event {
        event_type: EVENT_TYPE.to_string(),
        severity: Severity::Info,
        labels: [("day".to_string(), day.to_string())].into(),
        summary: Some(format!(
            "P&L {day}: {sign}{:.2} ({sign}{:.2} %), equity {:.2}, drawdown {:.2} %",
            f.day_pnl.abs(),
            pct.abs(),
            f.equity,
            drawdown_pct
        )),
        payload: json!({
            "day": day.to_string(),
            "equity": f.equity,
            "day_pnl": f.day_pnl,
            "day_pnl_pct": round2(pct),
            "peak_equity": f.peak_equity,
            "drawdown_pct": round2(drawdown_pct),
            "snapshots": f.snapshots,
        }),
        occurred_at_ms: now_ms,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: i64, min: i64) -> Timestamp {
        Date::from_ymd(y, m, d).expect("date").midnight_utc() + h * 3600 + min * 60
    }

    #[test]
    fn due_after_the_close_of_a_trading_day_only() {
        let s = Schedule::default();
        // Wednesday 2026-12-02, EST: the close is 21:00 UTC, due from 21:15.
        assert_eq!(due_day(utc(2026, 12, 2, 21, 14), &s), None);
        assert_eq!(
            due_day(utc(2026, 12, 2, 21, 15), &s),
            Some(Date::from_ymd(2026, 12, 2).expect("date"))
        );
        // Still that day at 23:59 New York time (04:59 UTC the next day).
        assert_eq!(
            due_day(utc(2026, 12, 3, 4, 59), &s),
            Some(Date::from_ymd(2026, 12, 2).expect("date"))
        );
        // Saturday: no summary; Christmas: none either.
        assert_eq!(due_day(utc(2026, 12, 5, 23, 0), &s), None);
        assert_eq!(due_day(utc(2026, 12, 25, 23, 0), &s), None);
    }

    #[test]
    fn early_close_and_summer_time() {
        let s = Schedule::default();
        // Black Friday 2026-11-27 closes at 13:00 EST = 18:00 UTC.
        assert!(due_day(utc(2026, 11, 27, 18, 15), &s).is_some());
        assert!(due_day(utc(2026, 11, 27, 18, 14), &s).is_none());
        // 2026-07-15 (EDT): the close is 20:00 UTC.
        assert!(due_day(utc(2026, 7, 15, 20, 15), &s).is_some());
        assert!(due_day(utc(2026, 7, 15, 20, 14), &s).is_none());
    }

    #[test]
    fn every_day_mode_and_a_negative_delay() {
        let s = Schedule {
            days: Days::Every,
            after_close_s: -24 * 3600,
        };
        // Saturday 10:00 New York time: due for Saturday.
        assert_eq!(
            due_day(utc(2026, 12, 5, 15, 0), &s),
            Some(Date::from_ymd(2026, 12, 5).expect("date"))
        );
        assert_eq!(Days::parse("every"), Some(Days::Every));
        assert_eq!(Days::parse("weekly"), None);
    }

    #[test]
    fn day_bounds_follow_new_york_midnight() {
        let (start, end) = day_bounds(Date::from_ymd(2026, 12, 2).expect("date"));
        assert_eq!(start, utc(2026, 12, 2, 5, 0));
        assert_eq!(end, utc(2026, 12, 3, 5, 0));
        // The day DST ends (2026-11-01) has 25 hours.
        let (start, end) = day_bounds(Date::from_ymd(2026, 11, 1).expect("date"));
        assert_eq!(end - start, 25 * 3600);
    }

    #[test]
    fn the_summary_event_has_the_figures() {
        let day = Date::from_ymd(2026, 12, 2).expect("date");
        let e = summary_event(
            day,
            &DayFigures {
                equity: 101_000.0,
                day_pnl: 1_000.0,
                peak_equity: 110_000.0,
                snapshots: 3,
            },
            7,
        );
        assert_eq!(e.event_type, "pnl.daily");
        assert_eq!(e.labels["day"], "2026-12-02");
        assert_eq!(
            e.summary.as_deref(),
            Some("P&L 2026-12-02: +1000.00 (+1.00 %), equity 101000.00, drawdown 8.18 %")
        );
        assert_eq!(e.payload["day_pnl_pct"], 1.0);
        assert_eq!(e.payload["drawdown_pct"], 8.18);
        let loss = summary_event(
            day,
            &DayFigures {
                equity: 95_000.0,
                day_pnl: -5_000.0,
                peak_equity: 100_000.0,
                snapshots: 1,
            },
            7,
        );
        assert!(
            loss.summary
                .as_deref()
                .unwrap_or("")
                .starts_with("P&L 2026-12-02: -5000.00 (-5.00 %)")
        );
        assert!(e.validate().is_ok());
    }
}
