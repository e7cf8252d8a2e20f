//! The `local` provider: answers from retrieved passages with no generative model.
//!
//! It quotes the passages' sentences that best match the question (BM25 over sentences,
//! weighted a little by the passage's retrieval score), drops near-duplicates, cites each
//! with `[n]`, lists the sources, and says plainly that no language model wrote it.
//! Deterministic: the same question and passages always give the same answer. It is the
//! answer when no provider is configured, the budget is spent, or every provider failed.

mod text;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use text::{sentences, terms};

/// The provider id and model name recorded for local answers.
pub const PROVIDER_ID: &str = "local";
pub const MODEL_ID: &str = "extractive";

/// The first line of every grounded local answer.
pub const NOTICE: &str = "Answered locally from the knowledge base, without a language model: \
                          the sentences below are quoted from the sources.";

/// The answer when nothing was retrieved.
pub const NOTHING_FOUND: &str = "Answered locally, without a language model: the knowledge base has \
                                 no passage that matches this question, so there is nothing to quote.";

/// A retrieved passage (a knowledge-base chunk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub text: String,
    /// The chunk's id, as cited back to the client.
    pub citation_id: String,
    pub title: String,
    /// Retrieval score; higher is better (any scale).
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalOptions {
    pub max_sentences: usize,
    /// Longer sentences are cut at a word boundary and marked with "…".
    pub max_sentence_chars: usize,
    /// Sentences scoring below this fraction of the best one are left out.
    pub min_relative_score: f32,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            max_sentences: 4,
            max_sentence_chars: 400,
            min_relative_score: 0.35,
        }
    }
}

/// A cited source, numbered in order of first citation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub n: usize,
    pub citation_id: String,
    pub title: String,
}

/// One quoted sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extract {
    pub sentence: String,
    /// The [`Source::n`] it is cited as.
    pub source: usize,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalAnswer {
    /// Markdown: notice, quoted sentences with `[n]`, and the sources list.
    pub text: String,
    pub extracts: Vec<Extract>,
    pub sources: Vec<Source>,
    /// False when there was nothing to quote.
    pub grounded: bool,
}

struct Candidate {
    passage: usize,
    position: usize,
    sentence: String,
    terms: Vec<String>,
    score: f32,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;
/// How much the passage's retrieval score adds (at most +25 % for the best passage).
const RETRIEVAL_WEIGHT: f32 = 0.25;

/// Answers `question` from `passages`.
pub fn answer(question: &str, passages: &[Passage], opts: &LocalOptions) -> LocalAnswer {
    let mut cands: Vec<Candidate> = Vec::new();
    for (pi, p) in passages.iter().enumerate() {
        for (si, s) in sentences(&p.text).into_iter().enumerate() {
            let t = terms(&s);
            if !t.is_empty() {
                cands.push(Candidate {
                    passage: pi,
                    position: si,
                    sentence: s,
                    terms: t,
                    score: 0.0,
                });
            }
        }
    }
    if cands.is_empty() {
        return LocalAnswer {
            text: NOTHING_FOUND.into(),
            extracts: vec![],
            sources: vec![],
            grounded: false,
        };
    }
    score(question, passages, &mut cands);
    // Best first; ties keep retrieval order, then reading order.
    cands.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.passage.cmp(&b.passage))
            .then(a.position.cmp(&b.position))
    });

    let best = cands[0].score;
    let chosen: Vec<&Candidate> = if best > 0.0 {
        let mut chosen: Vec<&Candidate> = Vec::new();
        for c in cands
            .iter()
            .take_while(|c| c.score >= best * opts.min_relative_score)
        {
            if chosen.len() >= opts.max_sentences {
                break;
            }
            if !chosen.iter().any(|k| near_duplicate(&k.terms, &c.terms)) {
                chosen.push(c);
            }
        }
        chosen
    } else {
        // No word in common (retrieval matched by meaning): quote the opening of the passage
        // retrieval ranked first.
        let top = (0..passages.len())
            .max_by(|&a, &b| {
                passages[a]
                    .score
                    .total_cmp(&passages[b].score)
                    .then(b.cmp(&a))
            })
            .unwrap_or(0);
        let mut opening: Vec<&Candidate> = cands.iter().filter(|c| c.passage == top).collect();
        opening.sort_by_key(|c| c.position);
        opening.truncate(opts.max_sentences.min(2));
        opening
    };
    render(passages, &chosen, opts)
}

