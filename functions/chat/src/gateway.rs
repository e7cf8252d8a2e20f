//! The model gateway's I/O: tessera-gateway decides (route, retry, breaker, cache match,
//! cost), this module does what it says — reads and writes breakers, the cache and
//! `llm_calls`, sends the provider request with spin-sdk and parses the stream as it arrives.

use std::collections::HashMap;
use std::time::Duration;

use spin_sdk::pg::Connection;
use tessera_gateway::retry::decide;
use tessera_gateway::usage::usage_or_estimate;
use tessera_gateway::{
    BreakerState, CacheHit, CallFailure, CallStatus, Candidate, ChatRequest, FinishReason,
    KeySource, LlmCall, Outcome as BreakerOutcome, ProviderKind, ProviderStatus, RetryDecision,
    RouteDecision, RouteInput, StepKind, StreamedAnswer, Usage, UserTier, estimate_tokens, route,
};
use tessera_progressive::{ChatEvent, Source};
use tessera_spin_kit::ApiError;
use tessera_spin_kit::llm::complete::{CallError, TextSink, call_once};

use crate::clock::{self, now_ms};
use crate::config::Settings;
use crate::sse::Sink;
use crate::{breakers, cache};

/// Who pays and what is left, for one turn.
pub struct Account {
    pub tenant: String,
    pub user: String,
    pub tier: UserTier,
    /// The user's own monthly cap, if any.
    pub monthly_budget_micros: Option<u64>,
    /// Platform-paid usage this month so far (updated as calls are made).
    pub month_tokens: u64,
    pub month_cost_micros: u64,
    /// Decrypted bring-your-own keys by provider id.
    pub user_keys: Vec<(String, String)>,
    /// `provider` or `provider/model` the client asked for.
    pub pinned: Option<String>,
}

/// One paid step's call.
pub struct CallSpec<'a> {
    pub kind: StepKind,
    pub step_n: i64,
    pub step_id: i64,
    pub conversation_id: &'a str,
    pub message_id: &'a str,
    pub complexity: f32,
    /// Model left empty: filled per candidate.
    pub request: ChatRequest,
    /// The embedding of what this step is asked (semantic cache), if computed.
    pub semantic: Option<&'a [f32]>,
    /// Semantic hits match only within this scope (an implementation step's task).
    pub semantic_scope: String,
    /// The turn's sources, to store and map citations of cached answers.
    pub sources: &'a [Source],
    pub stream_text: bool,
    /// The step may be answered from and stored to the cache: false for a step built on a
    /// draft the output limit cut off (its answer is no complete answer either).
    pub cacheable: bool,
}

pub struct Completion {
    pub text: String,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub cost_micros: u64,
    pub cache: CacheHit,
    pub reason: String,
    /// Why the model stopped: [`FinishReason::Complete`] for a usable answer (and every
    /// cached one); [`FinishReason::Length`] for a cut-off answer shown as truncated because
    /// nothing else could answer.
    pub finish: FinishReason,
}

/// What the fallback chain saw of answers that ended but were not usable: the last cut-off
/// answer (shown as truncated when nothing else answers) and the last refusal or filter.
#[derive(Default)]
struct Unfinished {
    truncated: Option<Completion>,
    /// "<provider>/<model>: the model refused: <its words>", for the step's failure reason.
    stopped: Option<String>,
}

impl Unfinished {
    /// The outcome when no provider completed and the local answer is not taken: a cut-off
    /// answer shown as truncated, else a failure that says why.
    fn or_failed(&mut self, reason: String) -> Outcome {
        if let Some(c) = self.truncated.take() {
            return Outcome::Answer(c);
        }
        Outcome::Failed {
            reason: match &self.stopped {
                Some(s) => format!("{reason}; {s}"),
                None => reason,
            },
        }
    }

