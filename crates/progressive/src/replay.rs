//! A whole turn answered again from the response cache (issue 17, docs/adr/0020).
//!
//! A turn's answer is a function of the question, the conversation's history, the knowledge
//! base it searched, the persona it was written for and the routing that chose its models.
//! When all of those are the same as for a turn that completed, every paid step of the new
//! turn would be an exact cache hit — so the turn is looked up by a key over those inputs
//! before analysis runs (no embedding, no search), and its stored steps are written and
//! streamed as they were, each paid step reported as an exact hit that cost nothing.
//! Semantic matches still need the question's embedding and stay per step, after analysis.
//!
//! The knowledge base enters the key as its generation: a per-tenant counter that every
//! change to the tenant's chunks bumps (migrations/0019), so a new document, a promoted
//! correction or a chunk embedded later makes the next turn run afresh.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tessera_gateway::cache::normalise_prompt;
use tessera_gateway::{CacheHit, StepKind};

use crate::events::{ChatEvent, StepInfo, StepTotals};
use crate::{HistoryMessage, PlanTask, SkillLevel, Source, StepSpec, StepStatus, TurnLayout};

/// The `response_cache.step_kind` of stored turns: never matched by a step's lookup, which
/// names its own kind; emptied with the rest of the cache.
pub const CACHE_KIND: &str = "turn";

/// The provider a step answered without a model reports (analysis, validation, local
/// answers, pass-through synthesis).
pub const LOCAL_PROVIDER: &str = "local";

/// Why a replayed paid step cost nothing, for its `step-finish`.
pub const REPLAY_REASON: &str = "exact cache hit for the whole turn (the same question, history, \
knowledge base, persona and routing); no paid call";

/// Everything a turn's answer depends on besides the model calls themselves.
pub struct TurnKey<'a> {
    pub tenant: &'a str,
    pub question: &'a str,
    /// The kb scopes searched (the conversation's page).
    pub scopes: &'a [String],
    /// Earlier exchanges the steps' context reads.
    pub history: &'a [HistoryMessage],
    pub persona: SkillLevel,
    /// The routing inputs that pick models: plan tier, a pinned or preferred model, the
    /// catalog and policy, which providers have keys — serialised by the caller.
    pub routing: &'a Value,
    /// The tenant's knowledge-base generation when the turn started.
    pub kb_generation: i64,
}

impl TurnKey<'_> {
    /// The `response_cache.cache_key` of the turn: SHA-256 of a canonical JSON array.
    pub fn digest(&self) -> String {
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|h| json!([normalise_prompt(&h.question), normalise_prompt(&h.answer)]))
            .collect();
        let material = json!([
            "tessera-turn-v1",
            self.tenant,
            normalise_prompt(self.question),
            self.scopes,
            history,
            self.persona.as_str(),
            self.routing,
            self.kb_generation,
        ]);
        hex::encode(Sha256::digest(material.to_string().as_bytes()))
    }
}

/// A tool the step ran, replayed as its `tool-call` and `tool-result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    pub name: String,
    pub input: Value,
    pub output: Value,
}

/// One completed step as stored: what its row and its events need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredStep {
    pub ordinal: usize,
    pub kind: StepKind,
    pub title: String,
    /// Ordinals of the steps whose output this one reads.
    pub depends_on: Vec<usize>,
    /// The row's `inputs` (the task, its sources, instructions).
    pub inputs: Value,
    pub output: Option<Value>,
    pub text: Option<String>,
    pub provider: String,
    pub model: String,
    pub reason: Option<String>,
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub tool: Option<ToolUse>,
}

impl StoredStep {
    /// A model answered it (now or from the cache): replayed as an exact hit.
    pub fn paid(&self) -> bool {
        self.provider != LOCAL_PROVIDER
    }
}

