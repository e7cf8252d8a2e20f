//! Large position changes between two portfolio snapshots: what was traded, valued at the
//! current price, as a share of equity. Price moves alone do not count (the quantity must
//! change); the alert component notifies operators of each one (`position.large_change`).

use serde::Serialize;
use std::collections::BTreeMap;

use super::Position;

/// The share of equity a traded amount must reach, by default.
pub const DEFAULT_THRESHOLD_PCT: f64 = 5.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PositionChange {
    pub symbol: String,
    pub from_quantity: f64,
    pub to_quantity: f64,
    /// The traded quantity at the current price (the previous price if the position closed).
    pub traded_value: f64,
    /// `traded_value` as a percentage of equity (absolute).
    pub pct_of_equity: f64,
}

impl PositionChange {
    /// `opened`, `closed`, `increased`, `reduced` or `reversed` (long ↔ short).
    pub fn kind(&self) -> &'static str {
        let (a, b) = (self.from_quantity, self.to_quantity);
        if a == 0.0 {
            "opened"
        } else if b == 0.0 {
            "closed"
        } else if a.signum() != b.signum() {
            "reversed"
        } else if b.abs() > a.abs() {
            "increased"
        } else {
            "reduced"
        }
    }
}

/// Positions summed per symbol (a snapshot may list a symbol twice), with their last price.
fn by_symbol(positions: &[Position]) -> BTreeMap<&str, (f64, f64)> {
    let mut map: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for p in positions {
        let entry = map.entry(p.symbol.as_str()).or_insert((0.0, p.price));
        entry.0 += p.quantity;
        entry.1 = p.price;
    }
    map
}

/// The changes from `previous` to `current` whose traded value is at least `threshold_pct`
/// of `equity`, by symbol. Nothing when equity is not positive.
pub fn large_position_changes(
    previous: &[Position],
    current: &[Position],
    equity: f64,
    threshold_pct: f64,
) -> Vec<PositionChange> {
    if !(equity > 0.0) {
        return Vec::new();
    }
    let before = by_symbol(previous);
    let after = by_symbol(current);
    let mut symbols: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
    symbols.sort_unstable();
    symbols.dedup();
    symbols
        .into_iter()
        .filter_map(|symbol| {
            let (from_q, from_price) = before.get(symbol).copied().unwrap_or((0.0, 0.0));
            let (to_q, price) = after.get(symbol).copied().unwrap_or((0.0, from_price));
            let traded_value = (to_q - from_q) * price;
            let pct = (traded_value / equity * 100.0).abs();
            (traded_value.is_finite() && pct >= threshold_pct && to_q != from_q).then(|| {
                PositionChange {
                    symbol: symbol.to_string(),
                    from_quantity: from_q,
                    to_quantity: to_q,
                    traded_value,
                    pct_of_equity: (pct * 100.0).round() / 100.0,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(symbol: &str, quantity: f64, price: f64) -> Position {
        Position {
            symbol: symbol.into(),
            quantity,
            price,
            sector: None,
            asset_class: "stock".into(),
        }
    }

    #[test]
    fn traded_amounts_over_the_threshold_only() {
        let before = [
            p("AAA", 100.0, 100.0),
            p("BBB", 50.0, 20.0),
            p("CCC", 10.0, 10.0),
        ];
        // AAA +60 @ 100 = 6,000 = 6 % of 100,000; BBB +10 @ 20 = 0.2 %; CCC price doubled, no trade.
        let after = [
            p("AAA", 160.0, 100.0),
            p("BBB", 60.0, 20.0),
            p("CCC", 10.0, 20.0),
        ];
        let changes = large_position_changes(&before, &after, 100_000.0, DEFAULT_THRESHOLD_PCT);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].symbol, "AAA");
        assert_eq!(changes[0].traded_value, 6_000.0);
        assert_eq!(changes[0].pct_of_equity, 6.0);
        assert_eq!(changes[0].kind(), "increased");
    }

    #[test]
    fn opened_closed_and_reversed() {
        let before = [p("OLD", 100.0, 80.0), p("FLIP", 100.0, 50.0)];
        let after = [p("NEW", 200.0, 30.0), p("FLIP", -100.0, 50.0)];
        let changes = large_position_changes(&before, &after, 100_000.0, 5.0);
        let kinds: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.symbol.as_str(), c.kind()))
            .collect();
        // OLD sold 100 @ 80 (its last price) = 8 %; NEW bought 6 %; FLIP sold 200 @ 50 = 10 %.
        assert_eq!(
            kinds,
            [("FLIP", "reversed"), ("NEW", "opened"), ("OLD", "closed")]
        );
        assert_eq!(changes[2].traded_value, -8_000.0);
        assert_eq!(changes[2].pct_of_equity, 8.0);
    }

    #[test]
    fn duplicates_are_summed_and_bad_equity_gives_nothing() {
        let before = [p("AAA", 50.0, 100.0), p("AAA", 50.0, 100.0)];
        let after = [p("AAA", 100.0, 100.0)];
        assert!(large_position_changes(&before, &after, 100_000.0, 5.0).is_empty());
        assert!(large_position_changes(&[], &after, 0.0, 5.0).is_empty());
        assert!(large_position_changes(&[], &after, f64::NAN, 5.0).is_empty());
        // Exactly at the threshold counts.
        let five = [p("AAA", 50.0, 100.0)];
        assert_eq!(large_position_changes(&[], &five, 100_000.0, 5.0).len(), 1);
    }
}
