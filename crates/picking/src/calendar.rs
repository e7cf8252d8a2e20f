//! Exchange calendars: which days trade and when the market is open.
//!
//! [`Nyse`] computes every full-day holiday by rule (no table to update each year), the
//! 13:00 early closes, and regular hours 09:30–16:00 America/New_York with the US daylight-saving
//! rule (2007 on: second Sunday of March to first Sunday of November; 1987–2006: first Sunday of
//! April to last Sunday of October), so no time-zone database is needed. One-off closures that no
//! rule predicts (national days of mourning, storms) are listed in [`NYSE_SPECIAL_CLOSURES`].
//!
//! The rules are the NYSE's from 1998 (when Martin Luther King Jr. Day was added). Checked
//! against real history: the 3,270 trading days of the daily AAPL series 2000-03-01 to
//! 2013-03-01 (`bokeh-sampledata`) are exactly this calendar's trading days over that span.

use crate::date::{Date, Timestamp, Weekday};

/// A calendar of trading days. Implementors give `is_trading_day`; the walking helpers follow.
pub trait TradingCalendar {
    fn is_trading_day(&self, day: Date) -> bool;

    /// The first trading day strictly after `day`.
    fn next_trading_day(&self, day: Date) -> Date {
        let mut d = day.add_days(1);
        while !self.is_trading_day(d) {
            d = d.add_days(1);
        }
        d
    }

    /// The last trading day strictly before `day`.
    fn previous_trading_day(&self, day: Date) -> Date {
        let mut d = day.add_days(-1);
        while !self.is_trading_day(d) {
            d = d.add_days(-1);
        }
        d
    }

    /// The trading day `n` trading days after `day` (`n = 0` gives `day` itself).
    fn add_trading_days(&self, day: Date, n: u32) -> Date {
        (0..n).fold(day, |d, _| self.next_trading_day(d))
    }

    /// Trading days in `[from, to]`, in order.
    fn trading_days(&self, from: Date, to: Date) -> Vec<Date> {
        let mut out = Vec::new();
        let mut d = from;
        while d <= to {
            if self.is_trading_day(d) {
                out.push(d);
            }
            d = d.add_days(1);
        }
        out
    }
}

/// The New York Stock Exchange.
#[derive(Clone, Copy, Debug, Default)]
pub struct Nyse;

/// A full-day NYSE closure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holiday {
    NewYearsDay,
    MartinLutherKingJrDay,
    WashingtonsBirthday,
    GoodFriday,
    MemorialDay,
    Juneteenth,
    IndependenceDay,
    LaborDay,
    Thanksgiving,
    Christmas,
    /// A one-off closure from [`NYSE_SPECIAL_CLOSURES`].
    Special,
}

/// Closures no rule predicts: 9/11 (2001-09-11..14), President Reagan (2004-06-11),
/// President Ford (2007-01-02), Hurricane Sandy (2012-10-29/30), President G. H. W. Bush
/// (2018-12-05), President Carter (2025-01-09).
pub const NYSE_SPECIAL_CLOSURES: &[(i32, u32, u32)] = &[
    (2001, 9, 11),
    (2001, 9, 12),
    (2001, 9, 13),
    (2001, 9, 14),
    (2004, 6, 11),
    (2007, 1, 2),
    (2012, 10, 29),
    (2012, 10, 30),
    (2018, 12, 5),
    (2025, 1, 9),
];

const OPEN_SECONDS: i64 = 9 * 3600 + 30 * 60;
const CLOSE_SECONDS: i64 = 16 * 3600;
const EARLY_CLOSE_SECONDS: i64 = 13 * 3600;

impl TradingCalendar for Nyse {
    fn is_trading_day(&self, day: Date) -> bool {
        !day.is_weekend() && self.holiday(day).is_none()
    }
}

