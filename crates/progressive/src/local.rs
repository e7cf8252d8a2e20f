//! The steps answered without a language model: when no provider is configured, the
//! budget is spent, or every provider failed. Implementation quotes the sentences of the
//! task's sources that best match it (the gateway's extractive answerer), cited with the
//! turn's numbering; synthesis merges the drafts and says plainly that no model wrote it.

use tessera_gateway::local::{self, LocalOptions, Passage};

use crate::sources::{Source, sources_footer};

/// A task's draft: quoted sentences, each cited `[n]` with the turn's numbering.
pub fn implementation(task_text: &str, sources: &[Source]) -> String {
    let passages: Vec<Passage> = sources
        .iter()
        .map(|s| Passage {
            text: s.content.clone(),
            citation_id: s.chunk_id.to_string(),
            title: s.title.clone(),
            score: s.score,
        })
        .collect();
    let opts = LocalOptions {
        max_sentences: 3,
        ..LocalOptions::default()
    };
    let answer = local::answer(task_text, &passages, &opts);
    if !answer.grounded {
        return String::new();
    }
    let turn_n = |local_n: usize| -> Option<usize> {
        let id = &answer.sources.iter().find(|s| s.n == local_n)?.citation_id;
        sources
            .iter()
            .find(|s| s.chunk_id.to_string() == *id)
            .map(|s| s.n)
    };
    answer
        .extracts
        .iter()
        .filter_map(|e| Some(format!("- {} [{}]", e.sentence, turn_n(e.source)?)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The final answer from the drafts: the notice, each draft under its task title (when
/// there is more than one), repeated quotes once, and the sources list.
pub fn synthesis(drafts: &[(String, String)], sources: &[Source], note: Option<&str>) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut body = String::new();
    let many = drafts.iter().filter(|(_, d)| !d.trim().is_empty()).count() > 1;
    for (title, draft) in drafts {
        let lines: Vec<&str> = draft
            .lines()
            .filter(|l| !l.trim().is_empty() && seen.insert(l.trim().to_string()))
            .collect();
        if lines.is_empty() {
            continue;
        }
        if many {
            body.push_str(&format!("**{title}**\n"));
        }
        body.push_str(&lines.join("\n"));
        body.push_str("\n\n");
    }
    let mut text = String::new();
    if let Some(note) = note {
        text.push_str(note.trim());
        text.push_str("\n\n");
    }
    if body.trim().is_empty() {
        text.push_str(local::NOTHING_FOUND);
        return text;
    }
    text.push_str(local::NOTICE);
    text.push_str("\n\n");
    text.push_str(body.trim_end());
    text.push_str(&sources_footer(&body, sources));
    text
}

/// The final answer from drafts a model wrote for independent tasks that passed
/// validation: each under its task title, in plan order, with the sources list. Combining
/// them needs no model — there is nothing to reconcile between independent parts, and the
/// citations were checked already.
pub fn merge(drafts: &[(String, String)], sources: &[Source]) -> String {
    let parts: Vec<String> = drafts
        .iter()
        .filter(|(_, d)| !d.trim().is_empty())
        .map(|(title, draft)| format!("**{title}**\n{}", draft.trim()))
        .collect();
    let body = parts.join("\n\n");
    let footer = sources_footer(&body, sources);
    format!("{body}{footer}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{citations, source};

    fn sources() -> Vec<Source> {
        vec![
            source(
                1,
                40,
                "WACC",
                "WACC blends the cost of equity and the after-tax cost of debt. It is the DCF discount rate.",
            ),
            source(
                2,
                41,
                "CAPM",
                "The CAPM estimates the cost of equity from beta. Beta measures market risk.",
            ),
        ]
    }

    #[test]
    fn drafts_cite_the_turn_numbering() {
        let d = implementation("How is the cost of equity estimated with beta?", &sources());
        assert!(d.contains("[2]"), "{d}");
        assert!(d.lines().all(|l| l.starts_with("- ")));
        assert!(citations(&d).iter().all(|n| *n == 1 || *n == 2));
        assert_eq!(implementation("anything", &[]), "");
    }

    #[test]
    fn merge_keeps_each_draft_under_its_title_with_one_sources_list() {
        let s = sources();
        let text = merge(
            &[
                (
                    "WACC".into(),
                    "WACC blends equity and debt costs [1].".into(),
                ),
                ("Empty".into(), "  ".into()),
                ("Beta".into(), "Beta comes from the CAPM [2].".into()),
            ],
            &s,
        );
        assert!(text.starts_with("**WACC**\nWACC blends"), "{text}");
        assert!(text.contains("\n\n**Beta**\nBeta comes"), "{text}");
        assert!(!text.contains("Empty"), "{text}");
        assert!(!text.contains(local::NOTICE), "models wrote the drafts");
        assert_eq!(text.matches("Sources:").count(), 1, "{text}");
        assert_eq!(citations(&text), vec![1, 2, 1, 2], "{text}");
    }

    #[test]
    fn synthesis_says_no_model_wrote_it() {
        let s = sources();
        let a = implementation("cost of equity beta", &s);
        let b = implementation("WACC discount rate", &s);
        let text = synthesis(
            &[("Equity".into(), a.clone()), ("WACC".into(), b)],
            &s,
            Some("Budget exhausted."),
        );
        assert!(text.starts_with("Budget exhausted.\n\n"));
        assert!(text.contains(local::NOTICE));
        assert!(text.contains("**Equity**") && text.contains("\n\nSources:\n"));
        let one = synthesis(&[("Equity".into(), a)], &s, None);
        assert!(!one.contains("**Equity**"));
        assert!(synthesis(&[("x".into(), String::new())], &s, None).contains(local::NOTHING_FOUND));
    }
}