/// A completed turn as stored in `response_cache.value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTurn {
    /// In ordinal order, every step of the turn.
    pub steps: Vec<StoredStep>,
    pub analysis: Value,
    /// The numbered sources the steps cite; the answer and its citations follow from them
    /// and the synthesis step's text.
    pub sources: Vec<Source>,
    pub persona: String,
    /// The question's embedding, stored with the new user message for later turns' history.
    #[serde(default)]
    pub question_embedding: Option<Vec<f32>>,
}

impl StoredTurn {
    /// The turn's layout as it ran, for what reads it afterwards (the answer, its citations).
    pub fn layout(&self) -> TurnLayout {
        TurnLayout {
            steps: self
                .steps
                .iter()
                .map(|s| StepSpec {
                    ordinal: s.ordinal,
                    kind: s.kind,
                    title: s.title.clone(),
                    task: serde_json::from_value::<PlanTask>(s.inputs["task"].clone()).ok(),
                    depends_on: s.depends_on.clone(),
                })
                .collect(),
        }
    }

    /// Each step's text by ordinal.
    pub fn outputs(&self) -> BTreeMap<usize, String> {
        self.steps
            .iter()
            .filter_map(|s| Some((s.ordinal, s.text.clone()?)))
            .collect()
    }
}

/// Why a finished turn may not be stored, or `None` when it may.
pub fn unstorable(steps: &[StoredStep], layout_len: usize) -> Option<&'static str> {
    if steps.len() != layout_len || steps.iter().enumerate().any(|(i, s)| s.ordinal != i) {
        return Some("not every step completed");
    }
    if steps
        .iter()
        .any(|s| s.finish_reason.as_deref().is_some_and(|r| r != "complete"))
    {
        return Some("a step's answer was cut off or refused");
    }
    if !steps.iter().any(StoredStep::paid) {
        return Some("no model answered any step");
    }
    None
}

/// How long a stored turn may answer: the shortest cache lifetime of its paid steps' kinds.
pub fn lifetime(steps: &[StoredStep]) -> Duration {
    steps
        .iter()
        .filter(|s| s.paid())
        .map(|s| s.kind.cache_ttl())
        .min()
        .unwrap_or(Duration::ZERO)
}

/// The step number of ordinal `o` when the turn's first step is numbered `first`.
fn number(first: i64, o: usize) -> i64 {
    first + o as i64
}

/// The row values of a replayed step: its cache column and its reason.
pub fn replayed_cache(step: &StoredStep) -> CacheHit {
    if step.paid() {
        CacheHit::Exact
    } else {
        CacheHit::Miss
    }
}

/// The events of a replayed turn between `start` and `finish`: per step `step-start`, its
/// tool's call and result, its text as one delta (implementation and synthesis, as a cached
/// step sends it), and `step-finish` — paid steps as exact hits with no tokens and no cost.
pub fn step_events(turn: &StoredTurn, first: i64) -> Vec<ChatEvent> {
    let mut events = Vec::with_capacity(turn.steps.len() * 4);
    for s in &turn.steps {
        let n = number(first, s.ordinal);
        events.push(ChatEvent::StepStart(StepInfo {
            step: n,
            ordinal: s.ordinal,
            kind: s.kind,
            title: s.title.clone(),
            version: 1,
            depends_on: s.depends_on.iter().map(|d| number(first, *d)).collect(),
        }));
        if let Some(tool) = &s.tool {
            let id = format!("kb-{n}");
            events.push(ChatEvent::ToolCall {
                step: n,
                tool_call_id: id.clone(),
                tool_name: tool.name.clone(),
                input: tool.input.clone(),
            });
            events.push(ChatEvent::ToolResult {
                step: n,
                tool_call_id: id,
                tool_name: tool.name.clone(),
                output: tool.output.clone(),
            });
        }
        if matches!(s.kind, StepKind::Implementation | StepKind::Synthesis)
            && let Some(text) = s.text.as_ref().filter(|t| !t.is_empty())
        {
            events.push(ChatEvent::TextDelta {
                step: n,
                id: format!("step-{n}"),
                delta: text.clone(),
            });
        }
        events.push(ChatEvent::StepFinish {
            step: n,
            kind: s.kind,
            status: StepStatus::Completed,
            provider: Some(s.provider.clone()),
            model: Some(s.model.clone()),
            totals: StepTotals::default(),
            cost_usd: 0.0,
            cache: replayed_cache(s),
            duration_ms: 0,
            reason: if s.paid() {
                Some(REPLAY_REASON.into())
            } else {
                s.reason.clone()
            },
            finish_reason: s.finish_reason.clone(),
            output: s.output.clone(),
        });
    }
    events
}

