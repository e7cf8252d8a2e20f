//! The LLMPicker adapter: builds tessera-picking's `LlmContext` (the run's portfolio, the
//! day's market conditions, the most similar past snapshots with what the index did next,
//! the fuzzy picker's shortlist), asks a model through the shared gateway I/O
//! (tessera_spin_kit::llm: the same provider variables, routing, retries, breakers and
//! `llm_calls` rows as chat, step kind `picker`), checks the answer against the strict schema
//! and makes one repair attempt carrying the validation error.
//!
//! It never fails the run: without a provider it is skipped, and any failure (providers,
//! two invalid answers, configuration) is reported in the run's `pickers.llm` while the run
//! goes on with the other pickers. Only a database failure in the gateway's bookkeeping
//! (breakers, usage, `llm_calls` rows) fails the run.

use std::time::Duration;

use serde_json::{Value, json};
use spin_sdk::pg::Connection;
use tessera_gateway::{ChatRequest, Message, ProviderKind, UserTier};
use tessera_picking::conditions::{ConditionWindows, MarketConditions};
use tessera_picking::date::Date;
use tessera_picking::llm::{
    LlmContext, SimilarConditions, build_prompt, parse_answer, shortlist, what_followed,
};
use tessera_picking::market::{Bar, Symbol};
use tessera_picking::pick::{Candidate, PickerOutput, Portfolio};
use tessera_spin_kit::ApiError;
use tessera_spin_kit::clock::now_ms;
use tessera_spin_kit::llm::ProviderSettings;
use tessera_spin_kit::llm::calls::CallOwner;
use tessera_spin_kit::llm::complete::{Answer, Completion, CompletionSpec, complete};

use crate::db;
use crate::snapshot;
use crate::universe::Universe;

/// Candidates the model judges: the fuzzy picker's best (see `tessera_picking::llm::shortlist`).
pub const SHORTLIST: usize = 30;
/// Similar past market conditions in the prompt.
pub const SIMILAR_CONDITIONS: usize = 5;
/// Room for a score and a few reasons per shortlisted candidate.
const MAX_OUTPUT_TOKENS: u32 = 4096;
/// Who the picker's `llm_calls` rows are for, and their step kind.
pub const CALL_USER: &str = "picker";
pub const STEP_KIND: &str = "picker";

/// What the LLMPicker did: its entry in the run's `pickers`, and its scores when it ran.
pub struct LlmPick {
    pub status: Value,
    pub output: Option<PickerOutput>,
}

impl LlmPick {
    fn skipped(reason: &str) -> Self {
        Self {
            status: json!({ "status": "skipped", "reason": reason }),
            output: None,
        }
    }

    fn error(reason: String, calls: usize) -> Self {
        Self {
            status: json!({ "status": "error", "reason": reason, "calls": calls }),
            output: None,
        }
    }
}

/// Whether some model could be called: a non-local provider with its key set, or a keyless
/// (OpenAI-compatible) server.
fn configured(settings: &ProviderSettings) -> bool {
    settings.catalog.providers().iter().any(|p| {
        p.kind != ProviderKind::Local
            && (settings.platform_key(&p.id).is_some() || !p.kind.requires_key())
    })
}

