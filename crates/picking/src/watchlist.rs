//! The watchlist: manual entries are kept, discovered ones merged in from discovery runs,
//! capped at a maximum size by evicting the lowest ensemble score. Every operation returns the
//! changes it made, for the change log.
//!
//! Eviction order among discovered entries: lowest score first (unknown score lowest), then
//! the oldest, then the ticker that sorts last (the one the ensemble would rank lower on a
//! tie). Manual entries are never evicted; adding a manual entry to a list that is full of
//! manual entries is refused. A discovered entry absent from a later run stays until evicted.
//! An entry added and evicted by the same merge leaves no change record (nothing changed).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::date::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Manual,
    Discovered,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchlistEntry {
    pub ticker: String,
    pub origin: Origin,
    /// The latest ensemble score, when discovery has scored it.
    pub score: Option<f64>,
    pub added_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Evicted,
    /// A discovered entry was added by hand and is now manual.
    Promoted,
    Rescored,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub ticker: String,
    pub kind: ChangeKind,
    pub origin: Origin,
    pub score: Option<f64>,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchlistError {
    /// Every entry is manual and the list is at its maximum size.
    Full {
        max_size: usize,
    },
    NotFound {
        ticker: String,
    },
}

impl fmt::Display for WatchlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchlistError::Full { max_size } => {
                write!(
                    f,
                    "the watchlist holds {max_size} manual entries, its maximum"
                )
            }
            WatchlistError::NotFound { ticker } => write!(f, "{ticker} is not on the watchlist"),
        }
    }
}

impl std::error::Error for WatchlistError {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Watchlist {
    pub max_size: usize,
    entries: BTreeMap<String, WatchlistEntry>,
}

impl Watchlist {
    pub fn new(max_size: usize) -> Watchlist {
        Watchlist {
            max_size,
            entries: BTreeMap::new(),
        }
    }

    /// A watchlist restored from storage (entries over the size are kept until the next merge).
    pub fn from_entries(max_size: usize, entries: Vec<WatchlistEntry>) -> Watchlist {
        let entries = entries.into_iter().map(|e| (e.ticker.clone(), e)).collect();
        Watchlist { max_size, entries }
    }

    /// Entries by ticker.
    pub fn entries(&self) -> impl Iterator<Item = &WatchlistEntry> {
        self.entries.values()
    }