/// The steps as rows for one `jsonb_to_recordset` insert: numbers are added by the
/// statement from the conversation's counter, so `depends_on` stays in ordinals.
pub fn step_rows(turn: &StoredTurn) -> Value {
    Value::Array(
        turn.steps
            .iter()
            .map(|s| {
                json!({
                    "ordinal": s.ordinal,
                    "kind": s.kind.as_str(),
                    "title": s.title,
                    "inputs": s.inputs,
                    "output": s.output,
                    "text": s.text,
                    "provider": s.provider,
                    "model": s.model,
                    "cache": replayed_cache(s).as_str(),
                    "depends_on": s.depends_on,
                    "finish_reason": s.finish_reason,
                    "paid": s.paid(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(ordinal: usize, kind: StepKind, provider: &str) -> StoredStep {
        StoredStep {
            ordinal,
            kind,
            title: format!("step {ordinal}"),
            depends_on: ordinal.checked_sub(1).into_iter().collect(),
            inputs: json!({}),
            output: Some(json!({ "o": ordinal })),
            text: Some(format!("text {ordinal}")),
            provider: provider.into(),
            model: if provider == LOCAL_PROVIDER {
                "rules".into()
            } else {
                "gpt-4o-mini".into()
            },
            reason: Some("why".into()),
            finish_reason: (provider != LOCAL_PROVIDER).then(|| "complete".into()),
            tool: None,
        }
    }

    fn turn() -> StoredTurn {
        StoredTurn {
            steps: vec![
                step(0, StepKind::Analysis, LOCAL_PROVIDER),
                step(1, StepKind::Planning, LOCAL_PROVIDER),
                step(2, StepKind::Implementation, "openai"),
                step(3, StepKind::Validation, LOCAL_PROVIDER),
                step(4, StepKind::Synthesis, LOCAL_PROVIDER),
            ],
            analysis: json!({}),
            sources: Vec::new(),
            persona: "intermediate".into(),
            question_embedding: None,
        }
    }

    fn key<'a>(
        question: &'a str,
        history: &'a [HistoryMessage],
        routing: &'a Value,
    ) -> TurnKey<'a> {
        TurnKey {
            tenant: "t1",
            question,
            scopes: &[],
            history,
            persona: SkillLevel::default(),
            routing,
            kb_generation: 3,
        }
    }

    #[test]
    fn the_key_changes_with_every_input_it_names() {
        let routing = json!({ "tier": "free" });
        let base = key("What is EBITDA?", &[], &routing).digest();
        assert_eq!(
            base,
            key("What is  EBITDA?", &[], &routing).digest(),
            "whitespace is normalised"
        );
        assert_ne!(base, key("What is EBIT?", &[], &routing).digest());
        let history = [HistoryMessage {
            question: "q".into(),
            answer: "a".into(),
            embedding: None,
        }];
        assert_ne!(base, key("What is EBITDA?", &history, &routing).digest());
        let other_routing = json!({ "tier": "premium" });
        assert_ne!(base, key("What is EBITDA?", &[], &other_routing).digest());
        let mut k = key("What is EBITDA?", &[], &routing);
        k.kb_generation = 4;
        assert_ne!(base, k.digest());
        let mut k = key("What is EBITDA?", &[], &routing);
        k.tenant = "t2";
        assert_ne!(base, k.digest());
        let mut k = key("What is EBITDA?", &[], &routing);
        k.persona = SkillLevel::Expert;
        assert_ne!(base, k.digest());
        let scopes = vec!["page:/x".to_string()];
        let mut k = key("What is EBITDA?", &[], &routing);
        k.scopes = &scopes;
        assert_ne!(base, k.digest());
    }

    #[test]
    fn only_complete_turns_a_model_answered_are_stored() {
        let t = turn();
        assert_eq!(unstorable(&t.steps, 5), None);
        assert!(unstorable(&t.steps, 6).is_some(), "a step missing");
        let mut cut = t.steps.clone();
        cut[2].finish_reason = Some("length".into());
        assert!(unstorable(&cut, 5).is_some());
        let mut local = t.steps.clone();
        local[2].provider = LOCAL_PROVIDER.into();
        assert_eq!(unstorable(&local, 5), Some("no model answered any step"));
    }

    #[test]
    fn a_turn_lives_as_long_as_its_shortest_lived_paid_step() {
        let mut t = turn();
        assert_eq!(lifetime(&t.steps), StepKind::Implementation.cache_ttl());
        t.steps[4].provider = "anthropic".into();
        assert_eq!(lifetime(&t.steps), StepKind::Synthesis.cache_ttl());
    }

    #[test]
    fn replayed_events_renumber_steps_and_report_paid_steps_as_free_exact_hits() {
        let mut t = turn();
        t.steps[0].tool = Some(ToolUse {
            name: "kb_search".into(),
            input: json!({ "query": "q" }),
            output: json!({ "results": [] }),
        });
        let events = step_events(&t, 11);
        let names: Vec<&str> = events.iter().map(ChatEvent::name).collect();
        assert_eq!(
            names,
            [
                "step-start",
                "tool-call",
                "tool-result",
                "step-finish", // analysis
                "step-start",
                "step-finish", // planning
                "step-start",
                "text-delta",
                "step-finish", // implementation
                "step-start",
                "step-finish", // validation
                "step-start",
                "text-delta",
                "step-finish", // synthesis
            ]
        );
        let ChatEvent::StepStart(info) = &events[6] else {
            panic!("implementation's start")
        };
        assert_eq!((info.step, info.depends_on.as_slice()), (13, &[12][..]));
        let ChatEvent::StepFinish {
            step,
            cache,
            totals,
            reason,
            ..
        } = &events[8]
        else {
            panic!("implementation's finish")
        };
        assert_eq!(
            (*step, *cache, *totals),
            (13, CacheHit::Exact, StepTotals::default())
        );
        assert_eq!(reason.as_deref(), Some(REPLAY_REASON));
        let ChatEvent::StepFinish { cache, reason, .. } = &events[10] else {
            panic!("validation's finish")
        };
        assert_eq!((*cache, reason.as_deref()), (CacheHit::Miss, Some("why")));
    }

    #[test]
    fn rows_keep_ordinals_and_mark_paid_steps_exact() {
        let rows = step_rows(&turn());
        assert_eq!(rows[2]["cache"], "exact");
        assert_eq!(rows[2]["paid"], true);
        assert_eq!(rows[3]["cache"], "miss");
        assert_eq!(rows[3]["depends_on"], json!([2]));
    }

    #[test]
    fn the_layout_and_outputs_are_read_back_from_the_steps() {
        let mut t = turn();
        t.steps[2].inputs =
            json!({ "task": { "id": 1, "title": "T", "instructions": "do", "depends_on": [] } });
        let layout = t.layout();
        assert_eq!(layout.steps.len(), 5);
        assert_eq!(
            layout.steps[2].task.as_ref().map(|k| k.title.as_str()),
            Some("T")
        );
        assert_eq!(layout.steps[3].depends_on, [2]);
        assert!(layout.steps[0].task.is_none());
        assert_eq!(t.outputs()[&4], "text 4");
    }

    #[test]
    fn a_stored_turn_survives_its_json_form() {
        let t = turn();
        let back: StoredTurn = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
