//! The event monitor's rule: stocks (not options) whose price moved by the threshold (5 %) or
//! more within the window (15 minutes) ending now, judged from 1-minute bars, at most once per
//! symbol per cooldown (15 minutes). Run every minute by cron; the cooldown state is passed in
//! and out so the component keeps no state itself.
//!
//! "Moved within the window" is measured from every price seen in the window (each bar's open
//! and close) to the latest close: a move that has already reverted does not count.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Labels, Severity};

pub const EVENT_TYPE: &str = "price.move";
pub const DEFAULT_THRESHOLD: f64 = 0.05;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(15 * 60);
pub const BAR_LENGTH: Duration = Duration::from_secs(60);
/// Float division leaves 105/100 − 1 at 0.05000000000000004 but 1.05 − 1 elsewhere below
/// 0.05; a move of exactly the threshold must count.
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetClass {
    Stock,
    Option,
    Other,
}

impl AssetClass {
    /// For sources that give no class: an OCC option symbol (root, YYMMDD, C/P, strike × 1000
    /// in 8 digits, e.g. `AAPL  240119C00190000`, or Polygon's `O:AAPL240119C00190000`) is an
    /// option; anything else is taken for a stock.
    pub fn guess(symbol: &str) -> Self {
        if is_occ_option_symbol(symbol) {
            Self::Option
        } else {
            Self::Stock
        }
    }
}

fn is_occ_option_symbol(symbol: &str) -> bool {
    let s = symbol.strip_prefix("O:").unwrap_or(symbol).as_bytes();
    // The last 15 bytes: 6 date digits, C or P, 8 strike digits; a root of 1–6 before them.
    if s.len() < 16 {
        return false;
    }
    let (root, tail) = s.split_at(s.len() - 15);
    let root = root.trim_ascii_end();
    (1..=6).contains(&root.len())
        && tail[..6].iter().all(u8::is_ascii_digit)
        && matches!(tail[6], b'C' | b'P')
        && tail[7..].iter().all(u8::is_ascii_digit)
}

/// One 1-minute bar; only what the rule reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub symbol: String,
    pub asset_class: AssetClass,
    /// Unix milliseconds at the bar's start; it covers `[start, start + 1 min)`.
    pub start_ms: i64,
    pub open: f64,
    pub close: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorConfig {
    pub threshold: f64,
    pub window: Duration,
    pub cooldown: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            window: DEFAULT_WINDOW,
            cooldown: DEFAULT_COOLDOWN,
        }
    }
}

/// When each symbol last raised a move (unix ms); entries past their cooldown are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    pub last_alert_ms: BTreeMap<String, i64>,
}

/// A qualifying move: from a price in the window to the latest close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceMove {
    pub symbol: String,
    pub from_price: f64,
    pub from_at_ms: i64,
    pub to_price: f64,
    pub to_at_ms: i64,
    /// Relative change, e.g. 0.062 for +6.2 %.
    pub change: f64,
}