/// Runs the LLMPicker for a discovery run on `as_of` (see the module docs).
pub async fn pick(
    db: &Connection,
    tenant: &str,
    as_of: Date,
    portfolio: &Portfolio,
    universe: &Universe,
    candidates: &[Candidate],
    ranking: &PickerOutput,
) -> Result<LlmPick, ApiError> {
    let mut settings = match ProviderSettings::load().await {
        Ok(s) => s,
        Err(e) => return Ok(LlmPick::error(e.message, 0)),
    };
    if !configured(&settings) {
        return Ok(LlmPick::skipped("no provider configured"));
    }
    let members: Vec<(&Symbol, &[Bar])> = universe
        .members
        .iter()
        .map(|(s, b)| (s, b.as_slice()))
        .collect();
    let Some(market) = MarketConditions::from_bars(
        as_of,
        &universe.index_bars,
        &members,
        &ConditionWindows::default(),
    ) else {
        return Ok(LlmPick::skipped(
            "too little index history for the market conditions the prompt needs",
        ));
    };
    // Without them (no embedding model mounted, say) the prompt would lose its history:
    // the LLMPicker reports the error and the run goes on.
    let similar = match snapshot::similar(
        db,
        tenant,
        &market,
        &universe.index_ticker,
        as_of,
        SIMILAR_CONDITIONS,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return Ok(LlmPick::error(
                format!("similar market conditions: {}", e.message),
                0,
            ));
        }
    };
    let similar = similar
        .into_iter()
        .map(|s| {
            let (index_return_5d, index_return_20d) =
                what_followed(&universe.index_bars, s.conditions.as_of);
            SimilarConditions {
                similarity: s.similarity,
                conditions: s.conditions,
                index_return_5d,
                index_return_20d,
            }
        })
        .collect::<Vec<_>>();
    let shortlisted = shortlist(candidates, ranking, SHORTLIST);
    let tickers: Vec<String> = shortlisted
        .iter()
        .map(|c| c.symbol.ticker.clone())
        .collect();
    let known: Vec<&str> = tickers.iter().map(String::as_str).collect();
    let ctx = LlmContext {
        portfolio: portfolio.clone(),
        market,
        similar,
        candidates: shortlisted,
    };
    let prompt = build_prompt(&ctx);
    let mut request = ChatRequest::new(String::new(), vec![Message::user(prompt.user)])
        .with_system(prompt.system);
    request.max_output_tokens = MAX_OUTPUT_TOKENS;
    // The same context should give the same judgement.
    request.temperature = Some(0.0);
    let (month_tokens, month_cost_micros) = month_usage(db, tenant).await?;
    let started = now_ms();
    let mut spec = CompletionSpec {
        owner: CallOwner {
            tenant,
            user: CALL_USER,
            conversation_id: None,
            message_id: None,
            step_id: None,
            step_kind: Some(STEP_KIND),
        },
        request,
        complexity: 0.5,
        // Platform-paid, within the premium plan's monthly quotas.
        tier: UserTier::Premium,
        month_tokens,
        month_cost_micros,
    };
    let (first, mut calls) = complete(db, &settings, &spec).await?;
    let first = match first {
        Completion::Answer(a) => a,
        Completion::NotConfigured => return Ok(LlmPick::skipped("no provider configured")),
        Completion::Failed(reason) => return Ok(LlmPick::error(reason, calls)),
    };
    let invalid = match parse_answer(&first.text, &known) {
        Ok(output) => return Ok(ran(output, &first, &ctx, calls, None)),
        Err(e) => e,
    };
    // The one repair attempt: the answer and what is wrong with it go back to the model,
    // within what is left of the deadline.
    spec.request
        .messages
        .push(Message::assistant(first.text.clone()));
    spec.request
        .messages
        .push(Message::user(invalid.repair_message()));
    spec.month_tokens += first.usage.total();
    spec.month_cost_micros += first.cost_micros;
    let elapsed = Duration::from_millis(now_ms().saturating_sub(started));
    settings.retry.deadline = settings.retry.deadline.saturating_sub(elapsed);
    let (second, more) = complete(db, &settings, &spec).await?;
    calls += more;
    match second {
        Completion::Answer(a) => match parse_answer(&a.text, &known) {
            Ok(output) => Ok(ran(output, &a, &ctx, calls, Some(&invalid.to_string()))),
            Err(again) => Ok(LlmPick::error(
                format!("the model's answer did not match the schema after one repair: {again}"),
                calls,
            )),
        },
        Completion::NotConfigured => Ok(LlmPick::skipped("no provider configured")),
        Completion::Failed(reason) => Ok(LlmPick::error(
            format!("the repair attempt failed ({reason}) after an invalid answer: {invalid}"),
            calls,
        )),
    }
}

fn ran(
    output: PickerOutput,
    answer: &Answer,
    ctx: &LlmContext,
    calls: usize,
    repaired: Option<&str>,
) -> LlmPick {
    LlmPick {
        status: json!({
            "status": "ran",
            "scored": output.scores.len(),
            "shortlist": ctx.candidates.len(),
            "similar_conditions": ctx.similar.len(),
            "provider": answer.provider,
            "model": answer.model,
            "calls": calls,
            "repaired": repaired.is_some(),
            "first_answer_error": repaired,
        }),
        output: Some(output),
    }
}

/// The picker's platform-paid usage of the tenant this month, for routing's quotas.
async fn month_usage(db: &Connection, tenant: &str) -> Result<(u64, u64), ApiError> {
    let row = db::one(
        db,
        "picker llm usage",
        "SELECT coalesce(sum(input_tokens + output_tokens), 0)::int8, \
           coalesce(sum(cost_micros), 0)::int8 FROM llm_calls \
         WHERE tenant_id = $1 AND user_id = $2 AND NOT user_key \
           AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        vec![db::str_param(tenant), db::str_param(CALL_USER)],
    )
    .await?;
    Ok(row.map_or((0, 0), |r| {
        (db::int(&r, 0).max(0) as u64, db::int(&r, 1).max(0) as u64)
    }))
}
