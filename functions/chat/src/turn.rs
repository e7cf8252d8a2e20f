//! Running the steps of one turn (a new message, or an edit's reruns): each step is a row
//! that goes pending → running → completed | failed | skipped | cancelled, announced with
//! `step-start` and `step-finish`. The decisions are tessera-progressive's; this module
//! sequences them with the knowledge base, the gateway and the store.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_gateway::{CacheHit, StepKind};
use tessera_progressive::context::{self, sources_for_task};
use tessera_progressive::events::{Citation, StepInfo, StepTotals, usd};
use tessera_progressive::plan::{self, local_plan, retry_instruction};
use tessera_progressive::replay::{StoredStep, StoredTurn, ToolUse, unstorable};
use tessera_progressive::sources::{citations, sources_footer, without_footer};
use tessera_progressive::steps::{PLANNING, TurnLayout};
use tessera_progressive::{
    Analysis, ChatEvent, Classifier, HistoryMessage, Plan, SkillLevel, Source, StepStatus,
    ValidationReport, local, prompt, validate,
};
use tessera_spin_kit::ApiError;

use crate::gateway::{CallSpec, Gateway, Outcome};
use crate::sse::Sink;
use crate::store::{self, Finished, NewStep};
use crate::{db, kb};

/// Sources an implementation step reads.
const SOURCES_PER_TASK: usize = 2;

#[derive(Debug, Clone, Copy)]
pub struct StepRow {
    pub id: i64,
    pub n: i64,
    pub version: i32,
}

pub enum Stop {
    /// The client went away.
    Cancelled,
    /// A step could not be answered.
    Failed(String),
    /// Storage failed.
    Error(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Error(e)
    }
}

/// How a step ended, for its row and its `step-finish`.
struct Done {
    status: StepStatus,
    output: Option<Value>,
    text: Option<String>,
    provider: String,
    model: String,
    totals: StepTotals,
    cache: CacheHit,
    reason: Option<String>,
    error: Option<String>,
    /// Why the model stopped, for a step a model answered (`FinishReason::as_str`).
    finish_reason: Option<String>,
}

impl Done {
    fn local(model: &str, reason: impl Into<String>) -> Self {
        Done {
            status: StepStatus::Completed,
            output: None,
            text: None,
            provider: "local".into(),
            model: model.into(),
            totals: StepTotals::default(),
            cache: CacheHit::Miss,
            reason: Some(reason.into()),
            error: None,
            finish_reason: None,
        }
    }
}

pub struct Turn {
    pub tenant: String,
    /// The caller's identity for the kb's self requests.
    pub forward: tessera_spin_kit::auth::Forward,
    /// The request that runs the turn: an internal error's message names it.
    pub request_id: Option<String>,
    pub conversation_id: String,
    pub message_id: String,
    pub question: String,
    pub question_embedding: Option<Vec<f32>>,
    /// Embeddings of the question's written-out parts (`plan::question_parts`), when it has
    /// more than one: a task of the local plan is looked up in the cache by its own.
    pub part_embeddings: Vec<(String, Vec<f32>)>,
    pub history: Vec<HistoryMessage>,
    pub skill: SkillLevel,
    pub scopes: Vec<String>,
    pub analysis: Option<Analysis>,
    pub sources: Vec<Source>,
    pub plan: Option<Plan>,
    /// The plan came from the local planner: its tasks are parts of the question.
    pub local_plan: bool,
    pub layout: TurnLayout,
    pub rows: BTreeMap<usize, StepRow>,
    pub outputs: BTreeMap<usize, String>,
    pub report: Option<ValidationReport>,
    /// Why a step was answered without a model, when it matters to the user (budget).
    pub local_note: Option<String>,
    /// Some implementation step was answered locally: synthesis merges locally too.
    pub local_drafts: bool,
    /// Implementation and synthesis steps (ordinals) whose answer the output limit cut off,
    /// kept and shown truncated because nothing else answered: a step built on one is
    /// neither looked up in nor stored to the cache, and the message ends with
    /// `finish_reason: "length"`.
    pub truncated: BTreeSet<usize>,
    /// Semantic cache lookups are allowed: not for an edit's reruns, whose inputs changed
    /// while the question (what the lookup matches on) did not.
    pub semantic_cache: bool,
    pub totals: StepTotals,
    /// The completed steps as the response cache stores a whole turn.
    pub record: Record,
}

