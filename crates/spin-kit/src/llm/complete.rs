//! One completion through the model gateway for a component that needs the whole answer
//! before it can use it (the picker's LLMPicker): tessera-gateway routes the call, each
//! attempt claims the provider's breaker, failures are retried or fall back as
//! `retry::decide` says, and every attempt is an `llm_calls` row. The provider's stream is
//! read to its end with tessera-gateway's parser; nothing is forwarded while it arrives (the
//! chat component streams its answers to the client itself).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use spin_sdk::http::FullBody;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::pg::Connection;
use tessera_gateway::retry::{decide, parse_retry_after};
use tessera_gateway::routing::SkipReason;
use tessera_gateway::usage::{failed_call_usage, usage_or_estimate};
use tessera_gateway::{
    BreakerState, CallFailure, CallStatus, Candidate, ChatRequest, Endpoint, ErrorKind,
    FinishReason, KeySource, LlmCall, Outcome as BreakerOutcome, ProviderKind, ProviderStatus,
    ProviderStream, RetryDecision, RouteDecision, RouteInput, StreamEvent, StreamParser,
    StreamedAnswer, Usage, UserTier, build_request, estimate_tokens, parse_error_body, route,
};

use super::calls::{CallOwner, record};
use super::{ProviderSettings, breakers};
use crate::ApiError;
use crate::clock::{now_ms, random_unit, sleep, timeout};
use crate::outbound::send;

/// What to ask, for whom, and what the caller may spend.
pub struct CompletionSpec<'a> {
    pub owner: CallOwner<'a>,
    /// Model left empty: filled per candidate.
    pub request: ChatRequest,
    /// 0–1, for routing's model tier.
    pub complexity: f32,
    pub tier: UserTier,
    /// Platform-paid usage this month so far, for the tier's quotas.
    pub month_tokens: u64,
    pub month_cost_micros: u64,
}

/// A complete answer and the call that gave it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub cost_micros: u64,
}

#[derive(Debug, Clone)]
pub enum Completion {
    Answer(Answer),
    /// No paid provider has a key (or a keyless server) configured: nothing was called.
    NotConfigured,
    /// Providers are configured but none gave a complete answer; why.
    Failed(String),
}

/// Why one HTTP call to a provider gave no complete answer.
pub struct CallError {
    pub failure: CallFailure,
    pub status: CallStatus,
    pub http_status: Option<u16>,
    pub message: String,
    /// What the failed call is billed, and whether any of it is estimated.
    pub usage: Option<(Usage, bool)>,
}

/// Where a call's text goes while it arrives: the chat streams it to its client; a
/// completion only keeps the whole answer ([`Discard`]).
pub trait TextSink {
    /// A piece of the answer's text, in order.
    fn text(&mut self, delta: &str) -> impl std::future::Future<Output = ()>;
    /// Whether whoever reads the text has gone: the call is then cancelled (dropping the
    /// body stops the provider generating output tokens).
    fn gone(&self) -> bool {
        false
    }
}

/// Keeps nothing while the answer arrives.
pub struct Discard;

impl TextSink for Discard {
    async fn text(&mut self, _delta: &str) {}
}

enum Tried {
    Answer(Answer),
    /// This candidate is done; the last error.
    Next(String),
    GiveUp(String),
}

/// Asks for one complete answer (see the module docs); with the number of `llm_calls` rows
/// written. Storage errors are errors; provider failures are a [`Completion::Failed`].
pub async fn complete(
    db: &Connection,
    settings: &ProviderSettings,
    spec: &CompletionSpec<'_>,
) -> Result<(Completion, usize), ApiError> {
    let mut calls = 0;
    let outcome = chain(db, settings, spec, &mut calls).await?;
    Ok((outcome, calls))
}

