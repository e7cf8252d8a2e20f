//! The plan: a small JSON document the planning step produces, parsed strictly.
//!
//! ```json
//! {"goal": "…", "tasks": [{"id": 1, "title": "…", "instructions": "…", "depends_on": []}]}
//! ```
//!
//! Models wrap JSON in prose or code fences; [`parse`] takes the one JSON object out of them,
//! rejects unknown fields, and checks the rules below. Its error text is written to be sent
//! back to the model for one retry ([`retry_instruction`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::classify::{Analysis, Component, Intent};

pub const MAX_TASKS: usize = 5;
pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_INSTRUCTIONS_CHARS: usize = 1_000;
pub const MAX_GOAL_CHARS: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub goal: String,
    pub tasks: Vec<PlanTask>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanTask {
    pub id: u32,
    pub title: String,
    pub instructions: String,
    #[serde(default)]
    pub depends_on: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// The schema as the planning prompt states it.
pub const SCHEMA_TEXT: &str = r#"{"goal": string (≤300 chars), "tasks": [{"id": integer from 1, "title": string (≤120 chars), "instructions": string (≤1000 chars), "depends_on": [ids of earlier tasks]}] (1 to 5 tasks)}"#;

/// Parses and validates a plan from a model's answer.
pub fn parse(answer: &str) -> Result<Plan, PlanError> {
    let json = extract_object(answer)?;
    let de = &mut serde_json::Deserializer::from_str(json);
    let plan: Plan = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_eof() {
            PlanError("the JSON object is not closed (the answer was cut off)".into())
        } else if path == "." {
            PlanError(format!("the JSON does not match the schema: {inner}"))
        } else {
            PlanError(format!("`{path}`: {inner}"))
        }
    })?;
    plan.validate()?;
    Ok(plan)
}

/// The single JSON object in `answer`: fences and surrounding prose are dropped.
fn extract_object(answer: &str) -> Result<&str, PlanError> {
    let mut text = answer.trim().trim_start_matches('\u{feff}');
    if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        // Skip the info string (`json`) up to the end of the line.
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let body = &after[body_start..];
        text = match body.find("```") {
            Some(end) => &body[..end],
            None => body,
        };
    }
    let open = text
        .find('{')
        .ok_or_else(|| PlanError("no JSON object found; answer with one JSON object".into()))?;
    let close = text
        .rfind('}')
        .filter(|&c| c > open)
        .ok_or_else(|| PlanError("the JSON object is not closed".into()))?;
    Ok(&text[open..=close])
}

