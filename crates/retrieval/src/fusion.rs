//! Reciprocal rank fusion (Cormack, Clarke & Büttcher, 2009): each list contributes
//! `weight / (k + rank)` for every id it ranks, so agreement between retrievers lifts an
//! id and no list's raw score scale matters. Each fused hit keeps where it came from, so
//! an API can show why a chunk was found.

use std::collections::HashMap;
use std::hash::Hash;

use serde::Serialize;

/// The usual constant: dampens the head of each list so one first place does not dominate.
pub const DEFAULT_RRF_K: f64 = 60.0;

/// One retriever's results, best first, with the retriever's own scores.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedList<Id> {
    /// Names the retriever in the explanation (`"vector"`, `"text"`).
    pub source: String,
    pub weight: f64,
    pub hits: Vec<(Id, f64)>,
}

impl<Id> RankedList<Id> {
    pub fn new(source: impl Into<String>, hits: Vec<(Id, f64)>) -> Self {
        RankedList {
            source: source.into(),
            weight: 1.0,
            hits,
        }
    }

    pub fn weighted(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }
}

/// Where a fused hit stood in one source list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRank {
    pub source: String,
    /// 1-based position in that list.
    pub rank: usize,
    /// The retriever's own score (cosine similarity, `ts_rank_cd`, ...).
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FusedHit<Id> {
    pub id: Id,
    /// Sum of `weight / (k + rank)` over the lists that rank this id.
    pub score: f64,
    /// One entry per list that ranks this id, in the order the lists were given.
    pub sources: Vec<SourceRank>,
}

impl<Id> FusedHit<Id> {
    /// This hit's standing in the named list, if that list ranked it.
    pub fn in_source(&self, source: &str) -> Option<&SourceRank> {
        self.sources.iter().find(|s| s.source == source)
    }

    fn best_rank(&self) -> usize {
        self.sources
            .iter()
            .map(|s| s.rank)
            .min()
            .unwrap_or(usize::MAX)
    }
}

