//! Operator-approved answers (promoted feedback corrections, kb scope `curated`) come before
//! other knowledge-base results, when they are about the question at all.

/// The kb scope promoted answers are written to.
pub const SCOPE: &str = "curated";
/// Cosine similarity a curated chunk needs to the question to be put first: below it the
/// correction answers another question and would only push relevant sources down.
pub const MIN_SIMILARITY: f32 = 0.55;
/// Curated chunks placed first at most.
pub const MAX_FIRST: usize = 2;

/// `curated` (with each result's vector similarity to the question) ahead of `general`,
/// without duplicates (by `key`), `k` in all.
pub fn curated_first<T, K: PartialEq>(
    curated: Vec<(T, Option<f32>)>,
    general: Vec<T>,
    key: impl Fn(&T) -> K,
    k: usize,
) -> Vec<T> {
    let mut out: Vec<T> = curated
        .into_iter()
        .filter(|(_, sim)| sim.is_some_and(|s| s >= MIN_SIMILARITY))
        .map(|(t, _)| t)
        .take(MAX_FIRST.min(k))
        .collect();
    for g in general {
        if out.len() >= k {
            break;
        }
        if !out.iter().any(|o| key(o) == key(&g)) {
            out.push(g);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevant_curated_results_lead_without_duplicates() {
        let out = curated_first(
            vec![(10, Some(0.8)), (11, Some(0.7)), (12, Some(0.9))],
            vec![1, 10, 2, 3],
            |x| *x,
            4,
        );
        assert_eq!(out, vec![10, 11, 1, 2]);
    }

    #[test]
    fn unrelated_or_text_only_curated_results_do_not() {
        let out = curated_first(vec![(10, Some(0.2)), (11, None)], vec![1, 2, 3], |x| *x, 6);
        assert_eq!(out, vec![1, 2, 3]);
        assert_eq!(
            curated_first(vec![(10, Some(0.9))], vec![1, 2], |x| *x, 1),
            vec![10]
        );
    }
}
