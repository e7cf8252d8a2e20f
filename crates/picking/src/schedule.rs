//! Which picker jobs an hourly cron tick runs, from its timestamp and the exchange calendar.
//!
//! Spin's cron trigger hands a component only the tick's time, so one hourly trigger serves
//! the three schedules of the picker:
//! - **snapshot**: every tick (the hourly market-condition snapshot);
//! - **discovery**: every [`DISCOVERY_EVERY_HOURS`] hours of a regular session, counted from
//!   the open — the tick in the session's first hour, then every fourth hour after it, and
//!   only while [`Nyse::is_market_open`] (weekends, holidays and early closes come from the
//!   calendar, not a weekday check);
//! - **forward returns**: once a night, the tick in the 20:00 hour New York time (after the
//!   close, when the day's bars are in).

use serde::{Deserialize, Serialize};

use crate::calendar::{Nyse, new_york_utc_offset};
use crate::date::{Date, Timestamp};

pub const DISCOVERY_EVERY_HOURS: i64 = 4;
/// New York local hour of the nightly forward-return fill.
pub const FORWARD_FILL_LOCAL_HOUR: i64 = 20;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueJobs {
    pub snapshot: bool,
    pub discovery: bool,
    pub forward_returns: bool,
}

/// The jobs an hourly tick at `utc` runs.
pub fn due_jobs(utc: Timestamp) -> DueJobs {
    let nyse = Nyse;
    let local = utc + new_york_utc_offset(utc);
    let discovery = nyse.is_market_open(utc)
        && nyse
            .session_utc(Date::from_timestamp(local))
            .is_some_and(|(open, _)| ((utc - open) / 3600) % DISCOVERY_EVERY_HOURS == 0);
    DueJobs {
        snapshot: true,
        discovery,
        forward_returns: local.rem_euclid(86_400) / 3600 == FORWARD_FILL_LOCAL_HOUR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hh:mm` UTC on `day`.
    fn at(day: &str, hh: i64, mm: i64) -> Timestamp {
        day.parse::<Date>().unwrap().midnight_utc() + hh * 3600 + mm * 60
    }

    #[test]
    fn discovery_runs_in_the_first_session_hour_and_four_hours_later() {
        // 2024-03-27, a Wednesday in daylight time: the session is 13:30-20:00 UTC.
        let day = "2024-03-27";
        let ran: Vec<i64> = (0..24)
            .filter(|h| due_jobs(at(day, *h, 45)).discovery)
            .collect();
        // 13:45 is 15 minutes into the session (hour 0), 17:45 is hour 4.
        assert_eq!(ran, vec![13, 17]);
        // 13:15 is before the open.
        assert!(!due_jobs(at(day, 13, 15)).discovery);
    }

    #[test]
    fn no_discovery_on_weekends_or_holidays() {
        // Saturday 2024-03-30; Good Friday 2024-03-29.
        for day in ["2024-03-30", "2024-03-29"] {
            assert!(
                (0..24).all(|h| !due_jobs(at(day, h, 45)).discovery),
                "{day}"
            );
        }
    }

    #[test]
    fn standard_time_shifts_the_session_an_hour() {
        // 2024-01-10, standard time: the session is 14:30-21:00 UTC.
        let ran: Vec<i64> = (0..24)
            .filter(|h| due_jobs(at("2024-01-10", *h, 45)).discovery)
            .collect();
        assert_eq!(ran, vec![14, 18]);
    }

    #[test]
    fn snapshot_every_tick_and_forward_returns_once_a_night() {
        let day = "2024-03-30";
        assert!((0..24).all(|h| due_jobs(at(day, h, 5)).snapshot));
        let fills: Vec<i64> = (0..24)
            .filter(|h| due_jobs(at(day, *h, 5)).forward_returns)
            .collect();
        // 20:00 New York in daylight time is 00:00 UTC.
        assert_eq!(fills, vec![0]);
        let fills: Vec<i64> = (0..24)
            .filter(|h| due_jobs(at("2024-01-10", *h, 5)).forward_returns)
            .collect();
        assert_eq!(fills, vec![1]);
    }
}