    /// Why the step goes to the local answer, with the refusal or filter that led there.
    fn local_reason(&self, reason: String) -> String {
        match &self.stopped {
            Some(s) => format!("{reason} ({s})"),
            None => reason,
        }
    }
}

pub enum Outcome {
    Answer(Completion),
    /// The chain ends at (or routing chose) the local answerer; the caller answers locally.
    Local {
        reason: String,
    },
    /// Nothing may answer: every provider failed and the local answer is not allowed.
    Failed {
        reason: String,
    },
    /// The client went away; no further paid call was made.
    Cancelled,
}

/// A step's text on its way to the client.
struct StepText<'s, 'a> {
    spec: &'s CallSpec<'a>,
    sink: &'s mut Sink,
}

impl TextSink for StepText<'_, '_> {
    async fn text(&mut self, delta: &str) {
        if self.spec.stream_text {
            self.sink
                .send(&ChatEvent::TextDelta {
                    step: self.spec.step_n,
                    id: format!("step-{}", self.spec.step_n),
                    delta: delta.to_string(),
                })
                .await;
        }
    }

    fn gone(&self) -> bool {
        self.sink.gone()
    }
}

pub struct Gateway<'a> {
    pub settings: &'a Settings,
    pub db: &'a Connection,
    pub account: Account,
}