    pub fn get(&self, ticker: &str) -> Option<&WatchlistEntry> {
        self.entries.get(ticker)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn add_manual(
        &mut self,
        ticker: &str,
        at: Timestamp,
    ) -> Result<Vec<Change>, WatchlistError> {
        if let Some(e) = self.entries.get_mut(ticker) {
            if e.origin == Origin::Manual {
                return Ok(vec![]);
            }
            e.origin = Origin::Manual;
            return Ok(vec![change(e, ChangeKind::Promoted, at)]);
        }
        let mut changes = Vec::new();
        if self.entries.len() >= self.max_size {
            let victim = self.eviction_candidate().ok_or(WatchlistError::Full {
                max_size: self.max_size,
            })?;
            let evicted = self.entries.remove(&victim).expect("candidate exists");
            changes.push(change(&evicted, ChangeKind::Evicted, at));
        }
        let entry = WatchlistEntry {
            ticker: ticker.to_string(),
            origin: Origin::Manual,
            score: None,
            added_at: at,
        };
        changes.insert(0, change(&entry, ChangeKind::Added, at));
        self.entries.insert(ticker.to_string(), entry);
        Ok(changes)
    }

    pub fn remove(&mut self, ticker: &str, at: Timestamp) -> Result<Vec<Change>, WatchlistError> {
        let e = self
            .entries
            .remove(ticker)
            .ok_or_else(|| WatchlistError::NotFound {
                ticker: ticker.to_string(),
            })?;
        Ok(vec![change(&e, ChangeKind::Removed, at)])
    }

    /// Merges a discovery run's `(ticker, ensemble score)` list, then evicts down to size.
    pub fn merge_discovered(&mut self, discovered: &[(String, f64)], at: Timestamp) -> Vec<Change> {
        let mut changes = Vec::new();
        for (ticker, score) in discovered {
            match self.entries.get_mut(ticker) {
                Some(e) if e.score != Some(*score) => {
                    e.score = Some(*score);
                    changes.push(change(e, ChangeKind::Rescored, at));
                }
                Some(_) => {}
                None => {
                    let entry = WatchlistEntry {
                        ticker: ticker.clone(),
                        origin: Origin::Discovered,
                        score: Some(*score),
                        added_at: at,
                    };
                    changes.push(change(&entry, ChangeKind::Added, at));
                    self.entries.insert(ticker.clone(), entry);
                }
            }
        }
        while self.entries.len() > self.max_size {
            let Some(victim) = self.eviction_candidate() else {
                break;
            };
            let evicted = self.entries.remove(&victim).expect("candidate exists");
            // Added in this merge: as if it never came, so no record at all.
            let added_now = changes
                .iter()
                .any(|c| c.ticker == victim && c.kind == ChangeKind::Added);
            changes.retain(|c| c.ticker != victim);
            if !added_now {
                changes.push(change(&evicted, ChangeKind::Evicted, at));
            }
        }
        changes
    }

    fn eviction_candidate(&self) -> Option<String> {
        self.entries
            .values()
            .filter(|e| e.origin == Origin::Discovered)
            .min_by(|a, b| {
                let score = |e: &WatchlistEntry| e.score.unwrap_or(f64::NEG_INFINITY);
                score(a)
                    .total_cmp(&score(b))
                    .then(a.added_at.cmp(&b.added_at))
                    .then(b.ticker.cmp(&a.ticker))
            })
            .map(|e| e.ticker.clone())
    }
}

fn change(e: &WatchlistEntry, kind: ChangeKind, at: Timestamp) -> Change {
    Change {
        ticker: e.ticker.clone(),
        kind,
        origin: e.origin,
        score: e.score,
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(changes: &[Change]) -> Vec<(&str, ChangeKind)> {
        changes
            .iter()
            .map(|c| (c.ticker.as_str(), c.kind))
            .collect()
    }

    fn found(list: &[(&str, f64)]) -> Vec<(String, f64)> {
        list.iter().map(|(t, s)| (t.to_string(), *s)).collect()
    }

    fn tickers(w: &Watchlist) -> Vec<&str> {
        w.entries().map(|e| e.ticker.as_str()).collect()
    }

    #[test]
    fn merging_adds_rescores_and_evicts_lowest_discovered() {
        let mut w = Watchlist::new(3);
        assert_eq!(
            kinds(&w.add_manual("X", 0).unwrap()),
            [("X", ChangeKind::Added)]
        );
        // Four entries for three places: B (0.5) is added and evicted at once — no record.
        let c = w.merge_discovered(&found(&[("A", 0.9), ("B", 0.5), ("C", 0.7)]), 1);
        assert_eq!(
            kinds(&c),
            [("A", ChangeKind::Added), ("C", ChangeKind::Added)]
        );
        assert_eq!(tickers(&w), ["A", "C", "X"]);
        let c = w.merge_discovered(&found(&[("D", 0.8), ("A", 0.95), ("C", 0.7)]), 2);
        assert_eq!(
            kinds(&c),
            [
                ("D", ChangeKind::Added),
                ("A", ChangeKind::Rescored),
                ("C", ChangeKind::Evicted)
            ]
        );
        assert_eq!(w.get("A").unwrap().score, Some(0.95));
        assert_eq!(tickers(&w), ["A", "D", "X"]);
    }

    #[test]
    fn a_ticker_listed_twice_and_evicted_leaves_no_record() {
        let mut w = Watchlist::new(1);
        w.merge_discovered(&found(&[("A", 0.9)]), 1);
        let c = w.merge_discovered(&found(&[("B", 0.1), ("B", 0.2)]), 2);
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(tickers(&w), ["A"]);
    }

    #[test]
    fn manual_entries_are_never_evicted() {
        let mut w = Watchlist::new(2);
        w.add_manual("X", 0).unwrap();
        w.merge_discovered(&found(&[("A", 0.9)]), 1);
        let c = w.add_manual("Y", 2).unwrap();
        assert_eq!(
            kinds(&c),
            [("Y", ChangeKind::Added), ("A", ChangeKind::Evicted)]
        );
        assert_eq!(
            w.add_manual("Z", 3),
            Err(WatchlistError::Full { max_size: 2 })
        );
        // A discovery run cannot push manual entries out either.
        assert!(w.merge_discovered(&found(&[("B", 1.0)]), 4).is_empty());
        assert_eq!(tickers(&w), ["X", "Y"]);
    }

    #[test]
    fn ties_evict_the_older_then_the_later_ticker() {
        let mut w = Watchlist::new(2);
        w.merge_discovered(&found(&[("OLD", 0.5)]), 1);
        w.merge_discovered(&found(&[("NEWA", 0.5), ("NEWB", 0.5)]), 2);
        assert_eq!(tickers(&w), ["NEWA", "NEWB"], "the older OLD goes first");
        let c = w.merge_discovered(&found(&[("NEWC", 0.6)]), 3);
        assert_eq!(
            kinds(&c),
            [("NEWC", ChangeKind::Added), ("NEWB", ChangeKind::Evicted)]
        );
    }

    #[test]
    fn promote_remove_and_not_found() {
        let mut w = Watchlist::new(5);
        w.merge_discovered(&found(&[("A", 0.4)]), 1);
        assert_eq!(
            kinds(&w.add_manual("A", 2).unwrap()),
            [("A", ChangeKind::Promoted)]
        );
        assert_eq!(w.get("A").unwrap().origin, Origin::Manual);
        assert!(w.add_manual("A", 3).unwrap().is_empty(), "idempotent");
        assert_eq!(
            kinds(&w.remove("A", 4).unwrap()),
            [("A", ChangeKind::Removed)]
        );
        assert_eq!(
            w.remove("A", 5),
            Err(WatchlistError::NotFound { ticker: "A".into() })
        );
        assert!(w.is_empty());
    }
}
