//! `POST /v1/chat/conversations/{id}/steps/{n}/edit`: change a step's requirements.
//!
//! `{"instructions": "…", "mode": "preview" | "apply", "scope": "step" | "dependents"}`.
//! `preview` answers JSON: the steps that would rerun and the estimated cost. `apply`
//! streams the reruns like a turn. Each rerun step gets a new version row; the old one is
//! kept (`current = false`). A re-plan replaces the steps after planning: those whose place
//! and kind survive keep their number with a new version, the rest are superseded.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::{Connection, Row};
use tessera_progressive::steps::{PLANNING, StepSpec, TurnLayout, is_editable, parse_kind};
use tessera_progressive::{
    Analysis, ChatEvent, Plan, PlanTask, Source, StepKind, StepStatus, ValidationReport,
};
use tessera_spin_kit::{ApiError, StatusCode, connect, json_response, read_json_body};

use crate::Answer;
use crate::config::Settings;
use crate::conversations::{account, close_stale, ensure_idle, history, scopes};
use crate::db::{self, P};
use crate::gateway::Gateway;
use crate::identity::Caller;
use crate::sse::Sink;
use crate::store::{self, NewStep};
use crate::turn::{StepRow, Stop, Turn};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ChatStepEdit")]
pub struct EditRequest {
    /// What should change: not empty, at most 4000 characters.
    #[schemars(length(min = 1, max = 4000))]
    instructions: String,
    /// `preview` (the default): the steps that would rerun and the estimated cost, as JSON;
    /// `apply`: the reruns, streamed as Server-Sent Events.
    #[serde(default)]
    #[schemars(extend("enum" = ["preview", "apply", null]))]
    mode: Option<String>,
    /// `dependents` (the default): the step and the steps that use its output; `step`: that
    /// step alone.
    #[serde(default)]
    #[schemars(extend("enum" = ["step", "dependents", null]))]
    scope: Option<String>,
}

struct Loaded {
    ordinal: usize,
    kind: StepKind,
    message: String,
    rows: Vec<Row>,
}

/// One current step row, as the edit needs it.
struct StepData {
    id: i64,
    n: i64,
    version: i32,
    ordinal: usize,
    kind: StepKind,
    title: String,
    status: String,
    model: Option<String>,
    provider: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cost_micros: i64,
    depends_on: Vec<i64>,
    output: Value,
    text: Option<String>,
    inputs: Value,
    /// Why the step's model stopped (`length`: cut off, shown truncated).
    finish_reason: Option<String>,
}

fn step_data(r: &Row) -> StepData {
    StepData {
        id: db::int(r, 0),
        n: db::int(r, 1),
        version: db::int(r, 2) as i32,
        ordinal: db::int(r, 3) as usize,
        kind: parse_kind(&db::text(r, 4)).unwrap_or(StepKind::Implementation),
        title: db::text(r, 5),
        status: db::text(r, 6),
        provider: db::opt_text(r, 7),
        model: db::opt_text(r, 8),
        input_tokens: db::int(r, 9),
        output_tokens: db::int(r, 10),
        cost_micros: db::int(r, 11),
        depends_on: db::int_array(r, 13),
        output: db::json(r, 15),
        text: db::opt_text(r, 16),
        inputs: db::json(r, 17),
        finish_reason: db::opt_text(r, 23),
    }
}

fn layout_of(steps: &[StepData]) -> TurnLayout {
    let ordinal_of = |n: i64| steps.iter().find(|s| s.n == n).map(|s| s.ordinal);
    TurnLayout {
        steps: steps
            .iter()
            .map(|s| StepSpec {
                ordinal: s.ordinal,
                kind: s.kind,
                title: s.title.clone(),
                task: serde_json::from_value::<PlanTask>(s.inputs["task"].clone()).ok(),
                depends_on: s.depends_on.iter().filter_map(|n| ordinal_of(*n)).collect(),
            })
            .collect(),
    }
}