/// What a turn keeps of its steps for the response cache (tessera_progressive::replay).
#[derive(Default)]
pub struct Record {
    /// Each step's row `inputs`, as `begin` merged them.
    inputs: BTreeMap<usize, Value>,
    steps: BTreeMap<usize, StoredStep>,
    tool: Option<ToolUse>,
}

impl Turn {
    pub fn n_of(&self, ordinal: usize) -> i64 {
        self.rows.get(&ordinal).map(|r| r.n).unwrap_or_default()
    }

    fn info(&self, ordinal: usize) -> StepInfo {
        let spec = &self.layout.steps[ordinal];
        let row = self.rows[&ordinal];
        StepInfo {
            step: row.n,
            ordinal,
            kind: spec.kind,
            title: spec.title.clone(),
            version: row.version,
            depends_on: spec.depends_on.iter().map(|d| self.n_of(*d)).collect(),
        }
    }

    /// Creates the rows of `ordinals` (numbers from the conversation's counter), pending.
    pub async fn insert_rows(
        &mut self,
        db: &Connection,
        ordinals: &[usize],
    ) -> Result<(), ApiError> {
        if ordinals.is_empty() {
            return Ok(());
        }
        let first = store::allocate_steps(db, &self.conversation_id, ordinals.len()).await?;
        for (i, &o) in ordinals.iter().enumerate() {
            self.rows.insert(
                o,
                StepRow {
                    id: 0,
                    n: first + i as i64,
                    version: 1,
                },
            );
        }
        for &o in ordinals {
            let spec = self.layout.steps[o].clone();
            let depends_on = spec.depends_on.iter().map(|d| self.n_of(*d)).collect();
            let id = store::insert_step(
                db,
                NewStep {
                    conversation: &self.conversation_id,
                    message: &self.message_id,
                    tenant: &self.tenant,
                    n: self.n_of(o),
                    version: 1,
                    ordinal: o,
                    kind: spec.kind,
                    title: &spec.title,
                    status: StepStatus::Pending,
                    inputs: json!({ "task": spec.task }),
                    depends_on,
                },
            )
            .await?;
            self.rows.get_mut(&o).expect("inserted above").id = id;
        }
        Ok(())
    }

    async fn begin(
        &mut self,
        db: &Connection,
        sink: &mut Sink,
        ordinal: usize,
        inputs: Value,
    ) -> Result<u64, Stop> {
        if sink.gone() {
            return Err(Stop::Cancelled);
        }
        store::start_step(db, self.rows[&ordinal].id, &inputs).await?;
        // The row's inputs: what `insert_rows` wrote, then these (`inputs || $2`).
        let mut row_inputs = json!({ "task": self.layout.steps[ordinal].task });
        if let (Some(row), Value::Object(added)) = (row_inputs.as_object_mut(), inputs) {
            row.extend(added);
        }
        self.record.inputs.insert(ordinal, row_inputs);
        sink.send(&ChatEvent::StepStart(self.info(ordinal))).await;
        Ok(crate::clock::now_ms())
    }

    async fn end(
        &mut self,
        db: &Connection,
        sink: &mut Sink,
        ordinal: usize,
        started: u64,
        d: Done,
    ) -> Result<(), Stop> {
        let row = self.rows[&ordinal];
        store::finish_step(
            db,
            row.id,
            Finished {
                status: d.status,
                output: d.output.clone(),
                text: d.text.as_deref(),
                provider: Some(&d.provider),
                model: Some(&d.model),
                totals: d.totals,
                cache: d.cache.as_str(),
                error: d.error.as_deref(),
                finish_reason: d.finish_reason.as_deref(),
            },
        )
        .await?;
        self.totals.add(d.totals);
        if let Some(t) = &d.text {
            self.outputs.insert(ordinal, t.clone());
        }
        self.keep(ordinal, &d);
        let kind = self.layout.steps[ordinal].kind;
        if matches!(kind, StepKind::Implementation | StepKind::Synthesis)
            && d.finish_reason.as_deref() == Some("length")
        {
            self.truncated.insert(ordinal);
        } else {
            self.truncated.remove(&ordinal);
        }
        sink.send(&ChatEvent::StepFinish {
            step: row.n,
            kind: self.layout.steps[ordinal].kind,
            status: d.status,
            provider: Some(d.provider),
            model: Some(d.model),
            totals: d.totals,
            cost_usd: usd(d.totals.cost_micros),
            cache: d.cache,
            duration_ms: crate::clock::now_ms().saturating_sub(started),
            reason: d.reason.or(d.error),
            finish_reason: d.finish_reason,
            output: d.output,
        })
        .await;
        Ok(())
    }

