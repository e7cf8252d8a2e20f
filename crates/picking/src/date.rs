//! Civil dates and UTC timestamps without a time-zone database.
//!
//! A [`Date`] is a proleptic-Gregorian calendar day stored as days since 1970-01-01;
//! a [`Timestamp`] is whole seconds since the Unix epoch, UTC. The conversions are
//! Howard Hinnant's `days_from_civil` / `civil_from_days`, exact for every `i32` day.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds since 1970-01-01T00:00:00Z.
pub type Timestamp = i64;

/// Seconds in one day.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// A calendar day; serialised as `"YYYY-MM-DD"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days: i32,
}

/// Day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Date {
    /// The date for `year-month-day`, or `None` when no such day exists.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date {
            days: days_from_civil(year, month, day),
        })
    }

    /// Days since 1970-01-01 (negative before).
    pub fn from_days_since_epoch(days: i32) -> Date {
        Date { days }
    }

    pub fn days_since_epoch(self) -> i32 {
        self.days
    }

    /// The day a timestamp falls on, in UTC.
    pub fn from_timestamp(t: Timestamp) -> Date {
        Date {
            days: t.div_euclid(SECONDS_PER_DAY) as i32,
        }
    }

    /// Midnight UTC at the start of this day.
    pub fn midnight_utc(self) -> Timestamp {
        i64::from(self.days) * SECONDS_PER_DAY
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.days)
    }

    pub fn year(self) -> i32 {
        self.ymd().0
    }

    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday (index 3 with Monday = 0).
        match (self.days + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }

    pub fn is_weekend(self) -> bool {
        matches!(self.weekday(), Weekday::Saturday | Weekday::Sunday)
    }

    pub fn add_days(self, n: i32) -> Date {
        Date {
            days: self.days + n,
        }
    }

    /// Whole days from `earlier` to `self`.
    pub fn days_since(self, earlier: Date) -> i32 {
        self.days - earlier.days
    }

    /// The `n`-th (1-based) `weekday` of a month, e.g. the third Monday of January.
    pub fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u32) -> Date {
        let first = Date::from_ymd(year, month, 1).expect("valid month");
        let offset = (weekday as i32 - first.weekday() as i32).rem_euclid(7);
        first.add_days(offset + 7 * (n as i32 - 1))
    }

    /// The last `weekday` of a month, e.g. the last Monday of May.
    pub fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Date {
        let last = Date::from_ymd(year, month, days_in_month(year, month)).expect("valid month");
        let back = (last.weekday() as i32 - weekday as i32).rem_euclid(7);
        last.add_days(-back)
    }
}

pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// The error for a string that is not a `YYYY-MM-DD` calendar day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateParseError(pub String);

impl fmt::Display for DateParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a YYYY-MM-DD date", self.0)
    }
}

impl std::error::Error for DateParseError {}

impl FromStr for Date {
    type Err = DateParseError;

    fn from_str(s: &str) -> Result<Date, DateParseError> {
        let bad = || DateParseError(s.to_string());
        let mut parts = s.splitn(3, '-');
        let (y, m, d) = (parts.next(), parts.next(), parts.next());
        let (Some(y), Some(m), Some(d)) = (y, m, d) else {
            return Err(bad());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let y = y.parse().map_err(|_| bad())?;
        let m = m.parse().map_err(|_| bad())?;
        let d = d.parse().map_err(|_| bad())?;
        Date::from_ymd(y, m, d).ok_or_else(bad)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn epoch_and_known_days_round_trip() {
        assert_eq!(Date::from_ymd(1970, 1, 1).unwrap().days_since_epoch(), 0);
        // 2000-03-01 is 11017 days after the epoch (30 years incl. 7 leap days + Jan/Feb 2000).
        assert_eq!(date("2000-03-01").days_since_epoch(), 11_017);
        assert_eq!(date("1969-12-31").days_since_epoch(), -1);
        for days in [-800_000, -1, 0, 59, 60, 11_016, 19_782, 800_000] {
            let d = Date::from_days_since_epoch(days);
            let (y, m, dom) = d.ymd();
            assert_eq!(Date::from_ymd(y, m, dom), Some(d));
        }
        assert_eq!(date("2024-02-29").to_string(), "2024-02-29");
    }

    #[test]
    fn weekdays_of_known_days() {
        assert_eq!(date("1970-01-01").weekday(), Weekday::Thursday);
        assert_eq!(date("2024-03-29").weekday(), Weekday::Friday);
        assert_eq!(date("2021-12-25").weekday(), Weekday::Saturday);
        assert!(date("2023-06-18").is_weekend());
    }

    #[test]
    fn nth_and_last_weekday() {
        assert_eq!(
            Date::nth_weekday(2024, 1, Weekday::Monday, 3),
            date("2024-01-15")
        );
        assert_eq!(
            Date::nth_weekday(2024, 11, Weekday::Thursday, 4),
            date("2024-11-28")
        );
        assert_eq!(
            Date::last_weekday(2024, 5, Weekday::Monday),
            date("2024-05-27")
        );
        assert_eq!(
            Date::last_weekday(2021, 5, Weekday::Monday),
            date("2021-05-31")
        );
    }

    #[test]
    fn rejects_impossible_dates() {
        assert!(Date::from_ymd(2023, 2, 29).is_none());
        assert!(Date::from_ymd(2024, 2, 29).is_some());
        assert!(Date::from_ymd(1900, 2, 29).is_none());
        assert!("2024-13-01".parse::<Date>().is_err());
        assert!("2024-1-01".parse::<Date>().is_err());
        assert!("2024-01-01x".parse::<Date>().is_err());
    }

    #[test]
    fn timestamps_map_to_utc_days() {
        let d = date("2024-03-29");
        assert_eq!(Date::from_timestamp(d.midnight_utc()), d);
        assert_eq!(
            Date::from_timestamp(d.midnight_utc() - 1),
            date("2024-03-28")
        );
        assert_eq!(Date::from_timestamp(-1), date("1969-12-31"));
    }
}
