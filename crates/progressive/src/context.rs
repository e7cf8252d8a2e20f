//! Context for a step, built to a token budget: the persona for the user's skill level, the
//! earlier exchanges of the conversation that are relevant to this question (by embedding),
//! and the knowledge-base sources, in that order of priority.
//!
//! Token counts are [`tessera_gateway::estimate_tokens`] estimates (characters / 4): the
//! budget is a bound on what is sent, not a tokenizer-exact count.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tessera_gateway::cache::cosine;
use tessera_gateway::estimate_tokens;
use tessera_gateway::local::terms;

use crate::sources::Source;

/// The user's self-declared expertise; it picks the persona (tone and depth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillLevel {
    Beginner,
    #[default]
    Intermediate,
    Expert,
}

impl SkillLevel {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "beginner" => Self::Beginner,
            "intermediate" => Self::Intermediate,
            "expert" => Self::Expert,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Beginner => "beginner",
            Self::Intermediate => "intermediate",
            Self::Expert => "expert",
        }
    }

    pub const fn persona(self) -> &'static str {
        match self {
            Self::Beginner => {
                "You are a patient finance tutor. The user is new to finance: define each term the first time you use it, avoid jargon, and use one short example."
            }
            Self::Intermediate => {
                "You are a finance copilot for analysts. Be precise and practical; define only uncommon terms."
            }
            Self::Expert => {
                "You are a finance copilot for experienced practitioners. Be terse and technical; skip definitions and get to formulas, caveats and numbers."
            }
        }
    }
}

/// An earlier question of the conversation with its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryMessage {
    pub question: String,
    pub answer: String,
    /// The question's embedding, when stored.
    #[serde(default)]
    pub embedding: Option<Vec<f32>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextBudget {
    /// Everything the context may take.
    pub total_tokens: u64,
    /// At most this share goes to earlier exchanges.
    pub history_share: f32,
    /// Earlier exchanges less similar than this are left out…
    pub min_similarity: f32,
    /// …except the most recent, whose similarity gets this bonus (follow-up questions are
    /// short and lean on it).
    pub recency_bonus: f32,
    /// An earlier answer is cut to this many tokens.
    pub max_answer_tokens: u64,
}

impl Default for ContextBudget {
    fn default() -> Self {
        Self {
            total_tokens: 2_000,
            history_share: 0.25,
            min_similarity: 0.35,
            recency_bonus: 0.15,
            max_answer_tokens: 150,
        }
    }
}

impl ContextBudget {
    /// The budget of each step kind: an implementation step reads a few cut-down sources,
    /// synthesis reads drafts (not sources), the single-shot baseline reads everything.
    pub fn for_step(kind: tessera_gateway::StepKind) -> Self {
        use tessera_gateway::StepKind::*;
        let total_tokens = match kind {
            Analysis | Embedding => 0,
            Planning => 800,
            Implementation => 700,
            Validation => 0,
            Synthesis => 1_200,
        };
        Self {
            total_tokens,
            ..Self::default()
        }
    }

    /// The baseline's budget: one prompt holding the whole retrieved context.
    pub fn single_shot() -> Self {
        Self {
            total_tokens: 4_000,
            ..Self::default()
        }
    }
}

/// What a step's prompt is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepContext {
    pub persona: String,
    /// Chronological.
    pub history: Vec<HistoryMessage>,
    pub sources: Vec<Source>,
    pub estimated_tokens: u64,
}

/// Builds the context: persona first, then relevant history up to its share, then sources
/// (in retrieval order; the last one that does not fit is cut at a sentence if enough room
/// is left, otherwise dropped).
pub fn build(
    question_embedding: Option<&[f32]>,
    history: &[HistoryMessage],
    sources: &[Source],
    skill: SkillLevel,
    budget: &ContextBudget,
) -> StepContext {
    let persona = skill.persona().to_string();
    let mut used = estimate_tokens(&persona);
    let history_cap = (budget.total_tokens as f32 * budget.history_share) as u64;

    let mut scored: Vec<(usize, f32)> = history
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let sim = match (question_embedding, &h.embedding) {
                (Some(q), Some(e)) => cosine(q, e),
                _ => 0.0,
            };
            let bonus = if i + 1 == history.len() {
                budget.recency_bonus
            } else {
                0.0
            };
            (i, sim + bonus)
        })
        .filter(|(_, s)| *s >= budget.min_similarity)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
    let mut chosen = Vec::new();
    let mut history_used = 0;
    for (i, _) in scored {
        let h = &history[i];
        let answer = cut_tokens(&h.answer, budget.max_answer_tokens);
        let cost = estimate_tokens(&h.question) + estimate_tokens(&answer);
        if history_used + cost > history_cap {
            continue;
        }
        history_used += cost;
        chosen.push((
            i,
            HistoryMessage {
                question: h.question.clone(),
                answer,
                embedding: None,
            },
        ));
    }
    chosen.sort_by_key(|(i, _)| *i);
    used += history_used;

    let mut kept = Vec::new();
    for s in sources {
        let cost = estimate_tokens(&s.render());
        if used + cost <= budget.total_tokens {
            used += cost;
            kept.push(s.clone());
            continue;
        }
        let room = budget.total_tokens.saturating_sub(used);
        if room >= 40 {
            let mut cut = s.clone();
            cut.content = cut_tokens(
                &s.content,
                room.saturating_sub(estimate_tokens(&s.title) + 4),
            );
            used += estimate_tokens(&cut.render());
            kept.push(cut);
        }
        break;
    }
    StepContext {
        persona,
        history: chosen.into_iter().map(|(_, h)| h).collect(),
        sources: kept,
        estimated_tokens: used,
    }
}