    /// Keeps a completed step for the response cache (a step that did not complete makes the
    /// turn unstorable: it is missing from the record).
    fn keep(&mut self, ordinal: usize, d: &Done) {
        if d.status != StepStatus::Completed || d.error.is_some() {
            self.record.steps.remove(&ordinal);
            return;
        }
        let spec = &self.layout.steps[ordinal];
        let step = StoredStep {
            ordinal,
            kind: spec.kind,
            title: spec.title.clone(),
            depends_on: spec.depends_on.clone(),
            inputs: self
                .record
                .inputs
                .get(&ordinal)
                .cloned()
                .unwrap_or_default(),
            output: d.output.clone(),
            text: d.text.clone(),
            provider: d.provider.clone(),
            model: d.model.clone(),
            reason: d.reason.clone(),
            finish_reason: d.finish_reason.clone(),
            tool: (spec.kind == StepKind::Analysis)
                .then(|| self.record.tool.clone())
                .flatten(),
        };
        self.record.steps.insert(ordinal, step);
    }

    /// The turn as the response cache stores it, or why it may not be stored: only a
    /// new message's turn that completed whole, with no cut-off draft and no step answered
    /// locally for want of budget or a provider.
    pub fn stored(&self, question_embedding: Option<Vec<f32>>) -> Result<StoredTurn, &'static str> {
        if !self.semantic_cache {
            return Err("an edit's reruns are not a new turn");
        }
        if !self.truncated.is_empty() || self.local_note.is_some() {
            return Err("a step was cut off or answered without a paid model");
        }
        let steps: Vec<StoredStep> = self.record.steps.values().cloned().collect();
        if let Some(why) = unstorable(&steps, self.layout.steps.len()) {
            return Err(why);
        }
        Ok(StoredTurn {
            steps,
            analysis: serde_json::to_value(&self.analysis).unwrap_or_default(),
            sources: self.sources.clone(),
            persona: self.skill.as_str().into(),
            question_embedding,
        })
    }

    fn context(&self, kind: StepKind, sources: &[Source]) -> tessera_progressive::StepContext {
        let budget = tessera_progressive::ContextBudget::for_step(kind);
        context::build(
            self.question_embedding.as_deref(),
            &self.history,
            sources,
            self.skill,
            &budget,
        )
    }

    /// The call of step `ordinal`. Semantic cache lookups use the question's embedding,
    /// scoped to the task for implementation steps; an edit's reruns skip them.
    fn spec(
        &self,
        kind: StepKind,
        ordinal: usize,
        request: tessera_gateway::ChatRequest,
        semantic: bool,
        stream_text: bool,
    ) -> CallSpec<'_> {
        let (embedding, semantic_scope) = self.semantic_key(kind, ordinal);
        // A step whose inputs hold a cut-off draft: its answer is no complete answer to the
        // question either, so it is neither served from nor stored to the cache.
        let cacheable = match kind {
            StepKind::Synthesis => self.truncated.is_empty(),
            _ => !self.layout.steps[ordinal]
                .depends_on
                .iter()
                .any(|d| self.truncated.contains(d)),
        };
        CallSpec {
            kind,
            step_n: self.n_of(ordinal),
            step_id: self.rows[&ordinal].id,
            conversation_id: &self.conversation_id,
            message_id: &self.message_id,
            complexity: self.analysis.as_ref().map_or(0.5, |a| a.complexity),
            request,
            semantic: embedding.filter(|_| semantic && self.semantic_cache),
            semantic_scope,
            sources: &self.sources,
            stream_text,
            cacheable,
        }
    }

    /// What a step is looked up by in the semantic cache, and the scope of the match. A task
    /// of the local plan is a part of the question: it is matched by that part's own
    /// embedding, across turns and positions (the same part in another question is the same
    /// task). A model's task leans on the whole question: matched by the question, within
    /// the same task position.
    fn semantic_key(&self, kind: StepKind, ordinal: usize) -> (Option<&[f32]>, String) {
        let question = self.question_embedding.as_deref();
        match &self.layout.steps[ordinal].task {
            Some(t) if kind == StepKind::Implementation && self.local_plan => {
                let single = self.layout.implementation_steps().count() == 1;
                let part = self
                    .part_embeddings
                    .iter()
                    .find(|(text, _)| plan::task_title(text) == t.title)
                    .map(|(_, e)| e.as_slice());
                (part.or(question.filter(|_| single)), "task".into())
            }
            Some(t) if kind == StepKind::Implementation => (question, format!("task-{}", t.id)),
            _ => (question, String::new()),
        }
    }

    fn note_local(&mut self, reason: &str) {
        if self.local_note.is_none()
            && (reason.contains("budget")
                || reason.contains("quota")
                || reason.contains("fail")
                || reason.contains("giving up"))
        {
            self.local_note = Some(format!("No paid model answered this ({reason})."));
        }
    }

    /// A whole turn: analysis, planning, then the planned steps.
    pub async fn run_all(&mut self, gw: &mut Gateway<'_>, sink: &mut Sink) -> Result<(), Stop> {
        self.run_analysis(gw.db, sink).await?;
        self.run_planning(gw, sink, None).await?;
        let rest: Vec<usize> = (PLANNING + 1..self.layout.steps.len()).collect();
        self.insert_rows(gw.db, &rest).await?;
        for o in rest {
            self.run_step(o, gw, sink, None).await?;
        }
        Ok(())
    }

    pub async fn run_step(
        &mut self,
        ordinal: usize,
        gw: &mut Gateway<'_>,
        sink: &mut Sink,
        extra: Option<&str>,
    ) -> Result<(), Stop> {
        match self.layout.steps[ordinal].kind {
            StepKind::Analysis => self.run_analysis(gw.db, sink).await,
            StepKind::Planning => self.run_planning(gw, sink, extra).await,
            StepKind::Implementation => self.run_implementation(ordinal, gw, sink, extra).await,
            StepKind::Validation => self.run_validation(ordinal, gw.db, sink).await,
            StepKind::Synthesis | StepKind::Embedding => {
                self.run_synthesis(ordinal, gw, sink, extra).await
            }
        }
    }

    async fn run_analysis(&mut self, db: &Connection, sink: &mut Sink) -> Result<(), Stop> {
        let o = tessera_progressive::steps::ANALYSIS;
        let t0 = self
            .begin(db, sink, o, json!({ "question": self.question }))
            .await?;
        let call_id = format!("kb-{}", self.n_of(o));
        let tool_input = if self.part_embeddings.len() > 1 {
            let parts: Vec<&str> = self
                .part_embeddings
                .iter()
                .map(|(p, _)| p.as_str())
                .collect();
            json!({ "query": self.question, "parts": parts, "k": kb::K, "scope": self.scopes })
        } else {
            json!({ "query": self.question, "k": kb::K, "scope": self.scopes })
        };
        sink.send(&ChatEvent::ToolCall {
            step: self.n_of(o),
            tool_call_id: call_id.clone(),
            tool_name: "kb_search".into(),
            input: tool_input.clone(),
        })
        .await;
        self.sources = if self.part_embeddings.len() > 1 {
            kb::search_parts(&self.forward, &self.part_embeddings, &self.scopes).await?
        } else {
            kb::search(
                &self.forward,
                &self.question,
                &self.scopes,
                self.question_embedding.as_deref(),
            )
            .await?
        };
        let found: Vec<Value> = self
            .sources
            .iter()
            .map(|s| json!({ "n": s.n, "chunk_id": s.chunk_id, "document_id": s.document_id, "title": s.title, "score": s.score }))
            .collect();
        let output = json!({ "results": found });
        sink.send(&ChatEvent::ToolResult {
            step: self.n_of(o),
            tool_call_id: call_id,
            tool_name: "kb_search".into(),
            output: output.clone(),
        })
        .await;
        self.record.tool = Some(ToolUse {
            name: "kb_search".into(),
            input: tool_input,
            output,
        });
        let embedding = self.question_embedding.clone().unwrap_or_default();
        let analysis = Classifier::builtin().analyse(&self.question, &embedding);
        db::execute(
            db,
            "store analysis",
            "UPDATE messages SET analysis = $2, sources = $3, updated_at = now() WHERE id = $1::uuid",
            vec![
                db::P::Str(self.message_id.clone()),
                db::jsonb(&serde_json::to_value(&analysis).unwrap_or_default()),
                db::jsonb(&serde_json::to_value(&self.sources).unwrap_or_default()),
            ],
        )
        .await?;
        let mut output = serde_json::to_value(&analysis).unwrap_or_default();
        output["sources"] = Value::Array(found);
        let summary = format!(
            "intent {:?}, complexity {:.2}, {} sources",
            analysis.intent,
            analysis.complexity,
            self.sources.len()
        );
        self.analysis = Some(analysis);
        let mut d = Done::local(
            "prototype-classifier",
            "analysis runs locally: MiniLM embedding against labelled prototypes",
        );
        d.output = Some(output);
        d.text = Some(summary);
        self.end(db, sink, o, t0, d).await
    }

    async fn run_planning(
        &mut self,
        gw: &mut Gateway<'_>,
        sink: &mut Sink,
        extra: Option<&str>,
    ) -> Result<(), Stop> {
        let o = PLANNING;
        let t0 = self
            .begin(gw.db, sink, o, json!({ "instructions": extra }))
            .await?;
        let analysis = self.analysis.clone().expect("analysis runs first");
        let routing = &gw.settings.routing;
        let classifier = Classifier::builtin();
        let part_analyses: Vec<Analysis> = self
            .part_embeddings
            .iter()
            .map(|(part, e)| classifier.analyse(part, e))
            .collect();
        let local_reason = plan::local_planning_reason(
            &self.question,
            &analysis,
            &part_analyses,
            routing.low_complexity,
            routing.high_complexity,
        )
        .filter(|_| extra.is_none());
        let mut d;
        self.local_plan = local_reason.is_some();
        let plan = if let Some(reason) = local_reason {
            d = Done::local("local-planner", reason);
            local_plan(&self.question, &analysis, None)
        } else {
            let ctx = self.context(StepKind::Planning, &self.sources);
            let request = prompt::planning(&self.question, &analysis, &ctx, extra);
            let spec = self.spec(
                StepKind::Planning,
                o,
                request.clone(),
                extra.is_none(),
                false,
            );
            match gw.call(&spec, sink).await? {
                Outcome::Answer(c) => {
                    d = paid(&c);
                    match plan::parse(&c.text) {
                        Ok(p) => p,
                        Err(first) => {
                            let retry =
                                prompt::with_retry(request, &c.text, retry_instruction(&first));
                            let spec = self.spec(StepKind::Planning, o, retry, false, false);
                            let second = match gw.call(&spec, sink).await? {
                                Outcome::Answer(c2) => {
                                    d.totals.add(paid(&c2).totals);
                                    plan::parse(&c2.text)
                                }
                                Outcome::Cancelled => return Err(Stop::Cancelled),
                                Outcome::Local { reason } | Outcome::Failed { reason } => {
                                    Err(plan::PlanError(reason))
                                }
                            };
                            match second {
                                Ok(p) => p,
                                Err(e) => {
                                    let message = format!(
                                        "the model's plan was invalid twice ({first}; then {e}); using the local plan"
                                    );
                                    sink.send(&ChatEvent::Error {
                                        step: Some(self.n_of(o)),
                                        code: "invalid_plan".into(),
                                        message: message.clone(),
                                        recoverable: true,
                                        reset: false,
                                        provider: Some(c.provider.clone()),
                                    })
                                    .await;
                                    d.error = Some(message);
                                    self.local_plan = true;
                                    local_plan(&self.question, &analysis, extra)
                                }
                            }
                        }
                    }
                }
                Outcome::Local { reason } => {
                    self.note_local(&reason);
                    d = Done::local("local-planner", reason);
                    self.local_plan = true;
                    local_plan(&self.question, &analysis, extra)
                }
                Outcome::Failed { reason } => return self.fail(gw.db, sink, o, t0, reason).await,
                Outcome::Cancelled => return Err(Stop::Cancelled),
            }
        };
        d.text = Some(
            plan.tasks
                .iter()
                .map(|t| format!("{}. {}", t.id, t.title))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        d.output = Some(json!({ "plan": plan }));
        self.layout = TurnLayout::from_plan(&plan);
        self.plan = Some(plan);
        self.end(gw.db, sink, o, t0, d).await
    }

    async fn run_implementation(
        &mut self,
        o: usize,
        gw: &mut Gateway<'_>,
        sink: &mut Sink,
        extra: Option<&str>,
    ) -> Result<(), Stop> {
        let spec_step = self.layout.steps[o].clone();
        let task = spec_step
            .task
            .clone()
            .expect("implementation steps carry a task");
        let mut task_text = format!("{} {}", task.title, task.instructions);
        if let Some(e) = extra {
            task_text.push(' ');
            task_text.push_str(e);
        }
        let task_sources = context::focus(
            &task_text,
            &sources_for_task(&task_text, &self.sources, SOURCES_PER_TASK),
            context::TASK_SOURCE_TOKENS,
        );
        let source_ns: Vec<usize> = task_sources.iter().map(|s| s.n).collect();
        let t0 = self
            .begin(
                gw.db,
                sink,
                o,
                json!({ "task": task, "sources": source_ns, "instructions": extra }),
            )
            .await?;
        let earlier: Vec<(String, String)> = spec_step
            .depends_on
            .iter()
            .filter(|d| self.layout.steps[**d].kind == StepKind::Implementation)
            .map(|d| {
                (
                    self.layout.steps[*d].title.clone(),
                    self.outputs.get(d).cloned().unwrap_or_default(),
                )
            })
            .collect();
        let ctx = self.context(StepKind::Implementation, &task_sources);
        let question = (!self.local_plan).then_some(self.question.as_str());
        let request = prompt::implementation(question, &task, &ctx.sources, &earlier, &ctx, extra);
        let spec = self.spec(StepKind::Implementation, o, request, extra.is_none(), true);
        let mut d = match gw.call(&spec, sink).await? {
            Outcome::Answer(c) => {
                if c.cache != CacheHit::Miss {
                    // A cached answer was not streamed by a provider: send it whole.
                    sink.send(&ChatEvent::TextDelta {
                        step: self.n_of(o),
                        id: format!("step-{}", self.n_of(o)),
                        delta: c.text.clone(),
                    })
                    .await;
                }
                let mut d = paid(&c);
                d.text = Some(c.text);
                d
            }
            Outcome::Local { reason } => {
                self.note_local(&reason);
                self.local_drafts = true;
                let text = local::implementation(&task_text, &task_sources);
                sink.send(&ChatEvent::TextDelta {
                    step: self.n_of(o),
                    id: format!("step-{}", self.n_of(o)),
                    delta: text.clone(),
                })
                .await;
                let mut d = Done::local(tessera_gateway::local::MODEL_ID, reason);
                d.text = Some(text);
                d
            }
            Outcome::Failed { reason } => return self.fail(gw.db, sink, o, t0, reason).await,
            Outcome::Cancelled => return Err(Stop::Cancelled),
        };
        d.output = Some(json!({ "sources": source_ns }));
        self.end(gw.db, sink, o, t0, d).await
    }

    /// No task builds on another: their drafts answer separate parts of the question. Only
    /// the local plan's tasks are merged without a model: they are parts the user wrote out,
    /// while a model's tasks split one question whose answer must read as one.
    fn tasks_independent(&self) -> bool {
        self.plan
            .as_ref()
            .is_some_and(|p| p.tasks.iter().all(|t| t.depends_on.is_empty()))
    }

    fn drafts(&self) -> Vec<(String, String)> {
        self.layout
            .implementation_steps()
            .map(|s| {
                (
                    s.title.clone(),
                    self.outputs.get(&s.ordinal).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    async fn run_validation(
        &mut self,
        o: usize,
        db: &Connection,
        sink: &mut Sink,
    ) -> Result<(), Stop> {
        let t0 = self.begin(db, sink, o, json!({})).await?;
        let report = validate::validate_drafts(&self.drafts(), &self.sources, &self.question);
        let errors = report.errors().count();
        let warnings = report.issues.len() - errors;
        let mut d = Done::local(
            "rules",
            "validation runs locally: structure, citations, numbers, forbidden content, calculations",
        );
        d.text = Some(format!("{errors} errors, {warnings} warnings"));
        d.output = Some(serde_json::to_value(&report).unwrap_or_default());
        self.report = Some(report);
        self.end(db, sink, o, t0, d).await
    }

    async fn run_synthesis(
        &mut self,
        o: usize,
        gw: &mut Gateway<'_>,
        sink: &mut Sink,
        extra: Option<&str>,
    ) -> Result<(), Stop> {
        let t0 = self
            .begin(gw.db, sink, o, json!({ "instructions": extra }))
            .await?;
        let drafts = self.drafts();
        let report = self.report.clone().unwrap_or_default();
        let n = self.n_of(o);
        let text_id = format!("step-{n}");
        let (text, mut d) = if self.local_drafts {
            let text = local::synthesis(&drafts, &self.sources, self.local_note.as_deref());
            (
                text,
                Done::local(
                    tessera_gateway::local::MODEL_ID,
                    "the drafts were answered locally: merged without a model",
                ),
            )
        } else if drafts.len() == 1 && report.ok() && extra.is_none() {
            let text = format!(
                "{}{}",
                drafts[0].1.trim(),
                sources_footer(&drafts[0].1, &self.sources)
            );
            (
                text,
                Done::local("pass-through", "one task: its checked draft is the answer"),
            )
        } else if report.ok() && extra.is_none() && self.local_plan && self.tasks_independent() {
            (
                local::merge(&drafts, &self.sources),
                Done::local(
                    "merge",
                    "the question's independent parts, each answered and checked: merged without a model",
                ),
            )
        } else {
            let ctx = self.context(StepKind::Synthesis, &[]);
            let request = prompt::synthesis(&self.question, &drafts, &report.issues, &ctx, extra);
            let spec = self.spec(StepKind::Synthesis, o, request, extra.is_none(), true);
            match gw.call(&spec, sink).await? {
                Outcome::Answer(c) => {
                    let footer = sources_footer(&c.text, &self.sources);
                    let delta = if c.cache != CacheHit::Miss {
                        format!("{}{footer}", c.text)
                    } else {
                        footer.clone()
                    };
                    if !delta.is_empty() {
                        sink.send(&ChatEvent::TextDelta {
                            step: n,
                            id: text_id.clone(),
                            delta,
                        })
                        .await;
                    }
                    let text = format!("{}{footer}", c.text.trim_end());
                    (text, paid(&c))
                }
                Outcome::Local { reason } => {
                    self.note_local(&reason);
                    let text = local::synthesis(&drafts, &self.sources, self.local_note.as_deref());
                    (text, Done::local(tessera_gateway::local::MODEL_ID, reason))
                }
                Outcome::Failed { reason } => return self.fail(gw.db, sink, o, t0, reason).await,
                Outcome::Cancelled => return Err(Stop::Cancelled),
            }
        };
        if d.provider == "local" {
            sink.send(&ChatEvent::TextDelta {
                step: n,
                id: text_id,
                delta: text.clone(),
            })
            .await;
        }
        let issues = validate::check(
            "The answer",
            without_footer(&text),
            &self.sources,
            &self.question,
        );
        d.output = Some(json!({ "issues": issues }));
        d.text = Some(text);
        self.end(gw.db, sink, o, t0, d).await
    }

    /// Marks step `o` failed and stops the turn.
    async fn fail(
        &mut self,
        db: &Connection,
        sink: &mut Sink,
        o: usize,
        t0: u64,
        reason: String,
    ) -> Result<(), Stop> {
        let mut d = Done::local("-", reason.clone());
        d.status = StepStatus::Failed;
        d.provider = "-".into();
        d.error = Some(reason.clone());
        d.reason = None;
        self.end(db, sink, o, t0, d).await?;
        Err(Stop::Failed(reason))
    }

    /// What the stream and the stored message say of an error: an internal one (a
    /// database's words) is logged here and named only by the request id.
    fn error_message(&self, e: &ApiError) -> String {
        if let Some(line) = e.log_line(self.request_id.as_deref()) {
            eprintln!("chat: {line}");
        }
        e.message_for(self.request_id.as_deref())
    }

    /// The answer so far (synthesis output), and the sources it cites.
    pub fn answer(&self) -> (String, Vec<Citation>) {
        let o = self
            .layout
            .steps
            .iter()
            .rfind(|s| s.kind == StepKind::Synthesis)
            .map(|s| s.ordinal);
        let text = o
            .and_then(|o| self.outputs.get(&o))
            .cloned()
            .unwrap_or_default();
        let mut cited = citations(&text);
        cited.sort_unstable();
        cited.dedup();
        let list = cited
            .iter()
            .filter_map(|n| self.sources.iter().find(|s| s.n == *n))
            .map(|s| Citation {
                n: s.n,
                chunk_id: s.chunk_id,
                document_id: s.document_id.clone(),
                title: s.title.clone(),
            })
            .collect();
        (text, list)
    }

    /// Ends the turn: message row, `finish`, `[DONE]`; on a stop, open steps are closed so the
    /// stored steps stay consistent (none left pending or running).
    pub async fn finish(&self, db: &Connection, mut sink: Sink, result: Result<(), Stop>) {
        let (status, error) = match &result {
            Ok(()) => ("completed", None),
            Err(Stop::Cancelled) => ("cancelled", Some("the client disconnected".to_string())),
            Err(Stop::Failed(r)) => ("failed", Some(r.clone())),
            Err(Stop::Error(e)) => ("failed", Some(self.error_message(e))),
        };
        if let Some(reason) = &error {
            let step_status = if status == "cancelled" {
                StepStatus::Cancelled
            } else {
                StepStatus::Skipped
            };
            let _ = store::close_open_steps(db, &self.message_id, step_status, reason).await;
            if status != "cancelled" {
                sink.send(&ChatEvent::Error {
                    step: None,
                    code: match &result {
                        Err(Stop::Error(e)) => e.code.to_string(),
                        _ => "step_failed".into(),
                    },
                    message: reason.clone(),
                    recoverable: false,
                    reset: false,
                    provider: None,
                })
                .await;
            }
        }
        let (text, _) = self.answer();
        // A completed turn whose answer holds a cut-off step is not a complete answer.
        let ended = if self.truncated.is_empty() {
            "complete"
        } else {
            "length"
        };
        let finish_reason = (status == "completed").then_some(ended);
        let _ = store::finish_message(
            db,
            &self.message_id,
            status,
            &text,
            self.totals,
            error.as_deref(),
            finish_reason,
        )
        .await;
        self.send_finish(sink, status, finish_reason.map(str::to_string))
            .await;
    }

    /// Sends `finish` (with a feedback token for a completed answer) and `[DONE]`.
    pub async fn send_finish(&self, mut sink: Sink, status: &str, finish_reason: Option<String>) {
        let (text, citations) = self.answer();
        let feedback_token = match status {
            "completed" => crate::feedback_token::Signer::load()
                .await
                .map(|s| s.token(&self.message_id)),
            _ => None,
        };
        sink.send(&ChatEvent::Finish {
            message_id: self.message_id.clone(),
            status: status.into(),
            totals: self.totals,
            cost_usd: usd(self.totals.cost_micros),
            text,
            citations,
            finish_reason,
            feedback_token,
        })
        .await;
        sink.close().await;
    }
}

fn paid(c: &crate::gateway::Completion) -> Done {
    Done {
        status: StepStatus::Completed,
        output: None,
        text: None,
        provider: c.provider.clone(),
        model: c.model.clone(),
        totals: StepTotals {
            input_tokens: c.usage.input_tokens,
            output_tokens: c.usage.output_tokens,
            cost_micros: c.cost_micros,
        },
        cache: c.cache,
        reason: Some(c.reason.clone()),
        error: None,
        finish_reason: Some(c.finish.as_str().into()),
    }
}