impl Gateway<'_> {
    fn statuses(
        &self,
        breakers: &HashMap<String, (BreakerState, i64)>,
        now: u64,
    ) -> Vec<ProviderStatus> {
        self.settings
            .catalog
            .providers()
            .iter()
            .filter(|p| p.kind != ProviderKind::Local)
            .map(|p| ProviderStatus {
                provider: p.id.clone(),
                platform_key: self.settings.platform_key(&p.id).is_some(),
                user_key: self.account.user_keys.iter().any(|(id, _)| id == &p.id),
                breaker_allows: breakers
                    .get(&p.id)
                    .is_none_or(|(s, _)| self.settings.breaker.allows(s, now)),
            })
            .collect()
    }

    fn key_for(&self, c: &Candidate) -> Option<String> {
        match c.key {
            KeySource::User => self
                .account
                .user_keys
                .iter()
                .find(|(p, _)| *p == c.provider)
                .map(|(_, k)| k.clone()),
            KeySource::Platform => self.settings.platform_key(&c.provider).map(str::to_string),
            KeySource::None => None,
        }
    }

    /// Routes the step and runs its fallback chain.
    pub async fn call(
        &mut self,
        spec: &CallSpec<'_>,
        sink: &mut Sink,
    ) -> Result<Outcome, ApiError> {
        // Find out whether the client is still there while the database work below runs:
        // a write to a closed connection is refused by the time the call is made.
        if !sink.probe().await {
            return Ok(Outcome::Cancelled);
        }
        // The breakers and the cache rows that could answer, read together (pipelined on the
        // turn's connection): the cache rows are fetched for every model routing could pick
        // and judged once the chain is known.
        let models: Vec<String> = self
            .settings
            .catalog
            .models()
            .filter(|(p, _)| p.kind != ProviderKind::Local)
            .map(|(_, m)| m.id.clone())
            .collect();
        let (breakers, cached) = futures::join!(
            breakers::load(self.db),
            cache::fetch(self.db, &self.account.tenant, spec, &models)
        );
        let (breakers, cached) = (breakers?, cached?);
        let now = now_ms();
        let statuses = self.statuses(&breakers, now);
        let estimated = Usage::new(
            estimate_tokens(&spec.request.prompt_text()),
            u64::from(spec.request.max_output_tokens / 2),
        );
        let remaining_budget = self
            .account
            .monthly_budget_micros
            .map(|b| b.saturating_sub(self.account.month_cost_micros));
        let decision = route(
            &self.settings.catalog,
            &self.settings.routing,
            &RouteInput {
                complexity: spec.complexity,
                user_tier: self.account.tier,
                month_tokens: self.account.month_tokens,
                month_cost_micros: self.account.month_cost_micros,
                budget_micros: remaining_budget,
                estimated_usage: estimated,
                providers: &statuses,
                pinned: self.account.pinned.as_deref(),
            },
        );
        let chain: Vec<Candidate> = match decision {
            RouteDecision::Route { chain, .. } => chain,
            RouteDecision::BudgetExhausted {
                reason,
                local,
                skipped,
            } => {
                let (provider, model) = skipped
                    .first()
                    .map(|s| (s.provider.clone(), s.model.clone()))
                    .unwrap_or_default();
                let call = LlmCall::failed(
                    &provider,
                    &model,
                    CallStatus::BudgetExhausted,
                    reason.clone(),
                );
                self.record(spec, &call).await?;
                sink.send(&ChatEvent::Error {
                    step: Some(spec.step_n),
                    code: "budget_exhausted".into(),
                    message: reason.clone(),
                    recoverable: local.is_some(),
                    reset: false,
                    provider: None,
                })
                .await;
                return Ok(match local {
                    Some(_) => Outcome::Local { reason },
                    None => Outcome::Failed { reason },
                });
            }
            RouteDecision::NoRoute { .. } => {
                return Ok(Outcome::Failed {
                    reason:
                        "no provider is configured or available, and the local answer is turned off"
                            .into(),
                });
            }
        };
        if spec.cacheable
            && let Some(hit) = self.cached(spec, &chain, &cached).await?
        {
            return Ok(Outcome::Answer(hit));
        }

        let started = now_ms();
        let mut unfinished = Unfinished::default();
        for cand in &chain {
            if cand.kind == ProviderKind::Local {
                // The local answer is a call too (free, no model): it shows in usage.
                self.record(
                    spec,
                    &LlmCall::ok(&cand.provider, &cand.model, Usage::default(), 0, 0),
                )
                .await?;
                return Ok(Outcome::Local {
                    reason: unfinished.local_reason(cand.reason.clone()),
                });
            }
            match self
                .try_candidate(
                    spec,
                    cand,
                    started,
                    breakers.get(&cand.provider),
                    &mut unfinished,
                    sink,
                )
                .await?
            {
                Tried::Answer(c) => return Ok(Outcome::Answer(c)),
                Tried::Cancelled => return Ok(Outcome::Cancelled),
                Tried::GiveUp(reason) => {
                    return Ok(if self.settings.routing.allow_local_fallback {
                        Outcome::Local {
                            reason: unfinished.local_reason(format!("{reason}; answering locally")),
                        }
                    } else {
                        self.show_unfinished(spec, &mut unfinished, reason, sink)
                            .await
                    });
                }
                Tried::Next => {}
            }
        }
        Ok(self
            .show_unfinished(
                spec,
                &mut unfinished,
                "every provider in the fallback chain failed".into(),
                sink,
            )
            .await)
    }

    /// The end of a chain that nothing completed: a cut-off answer kept from the chain is
    /// shown as truncated (its streamed text was reset when it was set aside, so it is sent
    /// again), else the step fails with the reason (and any refusal's own words).
    async fn show_unfinished(
        &self,
        spec: &CallSpec<'_>,
        unfinished: &mut Unfinished,
        reason: String,
        sink: &mut Sink,
    ) -> Outcome {
        let outcome = unfinished.or_failed(reason);
        if let Outcome::Answer(c) = &outcome {
            sink.send(&ChatEvent::Error {
                step: Some(spec.step_n),
                code: "truncated".into(),
                message: format!(
                    "{}/{}: no provider completed the answer; showing the answer the output limit cut off",
                    c.provider, c.model
                ),
                recoverable: true,
                reset: false,
                provider: Some(c.provider.clone()),
            })
            .await;
            if spec.stream_text && c.cache == CacheHit::Miss {
                sink.send(&ChatEvent::TextDelta {
                    step: spec.step_n,
                    id: format!("step-{}", spec.step_n),
                    delta: c.text.clone(),
                })
                .await;
            }
        }
        outcome
    }

    async fn try_candidate(
        &mut self,
        spec: &CallSpec<'_>,
        cand: &Candidate,
        started: u64,
        known: Option<&(BreakerState, i64)>,
        unfinished: &mut Unfinished,
        sink: &mut Sink,
    ) -> Result<Tried, ApiError> {
        let Some(provider) = self.settings.catalog.provider(&cand.provider).cloned() else {
            return Ok(Tried::Next);
        };
        let mut req = spec.request.clone();
        req.model = cand.model.clone();
        let endpoint = provider.endpoint(self.key_for(cand));
        let mut attempt = 1u32;
        // A cut-off answer was retried with a larger output budget (once per candidate).
        let mut raised = false;
        loop {
            if sink.gone() {
                return Ok(Tried::Cancelled);
            }
            // Claim the call with the breaker (a half-open breaker admits one trial). A
            // closed breaker admits every call without changing: when it was closed (or had
            // no row) as read at the start of this call, the first attempt needs no second
            // read.
            let cfg = &self.settings.breaker;
            let now = now_ms();
            let was_closed = known.is_none_or(|(s, _)| matches!(s, BreakerState::Closed { .. }));
            let admitted = (attempt == 1 && was_closed)
                || breakers::update(self.db, &cand.provider, |s| {
                    if cfg.allows(&s, now) {
                        Some(cfg.on_attempt(s, now))
                    } else {
                        None
                    }
                })
                .await?;
            if !admitted {
                let call = LlmCall::failed(
                    &cand.provider,
                    &cand.model,
                    CallStatus::CircuitOpen,
                    "circuit breaker open",
                );
                self.record(spec, &call).await?;
                return Ok(Tried::Next);
            }
            let elapsed = Duration::from_millis(now_ms().saturating_sub(started));
            let limit = self.settings.retry.timeout_for_next_call(elapsed);
            if limit.is_zero() {
                return Ok(Tried::GiveUp("the step's deadline passed".into()));
            }
            let t0 = now_ms();
            let result = self
                .call_once(spec, &provider.kind, &endpoint, &req, limit, sink)
                .await;
            let latency = now_ms().saturating_sub(t0);
            match result {
                Ok(answer) => {
                    let (usage, estimated) =
                        usage_or_estimate(answer.usage, &req.prompt_text(), &answer.text);
                    let cost = self
                        .settings
                        .catalog
                        .cost(&cand.provider, &cand.model, usage)
                        .unwrap_or(0);
                    let mut call = LlmCall::ok(&cand.provider, &cand.model, usage, cost, latency);
                    call.usage_estimated = estimated;
                    call.attempt = attempt;
                    call.user_key = cand.key == KeySource::User;
                    call.finish_reason = answer.finish.clone();
                    let end = now_ms();
                    if cand.key != KeySource::User {
                        self.account.month_tokens += usage.total();
                        self.account.month_cost_micros += cost;
                    }
                    // No tools are offered: a model that stops to call one has not answered
                    // (whatever preamble it wrote), and an answer without text is empty.
                    if !answer.is_complete()
                        || answer.text.trim().is_empty()
                        || answer.finish == Some(FinishReason::ToolCalls)
                    {
                        // Cut off, refused, filtered, empty or an unknown reason: billed, never
                        // cached, never shown as complete.
                        let reason = answer
                            .finish
                            .clone()
                            .unwrap_or_else(|| FinishReason::Unknown("none".into()));
                        let said = answer
                            .finish_message
                            .as_deref()
                            .map(|m| m.chars().take(200).collect::<String>());
                        let what = match &reason {
                            FinishReason::Complete if !answer.cut_off_tool_calls.is_empty() => {
                                "the output limit cut a tool call off".to_string()
                            }
                            FinishReason::Complete => "the answer was empty".to_string(),
                            FinishReason::Length => {
                                "the output limit cut the answer off".to_string()
                            }
                            FinishReason::Refusal => "the model refused".to_string(),
                            FinishReason::ContentFilter => {
                                "a content filter stopped the answer".to_string()
                            }
                            FinishReason::ToolCalls => {
                                "the model asked for tools that were not offered".to_string()
                            }
                            FinishReason::Error => {
                                "the provider ended the answer with an error".to_string()
                            }
                            FinishReason::Unknown(r) => {
                                format!("the answer ended for an unknown reason ({r})")
                            }
                        };
                        let message = match &said {
                            Some(m) if !m.is_empty() => format!("{what}: {m}"),
                            _ => what,
                        };
                        call.status = CallStatus::Incomplete;
                        call.error = Some(format!("{}: {message}", reason.as_str()));
                        self.record(spec, &call).await?;
                        let failure = CallFailure::Unfinished(reason.clone());
                        let outcome = if failure.is_provider_fault() {
                            BreakerOutcome::Failure
                        } else {
                            // The provider answered as it should: it is healthy.
                            BreakerOutcome::Success
                        };
                        breakers::update_known(
                            self.db,
                            &cand.provider,
                            known.filter(|_| attempt == 1),
                            |s| Some(cfg.on_result(s, outcome, end)),
                        )
                        .await?;
                        if reason == FinishReason::Length && !answer.text.trim().is_empty() {
                            unfinished.truncated = Some(Completion {
                                text: answer.text.clone(),
                                provider: cand.provider.clone(),
                                model: cand.model.clone(),
                                usage,
                                cost_micros: cost,
                                cache: CacheHit::Miss,
                                reason: format!(
                                    "{}; the output limit cut the answer off: shown truncated",
                                    cand.reason
                                ),
                                finish: FinishReason::Length,
                            });
                        }
                        if reason.is_policy_stop() {
                            unfinished.stopped =
                                Some(format!("{}/{}: {message}", cand.provider, cand.model));
                        }
                        // Cut off: asked again once, on the same model, with a larger output
                        // budget where the model's known output limit allows one.
                        if reason == FinishReason::Length
                            && !raised
                            && let Some(larger) = self.larger_budget(cand, &req)
                        {
                            raised = true;
                            sink.send(&ChatEvent::Error {
                                step: Some(spec.step_n),
                                code: CallStatus::Incomplete.as_str().into(),
                                message: format!(
                                    "{}/{} attempt {attempt}: {message}; retrying with an output budget of {larger} tokens (was {})",
                                    cand.provider, cand.model, req.max_output_tokens
                                ),
                                recoverable: true,
                                reset: spec.stream_text,
                                provider: Some(cand.provider.clone()),
                            })
                            .await;
                            req.max_output_tokens = larger;
                            attempt += 1;
                            continue;
                        }
                        let decision = decide(
                            &self.settings.retry,
                            attempt,
                            Duration::from_millis(end.saturating_sub(started)),
                            &failure,
                            clock::random_unit(),
                        );
                        let next = describe(&decision);
                        sink.send(&ChatEvent::Error {
                            step: Some(spec.step_n),
                            code: CallStatus::Incomplete.as_str().into(),
                            message: format!(
                                "{}/{} attempt {attempt}: {message}; {next}",
                                cand.provider, cand.model
                            ),
                            recoverable: true,
                            reset: spec.stream_text,
                            provider: Some(cand.provider.clone()),
                        })
                        .await;
                        match decision {
                            RetryDecision::RetryAfter(d) => {
                                clock::sleep(d).await;
                                attempt += 1;
                                continue;
                            }
                            RetryDecision::FallBack => return Ok(Tried::Next),
                            RetryDecision::GiveUp(r) => return Ok(Tried::GiveUp(r)),
                        }
                    }
                    // Stored under the step's own request: a retry's larger budget is not
                    // part of what the next identical step looks up.
                    let mut keyed = req.clone();
                    keyed.max_output_tokens = spec.request.max_output_tokens;
                    let completion = Completion {
                        text: answer.text,
                        provider: cand.provider.clone(),
                        model: cand.model.clone(),
                        usage,
                        cost_micros: cost,
                        cache: CacheHit::Miss,
                        reason: cand.reason.clone(),
                        finish: FinishReason::Complete,
                    };
                    // Three independent writes, issued together: the host pipelines them
                    // on the turn's connection, so they cost one round trip, not three.
                    let (recorded, breaker, stored) = futures::join!(
                        self.record(spec, &call),
                        breakers::update_known(
                            self.db,
                            &cand.provider,
                            known.filter(|_| attempt == 1),
                            |s| Some(cfg.on_result(s, BreakerOutcome::Success, end)),
                        ),
                        cache::store(
                            self.db,
                            &self.account.tenant,
                            spec,
                            &keyed,
                            &completion,
                            &self.settings.catalog,
                        ),
                    );
                    recorded?;
                    breaker?;
                    stored?;
                    return Ok(Tried::Answer(completion));
                }
                Err(err) => {
                    let mut call = LlmCall::failed(
                        &cand.provider,
                        &cand.model,
                        err.status,
                        err.message.clone(),
                    );
                    call.attempt = attempt;
                    call.http_status = err.http_status;
                    call.latency_ms = latency;
                    call.user_key = cand.key == KeySource::User;
                    if let Some((u, estimated)) = err.usage {
                        // Tokens already streamed are billed by the provider even when the call
                        // ends badly; count them (as reported where the provider reported them).
                        call.input_tokens = u.input_tokens;
                        call.output_tokens = u.output_tokens;
                        call.usage_estimated = estimated;
                        call.cost_micros = self
                            .settings
                            .catalog
                            .cost(&cand.provider, &cand.model, u)
                            .unwrap_or(0);
                        if cand.key != KeySource::User {
                            self.account.month_tokens += u.total();
                            self.account.month_cost_micros += call.cost_micros;
                        }
                    }
                    self.record(spec, &call).await?;
                    let end = now_ms();
                    if err.status == CallStatus::Cancelled {
                        return Ok(Tried::Cancelled);
                    }
                    if err.failure.is_provider_fault() {
                        breakers::update(self.db, &cand.provider, |s| {
                            Some(cfg.on_result(s, BreakerOutcome::Failure, end))
                        })
                        .await?;
                    }
                    let elapsed = Duration::from_millis(end.saturating_sub(started));
                    let decision = decide(
                        &self.settings.retry,
                        attempt,
                        elapsed,
                        &err.failure,
                        clock::random_unit(),
                    );
                    let what = describe(&decision);
                    sink.send(&ChatEvent::Error {
                        step: Some(spec.step_n),
                        code: err.status.as_str().into(),
                        message: format!(
                            "{}/{} attempt {attempt}: {}; {what}",
                            cand.provider, cand.model, err.message
                        ),
                        recoverable: true,
                        reset: spec.stream_text,
                        provider: Some(cand.provider.clone()),
                    })
                    .await;
                    match decision {
                        RetryDecision::RetryAfter(d) => {
                            clock::sleep(d).await;
                            attempt += 1;
                        }
                        RetryDecision::FallBack => return Ok(Tried::Next),
                        RetryDecision::GiveUp(r) => return Ok(Tried::GiveUp(r)),
                    }
                }
            }
        }
    }

    /// The larger output budget a cut-off call of `cand` may be retried with: the model's
    /// own output limit must be known and above what was asked
    /// (`ModelConfig::larger_output_budget`), and a platform-paid retry must fit what is left
    /// of the user's monthly cap.
    fn larger_budget(&self, cand: &Candidate, req: &ChatRequest) -> Option<u32> {
        let model = self.settings.catalog.model(&cand.provider, &cand.model)?;
        let prompt = estimate_tokens(&req.prompt_text());
        let larger = model.larger_output_budget(req.max_output_tokens, prompt)?;
        let left = self
            .account
            .monthly_budget_micros
            .filter(|_| cand.key != KeySource::User)
            .map(|b| b.saturating_sub(self.account.month_cost_micros));
        let cost = model.cost(Usage::new(prompt, u64::from(larger)));
        left.is_none_or(|l| cost <= l).then_some(larger)
    }

    /// One HTTP call, streamed: text deltas go to the client as they arrive (when the step
    /// streams its text), and the call is cancelled when the client goes.
    async fn call_once(
        &self,
        spec: &CallSpec<'_>,
        kind: &ProviderKind,
        endpoint: &tessera_gateway::Endpoint,
        req: &ChatRequest,
        limit: Duration,
        sink: &mut Sink,
    ) -> Result<StreamedAnswer, CallError> {
        let mut text = StepText { spec, sink };
        call_once(kind, endpoint, req, limit, &mut text).await
    }

    async fn cached(
        &mut self,
        spec: &CallSpec<'_>,
        chain: &[Candidate],
        entries: &[tessera_gateway::cache::CacheEntry<cache::Stored>],
    ) -> Result<Option<Completion>, ApiError> {
        let paid: Vec<&Candidate> = chain
            .iter()
            .filter(|c| c.kind != ProviderKind::Local)
            .collect();
        if paid.is_empty() {
            return Ok(None);
        }
        let Some(hit) = cache::find(
            self.db,
            &self.account.tenant,
            spec,
            entries,
            &paid,
            self.settings.semantic_threshold,
        )
        .await?
        else {
            return Ok(None);
        };
        let call = LlmCall {
            cache_hit: hit.kind,
            ..LlmCall::ok(&hit.provider, &hit.model, Usage::default(), 0, 0)
        };
        self.record(spec, &call).await?;
        Ok(Some(Completion {
            text: hit.text,
            provider: hit.provider,
            model: hit.model,
            usage: Usage::default(),
            cost_micros: 0,
            cache: hit.kind,
            reason: format!(
                "{} cache hit (similarity {:.3}); no paid call",
                hit.kind.as_str(),
                hit.similarity
            ),
            // Only complete answers are stored.
            finish: FinishReason::Complete,
        }))
    }

    /// Appends an `llm_calls` row.
    pub async fn record(&self, spec: &CallSpec<'_>, call: &LlmCall) -> Result<(), ApiError> {
        record_call(self.db, &self.account, Some(spec), call).await
    }
}

/// What happens after a failed attempt, for the stream's `error` event.
fn describe(decision: &RetryDecision) -> String {
    match decision {
        RetryDecision::RetryAfter(d) => format!("retrying in {} ms", d.as_millis()),
        RetryDecision::FallBack => "trying the next provider".into(),
        RetryDecision::GiveUp(r) => format!("giving up: {r}"),
    }
}

enum Tried {
    Answer(Completion),
    Next,
    GiveUp(String),
    Cancelled,
}

/// Inserts one `llm_calls` row; also used for local answers (no spec fields missing).
pub async fn record_call(
    db: &Connection,
    account: &Account,
    spec: Option<&CallSpec<'_>>,
    call: &LlmCall,
) -> Result<(), ApiError> {
    let owner = tessera_spin_kit::llm::calls::CallOwner {
        tenant: &account.tenant,
        user: &account.user,
        conversation_id: spec.map(|s| s.conversation_id),
        message_id: spec.map(|s| s.message_id),
        step_id: spec.map(|s| s.step_id),
        step_kind: spec.map(|s| s.kind.as_str()),
    };
    tessera_spin_kit::llm::calls::record(db, &owner, call).await
}