/// `text` cut to about `max` tokens, at the last sentence end (or word) that fits.
pub fn cut_tokens(text: &str, max: u64) -> String {
    if estimate_tokens(text) <= max {
        return text.to_string();
    }
    let max_chars = (max * tessera_gateway::usage::CHARS_PER_TOKEN) as usize;
    let head: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    let cut = head
        .rfind(". ")
        .map(|i| i + 1)
        .filter(|&i| i > head.len() / 2)
        .or_else(|| head.rfind(' '))
        .unwrap_or(head.len());
    let mut out = head[..cut].trim_end().to_string();
    out.push('…');
    out
}

/// The sources most relevant to a task by shared terms (title and content), best first, at
/// most `max`, in citation order; at least one when any exist. An implementation step reads
/// only these, which is most of what the progressive protocol saves over one large prompt.
pub fn sources_for_task(task_text: &str, sources: &[Source], max: usize) -> Vec<Source> {
    let wanted: HashSet<String> = terms(task_text).into_iter().collect();
    let mut scored: Vec<(f32, &Source)> = sources
        .iter()
        .map(|s| {
            let have: HashSet<String> = terms(&format!("{} {} {}", s.title, s.heading, s.content))
                .into_iter()
                .collect();
            let overlap = wanted.intersection(&have).count() as f32;
            // Retrieval rank breaks ties and lifts the top hits a little.
            (overlap + 0.5 / s.n as f32, s)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.n.cmp(&b.1.n)));
    let mut picked: Vec<Source> = scored
        .into_iter()
        .enumerate()
        .filter(|(i, (score, _))| *i == 0 || *score >= 1.0)
        .take(max)
        .map(|(_, (_, s))| s.clone())
        .collect();
    picked.sort_by_key(|s| s.n);
    picked
}

/// Source content an implementation step reads: about a paragraph of the sentences that
/// bear on its task (the single-shot baseline reads every retrieved source whole).
pub const TASK_SOURCE_TOKENS: u64 = 160;

