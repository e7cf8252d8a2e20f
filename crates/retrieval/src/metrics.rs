//! Retrieval quality: recall@k and mean reciprocal rank over a labelled question set.
//!
//! Rankings are lists of ids, best first. Search returns chunks while labels name
//! documents, so collapse a chunk ranking with [`distinct_in_order`] first: a document
//! ranks where its best chunk ranks.

use serde::{Deserialize, Serialize};

/// One labelled evaluation question (the shape of `demo/kb/eval.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledQuestion {
    pub id: String,
    /// What the question tests, so results can be reported per kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<QuestionKind>,
    pub question: String,
    /// Ids (document stems) that answer the question.
    pub relevant: Vec<String>,
}

/// Which retriever a question is written to favour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    /// Rare exact terms (acronyms, tickers, function names): where full-text search shines.
    Lexical,
    /// Reworded with no rare term in common with the answer: where embeddings shine.
    Paraphrase,
    /// Some shared terms, some rewording.
    Mixed,
}

/// Keeps the first occurrence of each id, in order.
pub fn distinct_in_order<Id: PartialEq + Clone>(ranking: impl IntoIterator<Item = Id>) -> Vec<Id> {
    let mut out: Vec<Id> = Vec::new();
    for id in ranking {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Share of the distinct relevant ids found in the first `k` of `ranking`. With no
/// relevant ids there is nothing to recall: 0 (a labelling error the caller should reject).
pub fn recall_at_k<A: PartialEq<B>, B: PartialEq>(ranking: &[A], relevant: &[B], k: usize) -> f64 {
    let relevant = distinct_refs(relevant);
    if relevant.is_empty() {
        return 0.0;
    }
    let top = &ranking[..k.min(ranking.len())];
    let found = relevant
        .iter()
        .filter(|r| top.iter().any(|id| id == **r))
        .count();
    found as f64 / relevant.len() as f64
}

/// 1-based position of the first relevant id, if any is ranked.
pub fn first_relevant_rank<A: PartialEq<B>, B>(ranking: &[A], relevant: &[B]) -> Option<usize> {
    ranking
        .iter()
        .position(|id| relevant.iter().any(|r| id == r))
        .map(|p| p + 1)
}

/// `1 / rank` of the first relevant id; 0 when none is ranked.
pub fn reciprocal_rank<A: PartialEq<B>, B>(ranking: &[A], relevant: &[B]) -> f64 {
    first_relevant_rank(ranking, relevant).map_or(0.0, |rank| 1.0 / rank as f64)
}

/// Normalised discounted cumulative gain at `k` with binary relevance: each distinct
/// relevant id in the top `k` gains `1 / log2(rank + 1)`, divided by the gain of the ideal
/// ranking (every relevant id first). 0 with no relevant ids.
pub fn ndcg_at_k<A: PartialEq<B>, B: PartialEq>(ranking: &[A], relevant: &[B], k: usize) -> f64 {
    let relevant = distinct_refs(relevant);
    if relevant.is_empty() {
        return 0.0;
    }
    let gain = |position: usize| 1.0 / ((position + 2) as f64).log2();
    let mut seen: Vec<&B> = Vec::new();
    let mut dcg = 0.0;
    for (position, id) in ranking.iter().take(k).enumerate() {
        if let Some(r) = relevant.iter().find(|r| id == **r)
            && !seen.contains(r)
        {
            seen.push(r);
            dcg += gain(position);
        }
    }
    let ideal: f64 = (0..relevant.len().min(k)).map(gain).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// One question's scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueryScore {
    pub recall_at_k: f64,
    /// Over the whole ranking given: pass the depth you mean to score (e.g. the top 10).
    pub reciprocal_rank: f64,
    pub first_relevant_rank: Option<usize>,
}

pub fn evaluate<A: PartialEq<B>, B: PartialEq>(
    ranking: &[A],
    relevant: &[B],
    k: usize,
) -> QueryScore {
    QueryScore {
        recall_at_k: recall_at_k(ranking, relevant, k),
        reciprocal_rank: reciprocal_rank(ranking, relevant),
        first_relevant_rank: first_relevant_rank(ranking, relevant),
    }
}

/// Means over a question set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub questions: usize,
    pub k: usize,
    pub recall_at_k: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Questions with no relevant id ranked at all.
    pub misses: usize,
}

pub fn summarise(scores: &[QueryScore], k: usize) -> Summary {
    let n = scores.len();
    let mean = |f: fn(&QueryScore) -> f64| {
        if n == 0 {
            0.0
        } else {
            scores.iter().map(f).sum::<f64>() / n as f64
        }
    };
    Summary {
        questions: n,
        k,
        recall_at_k: mean(|s| s.recall_at_k),
        mrr: mean(|s| s.reciprocal_rank),
        misses: scores
            .iter()
            .filter(|s| s.first_relevant_rank.is_none())
            .count(),
    }
}

fn distinct_refs<B: PartialEq>(items: &[B]) -> Vec<&B> {
    let mut out: Vec<&B> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_distinct_relevant_ids_in_the_top_k() {
        let ranking = ["wacc", "dcf", "wacc", "beta", "var"];
        assert_eq!(recall_at_k(&ranking, &["dcf", "var"], 2), 0.5);
        assert_eq!(recall_at_k(&ranking, &["dcf", "var"], 5), 1.0);
        assert_eq!(
            recall_at_k(&ranking, &["dcf", "dcf"], 5),
            1.0,
            "duplicate labels count once"
        );
        assert_eq!(recall_at_k(&ranking, &["kelly"], 50), 0.0);
        assert_eq!(recall_at_k(&ranking, &["dcf"], 0), 0.0);
        assert_eq!(recall_at_k::<&str, &str>(&ranking, &[], 5), 0.0);
        assert_eq!(recall_at_k::<&str, &str>(&[], &["dcf"], 5), 0.0);
    }

    #[test]
    fn reciprocal_rank_uses_the_first_relevant_hit() {
        let ranking = ["a", "b", "c", "d"];
        assert_eq!(reciprocal_rank(&ranking, &["c", "d"]), 1.0 / 3.0);
        assert_eq!(first_relevant_rank(&ranking, &["c", "d"]), Some(3));
        assert_eq!(reciprocal_rank(&ranking, &["a"]), 1.0);
        assert_eq!(reciprocal_rank(&ranking, &["z"]), 0.0);
        assert_eq!(first_relevant_rank(&ranking, &["z"]), None);
    }

    #[test]
    fn ndcg_discounts_by_rank_and_normalises_by_the_ideal() {
        assert_eq!(ndcg_at_k(&["a", "b"], &["a"], 10), 1.0);
        let second = ndcg_at_k(&["x", "a"], &["a"], 10);
        assert!((second - 1.0 / 3f64.log2()).abs() < 1e-12);
        // Two relevant, one found at rank 1: 1 / (1 + 1/log2(3)).
        let half = ndcg_at_k(&["a", "x"], &["a", "b"], 10);
        assert!((half - 1.0 / (1.0 + 1.0 / 3f64.log2())).abs() < 1e-12);
        assert_eq!(ndcg_at_k(&["x", "a"], &["a"], 1), 0.0);
        assert_eq!(
            ndcg_at_k(&["a", "a"], &["a"], 10),
            1.0,
            "a repeated id gains once"
        );
        assert_eq!(ndcg_at_k::<&str, &str>(&["a"], &[], 10), 0.0);
    }

    #[test]
    fn rankings_and_labels_may_differ_in_type() {
        let ranking: Vec<String> = vec!["sharpe".into(), "sortino".into()];
        assert_eq!(evaluate(&ranking, &["sortino"], 1).recall_at_k, 0.0);
        assert_eq!(evaluate(&ranking, &["sortino"], 2).recall_at_k, 1.0);
    }

    #[test]
    fn chunk_rankings_collapse_to_documents_at_their_best_chunk() {
        let chunks = ["var", "var", "cvar", "var", "beta"];
        assert_eq!(distinct_in_order(chunks), ["var", "cvar", "beta"]);
    }

    #[test]
    fn summary_averages_and_counts_misses() {
        let scores = [
            evaluate(&["a", "b"], &["a"], 5),
            evaluate(&["a", "b"], &["b"], 5),
            evaluate(&["a", "b"], &["z"], 5),
            evaluate(&["x", "y", "z", "w"], &["w", "q"], 3),
        ];
        let s = summarise(&scores, 5);
        assert_eq!(s.questions, 4);
        assert_eq!(s.misses, 1);
        assert!((s.recall_at_k - (1.0 + 1.0 + 0.0 + 0.0) / 4.0).abs() < 1e-12);
        assert!((s.mrr - (1.0 + 0.5 + 0.0 + 0.25) / 4.0).abs() < 1e-12);
        assert_eq!(summarise(&[], 5).mrr, 0.0);
    }

    #[test]
    fn labelled_questions_read_from_json() {
        let q: LabelledQuestion = serde_json::from_str(
            r#"{"id":"q1","question":"What is XNPV?","relevant":["xirr-xnpv"]}"#,
        )
        .unwrap();
        assert_eq!(q.relevant, ["xirr-xnpv"]);
        assert_eq!(q.kind, None);
        let q: LabelledQuestion = serde_json::from_str(
            r#"{"id":"q2","kind":"paraphrase","question":"?","relevant":["a","b"]}"#,
        )
        .unwrap();
        assert_eq!(q.kind, Some(QuestionKind::Paraphrase));
        let unknown_kind = r#"{"id":"q","kind":"fuzzy","question":"?","relevant":[]}"#;
        assert!(serde_json::from_str::<LabelledQuestion>(unknown_kind).is_err());
    }
}