pub async fn edit(
    req: Request,
    caller: Caller,
    conversation: &str,
    n: &str,
) -> Result<Answer, ApiError> {
    let body = read_json_body(req, 64 * 1024).await?;
    let e: EditRequest = tessera_api::parse_json(&body)?;
    let instructions = e.instructions.trim().to_string();
    if instructions.is_empty() {
        return Err(ApiError::invalid("instructions", "say what should change"));
    }
    if instructions.chars().count() > 4_000 {
        return Err(ApiError::too_large(
            Some("instructions"),
            "at most 4000 characters",
        ));
    }
    let apply = match e.mode.as_deref().unwrap_or("preview") {
        "preview" => false,
        "apply" => true,
        _ => return Err(ApiError::invalid("mode", "expected preview or apply")),
    };
    let with_dependents = match e.scope.as_deref().unwrap_or("dependents") {
        "dependents" => true,
        "step" => false,
        _ => return Err(ApiError::invalid("scope", "expected step or dependents")),
    };
    let n: i64 = n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_step",
            format!("{n:?} is not a step number (1, 2, …)"),
            Some("n"),
        )
    })?;
    let settings = Settings::load().await?;
    let db = connect(&caller.tenant).await?;
    let conv =
        store::conversation(&db, &caller.tenant, caller.owner_filter(), conversation).await?;
    // A turn cut off mid-way would otherwise leave its steps `running` (409) for ever.
    close_stale(&db, &conv.id, settings.stale_after_s).await?;
    let loaded = load(&db, &conv.id, n).await?;
    if !is_editable(loaded.kind) {
        return Err(ApiError::bad_request(
            "step_not_editable",
            format!(
                "step {n} is a {} step, which reruns from its inputs; edit the planning, implementation or synthesis step instead",
                loaded.kind.as_str()
            ),
            Some("n"),
        ));
    }
    let steps: Vec<StepData> = loaded.rows.iter().map(step_data).collect();
    if steps
        .iter()
        .any(|s| s.status == "running" || s.status == "pending")
    {
        return Err(ApiError::conflict(
            "step_running",
            format!("step {n}'s turn is still running; edit it once it has finished"),
        ));
    }
    ensure_idle(&db, &conv.id).await?;
    let layout = layout_of(&steps);
    let rerun: Vec<usize> = std::iter::once(loaded.ordinal)
        .chain(if with_dependents {
            layout.dependents(loaded.ordinal)
        } else {
            Vec::new()
        })
        .collect();
    if !apply {
        return Ok(json_response(
            StatusCode::OK,
            &preview(&settings, n, &loaded, &steps, &rerun, with_dependents),
        ));
    }
    db::execute(
        &db,
        "lock message",
        "UPDATE messages SET status = 'running', updated_at = now() WHERE id = $1::uuid",
        vec![P::Str(loaded.message.clone())],
    )
    .await?;
    let (sink, resp) = Sink::open(settings.heartbeat);
    spin_sdk::wasip3::spawn(run_edit(
        settings,
        db,
        caller,
        conv.context,
        loaded,
        steps,
        rerun,
        instructions,
        sink,
    ));
    Ok(resp)
}

async fn load(db: &Connection, conversation: &str, n: i64) -> Result<Loaded, ApiError> {
    let target = db::one(
        db,
        "read step",
        "SELECT message_id::text, ordinal, kind FROM steps WHERE conversation_id = $1::uuid AND n = $2 AND current",
        vec![P::Str(conversation.into()), P::Int64(n)],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("step_not_found", format!("this conversation has no step {n}")))?;
    let message = db::text(&target, 0);
    let rows = db::rows(
        db,
        "read steps",
        &format!(
            "{} WHERE message_id = $1::uuid AND current ORDER BY ordinal",
            store::STEP_COLUMNS
        ),
        vec![P::Str(message.clone())],
    )
    .await?;
    Ok(Loaded {
        ordinal: db::int(&target, 1) as usize,
        kind: parse_kind(&db::text(&target, 2)).unwrap_or(StepKind::Analysis),
        message,
        rows,
    })
}