async fn chain(
    db: &Connection,
    settings: &ProviderSettings,
    spec: &CompletionSpec<'_>,
    calls: &mut usize,
) -> Result<Completion, ApiError> {
    let breakers = breakers::load(db).await?;
    let now = now_ms();
    let statuses: Vec<ProviderStatus> = settings
        .catalog
        .providers()
        .iter()
        .filter(|p| p.kind != ProviderKind::Local)
        .map(|p| ProviderStatus {
            provider: p.id.clone(),
            platform_key: settings.platform_key(&p.id).is_some(),
            user_key: false,
            breaker_allows: breakers
                .get(&p.id)
                .is_none_or(|(s, _)| settings.breaker.allows(s, now)),
        })
        .collect();
    let estimated = Usage::new(
        estimate_tokens(&spec.request.prompt_text()),
        u64::from(spec.request.max_output_tokens / 2),
    );
    let decision = route(
        &settings.catalog,
        &settings.routing,
        &RouteInput {
            complexity: spec.complexity,
            user_tier: spec.tier,
            month_tokens: spec.month_tokens,
            month_cost_micros: spec.month_cost_micros,
            budget_micros: None,
            estimated_usage: estimated,
            providers: &statuses,
            pinned: None,
        },
    );
    let (chain, skipped) = match decision {
        RouteDecision::Route { chain, skipped, .. } => (chain, skipped),
        RouteDecision::NoRoute { skipped } => (Vec::new(), skipped),
        RouteDecision::BudgetExhausted {
            reason, skipped, ..
        } => {
            let (provider, model) = skipped
                .first()
                .map(|s| (s.provider.clone(), s.model.clone()))
                .unwrap_or_default();
            let call = LlmCall::failed(&provider, &model, CallStatus::BudgetExhausted, &reason);
            record(db, &spec.owner, &call).await?;
            *calls += 1;
            return Ok(Completion::Failed(reason));
        }
    };
    // The local extractive answerer answers questions about passages, not this: only paid
    // (or keyless server) models count.
    let chain: Vec<Candidate> = chain
        .into_iter()
        .filter(|c| c.kind != ProviderKind::Local)
        .collect();
    if chain.is_empty() {
        if skipped.iter().all(|s| s.reason == SkipReason::NoKey) {
            return Ok(Completion::NotConfigured);
        }
        let why: Vec<String> = skipped
            .iter()
            .filter(|s| s.reason != SkipReason::NoKey)
            .map(|s| format!("{}/{}: {:?}", s.provider, s.model, s.reason))
            .collect();
        return Ok(Completion::Failed(format!(
            "no configured model may be called now ({})",
            why.join("; ")
        )));
    }
    let started = now_ms();
    let mut last = String::new();
    for cand in &chain {
        match try_candidate(db, settings, spec, cand, started, &breakers, calls).await? {
            Tried::Answer(a) => return Ok(Completion::Answer(a)),
            Tried::Next(e) => last = e,
            Tried::GiveUp(r) => {
                return Ok(Completion::Failed(if last.is_empty() {
                    r
                } else {
                    format!("{r} (last error: {last})")
                }));
            }
        }
    }
    Ok(Completion::Failed(format!(
        "every provider in the fallback chain failed (last error: {last})"
    )))
}

