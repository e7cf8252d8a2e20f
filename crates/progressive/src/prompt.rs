//! The request each paid step sends, and the single-shot baseline it replaces.
//!
//! Requests are built with an empty model id; the gateway's routing fills it per candidate.
//! Each prompt carries only what its step needs: planning sees source *titles*, an
//! implementation step sees the few sources relevant to its task, synthesis sees the drafts
//! (already cited) and the validation findings, not the sources again.

use tessera_gateway::{ChatRequest, Message};

use crate::classify::Analysis;
use crate::context::StepContext;
use crate::plan::{PlanTask, SCHEMA_TEXT};
use crate::sources::Source;
use crate::validate::Issue;

pub const PLANNING_MAX_OUTPUT: u32 = 400;
pub const IMPLEMENTATION_MAX_OUTPUT: u32 = 500;
pub const SYNTHESIS_MAX_OUTPUT: u32 = 700;
pub const SINGLE_SHOT_MAX_OUTPUT: u32 = 1_200;
const TEMPERATURE: f32 = 0.2;

/// The marker the planning system prompt starts its task with (test doubles look for it).
pub const PLANNING_MARKER: &str = "Plan the answer as JSON.";

const CITE_RULES: &str = "Use only the numbered sources. Cite every claim with its source number in \
square brackets, like [2]. If the sources do not cover something, say so instead of guessing. \
Never promise returns.";

fn request(system: String, user: String, max_output: u32) -> ChatRequest {
    let mut r = ChatRequest::new("", vec![Message::user(user)]).with_system(system);
    r.max_output_tokens = max_output;
    r.temperature = Some(TEMPERATURE);
    r
}

fn history_block(ctx: &StepContext) -> String {
    if ctx.history.is_empty() {
        return String::new();
    }
    let mut s = String::from("Earlier in this conversation:\n");
    for h in &ctx.history {
        s.push_str(&format!("Q: {}\nA: {}\n", h.question, h.answer));
    }
    s.push('\n');
    s
}

fn sources_block(sources: &[Source]) -> String {
    if sources.is_empty() {
        return "Sources: none were found in the knowledge base.\n".into();
    }
    let mut s = String::from("Sources:\n");
    for src in sources {
        s.push_str(&src.render());
        s.push_str("\n\n");
    }
    s
}

fn extra_block(extra: Option<&str>) -> String {
    match extra.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => format!("Changed requirements from the user (they take precedence): {e}\n"),
        None => String::new(),
    }
}

/// The planning step: the question, what analysis found, the titles of the sources.
pub fn planning(
    question: &str,
    analysis: &Analysis,
    ctx: &StepContext,
    extra: Option<&str>,
) -> ChatRequest {
    let system = format!(
        "{}\n{PLANNING_MARKER} Split the user's question into 1 to 5 small tasks that together answer it; \
         each task is answered separately from the sources. Reply with only one JSON object matching: {SCHEMA_TEXT}",
        ctx.persona
    );
    let titles: Vec<String> = ctx
        .sources
        .iter()
        .map(|s| format!("[{}] {}", s.n, s.title))
        .collect();
    let components: Vec<String> = analysis
        .components
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    let user = format!(
        "{}Question: {question}\nIntent: {:?}; complexity {:.2}; components: {}\nAvailable sources: {}\n{}",
        history_block(ctx),
        analysis.intent,
        analysis.complexity,
        components.join(", "),
        if titles.is_empty() {
            "none".to_string()
        } else {
            titles.join("; ")
        },
        extra_block(extra),
    );
    request(system, user, PLANNING_MAX_OUTPUT)
}

/// An implementation step: one task, its sources, the drafts of the tasks it builds on.
///
/// `question` is the user's whole question, given when the task was written by a model and
/// may lean on it; a task of the local plan *is* a part of the question, so it stands alone
/// (and the same part asked in another turn makes the same request: a cache hit).
pub fn implementation(
    question: Option<&str>,
    task: &PlanTask,
    sources: &[Source],
    earlier: &[(String, String)],
    ctx: &StepContext,
    extra: Option<&str>,
) -> ChatRequest {
    let system = format!(
        "{}\n{CITE_RULES} Answer only this task, in at most 150 words.",
        ctx.persona
    );
    let mut user = history_block(ctx);
    if let Some(q) = question {
        user.push_str(&format!("Question: {q}\n"));
    }
    // The local plan's instructions restate the title; say it once.
    if !task.instructions.contains(task.title.trim_end_matches('…')) {
        user.push_str(&format!("Task: {}\n", task.title));
    }
    user.push_str(&format!("Instructions: {}\n", task.instructions));
    for (title, draft) in earlier {
        user.push_str(&format!("Result of \"{title}\":\n{draft}\n"));
    }
    user.push_str(&extra_block(extra));
    user.push_str(&sources_block(sources));
    request(system, user, IMPLEMENTATION_MAX_OUTPUT)
}