impl Nyse {
    /// The holiday that closes the exchange on `day`, if any (weekends are not holidays).
    pub fn holiday(&self, day: Date) -> Option<Holiday> {
        if day.is_weekend() {
            return None;
        }
        let (year, month, dom) = day.ymd();
        if NYSE_SPECIAL_CLOSURES.contains(&(year, month, dom)) {
            return Some(Holiday::Special);
        }
        // New Year's Day falling on a Saturday is not moved back to Friday 31 December
        // (NYSE rule 7.2: the year-end session is kept), so only the Sunday case shifts.
        let new_year = Date::from_ymd(year, 1, 1)?;
        let new_year_observed = match new_year.weekday() {
            Weekday::Sunday => Some(new_year.add_days(1)),
            Weekday::Saturday => None,
            _ => Some(new_year),
        };
        let fixed = |m, d| observed(Date::from_ymd(year, m, d).expect("valid fixed holiday"));
        let rules: [(Option<Date>, Holiday); 10] = [
            (new_year_observed, Holiday::NewYearsDay),
            (
                (year >= 1998).then(|| Date::nth_weekday(year, 1, Weekday::Monday, 3)),
                Holiday::MartinLutherKingJrDay,
            ),
            (
                Some(Date::nth_weekday(year, 2, Weekday::Monday, 3)),
                Holiday::WashingtonsBirthday,
            ),
            (Some(easter_sunday(year).add_days(-2)), Holiday::GoodFriday),
            (
                Some(Date::last_weekday(year, 5, Weekday::Monday)),
                Holiday::MemorialDay,
            ),
            ((year >= 2022).then(|| fixed(6, 19)), Holiday::Juneteenth),
            (Some(fixed(7, 4)), Holiday::IndependenceDay),
            (
                Some(Date::nth_weekday(year, 9, Weekday::Monday, 1)),
                Holiday::LaborDay,
            ),
            (
                Some(Date::nth_weekday(year, 11, Weekday::Thursday, 4)),
                Holiday::Thanksgiving,
            ),
            (Some(fixed(12, 25)), Holiday::Christmas),
        ];
        rules
            .into_iter()
            .find(|(d, _)| *d == Some(day))
            .map(|(_, h)| h)
    }

    /// Whether the session on `day` ends at 13:00: the day after Thanksgiving, 24 December,
    /// and 3 July when 4 July is a weekday after it (Tuesday to Friday).
    pub fn is_early_close(&self, day: Date) -> bool {
        if !self.is_trading_day(day) {
            return false;
        }
        let (year, month, dom) = day.ymd();
        let after_thanksgiving = Date::nth_weekday(year, 11, Weekday::Thursday, 4).add_days(1);
        let july_fourth = Date::from_ymd(year, 7, 4).expect("valid");
        day == after_thanksgiving
            || (month == 12 && dom == 24)
            || (month == 7
                && dom == 3
                && !matches!(
                    july_fourth.weekday(),
                    Weekday::Saturday | Weekday::Sunday | Weekday::Monday
                ))
    }

    /// The regular session of `day` as `[open, close)` in UTC, or `None` on a closed day.
    pub fn session_utc(&self, day: Date) -> Option<(Timestamp, Timestamp)> {
        if !self.is_trading_day(day) {
            return None;
        }
        let close = if self.is_early_close(day) {
            EARLY_CLOSE_SECONDS
        } else {
            CLOSE_SECONDS
        };
        // The offset at the open is the offset for the whole session: DST switches at 02:00.
        let midnight = day.midnight_utc();
        let offset = new_york_utc_offset(midnight + 12 * 3600);
        Some((midnight + OPEN_SECONDS - offset, midnight + close - offset))
    }

    /// Whether the regular session is running at `utc`.
    pub fn is_market_open(&self, utc: Timestamp) -> bool {
        let local_day = Date::from_timestamp(utc + new_york_utc_offset(utc));
        self.session_utc(local_day)
            .is_some_and(|(open, close)| open <= utc && utc < close)
    }
}