/// Fuses ranked lists, best first. Ties in fused score go to the better single rank,
/// then to the id seen first (earlier list, then earlier position), so the order is
/// deterministic. An id repeated within one list counts at its first (best) position.
/// `k` below zero counts as zero; NaN as [`DEFAULT_RRF_K`].
pub fn reciprocal_rank_fusion<Id: Clone + Eq + Hash>(
    lists: &[RankedList<Id>],
    k: f64,
) -> Vec<FusedHit<Id>> {
    let k = if k.is_nan() {
        DEFAULT_RRF_K
    } else {
        k.max(0.0)
    };
    let mut index: HashMap<&Id, usize> = HashMap::new();
    let mut fused: Vec<FusedHit<Id>> = Vec::new();
    // The last list (1-based) that contributed to each hit: catches an id repeated in a list.
    let mut last_list: Vec<usize> = Vec::new();
    for (list_no, list) in lists.iter().enumerate().map(|(i, l)| (i + 1, l)) {
        for (position, (id, score)) in list.hits.iter().enumerate() {
            let slot = *index.entry(id).or_insert_with(|| {
                fused.push(FusedHit {
                    id: id.clone(),
                    score: 0.0,
                    sources: Vec::new(),
                });
                last_list.push(0);
                fused.len() - 1
            });
            if last_list[slot] == list_no {
                continue;
            }
            last_list[slot] = list_no;
            let rank = position + 1;
            let hit = &mut fused[slot];
            hit.score += list.weight / (k + rank as f64);
            hit.sources.push(SourceRank {
                source: list.source.clone(),
                rank,
                score: *score,
            });
        }
    }
    // `fused` is in first-seen order, and the sort is stable: that is the last tie-break.
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.best_rank().cmp(&b.best_rank()))
    });
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<Id: Clone>(hits: &[FusedHit<Id>]) -> Vec<Id> {
        hits.iter().map(|h| h.id.clone()).collect()
    }

    #[test]
    fn agreement_beats_a_single_first_place() {
        let vector = RankedList::new("vector", vec![("a", 0.9), ("b", 0.8), ("c", 0.7)]);
        let text = RankedList::new("text", vec![("b", 3.0), ("d", 2.0)]);
        let fused = reciprocal_rank_fusion(&[vector, text], DEFAULT_RRF_K);
        assert_eq!(ids(&fused), ["b", "a", "d", "c"]);
        let b = &fused[0];
        assert!((b.score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert_eq!(
            b.in_source("vector"),
            Some(&SourceRank {
                source: "vector".into(),
                rank: 2,
                score: 0.8
            })
        );
        assert_eq!(b.in_source("text").map(|s| s.rank), Some(1));
        assert_eq!(fused[1].in_source("text"), None);
    }

    #[test]
    fn ties_go_to_the_better_rank_then_to_first_seen() {
        // Equal scores and equal best ranks: the order the ids were first seen decides.
        let a = RankedList::new("A", vec![("x", 1.0)]);
        let b = RankedList::new("B", vec![("y", 1.0)]);
        assert_eq!(
            ids(&reciprocal_rank_fusion(&[a.clone(), b.clone()], 60.0)),
            ["x", "y"]
        );
        assert_eq!(ids(&reciprocal_rank_fusion(&[b, a], 60.0)), ["y", "x"]);
        let a = RankedList::new("A", vec![("q", 0.0), ("p", 0.0)]);
        let b = RankedList::new("B", vec![("p", 0.0), ("q", 0.0)]);
        let fused = reciprocal_rank_fusion(&[a, b], 60.0);
        assert_eq!(fused[0].score, fused[1].score);
        assert_eq!(ids(&fused), ["q", "p"]);

        // With k = 0 one first place (1/1) equals two second places (1/2 + 1/2): the better
        // single rank goes first even though "both" was seen before "top".
        let two = RankedList::new("two", vec![("other", 0.0), ("both", 0.0)]);
        let one = RankedList::new("one", vec![("top", 0.0), ("both", 0.0)]);
        let flat = reciprocal_rank_fusion(&[two.clone(), one.clone()], 0.0);
        assert!(flat.iter().all(|h| h.score == 1.0));
        assert_eq!(ids(&flat), ["other", "top", "both"]);
        // With k = 60 agreement wins clearly.
        assert_eq!(ids(&reciprocal_rank_fusion(&[two, one], 60.0))[0], "both");
    }

    #[test]
    fn duplicates_within_a_list_count_once_at_their_best_position() {
        let list = RankedList::new("text", vec![("a", 2.0), ("b", 1.5), ("a", 1.0)]);
        let fused = reciprocal_rank_fusion(&[list], 60.0);
        assert_eq!(ids(&fused), ["a", "b"]);
        assert_eq!(fused[0].sources.len(), 1);
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn weights_scale_a_list() {
        let vector = RankedList::new("vector", vec![("a", 0.0), ("b", 0.0)]);
        let text = RankedList::new("text", vec![("b", 0.0), ("a", 0.0)]);
        assert_eq!(
            ids(&reciprocal_rank_fusion(
                &[vector.clone(), text.clone()],
                60.0
            )),
            ["a", "b"]
        );
        assert_eq!(
            ids(&reciprocal_rank_fusion(&[vector, text.weighted(2.0)], 60.0)),
            ["b", "a"]
        );
    }

    #[test]
    fn lists_with_the_same_name_both_count() {
        let a = RankedList::new("vector", vec![("x", 0.0)]);
        let fused = reciprocal_rank_fusion(&[a.clone(), a], 60.0);
        assert_eq!(fused[0].sources.len(), 2);
        assert!((fused[0].score - 2.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn empty_and_degenerate_inputs() {
        assert!(reciprocal_rank_fusion::<u32>(&[], 60.0).is_empty());
        let empty = RankedList::<u32>::new("v", vec![]);
        assert!(reciprocal_rank_fusion(&[empty], 60.0).is_empty());
        let list = RankedList::new("v", vec![(7u32, f64::NAN)]);
        let fused = reciprocal_rank_fusion(std::slice::from_ref(&list), f64::NAN);
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-12);
        assert!(reciprocal_rank_fusion(&[list], -5.0)[0].score.is_finite());
    }
}