/// Synthesis: the drafts become one answer; validation findings are to be fixed.
pub fn synthesis(
    question: &str,
    drafts: &[(String, String)],
    issues: &[Issue],
    ctx: &StepContext,
    extra: Option<&str>,
) -> ChatRequest {
    let system = format!(
        "{}\nCombine the drafts into one answer to the question. Keep every citation [n] exactly as \
         the drafts give it and add none. Remove repetition. Never promise returns.",
        ctx.persona
    );
    let mut user = format!("Question: {question}\n\n");
    for (i, (title, draft)) in drafts.iter().enumerate() {
        user.push_str(&format!("Draft {} — {title}:\n{draft}\n\n", i + 1));
    }
    if !issues.is_empty() {
        user.push_str("A check of the drafts found (fix these):\n");
        for i in issues {
            user.push_str(&format!("- {}\n", i.message));
        }
    }
    user.push_str(&extra_block(extra));
    request(system, user, SYNTHESIS_MAX_OUTPUT)
}

/// The baseline the protocol is measured against: one prompt with the whole context.
pub fn single_shot(question: &str, ctx: &StepContext) -> ChatRequest {
    let system = format!(
        "{}\n{CITE_RULES} Think through the question step by step: analyse it, plan, work out each \
         part, check numbers against the sources, then write the final answer.",
        ctx.persona
    );
    let user = format!(
        "{}Question: {question}\n\n{}",
        history_block(ctx),
        sources_block(&ctx.sources)
    );
    request(system, user, SINGLE_SHOT_MAX_OUTPUT)
}

/// The follow-up turn for a plan retry: the model's bad answer and what was wrong with it.
pub fn with_retry(mut req: ChatRequest, bad_answer: &str, instruction: String) -> ChatRequest {
    req.messages.push(Message::assistant(bad_answer));
    req.messages.push(Message::user(instruction));
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Component, Intent};
    use crate::context::{ContextBudget, SkillLevel, build};
    use crate::sources::source;

    fn ctx() -> StepContext {
        let sources = vec![
            source(1, 11, "WACC", "WACC blends the cost of equity and debt."),
            source(2, 12, "CAPM", "Re = rf + beta × ERP."),
        ];
        build(
            None,
            &[],
            &sources,
            SkillLevel::Beginner,
            &ContextBudget::default(),
        )
    }

    fn analysis() -> Analysis {
        Analysis {
            intent: Intent::Calculate,
            intent_score: 0.6,
            complexity: 0.55,
            components: vec![Component::Calculation, Component::KnowledgeBase],
            semantic_complexity: 0.5,
            structural_complexity: 0.6,
        }
    }

    #[test]
    fn planning_shows_titles_not_contents() {
        let r = planning(
            "How do I compute WACC?",
            &analysis(),
            &ctx(),
            Some("keep it short"),
        );
        let text = r.prompt_text();
        assert!(text.contains(PLANNING_MARKER) && text.contains(SCHEMA_TEXT));
        assert!(text.contains("[1] WACC; [2] CAPM"));
        assert!(
            !text.contains("blends the cost"),
            "no source contents in planning"
        );
        assert!(text.contains("calculation, knowledge_base"));
        assert!(
            text.contains(
                "Changed requirements from the user (they take precedence): keep it short"
            )
        );
        assert!(text.contains("define each term"), "the beginner persona");
        assert_eq!(r.max_output_tokens, PLANNING_MAX_OUTPUT);
        assert_eq!(r.model, "");
    }

    #[test]
    fn implementation_and_synthesis_carry_what_they_need() {
        let c = ctx();
        let task = PlanTask {
            id: 1,
            title: "Cost of equity".into(),
            instructions: "Use CAPM".into(),
            depends_on: vec![],
        };
        let r = implementation(
            Some("q"),
            &task,
            &c.sources[1..],
            &[("WACC".into(), "draft [1]".into())],
            &c,
            None,
        );
        let text = r.prompt_text();
        assert!(text.contains("[2] CAPM\nRe = rf") && !text.contains("[1] WACC\n"));
        assert!(text.contains("Result of \"WACC\":\ndraft [1]"));
        // A task of the local plan stands alone: no question, its title said once.
        let part = PlanTask {
            id: 1,
            title: "What is WACC".into(),
            instructions: "Explain: What is WACC.".into(),
            depends_on: vec![],
        };
        let text = implementation(None, &part, &c.sources, &[], &c, None).prompt_text();
        assert!(
            !text.contains("Question:") && !text.contains("Task:"),
            "{text}"
        );
        assert!(
            text.contains("Instructions: Explain: What is WACC."),
            "{text}"
        );
        let issue = Issue::error("no_citations", "Draft 1 cites no source");
        let r = synthesis("q", &[("A".into(), "x [1]".into())], &[issue], &c, None);
        assert!(r.prompt_text().contains("fix these") && r.prompt_text().contains("Draft 1 — A"));
        let base = single_shot("q", &c);
        assert!(
            base.prompt_text().contains("[1] WACC\nWACC blends")
                && base.prompt_text().contains("[2] CAPM")
        );
        let retry = with_retry(r, "not json", "again".into());
        assert_eq!(retry.messages.len(), 3);
    }
}
