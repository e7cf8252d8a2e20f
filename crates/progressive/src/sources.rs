//! Knowledge-base passages as a turn's numbered sources, and citations `[n]` in text.
//!
//! A turn numbers its retrieved chunks 1..=k once; every step cites that numbering. Cached
//! answers store citations as chunk ids ([`to_chunk_ids`]) so a semantic hit from another
//! turn can be renumbered for this one ([`renumber`]) or refused when it cites a chunk this
//! turn did not retrieve.

use serde::{Deserialize, Serialize};

/// One retrieved chunk, numbered for citation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The citation number, 1-based.
    pub n: usize,
    pub chunk_id: i64,
    pub document_id: String,
    pub title: String,
    #[serde(default)]
    pub heading: String,
    pub content: String,
    /// Retrieval score (fused rank score; higher is better).
    #[serde(default)]
    pub score: f32,
}

impl Source {
    /// What a prompt shows: `[n] title — heading` then the passage.
    pub fn render(&self) -> String {
        let mut head = format!("[{}] {}", self.n, self.title);
        if !self.heading.is_empty() && self.heading != self.title {
            head.push_str(" — ");
            head.push_str(&self.heading);
        }
        format!("{head}\n{}", self.content.trim())
    }
}

/// Every citation number in `text`, in order of appearance, with repeats: `[2]`, `[1, 3]`
/// and `[1][3]` are recognised; `[x]`, `[2024-01]` and markdown links are not citations.
pub fn citations(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'['
            && let Some(len) = text[i + 1..].find(']')
        {
            let inner = &text[i + 1..i + 1 + len];
            let after = bytes.get(i + 2 + len);
            let link = after == Some(&b'(');
            let numbers: Option<Vec<usize>> = inner
                .split(',')
                .map(|p| {
                    let p = p.trim();
                    (!p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| p.parse().ok())
                        .flatten()
                })
                .collect();
            if let (Some(ns), false) = (numbers, link) {
                out.extend(ns);
                i += len + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Rewrites every citation in `text` through `map`; a citation `map` drops is removed.
pub fn map_citations(text: &str, map: impl Fn(usize) -> Option<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let cited = tail[1..].find(']').and_then(|len| {
            let inner = &tail[1..1 + len];
            let link = tail.as_bytes().get(2 + len) == Some(&b'(');
            let ns: Option<Vec<usize>> = inner
                .split(',')
                .map(|p| {
                    let p = p.trim();
                    (!p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| p.parse().ok())
                        .flatten()
                })
                .collect();
            ns.filter(|_| !link).map(|ns| (ns, len + 2))
        });
        match cited {
            Some((ns, consumed)) => {
                let mapped: Vec<String> = ns
                    .into_iter()
                    .filter_map(&map)
                    .map(|n| n.to_string())
                    .collect();
                if !mapped.is_empty() {
                    out.push('[');
                    out.push_str(&mapped.join(", "));
                    out.push(']');
                } else if out.ends_with(' ') {
                    out.pop();
                }
                rest = &tail[consumed..];
            }
            None => {
                out.push('[');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The chunk ids `text` cites, by citation number (index `n - 1`), for storing with a cached
/// answer; unknown numbers map to `None`.
pub fn to_chunk_ids(text: &str, sources: &[Source]) -> Vec<Option<i64>> {
    citations(text)
        .into_iter()
        .map(|n| sources.iter().find(|s| s.n == n).map(|s| s.chunk_id))
        .collect()
}

/// Renumbers `text`, whose citations were numbered by `from` (chunk id per number, in the
/// original turn), for this turn's `sources`. `None` when it cites a chunk this turn lacks:
/// such an answer would point at sources the client cannot see.
pub fn renumber(text: &str, from: &[(usize, i64)], sources: &[Source]) -> Option<String> {
    let lookup = |n: usize| -> Option<usize> {
        let chunk = from.iter().find(|(m, _)| *m == n)?.1;
        sources.iter().find(|s| s.chunk_id == chunk).map(|s| s.n)
    };
    if citations(text).into_iter().any(|n| lookup(n).is_none()) {
        return None;
    }
    Some(map_citations(text, lookup))
}

/// Several retrieval lists as one: round-robin (the best of each list first), skipping
/// chunks already taken, at most `k`, renumbered from 1. Used when each part of a question
/// was searched on its own.
pub fn interleave(lists: Vec<Vec<Source>>, k: usize) -> Vec<Source> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for list in &lists {
            if let Some(s) = list.get(i)
                && out.len() < k
                && seen.insert(s.chunk_id)
            {
                out.push(Source {
                    n: out.len() + 1,
                    ..s.clone()
                });
            }
        }
    }
    out
}

/// The answer without the footer [`sources_footer`] appended (its chunk ids are not claims).
pub fn without_footer(text: &str) -> &str {
    text.rsplit_once(FOOTER_HEAD).map_or(text, |(body, _)| body)
}

const FOOTER_HEAD: &str = "\n\nSources:\n";

/// The sources list appended to an answer: `[n] title`, for the numbers cited, in order.
pub fn sources_footer(text: &str, sources: &[Source]) -> String {
    let mut cited: Vec<usize> = citations(text);
    cited.sort_unstable();
    cited.dedup();
    let lines: Vec<String> = cited
        .iter()
        .filter_map(|n| sources.iter().find(|s| s.n == *n))
        .map(|s| format!("[{}] {} (chunk {})", s.n, s.title, s.chunk_id))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("{FOOTER_HEAD}{}", lines.join("\n"))
    }
}

#[cfg(test)]
pub(crate) fn source(n: usize, chunk_id: i64, title: &str, content: &str) -> Source {
    Source {
        n,
        chunk_id,
        document_id: format!("doc-{chunk_id}"),
        title: title.into(),
        heading: String::new(),
        content: content.into(),
        score: 1.0 / n as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_citations_but_not_links_or_dates() {
        assert_eq!(
            citations("WACC blends [1] and CAPM [2, 3][4]."),
            vec![1, 2, 3, 4]
        );
        assert_eq!(
            citations("see [docs](http://x) and [2024-01] and [x] and [ 5 ]"),
            vec![5]
        );
        assert_eq!(citations("unterminated [1"), Vec::<usize>::new());
        assert_eq!(citations("[1234]"), Vec::<usize>::new());
    }

    #[test]
    fn parts_take_turns_without_repeats() {
        let a = vec![
            source(1, 10, "a", ""),
            source(2, 11, "b", ""),
            source(3, 12, "c", ""),
        ];
        let b = vec![
            source(1, 20, "d", ""),
            source(2, 10, "a", ""),
            source(3, 21, "e", ""),
        ];
        let merged = interleave(vec![a, b], 4);
        let ids: Vec<(usize, i64)> = merged.iter().map(|s| (s.n, s.chunk_id)).collect();
        assert_eq!(ids, [(1, 10), (2, 20), (3, 11), (4, 12)]);
        assert!(interleave(vec![], 4).is_empty());
    }

    #[test]
    fn renumbers_through_chunk_ids() {
        let now = vec![source(1, 70, "WACC", "a"), source(2, 50, "CAPM", "b")];
        // Originally [1] was chunk 50 and [2] chunk 70.
        let from = [(1, 50), (2, 70)];
        assert_eq!(renumber("x [1] y [2]", &from, &now).unwrap(), "x [2] y [1]");
        assert_eq!(renumber("x [1, 2]", &from, &now).unwrap(), "x [2, 1]");
        // A citation of a chunk this turn did not retrieve: refused.
        assert_eq!(renumber("x [3]", &[(3, 99)], &now), None);
        assert_eq!(
            map_citations("a [1] b [9] c", |n| (n == 1).then_some(4)),
            "a [4] b c"
        );
        assert_eq!(to_chunk_ids("[2] [7]", &now), vec![Some(50), None]);
    }

    #[test]
    fn footer_lists_cited_sources_once() {
        let s = vec![source(1, 70, "WACC", "a"), source(2, 50, "CAPM", "b")];
        assert_eq!(
            sources_footer("a [2] b [2]", &s),
            "\n\nSources:\n[2] CAPM (chunk 50)"
        );
        assert_eq!(sources_footer("none", &s), "");
        let answer = format!("Beta is 1.2 [2].{}", sources_footer("[2]", &s));
        assert_eq!(without_footer(&answer), "Beta is 1.2 [2].");
        assert_eq!(without_footer("no footer"), "no footer");
        assert!(s[0].render().starts_with("[1] WACC\na"));
    }
}