impl PriceMove {
    /// The alert event; labels `symbol` and `direction` (`up`/`down`) identify it, so a
    /// repeat within a group is deduplicated.
    pub fn to_event(&self, now_ms: i64) -> Event {
        let direction = if self.change >= 0.0 { "up" } else { "down" };
        let minutes = (self.to_at_ms - self.from_at_ms) / 60_000;
        let labels: Labels = [
            ("symbol".to_string(), self.symbol.clone()),
            ("direction".to_string(), direction.to_string()),
        ]
        .into();
        Event {
            event_type: EVENT_TYPE.to_string(),
            severity: Severity::Warning,
            labels,
            summary: Some(format!(
                "{} {direction} {:.1} % in {minutes} min ({} → {})",
                self.symbol,
                self.change.abs() * 100.0,
                self.from_price,
                self.to_price
            )),
            payload: serde_json::to_value(self).unwrap_or_default(),
            occurred_at_ms: now_ms,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The moves due at `now_ms`, sorted by symbol; records them in `state`.
pub fn scan(
    bars: &[Bar],
    now_ms: i64,
    config: &MonitorConfig,
    state: &mut MonitorState,
) -> Vec<PriceMove> {
    let bar_ms = ms(BAR_LENGTH);
    let window_start = now_ms - ms(config.window);
    let cooldown = ms(config.cooldown);
    state
        .last_alert_ms
        .retain(|_, at| now_ms < at.saturating_add(cooldown));

    let mut by_symbol: BTreeMap<&str, Vec<&Bar>> = BTreeMap::new();
    for bar in bars {
        let valid = |p: f64| p.is_finite() && p > 0.0;
        if bar.asset_class == AssetClass::Stock
            && bar.start_ms >= window_start
            && bar.start_ms + bar_ms <= now_ms
            && valid(bar.open)
            && valid(bar.close)
        {
            by_symbol.entry(&bar.symbol).or_default().push(bar);
        }
    }

    let mut moves = Vec::new();
    for (symbol, mut bars) in by_symbol {
        if state.last_alert_ms.contains_key(symbol) {
            continue;
        }
        bars.sort_by_key(|b| b.start_ms);
        let last = bars[bars.len() - 1];
        let (to_price, to_at_ms) = (last.close, last.start_ms + bar_ms);
        // Every earlier price: each bar's open, and each close but the latest.
        let earlier = bars
            .iter()
            .flat_map(|b| [(b.open, b.start_ms), (b.close, b.start_ms + bar_ms)]);
        let mut best: Option<(f64, f64, i64)> = None;
        for (price, at) in earlier.filter(|&(_, at)| at < to_at_ms) {
            let change = to_price / price - 1.0;
            if best.is_none_or(|(c, _, _)| change.abs() > c.abs()) {
                best = Some((change, price, at));
            }
        }
        if let Some((change, from_price, from_at_ms)) = best
            && change.abs() + EPSILON >= config.threshold
        {
            state.last_alert_ms.insert(symbol.to_string(), now_ms);
            moves.push(PriceMove {
                symbol: symbol.to_string(),
                from_price,
                from_at_ms,
                to_price,
                to_at_ms,
                change,
            });
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    /// A minute boundary, so bar arithmetic reads naturally.
    const NOW: i64 = 1_700_000_040_000;

    /// Bars ending at NOW: `closes[i]` is the close of the bar starting at NOW − (n − i) min,
    /// each opening at the previous close (the first at its own close).
    fn series(symbol: &str, class: AssetClass, closes: &[f64]) -> Vec<Bar> {
        let n = closes.len() as i64;
        closes
            .iter()
            .enumerate()
            .map(|(i, &close)| Bar {
                symbol: symbol.into(),
                asset_class: class,
                start_ms: NOW - (n - i as i64) * MIN,
                open: if i == 0 { close } else { closes[i - 1] },
                close,
            })
            .collect()
    }

    fn flat_then(last: f64) -> Vec<f64> {
        let mut v = vec![100.0; 14];
        v.push(last);
        v
    }

    fn run(bars: &[Bar], now: i64, state: &mut MonitorState) -> Vec<PriceMove> {
        scan(bars, now, &MonitorConfig::default(), state)
    }

    #[test]
    fn five_percent_counts_and_just_under_does_not() {
        let mut bars = series("UP", AssetClass::Stock, &flat_then(105.0));
        bars.extend(series("DOWN", AssetClass::Stock, &flat_then(95.0)));
        bars.extend(series("FLAT", AssetClass::Stock, &flat_then(104.99)));
        let moves = run(&bars, NOW, &mut MonitorState::default());
        let got: Vec<(&str, f64)> = moves
            .iter()
            .map(|m| (m.symbol.as_str(), (m.change * 1e4).round() / 1e4))
            .collect();
        assert_eq!(got, vec![("DOWN", -0.05), ("UP", 0.05)]);
        let up = &moves[1];
        assert_eq!(
            (up.from_price, up.to_price, up.to_at_ms),
            (100.0, 105.0, NOW)
        );
        // The earliest price seen in the window is the reference on a tie.
        assert_eq!(up.from_at_ms, NOW - 15 * MIN);
    }

    #[test]
    fn the_largest_move_to_now_is_reported_and_reverted_moves_are_not() {
        // Down to 95 then back up to 101: 95 → 101 is +6.3 %; 100 → 101 would not count.
        let mut closes = vec![100.0; 10];
        closes.extend([97.0, 95.0, 98.0, 100.0, 101.0]);
        let moves = run(
            &series("V", AssetClass::Stock, &closes),
            NOW,
            &mut MonitorState::default(),
        );
        assert_eq!(moves.len(), 1);
        assert_eq!(moves[0].from_price, 95.0);
        // 95 is the close of the bar starting at NOW − 4 min.
        assert_eq!(moves[0].from_at_ms, NOW - 3 * MIN);
        // 95 → 100.5 (+5.8 %) happened inside the window but has reverted: from every price
        // seen, 99.5 now is under 5 % away (+4.7 % from 95).
        let mut reverted = vec![95.0; 10];
        reverted.extend([97.0, 100.5, 99.5, 99.5, 99.5]);
        assert!(
            run(
                &series("R", AssetClass::Stock, &reverted),
                NOW,
                &mut MonitorState::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn only_the_window_ending_now_counts() {
        // 16 bars: the first (at NOW − 16 min, price 90) is outside the 15-minute window.
        let mut closes = vec![90.0];
        closes.extend(vec![100.0; 15]);
        let mut bars = series("OLD", AssetClass::Stock, &closes);
        bars[1].open = 100.0;
        assert!(run(&bars, NOW, &mut MonitorState::default()).is_empty());
        // A bar still in progress (ending after now) is ignored.
        let mut live = series("LIVE", AssetClass::Stock, &flat_then(100.0));
        live.push(Bar {
            symbol: "LIVE".into(),
            asset_class: AssetClass::Stock,
            start_ms: NOW,
            open: 100.0,
            close: 120.0,
        });
        assert!(run(&live, NOW, &mut MonitorState::default()).is_empty());
    }

    #[test]
    fn options_and_bad_prices_are_ignored() {
        let mut bars = series("AAPL240119C00190000", AssetClass::Option, &flat_then(150.0));
        // Taken as references, a 0 close or a negative open would read as an infinite move.
        let mut bad = series("BAD", AssetClass::Stock, &[100.0; 15]);
        bad[3].close = 0.0;
        bad[4].open = -1.0;
        bad[5].open = f64::NAN;
        bars.extend(bad);
        assert!(run(&bars, NOW, &mut MonitorState::default()).is_empty());
    }

    #[test]
    fn cooldown_per_symbol() {
        let bars = series("UP", AssetClass::Stock, &flat_then(106.0));
        let mut state = MonitorState::default();
        assert_eq!(run(&bars, NOW, &mut state).len(), 1);
        assert_eq!(state.last_alert_ms["UP"], NOW);
        // Same bars a minute later (shifted), still moving: within the cooldown.
        let later: Vec<Bar> = bars
            .iter()
            .map(|b| Bar {
                start_ms: b.start_ms + MIN,
                ..b.clone()
            })
            .collect();
        assert!(run(&later, NOW + MIN, &mut state).is_empty());
        assert!(run(&later, NOW + 14 * MIN, &mut state).is_empty());
        let at_15: Vec<Bar> = bars
            .iter()
            .map(|b| Bar {
                start_ms: b.start_ms + 15 * MIN,
                ..b.clone()
            })
            .collect();
        assert_eq!(run(&at_15, NOW + 15 * MIN, &mut state).len(), 1);
        // Entries past their cooldown are pruned.
        run(&[], NOW + 31 * MIN, &mut state);
        assert!(state.last_alert_ms.is_empty());
    }

    #[test]
    fn occ_symbols() {
        assert_eq!(AssetClass::guess("AAPL240119C00190000"), AssetClass::Option);
        assert_eq!(
            AssetClass::guess("AAPL  240119P00190000"),
            AssetClass::Option
        );
        assert_eq!(
            AssetClass::guess("O:SPY251219P00450000"),
            AssetClass::Option
        );
        assert_eq!(AssetClass::guess("AAPL"), AssetClass::Stock);
        assert_eq!(AssetClass::guess("BRK.B"), AssetClass::Stock);
        assert_eq!(
            AssetClass::guess("TOOLONGROOT240119C00190000"),
            AssetClass::Stock
        );
    }

    #[test]
    fn event_for_a_move() {
        let m = PriceMove {
            symbol: "AAPL".into(),
            from_price: 100.0,
            from_at_ms: NOW - 12 * MIN,
            to_price: 106.2,
            to_at_ms: NOW,
            change: 0.062,
        };
        let e = m.to_event(NOW);
        assert_eq!(e.event_type, "price.move");
        assert_eq!(e.label("direction"), Some("up"));
        assert_eq!(
            e.summary.as_deref(),
            Some("AAPL up 6.2 % in 12 min (100 → 106.2)")
        );
        assert_eq!(e.payload["to_price"], 106.2);
        assert_eq!(e.validate(), Ok(()));
    }
}