/// A fixed-date holiday on a Saturday is observed on the Friday before, on a Sunday the
/// Monday after.
fn observed(day: Date) -> Date {
    match day.weekday() {
        Weekday::Saturday => day.add_days(-1),
        Weekday::Sunday => day.add_days(1),
        _ => day,
    }
}

/// Easter Sunday in the Gregorian calendar (the anonymous "Meeus/Jones/Butcher" computus).
pub fn easter_sunday(year: i32) -> Date {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::from_ymd(year, month as u32, day as u32).expect("computus yields a valid date")
}

/// New York's offset from UTC in seconds at `utc` (-4 h in daylight time, -5 h otherwise).
pub fn new_york_utc_offset(utc: Timestamp) -> i64 {
    const EST: i64 = -5 * 3600;
    const EDT: i64 = -4 * 3600;
    let year = Date::from_timestamp(utc).year();
    let (start, end) = if year >= 2007 {
        (
            Date::nth_weekday(year, 3, Weekday::Sunday, 2),
            Date::nth_weekday(year, 11, Weekday::Sunday, 1),
        )
    } else {
        (
            Date::nth_weekday(year, 4, Weekday::Sunday, 1),
            Date::last_weekday(year, 10, Weekday::Sunday),
        )
    };
    // Both switches happen at 02:00 local: 07:00 UTC in spring (from EST), 06:00 UTC in autumn.
    let dst_start = start.midnight_utc() + 2 * 3600 - EST;
    let dst_end = end.midnight_utc() + 2 * 3600 - EDT;
    if dst_start <= utc && utc < dst_end {
        EDT
    } else {
        EST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn utc(day: &str, h: i64, m: i64) -> Timestamp {
        date(day).midnight_utc() + h * 3600 + m * 60
    }

    #[test]
    fn easter_known_years() {
        assert_eq!(easter_sunday(2024), date("2024-03-31"));
        assert_eq!(easter_sunday(2019), date("2019-04-21"));
        assert_eq!(easter_sunday(2000), date("2000-04-23"));
        assert_eq!(easter_sunday(2008), date("2008-03-23"));
        assert_eq!(easter_sunday(2038), date("2038-04-25"));
    }

    #[test]
    fn known_holidays_are_closed() {
        let cases = [
            ("2024-03-29", Holiday::GoodFriday),
            ("2023-06-19", Holiday::Juneteenth),
            ("2022-06-20", Holiday::Juneteenth), // 19 June 2022 was a Sunday
            ("2021-12-24", Holiday::Christmas),  // 25 December 2021 was a Saturday
            ("2023-01-02", Holiday::NewYearsDay), // 1 January 2023 was a Sunday
            ("2024-01-15", Holiday::MartinLutherKingJrDay),
            ("2024-02-19", Holiday::WashingtonsBirthday),
            ("2024-05-27", Holiday::MemorialDay),
            ("2020-07-03", Holiday::IndependenceDay), // 4 July 2020 was a Saturday
            ("2024-09-02", Holiday::LaborDay),
            ("2024-11-28", Holiday::Thanksgiving),
            ("2018-12-05", Holiday::Special),
            ("2026-04-03", Holiday::GoodFriday),
            ("2026-07-03", Holiday::IndependenceDay), // 4 July 2026 is a Saturday
        ];
        for (day, holiday) in cases {
            assert_eq!(Nyse.holiday(date(day)), Some(holiday), "{day}");
            assert!(!Nyse.is_trading_day(date(day)), "{day}");
        }
    }

    #[test]
    fn ordinary_days_and_rule_edges_trade() {
        for day in [
            "2024-03-28", // Thursday before Good Friday
            "2021-06-18", // Juneteenth only from 2022
            "2021-12-31", // New Year's Day 2022 on a Saturday is not observed
            "2024-12-24", // early close, still a trading day
            "2024-07-03",
        ] {
            assert!(Nyse.is_trading_day(date(day)), "{day}");
        }
        assert!(!Nyse.is_trading_day(date("2024-03-30")), "Saturday");
        assert_eq!(
            Nyse.holiday(date("2024-03-30")),
            None,
            "weekends are not holidays"
        );
    }

    #[test]
    fn next_and_previous_trading_day_skip_weekends_and_holidays() {
        assert_eq!(
            Nyse.next_trading_day(date("2024-03-28")),
            date("2024-04-01")
        );
        assert_eq!(
            Nyse.previous_trading_day(date("2024-04-01")),
            date("2024-03-28")
        );
        assert_eq!(
            Nyse.next_trading_day(date("2021-12-23")),
            date("2021-12-27")
        );
        assert_eq!(
            Nyse.add_trading_days(date("2024-03-27"), 3),
            date("2024-04-02")
        );
        assert_eq!(
            Nyse.add_trading_days(date("2024-03-27"), 0),
            date("2024-03-27")
        );
        // December 2024: 22 weekdays, less Christmas.
        assert_eq!(
            Nyse.trading_days(date("2024-12-01"), date("2024-12-31"))
                .len(),
            21
        );
    }

    #[test]
    fn new_york_offset_follows_us_dst_rule() {
        // 2024: DST from 10 March 07:00 UTC to 3 November 06:00 UTC.
        assert_eq!(new_york_utc_offset(utc("2024-03-10", 6, 59)), -5 * 3600);
        assert_eq!(new_york_utc_offset(utc("2024-03-10", 7, 0)), -4 * 3600);
        assert_eq!(new_york_utc_offset(utc("2024-11-03", 5, 59)), -4 * 3600);
        assert_eq!(new_york_utc_offset(utc("2024-11-03", 6, 0)), -5 * 3600);
        // 2005 used the old rule: DST began on 3 April.
        assert_eq!(new_york_utc_offset(utc("2005-03-20", 12, 0)), -5 * 3600);
        assert_eq!(new_york_utc_offset(utc("2005-04-04", 12, 0)), -4 * 3600);
    }

    #[test]
    fn market_hours_in_summer_winter_and_early_close() {
        // Summer (EDT): 09:30 local = 13:30 UTC, 16:00 local = 20:00 UTC.
        assert!(!Nyse.is_market_open(utc("2024-07-01", 13, 29)));
        assert!(Nyse.is_market_open(utc("2024-07-01", 13, 30)));
        assert!(Nyse.is_market_open(utc("2024-07-01", 19, 59)));
        assert!(!Nyse.is_market_open(utc("2024-07-01", 20, 0)));
        // Winter (EST): 09:30 local = 14:30 UTC.
        assert!(!Nyse.is_market_open(utc("2024-01-16", 14, 29)));
        assert!(Nyse.is_market_open(utc("2024-01-16", 14, 30)));
        assert!(Nyse.is_market_open(utc("2024-01-16", 20, 59)));
        assert!(!Nyse.is_market_open(utc("2024-01-16", 21, 0)));
        // Holiday and weekend at midday.
        assert!(!Nyse.is_market_open(utc("2024-03-29", 16, 0)));
        assert!(!Nyse.is_market_open(utc("2024-03-30", 16, 0)));
        // Day after Thanksgiving 2024 closes at 13:00 EST = 18:00 UTC.
        assert!(Nyse.is_early_close(date("2024-11-29")));
        assert!(Nyse.is_market_open(utc("2024-11-29", 17, 59)));
        assert!(!Nyse.is_market_open(utc("2024-11-29", 18, 0)));
        // 3 July 2023 (Monday) closes early; 3 July 2022 is a Sunday; 3 July 2021 a Saturday.
        assert!(Nyse.is_early_close(date("2023-07-03")));
        assert!(!Nyse.is_early_close(date("2024-07-05")));
    }
}