/// BM25 of each sentence against the question's terms, times the retrieval boost.
fn score(question: &str, passages: &[Passage], cands: &mut [Candidate]) {
    let q: Vec<String> = {
        let mut seen = HashSet::new();
        terms(question)
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .collect()
    };
    let n = cands.len() as f32;
    let avg_len = cands.iter().map(|c| c.terms.len()).sum::<usize>() as f32 / n;
    let df: HashMap<&str, f32> = q
        .iter()
        .map(|t| {
            (
                t.as_str(),
                cands.iter().filter(|c| c.terms.contains(t)).count() as f32,
            )
        })
        .collect();
    let max_retrieval = passages.iter().map(|p| p.score).fold(0f32, f32::max);
    for c in cands.iter_mut() {
        let len = c.terms.len() as f32;
        let mut s = 0.0;
        for t in &q {
            let tf = c.terms.iter().filter(|x| *x == t).count() as f32;
            if tf > 0.0 {
                let d = df[t.as_str()];
                let idf = (1.0 + (n - d + 0.5) / (d + 0.5)).ln();
                s += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_len));
            }
        }
        let rel = if max_retrieval > 0.0 {
            (passages[c.passage].score / max_retrieval).clamp(0.0, 1.0)
        } else {
            0.0
        };
        c.score = s * (1.0 + RETRIEVAL_WEIGHT * rel);
    }
}

/// Jaccard similarity of term sets ≥ 0.8.
fn near_duplicate(a: &[String], b: &[String]) -> bool {
    let a: HashSet<&String> = a.iter().collect();
    let b: HashSet<&String> = b.iter().collect();
    let inter = a.intersection(&b).count() as f32;
    let union = a.union(&b).count() as f32;
    union > 0.0 && inter / union >= 0.8
}