async fn try_candidate(
    db: &Connection,
    settings: &ProviderSettings,
    spec: &CompletionSpec<'_>,
    cand: &Candidate,
    started: u64,
    breakers: &HashMap<String, (BreakerState, i64)>,
    calls: &mut usize,
) -> Result<Tried, ApiError> {
    let Some(provider) = settings.catalog.provider(&cand.provider).cloned() else {
        return Ok(Tried::Next(format!(
            "{}: not in the catalog",
            cand.provider
        )));
    };
    let key = match cand.key {
        KeySource::Platform => settings.platform_key(&cand.provider).map(str::to_string),
        KeySource::User | KeySource::None => None,
    };
    let endpoint = provider.endpoint(key);
    let mut req = spec.request.clone();
    req.model = cand.model.clone();
    let known = breakers.get(&cand.provider);
    let cfg = &settings.breaker;
    let mut attempt = 1u32;
    loop {
        // A half-open breaker admits one trial; a closed one (as read at the start) admits
        // the first attempt without another read.
        let now = now_ms();
        let was_closed = known.is_none_or(|(s, _)| matches!(s, BreakerState::Closed { .. }));
        let admitted = (attempt == 1 && was_closed)
            || breakers::update(db, &cand.provider, |s| {
                cfg.allows(&s, now).then(|| cfg.on_attempt(s, now))
            })
            .await?;
        if !admitted {
            let call = LlmCall::failed(
                &cand.provider,
                &cand.model,
                CallStatus::CircuitOpen,
                "circuit breaker open",
            );
            record(db, &spec.owner, &call).await?;
            *calls += 1;
            return Ok(Tried::Next(format!(
                "{}: circuit breaker open",
                cand.provider
            )));
        }
        let limit = settings
            .retry
            .timeout_for_next_call(Duration::from_millis(now_ms().saturating_sub(started)));
        if limit.is_zero() {
            return Ok(Tried::GiveUp("the call's deadline passed".into()));
        }
        let t0 = now_ms();
        let result = call_once(&provider.kind, &endpoint, &req, limit, &mut Discard).await;
        let latency = now_ms().saturating_sub(t0);
        let (failure, message) = match result {
            Ok(answer) => {
                let (usage, estimated) =
                    usage_or_estimate(answer.usage, &req.prompt_text(), &answer.text);
                let cost = settings
                    .catalog
                    .cost(&cand.provider, &cand.model, usage)
                    .unwrap_or(0);
                let mut call = LlmCall::ok(&cand.provider, &cand.model, usage, cost, latency);
                call.usage_estimated = estimated;
                call.attempt = attempt;
                call.finish_reason = answer.finish.clone();
                let end = now_ms();
                // No tools are offered: an answer that stops to call one, or has no text,
                // is no answer.
                let usable = answer.is_complete()
                    && !answer.text.trim().is_empty()
                    && answer.finish != Some(FinishReason::ToolCalls);
                let reason = answer
                    .finish
                    .clone()
                    .unwrap_or_else(|| FinishReason::Unknown("none".into()));
                let failure = CallFailure::Unfinished(reason.clone());
                let outcome = if usable || !failure.is_provider_fault() {
                    BreakerOutcome::Success
                } else {
                    BreakerOutcome::Failure
                };
                if !usable {
                    call.status = CallStatus::Incomplete;
                    call.error = Some(format!(
                        "{}: the answer was not complete or was empty",
                        reason.as_str()
                    ));
                }
                record(db, &spec.owner, &call).await?;
                *calls += 1;
                breakers::update_known(db, &cand.provider, known.filter(|_| attempt == 1), |s| {
                    Some(cfg.on_result(s, outcome, end))
                })
                .await?;
                if usable {
                    return Ok(Tried::Answer(Answer {
                        text: answer.text,
                        provider: cand.provider.clone(),
                        model: cand.model.clone(),
                        usage,
                        cost_micros: cost,
                    }));
                }
                let message = call.error.unwrap_or_default();
                (failure, message)
            }
            Err(err) => {
                let mut call =
                    LlmCall::failed(&cand.provider, &cand.model, err.status, err.message.clone());
                call.attempt = attempt;
                call.http_status = err.http_status;
                call.latency_ms = latency;
                if let Some((u, estimated)) = err.usage {
                    // Tokens already streamed are billed even when the call ends badly.
                    call.input_tokens = u.input_tokens;
                    call.output_tokens = u.output_tokens;
                    call.usage_estimated = estimated;
                    call.cost_micros = settings
                        .catalog
                        .cost(&cand.provider, &cand.model, u)
                        .unwrap_or(0);
                }
                record(db, &spec.owner, &call).await?;
                *calls += 1;
                if err.failure.is_provider_fault() {
                    let end = now_ms();
                    breakers::update(db, &cand.provider, |s| {
                        Some(cfg.on_result(s, BreakerOutcome::Failure, end))
                    })
                    .await?;
                }
                (err.failure, err.message)
            }
        };
        let message = format!(
            "{}/{} attempt {attempt}: {message}",
            cand.provider, cand.model
        );
        let elapsed = Duration::from_millis(now_ms().saturating_sub(started));
        match decide(&settings.retry, attempt, elapsed, &failure, random_unit()) {
            RetryDecision::RetryAfter(d) => {
                sleep(d).await;
                attempt += 1;
            }
            RetryDecision::FallBack => return Ok(Tried::Next(message)),
            RetryDecision::GiveUp(r) => return Ok(Tried::GiveUp(format!("{r}: {message}"))),
        }
    }
}

fn fail(failure: CallFailure, status: CallStatus, message: String) -> CallError {
    CallError {
        failure,
        status,
        http_status: None,
        message,
        usage: None,
    }
}