impl Plan {
    pub fn validate(&self) -> Result<(), PlanError> {
        let err = |m: String| Err(PlanError(m));
        if self.goal.trim().is_empty() || self.goal.chars().count() > MAX_GOAL_CHARS {
            return err(format!("`goal` must be 1 to {MAX_GOAL_CHARS} characters"));
        }
        if self.tasks.is_empty() || self.tasks.len() > MAX_TASKS {
            return err(format!(
                "`tasks` must hold 1 to {MAX_TASKS} tasks, not {}",
                self.tasks.len()
            ));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if t.id == 0 {
                return err(format!("`tasks[{i}].id` must be 1 or more"));
            }
            if self.tasks[..i].iter().any(|u| u.id == t.id) {
                return err(format!("`tasks[{i}].id` {} is used twice", t.id));
            }
            if t.title.trim().is_empty() || t.title.chars().count() > MAX_TITLE_CHARS {
                return err(format!(
                    "`tasks[{i}].title` must be 1 to {MAX_TITLE_CHARS} characters"
                ));
            }
            let n = t.instructions.chars().count();
            if t.instructions.trim().is_empty() || n > MAX_INSTRUCTIONS_CHARS {
                return err(format!(
                    "`tasks[{i}].instructions` must be 1 to {MAX_INSTRUCTIONS_CHARS} characters"
                ));
            }
            for d in &t.depends_on {
                if !self.tasks[..i].iter().any(|u| u.id == *d) {
                    return err(format!(
                        "`tasks[{i}].depends_on` names {d}, which is not an earlier task's id"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The follow-up message for the one retry after a malformed plan.
pub fn retry_instruction(err: &PlanError) -> String {
    format!(
        "Your previous answer could not be used: {err}. Answer again with only one JSON object \
         matching this schema, no prose and no code fences: {SCHEMA_TEXT}"
    )
}

/// A plan made without a model, from the analysis: one task for a simple question, else one
/// task per part of the question (sentences or "and"-joined clauses), at most [`MAX_TASKS`].
/// `extra` (an edit's changed requirements) adds one task per non-empty line.
/// Questions with more parts than this are planned by a model.
pub const MAX_LOCAL_PARTS: usize = 3;

/// Why the local planner is enough for `question`, or `None` when a model should plan.
///
/// Planning decomposes; it needs a model only when the decomposition is not visible in the
/// question or a piece of it is hard. A simple question (complexity below `low`) is one
/// task. Otherwise a question whose parts are written out ("…, and …", several sentences)
/// and independent is planned as those parts, one task each, when every part on its own
/// (`part_analyses`, one per [`question_parts`]; the whole question's analysis when it has
/// one part) is below `high`. The whole question's complexity is not used there: it counts
/// the parts themselves, which the local plan has just taken care of.
pub fn local_planning_reason(
    question: &str,
    analysis: &Analysis,
    part_analyses: &[Analysis],
    low: f32,
    high: f32,
) -> Option<String> {
    if analysis.complexity < low {
        return Some(format!(
            "complexity {:.2} < {low:.2}: one task, planned locally without a model",
            analysis.complexity
        ));
    }
    let parts = question_parts(question);
    let n = parts.len();
    if n > MAX_LOCAL_PARTS || !parts_independent(question, &parts) {
        return None;
    }
    let hardest = if part_analyses.is_empty() {
        analysis.complexity
    } else {
        part_analyses
            .iter()
            .map(|a| a.complexity)
            .fold(0.0, f32::max)
    };
    (hardest < high).then(|| {
        format!(
            "{n} independent written-out part(s), the hardest of complexity {hardest:.2} < \
             {high:.2}: planned locally without a model"
        )
    })
}

/// Words that make a part lean on an earlier one ("…, and how is *it* used?").
const BACK_REFERENCES: [&str; 9] = [
    "it", "its", "them", "they", "their", "this", "that", "these", "those",
];

/// Whether the parts can be answered separately: no "then" sequencing, and no later part
/// that refers back to an earlier one.
fn parts_independent(question: &str, parts: &[String]) -> bool {
    let lower = question.to_lowercase();
    if lower.contains(" and then ") || lower.contains(", then ") {
        return false;
    }
    !parts.iter().skip(1).any(|p| {
        p.split(|c: char| !c.is_alphanumeric() && c != '\'')
            .any(|w| BACK_REFERENCES.contains(&w.to_lowercase().as_str()))
    })
}

/// The title the local plan gives the task for `part`.
pub fn task_title(part: &str) -> String {
    clip(part, MAX_TITLE_CHARS)
}

/// The parts the local plan makes of `question`: one per sentence or "…, and …" clause. In
/// a question, a clause split off before the final "?" gets one too, so that a part reads
/// (and embeds) as the question it is: "What is WACC, and …?" gives "What is WACC?".
pub fn question_parts(question: &str) -> Vec<String> {
    let q = question.trim();
    let parts = split_parts(q);
    if parts.is_empty() {
        return vec![q.to_string()];
    }
    let asks = q.ends_with('?');
    parts
        .into_iter()
        .map(|p| {
            if asks && !p.ends_with(['?', '.', '!']) {
                format!("{p}?")
            } else {
                p
            }
        })
        .collect()
}

pub fn local_plan(question: &str, analysis: &Analysis, extra: Option<&str>) -> Plan {
    let q = question.trim();
    let mut parts: Vec<String> = if analysis.complexity < 0.3 {
        vec![q.to_string()]
    } else {
        question_parts(q)
    };
    if let Some(extra) = extra {
        parts.extend(
            extra
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    parts.truncate(MAX_TASKS);
    let verb = match analysis.intent {
        Intent::Calculate => "Work out",
        Intent::Compare => "Compare",
        Intent::BuildModel => "Lay out",
        Intent::TradeDecision => "Assess",
        Intent::HowTo => "Explain how to",
        Intent::Troubleshoot => "Diagnose",
        Intent::Explain => "Explain",
    };
    let uses_calc = analysis.components.contains(&Component::Calculation);
    let tasks = parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let title = task_title(&part);
            let end = if part.ends_with(['?', '.', '!']) {
                ""
            } else {
                "."
            };
            let mut instructions = format!("{verb}: {part}{end}");
            if uses_calc {
                instructions
                    .push_str(" Show each calculation step with the numbers from the sources.");
            }
            PlanTask {
                id: i as u32 + 1,
                title,
                instructions: clip(&instructions, MAX_INSTRUCTIONS_CHARS),
                depends_on: vec![],
            }
        })
        .collect();
    Plan {
        goal: clip(q, MAX_GOAL_CHARS),
        tasks,
    }
}

/// Splits a question into its parts: sentences, then clauses joined by "; ", " and then ",
/// or a comma-separated list of things to do ("compute X, compare Y").
fn split_parts(q: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for sentence in q.split_inclusive(['?', '.', '!', ';', '\n']) {
        let s = sentence.trim().trim_end_matches(['.', ';']).trim();
        if s.is_empty() {
            continue;
        }
        for clause in s
            .split(", and ")
            .flat_map(|c| c.split(" and then "))
            .flat_map(|c| c.split(", then "))
        {
            let c = clause.trim().trim_end_matches(',');
            if c.split_whitespace().count() >= 2 {
                parts.push(c.to_string());
            } else if let Some(last) = parts.last_mut() {
                last.push(' ');
                last.push_str(c);
            }
        }
    }
    parts
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"goal":"Value the firm","tasks":[
        {"id":1,"title":"Compute WACC","instructions":"Use the weights","depends_on":[]},
        {"id":2,"title":"Discount cash flows","instructions":"At WACC","depends_on":[1]}]}"#;

    #[test]
    fn parses_plain_fenced_and_wrapped_json() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.tasks.len(), 2);
        assert_eq!(p.tasks[1].depends_on, vec![1]);
        assert_eq!(parse(&format!("```json\n{GOOD}\n```")).unwrap(), p);
        assert_eq!(
            parse(&format!("Here is the plan:\n```\n{GOOD}\n```\nDone.")).unwrap(),
            p
        );
        assert_eq!(parse(&format!("Sure! {GOOD} Hope it helps")).unwrap(), p);
        // depends_on may be left out.
        let p = parse(r#"{"goal":"g","tasks":[{"id":1,"title":"t","instructions":"i"}]}"#).unwrap();
        assert!(p.tasks[0].depends_on.is_empty());
    }

    #[test]
    fn errors_name_the_problem_for_the_retry() {
        let cases = [
            ("I cannot plan this.", "no JSON object"),
            (
                r#"{"goal":"g","tasks":[{"id":1,"title":"t"}]}"#,
                "instructions",
            ),
            (
                r#"{"goal":"g","tasks":[{"id":1,"title":"t","instructions":"i","extra":1}]}"#,
                "extra",
            ),
            (r#"{"goal":"g","tasks":[]}"#, "1 to 5 tasks"),
            (
                r#"{"goal":"g","tasks":[{"id":1,"title":"t","instructions":"i","depends_on":[2]}]}"#,
                "not an earlier task",
            ),
            (
                r#"{"goal":"g","tasks":[{"id":1,"title":"t","instructions":"i"},{"id":1,"title":"u","instructions":"i"}]}"#,
                "used twice",
            ),
            (
                r#"{"goal":"","tasks":[{"id":1,"title":"t","instructions":"i"}]}"#,
                "goal",
            ),
            (
                r#"{"goal":"g","tasks":[{"id":"one","title":"t","instructions":"i"}]}"#,
                "tasks[0].id",
            ),
            (
                r#"{"goal":"g","tasks":[{"id":1,"title":"t","instructions":"i"}"#,
                "not closed",
            ),
        ];
        for (input, needle) in cases {
            let e = parse(input).unwrap_err();
            assert!(e.0.contains(needle), "{input}: {e}");
            assert!(retry_instruction(&e).contains(SCHEMA_TEXT));
        }
        let six: Vec<String> = (1..=6)
            .map(|i| format!(r#"{{"id":{i},"title":"t","instructions":"i"}}"#))
            .collect();
        assert!(parse(&format!(r#"{{"goal":"g","tasks":[{}]}}"#, six.join(","))).is_err());
    }

    fn analysis(complexity: f32, intent: Intent, components: Vec<Component>) -> Analysis {
        Analysis {
            intent,
            intent_score: 0.5,
            complexity,
            components,
            semantic_complexity: complexity,
            structural_complexity: complexity,
        }
    }

    #[test]
    fn a_model_plans_only_what_the_question_does_not_spell_out() {
        let why = |q: &str, complexity: f32, parts: &[f32]| {
            let parts: Vec<Analysis> = parts
                .iter()
                .map(|c| analysis(*c, Intent::Explain, vec![]))
                .collect();
            let a = analysis(complexity, Intent::BuildModel, vec![]);
            local_planning_reason(q, &a, &parts, 0.3, 0.7)
        };
        // Simple: one task, whatever its shape.
        assert!(why("What is WACC?", 0.1, &[]).is_some());
        assert!(why("What is WACC?", 0.5, &[]).is_some());
        // Written-out independent parts, each below the high threshold, even when the whole
        // question (which counts its parts) is above it.
        let two = "What is WACC, and how is beta estimated from returns?";
        let reason = why(two, 0.8, &[0.4, 0.6]).unwrap();
        assert!(
            reason.contains("2 independent") && reason.contains("0.60"),
            "{reason}"
        );
        // A hard part, parts that lean on each other, or too many parts go to a model.
        assert!(why(two, 0.8, &[0.4, 0.75]).is_none());
        assert!(why("What is WACC?", 0.75, &[]).is_none());
        assert!(
            why(
                "What is WACC, and how is it used in a DCF?",
                0.5,
                &[0.4, 0.4]
            )
            .is_none()
        );
        assert!(why("Compute WACC, and then discount the flows", 0.5, &[]).is_none());
        let four = "What is WACC? What is beta? What is the ERP? What is a DCF?";
        assert!(why(four, 0.5, &[0.1, 0.1, 0.1, 0.1]).is_none());
    }

    #[test]
    fn task_titles_match_the_question_parts() {
        let q = "What is WACC, and how is beta estimated from returns?";
        let parts = question_parts(q);
        assert_eq!(
            parts,
            ["What is WACC?", "how is beta estimated from returns?"]
        );
        let p = local_plan(q, &analysis(0.5, Intent::Explain, vec![]), None);
        let titles: Vec<String> = parts.iter().map(|p| task_title(p)).collect();
        assert_eq!(
            p.tasks.iter().map(|t| t.title.clone()).collect::<Vec<_>>(),
            titles
        );
        assert_eq!(question_parts("  "), [""]);
    }

    #[test]
    fn local_plan_splits_complex_questions() {
        let a = analysis(0.1, Intent::Explain, vec![Component::KnowledgeBase]);
        let p = local_plan("What is WACC?", &a, None);
        assert_eq!(p.tasks.len(), 1);
        assert!(p.validate().is_ok());
        let a = analysis(0.8, Intent::Calculate, vec![Component::Calculation]);
        let p = local_plan(
            "Compute the WACC for the example, and then discount the free cash flows. Compare with the CAPM cost of equity?",
            &a,
            None,
        );
        assert_eq!(p.tasks.len(), 3, "{p:?}");
        assert!(
            p.tasks[0]
                .instructions
                .starts_with("Work out: Compute the WACC")
        );
        assert!(p.tasks[0].instructions.contains("calculation step"));
        assert!(p.validate().is_ok());
        let p = local_plan(
            "What is WACC?",
            &analysis(0.1, Intent::Explain, vec![]),
            Some("also cover the tax shield\n\n"),
        );
        assert_eq!(p.tasks.len(), 2);
        assert_eq!(p.tasks[1].title, "also cover the tax shield");
        let long = "x ".repeat(2000);
        assert!(local_plan(&long, &a, None).validate().is_ok());
    }
}