/// The task's sources cut down to the sentences that bear on the task, about `max_tokens`
/// of content in all. Sentences are ranked by the task's terms they contain (a source's
/// first sentence, usually its definition, gets a small lift); the best ones are kept in
/// their original order, with "…" where text was left out. Sources that fit whole are sent
/// whole; a source left with no sentence is dropped, but the best sentence overall is always
/// kept.
pub fn focus(task_text: &str, sources: &[Source], max_tokens: u64) -> Vec<Source> {
    let total: u64 = sources.iter().map(|s| estimate_tokens(&s.content)).sum();
    if total <= max_tokens {
        return sources.to_vec();
    }
    let wanted: HashSet<String> = terms(task_text).into_iter().collect();
    let split: Vec<Vec<String>> = sources
        .iter()
        .map(|s| tessera_gateway::local::sentences(&s.content))
        .collect();
    let mut ranked: Vec<(f32, usize, usize)> = Vec::new();
    for (si, sentences) in split.iter().enumerate() {
        for (i, sentence) in sentences.iter().enumerate() {
            let have: HashSet<String> = terms(sentence).into_iter().collect();
            let lift = if i == 0 { 0.5 } else { 0.0 };
            ranked.push((wanted.intersection(&have).count() as f32 + lift, si, i));
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut keep: Vec<Vec<usize>> = vec![Vec::new(); sources.len()];
    let mut used = 0;
    for (rank, (_, si, i)) in ranked.iter().enumerate() {
        let cost = estimate_tokens(&split[*si][*i]);
        if rank > 0 && used + cost > max_tokens {
            continue;
        }
        used += cost;
        keep[*si].push(*i);
    }
    sources
        .iter()
        .zip(&split)
        .zip(keep)
        .filter(|(_, k)| !k.is_empty())
        .map(|((s, sentences), mut k)| {
            k.sort_unstable();
            let mut content = String::new();
            let mut next = 0;
            for i in k {
                if i > next {
                    content.push_str(if content.is_empty() { "… " } else { " … " });
                } else if !content.is_empty() {
                    content.push(' ');
                }
                content.push_str(&sentences[i]);
                next = i + 1;
            }
            if next < sentences.len() {
                content.push_str(" …");
            }
            Source {
                content,
                ..s.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::source;

    fn h(q: &str, a: &str, e: Vec<f32>) -> HistoryMessage {
        HistoryMessage {
            question: q.into(),
            answer: a.into(),
            embedding: Some(e),
        }
    }

    #[test]
    fn picks_relevant_history_within_its_share() {
        let history = vec![
            h("What is WACC?", "WACC blends…", vec![1.0, 0.0]),
            h("Tell me about alerts", "Alerts are…", vec![0.0, 1.0]),
            h(
                "And the cost of debt?",
                &"debt ".repeat(2000),
                vec![0.9, 0.1],
            ),
        ];
        let b = ContextBudget::default();
        let c = build(Some(&[1.0, 0.0]), &history, &[], SkillLevel::Expert, &b);
        let qs: Vec<&str> = c.history.iter().map(|m| m.question.as_str()).collect();
        // Chronological; the unrelated exchange is left out; the long answer is cut.
        assert_eq!(qs, ["What is WACC?", "And the cost of debt?"]);
        assert!(estimate_tokens(&c.history[1].answer) <= b.max_answer_tokens + 1);
        assert!(c.persona.contains("terse"));
        // Without an embedding only the most recent can pass (by its bonus alone it does not).
        let c = build(None, &history, &[], SkillLevel::Beginner, &b);
        assert!(c.history.is_empty());
    }

    #[test]
    fn sources_fill_the_budget_in_order() {
        let long = "Sentence one is here. ".repeat(200);
        let sources = vec![
            source(1, 1, "A", "short a"),
            source(2, 2, "B", &long),
            source(3, 3, "C", "short c"),
        ];
        let b = ContextBudget {
            total_tokens: 400,
            ..ContextBudget::default()
        };
        let c = build(None, &[], &sources, SkillLevel::Intermediate, &b);
        assert_eq!(
            c.sources.len(),
            2,
            "the long one is cut and nothing follows it"
        );
        assert!(c.sources[1].content.ends_with('…'));
        assert!(c.estimated_tokens <= 400, "{}", c.estimated_tokens);
        let tiny = ContextBudget {
            total_tokens: 10,
            ..ContextBudget::default()
        };
        assert!(
            build(None, &[], &sources, SkillLevel::Intermediate, &tiny)
                .sources
                .is_empty()
        );
    }

    #[test]
    fn task_sources_by_shared_terms() {
        let sources = vec![
            source(
                1,
                1,
                "WACC",
                "weighted average cost of capital blends equity and debt",
            ),
            source(2, 2, "Beta", "beta measures sensitivity to the market"),
            source(
                3,
                3,
                "CAPM",
                "cost of equity equals risk free rate plus beta times premium",
            ),
        ];
        let picked: Vec<usize> =
            sources_for_task("Estimate the cost of equity with beta", &sources, 2)
                .iter()
                .map(|s| s.n)
                .collect();
        // CAPM shares three terms, WACC two, Beta one: the best two, in citation order.
        assert_eq!(picked, vec![1, 3]);
        let picked = sources_for_task("zzz", &sources, 2);
        assert_eq!(picked.len(), 1, "at least the top retrieved source");
        assert!(sources_for_task("x", &[], 2).is_empty());
        assert_eq!(SkillLevel::parse("expert"), Some(SkillLevel::Expert));
        assert_eq!(cut_tokens("abc", 10), "abc");
    }

    #[test]
    fn focus_keeps_the_sentences_a_task_needs_within_its_budget() {
        let long = source(
            1,
            10,
            "WACC",
            "WACC is the weighted average cost of capital. Analysts argue about it at length. \
             The weights are market values of equity and debt. Conferences discuss it every year. \
             Debt enters after tax because interest is deductible. Many textbooks have pictures.",
        );
        let other = source(
            2,
            11,
            "Gardening",
            "Tomatoes need sun. Water them daily. Prune often.",
        );
        let all = [long.clone(), other];
        let task = "How are the weights of WACC and the after-tax cost of debt set?";
        let focused = focus(task, &all, 40);
        assert_eq!(
            focused.len(),
            1,
            "the unrelated source is dropped: {focused:?}"
        );
        let text = &focused[0].content;
        assert!(text.starts_with("WACC is the weighted average"), "{text}");
        assert!(
            text.contains("market values") && text.contains("after tax"),
            "{text}"
        );
        assert!(
            !text.contains("Conferences") && text.contains(" … "),
            "{text}"
        );
        assert!(estimate_tokens(text) <= 45, "{text}");
        assert_eq!(
            (focused[0].n, focused[0].chunk_id),
            (1, 10),
            "citations keep their numbers"
        );
        // Sources that fit are sent whole; the best sentence survives any budget.
        assert_eq!(focus(task, &all, 10_000), all.to_vec());
        assert_eq!(focus(task, &all, 1).len(), 1);
    }
}