/// One HTTP call, its stream read to the end within `limit`, each piece of text handed to
/// `sink` as it arrives.
pub async fn call_once<S: TextSink>(
    kind: &ProviderKind,
    endpoint: &Endpoint,
    req: &ChatRequest,
    limit: Duration,
    sink: &mut S,
) -> Result<StreamedAnswer, CallError> {
    let built = build_request(endpoint, req).map_err(|e| {
        fail(
            CallFailure::Http {
                status: 400,
                retry_after: None,
            },
            CallStatus::ProviderError,
            format!("request not built: {e}"),
        )
    })?;
    let http_req = built
        .into_http()
        .map_err(|e| {
            fail(
                CallFailure::Connection,
                CallStatus::ConnectionError,
                format!("invalid request: {e}"),
            )
        })?
        .map(|b| FullBody::new(Bytes::from(b)));
    let deadline = now_ms() + limit.as_millis() as u64;
    let left = || Duration::from_millis(deadline.saturating_sub(now_ms()));
    let timed_out = || {
        fail(
            CallFailure::Timeout,
            CallStatus::Timeout,
            format!("no complete answer within {} ms", limit.as_millis()),
        )
    };
    let resp = match timeout(limit, send(http_req)).await {
        None => return Err(timed_out()),
        Some(Err(e)) => {
            return Err(fail(
                CallFailure::Connection,
                CallStatus::ConnectionError,
                format!("connection failed: {e:?}"),
            ));
        }
        Some(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now_ms()));
        let body = timeout(left(), resp.into_body().bytes())
            .await
            .and_then(Result::ok)
            .unwrap_or_default();
        let perr = parse_error_body(*kind, status, &body);
        // A used-up quota (OpenAI's 429 `insufficient_quota`, a 402) does not come back by
        // waiting: judged by what it means, it falls back to the next provider at once.
        let failure = if perr.kind == ErrorKind::Quota {
            CallFailure::Stream(perr.clone())
        } else {
            CallFailure::Http {
                status,
                retry_after,
            }
        };
        return Err(CallError {
            failure,
            status: CallStatus::ProviderError,
            http_status: Some(status),
            message: format!(
                "HTTP {status}: {}",
                perr.message.chars().take(200).collect::<String>()
            ),
            usage: None,
        });
    }
    let Some(mut parser) = ProviderStream::new(*kind) else {
        return Err(fail(
            CallFailure::UnsupportedStream,
            CallStatus::ProviderError,
            "the local answerer has no stream".into(),
        ));
    };
    let mut body = resp.into_body().stream();
    let mut answer = StreamedAnswer::new();
    let prompt = req.prompt_text();
    // What a call that ends badly is billed: the provider's counts so far where it sent them,
    // estimates only for the rest (nothing when it sent nothing and wrote nothing).
    let billed = |parser: &ProviderStream, answer: &StreamedAnswer| {
        failed_call_usage(parser.reported_usage(), &prompt, &answer.text)
    };
    loop {
        let events = match timeout(left(), body.next()).await {
            None => {
                return Err(CallError {
                    usage: billed(&parser, &answer),
                    ..timed_out()
                });
            }
            Some(None) => parser.finish(),
            Some(Some(Err(e))) => {
                return Err(CallError {
                    usage: billed(&parser, &answer),
                    ..fail(
                        CallFailure::Connection,
                        CallStatus::ConnectionError,
                        format!("the stream broke: {e:?}"),
                    )
                });
            }
            Some(Some(Ok(bytes))) => parser.feed(&bytes),
        };
        let events = match events {
            Ok(ev) => ev,
            Err(e) => {
                return Err(CallError {
                    usage: billed(&parser, &answer),
                    ..fail(
                        CallFailure::from_stream_error(&e),
                        CallStatus::MalformedStream,
                        e.to_string(),
                    )
                });
            }
        };
        for ev in events {
            match ev {
                ev @ StreamEvent::Finish { .. } => {
                    answer.push(ev);
                    return Ok(answer);
                }
                StreamEvent::ProviderError(e) => {
                    let message = format!(
                        "error in stream ({}): {}",
                        e.kind.as_str(),
                        e.message.chars().take(200).collect::<String>()
                    );
                    return Err(CallError {
                        usage: billed(&parser, &answer),
                        ..fail(CallFailure::Stream(e), CallStatus::ProviderError, message)
                    });
                }
                StreamEvent::TextDelta(d) => {
                    sink.text(&d).await;
                    answer.push(StreamEvent::TextDelta(d));
                }
                // Usage; tool calls (none are offered to providers: a stray call is kept with
                // the answer, never run).
                ev => answer.push(ev),
            }
        }
        if sink.gone() {
            return Err(CallError {
                usage: billed(&parser, &answer),
                ..fail(
                    CallFailure::Connection,
                    CallStatus::Cancelled,
                    "the client disconnected".into(),
                )
            });
        }
    }
}
