//! The SQL behind the circuit breaker, shared by the validator's HTTP component and its cron
//! component so both read the same numbers and move the breaker the same way. (Text only:
//! this crate runs no query.)

use crate::breaker::{self, Metrics};

/// Closed trades read for streaks, and snapshots read for the trading-cycle error rate.
pub const STREAK_WINDOW: i64 = 100;
pub const CYCLE_WINDOW: i64 = 20;

/// `$1` tenant → the peak equity, the latest equity and its day P&L (no row: no snapshot).
pub const EQUITY: &str =
    "SELECT (SELECT max(equity) FROM portfolio_snapshots WHERE tenant_id = $1)::float8,
        s.equity::float8, s.day_pnl::float8
 FROM portfolio_snapshots s WHERE s.tenant_id = $1
 ORDER BY s.taken_at DESC, s.created_at DESC LIMIT 1";

/// `$1` tenant, `$2` window → the P&L of the latest closed trades, oldest first.
pub const CLOSED_PNLS: &str = "SELECT pnl::float8 FROM (
   SELECT pnl, closed_at, id FROM validator_trades WHERE tenant_id = $1
   ORDER BY closed_at DESC, id DESC LIMIT $2) t ORDER BY closed_at, id";

/// `$1` tenant, `$2` window → cycles reported and cycles failed among the latest snapshots.
pub const CYCLES: &str = "SELECT count(*)::int8, count(*) FILTER (WHERE cycle_error)::int8 FROM (
   SELECT cycle_error FROM portfolio_snapshots WHERE tenant_id = $1 AND cycle_error IS NOT NULL
   ORDER BY taken_at DESC LIMIT $2) c";

/// `$1` tenant → the last equity of each of the last 8 UTC days, oldest first (7 returns).
pub const DAILY_CLOSES: &str = "SELECT equity::float8 FROM (
   SELECT DISTINCT ON ((taken_at AT TIME ZONE 'UTC')::date) (taken_at AT TIME ZONE 'UTC')::date AS day, equity
   FROM portfolio_snapshots
   WHERE tenant_id = $1
     AND taken_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '7 days') AT TIME ZONE 'UTC'
   ORDER BY (taken_at AT TIME ZONE 'UTC')::date, taken_at DESC) d ORDER BY day";

/// `$1` tenant: makes sure the breaker row exists (closed).
pub const ENSURE_BREAKER: &str =
    "INSERT INTO circuit_breakers (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING";

/// Tenants whose breaker is open: the ones the cron's auto-resume check looks at.
pub const OPEN_BREAKERS: &str =
    "SELECT tenant_id FROM circuit_breakers WHERE state = 'open' ORDER BY tenant_id";

/// `$1` tenant → the state, locked until the transaction ends.
pub const LOCK_BREAKER: &str = "SELECT state FROM circuit_breakers WHERE tenant_id = $1 FOR UPDATE";

/// `$1` tenant, `$2` new state, `$3` reason (NULL when closed).
pub const MOVE_BREAKER: &str =
    "UPDATE circuit_breakers SET state = $2, reason = $3, since = now() WHERE tenant_id = $1";

/// `$1` tenant, `$2` from, `$3` to, `$4` trigger, `$5` reason, `$6` metrics (jsonb), `$7` actor.
pub const RECORD_EVENT: &str = "INSERT INTO circuit_breaker_events (tenant_id, from_state, to_state, trigger, reason, metrics, actor)
 VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)";

/// What the queries above return, as the rules' metrics.
pub struct Rows {
    /// From [`EQUITY`]: (peak, latest, latest day P&L).
    pub equity: Option<(f64, f64, f64)>,
    pub closed_pnls: Vec<f64>,
    /// From [`CYCLES`]: (reported, failed).
    pub cycles: (i64, i64),
    pub daily_closes: Vec<f64>,
}

pub fn metrics(rows: &Rows) -> Metrics {
    let (drawdown_pct, daily_loss_pct) = match rows.equity {
        None => (0.0, 0.0),
        Some((peak, last, day_pnl)) => {
            let start = last - day_pnl;
            let daily = if start > 0.0 {
                (-day_pnl).max(0.0) / start * 100.0
            } else {
                0.0
            };
            (breaker::drawdown_pct(&[last], Some(peak)), daily)
        }
    };
    let (losing_streak, win_streak) = breaker::streaks(&rows.closed_pnls);
    let (cycles, failed) = rows.cycles;
    Metrics {
        drawdown_pct,
        daily_loss_pct,
        losing_streak,
        win_streak,
        error_rate: (cycles > 0).then(|| failed as f64 / cycles as f64),
        cycles: cycles.clamp(0, i64::from(u32::MAX)) as u32,
        sharpe_7d: breaker::sharpe(&rows.daily_closes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_rows() {
        let m = metrics(&Rows {
            equity: Some((100_000.0, 90_000.0, -2_000.0)),
            closed_pnls: vec![5.0, -1.0, -2.0],
            cycles: (10, 3),
            daily_closes: vec![],
        });
        assert_eq!(m.drawdown_pct, 10.0);
        assert!((m.daily_loss_pct - 2_000.0 / 92_000.0 * 100.0).abs() < 1e-12);
        assert_eq!((m.losing_streak, m.win_streak), (2, 0));
        assert_eq!((m.error_rate, m.cycles), (Some(0.3), 10));
        assert_eq!(m.sharpe_7d, None);
        let none = metrics(&Rows {
            equity: None,
            closed_pnls: vec![],
            cycles: (0, 0),
            daily_closes: vec![],
        });
        assert_eq!((none.drawdown_pct, none.error_rate), (0.0, None));
    }
}