fn render(passages: &[Passage], chosen: &[&Candidate], opts: &LocalOptions) -> LocalAnswer {
    let mut sources: Vec<Source> = Vec::new();
    let mut extracts = Vec::new();
    let mut text = String::from(NOTICE);
    text.push_str("\n\n");
    for c in chosen {
        let p = &passages[c.passage];
        // Passages citing the same chunk id share a number.
        let n = match sources.iter().find(|s| s.citation_id == p.citation_id) {
            Some(s) => s.n,
            None => {
                sources.push(Source {
                    n: sources.len() + 1,
                    citation_id: p.citation_id.clone(),
                    title: p.title.clone(),
                });
                sources.len()
            }
        };
        let sentence = truncate(&c.sentence, opts.max_sentence_chars);
        text.push_str(&format!("- {sentence} [{n}]\n"));
        extracts.push(Extract {
            sentence,
            source: n,
            score: c.score,
        });
    }
    text.push_str("\nSources:\n");
    for s in &sources {
        if s.title.trim().is_empty() {
            text.push_str(&format!("[{}] {}\n", s.n, s.citation_id));
        } else {
            text.push_str(&format!(
                "[{}] {} ({})\n",
                s.n,
                s.title.trim(),
                s.citation_id
            ));
        }
    }
    LocalAnswer {
        text,
        extracts,
        sources,
        grounded: true,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end_matches([',', ';', ':', ' ']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, title: &str, score: f32, text: &str) -> Passage {
        Passage {
            text: text.into(),
            citation_id: id.into(),
            title: title.into(),
            score,
        }
    }

    fn kb() -> Vec<Passage> {
        vec![
            p(
                "kb:12",
                "Refund policy",
                0.82,
                "# Refunds\nCustomers can request a refund within 30 days of purchase. \
                 Refunds are paid to the original payment method. Shipping costs are not refunded.",
            ),
            p(
                "kb:7",
                "Pricing",
                0.61,
                "The premium plan costs $49 per month. Annual billing gives two months free. \
                 Refund requests for annual plans are prorated.",
            ),
            p(
                "kb:3",
                "Company",
                0.40,
                "ACME was founded in 2009. Its headquarters are in Lyon.",
            ),
        ]
    }

    #[test]
    fn quotes_best_matching_sentences_with_citations() {
        let a = answer(
            "How many days do customers have to request a refund?",
            &kb(),
            &LocalOptions::default(),
        );
        assert!(a.grounded);
        assert!(a.text.starts_with(NOTICE));
        assert!(a.text.contains("without a language model"));
        assert_eq!(
            a.extracts[0].sentence,
            "Customers can request a refund within 30 days of purchase."
        );
        assert_eq!(a.extracts[0].source, 1);
        assert_eq!(
            a.sources[0],
            Source {
                n: 1,
                citation_id: "kb:12".into(),
                title: "Refund policy".into()
            }
        );
        assert!(
            a.text
                .contains("- Customers can request a refund within 30 days of purchase. [1]\n")
        );
        assert!(a.text.contains("Sources:\n[1] Refund policy (kb:12)\n"));
        // The unrelated company passage is not quoted or cited.
        assert!(!a.text.contains("Lyon") && !a.text.contains("kb:3"));
        // Sources are numbered by first citation and every extract's number is listed.
        for e in &a.extracts {
            assert!(a.sources.iter().any(|s| s.n == e.source));
        }
    }

    #[test]
    fn deterministic_and_deduplicated() {
        let mut passages = kb();
        passages.push(p(
            "kb:99",
            "Refund policy (copy)",
            0.5,
            "Customers can request a refund within 30 days of purchase!",
        ));
        let a = answer("refund within 30 days", &passages, &LocalOptions::default());
        let b = answer("refund within 30 days", &passages, &LocalOptions::default());
        assert_eq!(a, b);
        let same = a
            .extracts
            .iter()
            .filter(|e| e.sentence.starts_with("Customers can request a refund"))
            .count();
        assert_eq!(same, 1, "{:#?}", a.extracts);
    }

    #[test]
    fn respects_limits() {
        let opts = LocalOptions {
            max_sentences: 1,
            max_sentence_chars: 20,
            ..LocalOptions::default()
        };
        let a = answer("refund days purchase", &kb(), &opts);
        assert_eq!(a.extracts.len(), 1);
        assert_eq!(a.extracts[0].sentence, "Customers can…");
    }

    #[test]
    fn no_passages_or_no_overlap() {
        let a = answer("What is the refund policy?", &[], &LocalOptions::default());
        assert!(!a.grounded);
        assert_eq!(a.text, NOTHING_FOUND);
        assert!(a.sources.is_empty());
        // No shared words: the top retrieved passage's opening, still cited.
        let a = answer("Where is the head office?", &kb(), &LocalOptions::default());
        assert!(a.grounded);
        assert_eq!(a.sources[0].citation_id, "kb:12");
        assert_eq!(a.extracts.len(), 2);
        assert_eq!(
            a.extracts[0].sentence,
            "Customers can request a refund within 30 days of purchase."
        );
    }

    #[test]
    fn shared_citation_ids_share_a_number() {
        let passages = vec![
            p("kb:1", "Doc", 0.9, "Alpha revenue grew strongly."),
            p("kb:1", "Doc", 0.8, "Alpha margin also grew."),
        ];
        let a = answer("alpha revenue margin", &passages, &LocalOptions::default());
        assert_eq!(a.sources.len(), 1);
        assert!(a.extracts.iter().all(|e| e.source == 1));
    }
}