/// The cost estimate: each rerun step costs what its last run cost (tokens at the model's
/// current price); steps that ran locally or from the cache are estimated at their tokens on
/// the cheapest paid model, since an edit usually misses the cache.
fn preview(
    settings: &Settings,
    n: i64,
    loaded: &Loaded,
    steps: &[StepData],
    rerun: &[usize],
    with_dependents: bool,
) -> Value {
    let cheapest = settings
        .catalog
        .models()
        .filter(|(p, _)| settings.platform_key(&p.id).is_some())
        .min_by_key(|(_, m)| m.input_usd_per_mtok.0 + m.output_usd_per_mtok.0);
    let mut total = 0u64;
    let list: Vec<Value> = rerun
        .iter()
        .filter_map(|o| steps.iter().find(|s| s.ordinal == *o))
        .map(|s| {
            let usage = tessera_gateway::Usage::new(s.input_tokens as u64, s.output_tokens as u64);
            let paid_model = s
                .provider
                .as_deref()
                .zip(s.model.as_deref())
                .and_then(|(p, m)| settings.catalog.model(p, m));
            let estimate = match (paid_model, cheapest) {
                _ if matches!(s.kind, StepKind::Analysis | StepKind::Validation) => 0,
                (Some(m), _) => m.cost(usage).max(s.cost_micros as u64),
                (None, Some((_, m))) => m.cost(usage),
                (None, None) => 0,
            };
            total += estimate;
            json!({
                "n": s.n, "kind": s.kind.as_str(), "title": s.title, "version": s.version,
                "provider": s.provider, "model": s.model, "previous_cost_micros": s.cost_micros,
                "estimated_cost_micros": estimate,
            })
        })
        .collect();
    json!({
        "step": n,
        "kind": loaded.kind.as_str(),
        "scope": if with_dependents { "dependents" } else { "step" },
        "rerun": list,
        "dependents": rerun.iter().skip(1).filter_map(|o| steps.iter().find(|s| s.ordinal == *o)).map(|s| s.n).collect::<Vec<_>>(),
        "estimated_cost_micros": total,
        "estimated_cost_usd": total as f64 / 1e6,
        "note": if loaded.kind == StepKind::Planning && with_dependents {
            "a new plan may have a different number of tasks; the estimate assumes the current ones"
        } else {
            "estimated from the tokens of the steps' last runs"
        },
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_edit(
    settings: Settings,
    db: Connection,
    caller: Caller,
    context: Value,
    loaded: Loaded,
    steps: Vec<StepData>,
    rerun: Vec<usize>,
    instructions: String,
    mut sink: Sink,
) {
    let mut turn = match rebuild(&db, &caller, &context, &loaded, &steps).await {
        Ok(t) => t,
        Err(e) => {
            // Nothing was changed yet: put the message back as it was.
            let _ = db::execute(
                &db,
                "unlock message",
                "UPDATE messages SET status = 'completed' WHERE id = $1::uuid",
                vec![P::Str(loaded.message.clone())],
            )
            .await;
            if let Some(line) = e.log_line(caller.request.as_deref()) {
                eprintln!("chat: {line}");
            }
            sink.send(&ChatEvent::Error {
                step: None,
                code: e.code.into(),
                message: e.message_for(caller.request.as_deref()),
                recoverable: false,
                reset: false,
                provider: None,
            })
            .await;
            sink.close().await;
            return;
        }
    };
    let edited_n = turn.n_of(loaded.ordinal);
    sink.send(&ChatEvent::Start {
        conversation_id: turn.conversation_id.clone(),
        message_id: turn.message_id.clone(),
        user_message_id: None,
        edit_of: Some(edited_n),
    })
    .await;
    let result = async {
        let (account, p) = account(&db, &settings, &caller, None).await?;
        turn.skill = p.persona();
        let mut gw = Gateway {
            settings: &settings,
            db: &db,
            account,
        };
        new_version(&db, &mut turn, loaded.ordinal, &instructions).await?;
        turn.run_step(loaded.ordinal, &mut gw, &mut sink, Some(&instructions))
            .await?;
        let replanned = loaded.kind == StepKind::Planning;
        if replanned && rerun.len() > 1 {
            // The new plan's steps replace the old ones after planning.
            relayout(&db, &mut turn, &steps).await?;
            for o in PLANNING + 1..turn.layout.steps.len() {
                turn.run_step(o, &mut gw, &mut sink, None).await?;
            }
        } else if replanned {
            // Only the plan was asked for: the existing steps stay as they are.
            turn.layout = layout_of(&steps);
        } else {
            for &o in &rerun[1..] {
                new_version(&db, &mut turn, o, "").await?;
                turn.run_step(o, &mut gw, &mut sink, None).await?;
            }
        }
        Ok::<(), Stop>(())
    }
    .await;
    turn.finish(&db, sink, result).await;
}

/// A new version of step `o`: the old row stops being current, a pending copy takes its
/// number.
async fn new_version(
    db: &Connection,
    turn: &mut Turn,
    o: usize,
    instructions: &str,
) -> Result<(), ApiError> {
    let old = turn.rows[&o];
    db::execute(
        db,
        "retire step version",
        "UPDATE steps SET current = false WHERE id = $1",
        vec![P::Int64(old.id)],
    )
    .await?;
    let spec = turn.layout.steps[o].clone();
    let depends_on = spec.depends_on.iter().map(|d| turn.n_of(*d)).collect();
    let inputs = if instructions.is_empty() {
        json!({ "task": spec.task })
    } else {
        json!({ "task": spec.task, "instructions": instructions })
    };
    let id = store::insert_step(
        db,
        NewStep {
            conversation: &turn.conversation_id,
            message: &turn.message_id,
            tenant: &turn.tenant,
            n: old.n,
            version: old.version + 1,
            ordinal: o,
            kind: spec.kind,
            title: &spec.title,
            status: StepStatus::Pending,
            inputs,
            depends_on,
        },
    )
    .await?;
    turn.rows.insert(
        o,
        StepRow {
            id,
            n: old.n,
            version: old.version + 1,
        },
    );
    turn.outputs.remove(&o);
    Ok(())
}

/// After a re-plan: old steps after planning stop being current; the new layout's steps get
/// rows (same number and a new version where place and kind match, new numbers otherwise).
async fn relayout(db: &Connection, turn: &mut Turn, old: &[StepData]) -> Result<(), ApiError> {
    let mut fresh = Vec::new();
    for o in PLANNING + 1..turn.layout.steps.len() {
        match old
            .iter()
            .find(|s| s.ordinal == o && s.kind == turn.layout.steps[o].kind)
        {
            Some(s) => {
                turn.rows.insert(
                    o,
                    StepRow {
                        id: s.id,
                        n: s.n,
                        version: s.version,
                    },
                );
            }
            None => fresh.push(o),
        }
    }
    for s in old.iter().filter(|s| s.ordinal > PLANNING) {
        if !turn.rows.get(&s.ordinal).is_some_and(|r| r.id == s.id) {
            db::execute(
                db,
                "supersede step",
                "UPDATE steps SET current = false WHERE id = $1",
                vec![P::Int64(s.id)],
            )
            .await?;
        }
    }
    turn.rows
        .retain(|o, _| *o <= PLANNING || !fresh.contains(o));
    for o in PLANNING + 1..turn.layout.steps.len() {
        if turn.rows.contains_key(&o) {
            new_version(db, turn, o, "").await?;
        }
    }
    turn.insert_rows(db, &fresh).await?;
    turn.outputs.retain(|o, _| *o <= PLANNING);
    Ok(())
}

/// The turn as stored: its question, analysis, sources, plan, steps and outputs.
async fn rebuild(
    db: &Connection,
    caller: &Caller,
    context: &Value,
    loaded: &Loaded,
    steps: &[StepData],
) -> Result<Turn, ApiError> {
    let row = db::one(
        db,
        "read turn",
        "SELECT a.conversation_id::text, u.content, u.embedding::text, a.analysis::text, a.sources::text
         FROM messages a JOIN messages u ON u.id = a.reply_to WHERE a.id = $1::uuid",
        vec![P::Str(loaded.message.clone())],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("message_not_found", "the step's message is gone"))?;
    let conversation_id = db::text(&row, 0);
    let analysis: Option<Analysis> = serde_json::from_value(db::json(&row, 3)).ok();
    let sources: Vec<Source> = serde_json::from_value(db::json(&row, 4)).unwrap_or_default();
    let plan: Option<Plan> = steps
        .iter()
        .find(|s| s.kind == StepKind::Planning)
        .and_then(|s| serde_json::from_value(s.output["plan"].clone()).ok());
    let report: Option<ValidationReport> = steps
        .iter()
        .find(|s| s.kind == StepKind::Validation)
        .and_then(|s| serde_json::from_value(s.output.clone()).ok());
    let rows: BTreeMap<usize, StepRow> = steps
        .iter()
        .map(|s| {
            (
                s.ordinal,
                StepRow {
                    id: s.id,
                    n: s.n,
                    version: s.version,
                },
            )
        })
        .collect();
    let outputs: BTreeMap<usize, String> = steps
        .iter()
        .filter_map(|s| Some((s.ordinal, s.text.clone()?)))
        .collect();
    let local_drafts = steps
        .iter()
        .any(|s| s.kind == StepKind::Implementation && s.provider.as_deref() == Some("local"));
    let local_plan = steps
        .iter()
        .any(|s| s.kind == StepKind::Planning && s.model.as_deref() == Some("local-planner"));
    Ok(Turn {
        tenant: caller.tenant.clone(),
        forward: caller.forward.clone(),
        request_id: caller.request.clone(),
        history: history(db, &conversation_id, &loaded.message).await?,
        conversation_id,
        message_id: loaded.message.clone(),
        question: db::text(&row, 1),
        question_embedding: db::opt_text(&row, 2).and_then(|t| db::parse_vector(&t)),
        // Reruns of an edit skip the semantic cache (`semantic_cache: false`).
        part_embeddings: Vec::new(),
        skill: Default::default(),
        scopes: scopes(context),
        analysis,
        sources,
        plan,
        local_plan,
        layout: layout_of(steps),
        rows,
        outputs,
        report,
        local_note: None,
        local_drafts,
        truncated: steps
            .iter()
            .filter(|s| s.finish_reason.as_deref() == Some("length"))
            .map(|s| s.ordinal)
            .collect(),
        semantic_cache: false,
        totals: Default::default(),
        record: Default::default(),
    })
}
