//! Discovery runs. `POST /v1/discovery/run` inserts the run row — refused with 409 when the
//! tenant already has one running (a unique partial index, so the guard holds across
//! instances and hosts) — then executes the run synchronously in the same request and
//! answers 202 with the run id and its final status. A run over 500 symbols takes well
//! under the host's request deadline (one query for the universe), so there is no
//! background worker to lose a run; the 202 keeps the contract open for one.
//!
//! A run: candidates as of the day (no bar after it is read), the MetricPicker, the
//! FuzzyPicker (adjusted by the k most similar closed trades, found by pgvector on the
//! embedded setups of its best-scored candidates), the LLMPicker (`llm`: a model asked about
//! the fuzzy picker's shortlist; skipped without a provider, an error in `pickers.llm` that
//! the run goes on without when it fails), the ensemble, the suggestions with every picker's
//! reasons, and the watchlist merge.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use spin_sdk::http::Request;
use spin_sdk::pg::Connection;
use tessera_picking::date::Date;
use tessera_picking::discovery::{
    DiscoverySettings, candidate_description, history_days, select_suggestions,
};
use tessera_picking::ensemble::EnsembleCombiner;
use tessera_picking::fuzzy::{FuzzyPicker, SimilarTrade};
use tessera_picking::metric::MetricPicker;
use tessera_picking::pick::{Candidate, PickerOutput, Portfolio, Verdict};
use tessera_spin_kit::embeddings::{self, Source};
use tessera_spin_kit::pg::parse_uuid;
use tessera_spin_kit::{ApiError, StatusCode, read_body};

use crate::db::{self, P};
use crate::{BODY_LIMIT, Handled, llm, model, settings, universe, watchlist};

/// Seconds after which a run still `running` is taken as cut off (well past the host's
/// request deadline, 30 s by default).
const STALE_RUN_S: u32 = 300;

/// Candidates (best fuzzy base score first) whose setups are compared with past trades.
const SIMILARITY_CANDIDATES: usize = 20;

/// `POST /v1/discovery/run`'s body (optional: an empty body is every default).
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DiscoveryRunInput")]
pub(crate) struct RunInput {
    /// The decision day; default the latest day with daily bars.
    #[serde(default)]
    #[schemars(extend("format" = "date"))]
    as_of: Option<String>,
    #[serde(default)]
    portfolio: Portfolio,
}

pub async fn post_run(req: Request, tenant: &str) -> Handled {
    let body = read_body(req, BODY_LIMIT).await?;
    let input: RunInput = if body.iter().all(u8::is_ascii_whitespace) {
        RunInput::default()
    } else {
        tessera_api::refuse_nul(&body)?;
        tessera_api::parse_json(&body)?
    };
    let as_of = input
        .as_of
        .as_deref()
        .map(|s| {
            s.parse::<Date>()
                .map_err(|_| ApiError::invalid("as_of", "as_of must be a date, YYYY-MM-DD"))
        })
        .transpose()?;
    for (i, p) in input.portfolio.positions.iter().enumerate() {
        if !p.weight.is_finite() {
            return Err(ApiError::invalid(
                &format!("portfolio.positions[{i}].weight"),
                "weight must be a finite number",
            ));
        }
    }
    let db = tessera_spin_kit::connect(tenant).await?;
    let (id, status) = start_and_run(&db, tenant, "api", as_of, &input.portfolio).await?;
    Ok((
        StatusCode::ACCEPTED,
        json!({ "run_id": id, "status": status }),
    ))
}

/// Inserts the run (409 when one is running) and executes it; the run's id and final status.
pub async fn start_and_run(
    db: &Connection,
    tenant: &str,
    trigger: &str,
    as_of: Option<Date>,
    portfolio: &Portfolio,
) -> Result<(String, String), ApiError> {
    let settings = settings::load(db, tenant).await?;
    // A run cut off mid-way (the host's request deadline, a crash) would hold the tenant's
    // slot forever: past any request's lifetime it is marked failed.
    db::execute(
        db,
        "expire stale runs",
        &format!(
            "UPDATE discovery_runs SET status = 'failed', finished_at = now(), \
               error = 'did not finish: the request running it was cut off' \
             WHERE tenant_id = $1 AND status = 'running' \
               AND started_at < now() - interval '{STALE_RUN_S} seconds'"
        ),
        vec![db::str_param(tenant)],
    )
    .await?;
    let row = db::one(
        db,
        "start run",
        "INSERT INTO discovery_runs (tenant_id, trigger, settings) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) WHERE status = 'running' DO NOTHING RETURNING id::text",
        vec![
            db::str_param(tenant),
            db::str_param(trigger),
            db::jsonb(&serde_json::to_value(&settings).unwrap_or_default()),
        ],
    )
    .await?;
    let Some(row) = row else {
        let running = db::one(
            db,
            "find running run",
            "SELECT id::text FROM discovery_runs WHERE tenant_id = $1 AND status = 'running'",
            vec![db::str_param(tenant)],
        )
        .await?
        .map(|r| db::text(&r, 0))
        .unwrap_or_default();
        return Err(ApiError::conflict(
            "run_in_progress",
            format!("discovery run {running} is still running for this tenant"),
        ));
    };
    let id = db::text(&row, 0);
    let started = std::time::Instant::now();
    match execute(db, tenant, &id, as_of, portfolio, &settings, started).await {
        Ok(()) => Ok((id, "succeeded".into())),
        Err(e) => {
            db::rollback(db).await;
            db::execute(
                db,
                "record failed run",
                "UPDATE discovery_runs SET status = 'failed', error = $2, finished_at = now() \
                 WHERE id = $1::uuid",
                vec![db::str_param(&id), db::str_param(&e.message)],
            )
            .await?;
            Ok((id, "failed".into()))
        }
    }
}

fn verdict_counts(output: &PickerOutput) -> Value {
    let count = |v: Verdict| {
        output
            .scores
            .iter()
            .filter(|s| s.verdict == Some(v))
            .count()
    };
    json!({
        "status": "ran",
        "scored": output.scores.len(),
        "pass": count(Verdict::Pass),
        "fail": count(Verdict::Fail),
        "unavailable": count(Verdict::Unavailable),
    })
}

async fn execute(
    db: &Connection,
    tenant: &str,
    id: &str,
    as_of: Option<Date>,
    portfolio: &Portfolio,
    settings: &DiscoverySettings,
    started: std::time::Instant,
) -> Result<(), ApiError> {
    let as_of = match as_of {
        Some(d) => d,
        None => universe::latest_day(db, tenant).await?.ok_or_else(|| {
            ApiError::invalid("as_of", "no daily bars loaded: POST /v1/market/bars first")
        })?,
    };
    let windows = settings.windows();
    let universe = universe::load(
        db,
        tenant,
        as_of,
        history_days(&windows),
        settings.index.as_deref(),
    )
    .await?;
    let candidates: Vec<Candidate> = universe
        .members
        .iter()
        .map(|(s, bars)| Candidate::as_of(s, bars, as_of, &windows))
        .collect();

    let metric = MetricPicker::new(settings.metric.clone()).pick(&candidates);
    let fuzzy_picker = FuzzyPicker::new(settings.fuzzy());
    let base = fuzzy_picker.pick(&candidates, portfolio, &BTreeMap::new());
    let (similar, setups) =
        similar_trades(db, tenant, &candidates, &base, fuzzy_picker.config.k).await?;
    let fuzzy = fuzzy_picker.pick(&candidates, portfolio, &similar);
    let llm = llm::pick(db, tenant, as_of, portfolio, &universe, &candidates, &fuzzy).await?;
    let mut outputs = vec![metric, fuzzy];
    outputs.extend(llm.output);
    let result = EnsembleCombiner::new(settings.ensemble()).combine(&outputs);
    let suggestions = select_suggestions(&result, &outputs, settings.suggestions);

    let mut fuzzy_status = verdict_counts(&outputs[1]);
    fuzzy_status["adjusted_by_similar_trades"] = json!(similar.len());
    if let Some(setups) = &setups {
        fuzzy_status["setup_embeddings"] = setup_status(setups);
    }
    let pickers = json!({
        "metric": verdict_counts(&outputs[0]),
        "fuzzy": fuzzy_status,
        "llm": llm.status,
    });
    let rows: Vec<Value> = suggestions
        .iter()
        .map(|s| {
            json!({
                "ticker": s.ranked.ticker,
                "rank": s.ranked.rank,
                "score": s.ranked.score,
                "rejected_by": s.ranked.rejected_by.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                "sources": s.sources,
                "contributions": s.ranked.contributions,
            })
        })
        .collect();
    let discovered: Vec<(String, f64)> = suggestions
        .iter()
        .filter(|s| s.sources.iter().any(|x| x == "ensemble"))
        .map(|s| (s.ranked.ticker.clone(), s.ranked.score))
        .collect();

    db::begin(db).await?;
    db::execute(
        db,
        "store suggestions",
        "INSERT INTO discovery_suggestions (tenant_id, run_id, ticker, rank, score, rejected_by, \
           sources, contributions, suggested_on) \
         SELECT $1, $2::uuid, r.ticker, r.rank, r.score, \
           ARRAY(SELECT jsonb_array_elements_text(r.rejected_by)), \
           ARRAY(SELECT jsonb_array_elements_text(r.sources)), r.contributions, $3::date \
         FROM jsonb_to_recordset($4::jsonb) AS r(ticker text, rank int, score float8, \
           rejected_by jsonb, sources jsonb, contributions jsonb)",
        vec![
            db::str_param(tenant),
            db::str_param(id),
            db::str_param(&as_of.to_string()),
            db::jsonb(&Value::Array(rows)),
        ],
    )
    .await?;
    watchlist::lock(db, tenant).await?;
    let mut list = watchlist::load(db, tenant, settings.watchlist_max_size).await?;
    let changes = list.merge_discovered(&discovered, now());
    watchlist::apply(db, tenant, &list, &changes, Some(id)).await?;
    let divergences = serde_json::to_value(&result.divergences).unwrap_or_default();
    db::execute(
        db,
        "finish run",
        "UPDATE discovery_runs SET status = 'succeeded', as_of = $2::date, pickers = $3, \
           divergences = $4, unscored = $5, symbols = $6, finished_at = now(), \
           settings = settings || jsonb_build_object('index', $7::text, 'duration_ms', $8::int8) \
         WHERE id = $1::uuid",
        vec![
            db::str_param(id),
            db::str_param(&as_of.to_string()),
            db::jsonb(&pickers),
            db::jsonb(&divergences),
            db::jsonb(&json!(result.unscored)),
            P::Int32(candidates.len() as i32),
            db::str_param(&universe.index_ticker),
            P::Int64(started.elapsed().as_millis() as i64),
        ],
    )
    .await?;
    raise_divergence_alert(db, tenant, id, &result.divergences).await?;
    db::commit(db).await
}

/// `picker.divergence` when a picker rejected what another ranked high, for the alert
/// component (tessera_spin_kit::alert_inbox), in the run's transaction.
async fn raise_divergence_alert(
    db: &Connection,
    tenant: &str,
    run_id: &str,
    divergences: &[tessera_picking::ensemble::Divergence],
) -> Result<(), ApiError> {
    use tessera_spin_kit::alert_inbox::{self, Alert, Severity};
    if divergences.is_empty() {
        return Ok(());
    }
    let tickers: Vec<&str> = divergences
        .iter()
        .take(5)
        .map(|d| d.ticker.as_str())
        .collect();
    let mut labels = serde_json::Map::new();
    labels.insert("run".into(), json!(run_id));
    let alert = Alert {
        event_type: "picker.divergence".into(),
        severity: Severity::Warning,
        labels,
        summary: Some(format!(
            "{} divergence(s) in discovery run {run_id}: {}{}",
            divergences.len(),
            tickers.join(", "),
            if divergences.len() > tickers.len() {
                ", …"
            } else {
                ""
            }
        )),
        payload: json!({ "run_id": run_id, "divergences": divergences }),
    };
    alert_inbox::raise(db, tenant, &alert).await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where each setup text's embedding comes from: `setup_embeddings` (see migration 0016)
/// holds the vector of every text a run of the tenant embedded in the last week, keyed by
/// the SHA-256 of the model's name (parameter `model`) and the text (column `text`),
/// computed by Postgres in the queries below.
fn setup_key(model: &str, text: &str) -> String {
    format!("sha256(convert_to({model} || chr(10) || {text}, 'UTF8'))")
}

/// Days a stored setup embedding is kept (setups name the day's momentum and volatility,
/// so older ones are rarely asked for again).
const SETUP_KEEP_DAYS: u32 = 7;

/// How a run's setup embeddings were obtained, for the run's record.
struct SetupEmbeddings {
    stored: usize,
    embedded: usize,
    /// The model's name in the key of the vectors the run uses ([`model::model_key`]).
    key: String,
    source: Source,
    /// Loading the in-component model (0 when the instance had it, or the host embeds),
    /// then embedding the missing texts.
    load_ms: u128,
    embed_ms: u128,
}

/// The texts of `texts` with no vector stored under `key`, each once.
async fn missing_setups(
    db: &Connection,
    tenant: &str,
    texts: &[String],
    key: &str,
) -> Result<Vec<String>, ApiError> {
    let missing = db::rows(
        db,
        "stored setup embeddings",
        &format!(
            "SELECT q.txt FROM unnest($2::text[]) AS q(txt) WHERE NOT EXISTS \
               (SELECT 1 FROM setup_embeddings e WHERE e.tenant_id = $1 AND e.text_hash = {})",
            setup_key("$3", "q.txt")
        ),
        vec![
            db::str_param(tenant),
            P::ArrayStr(texts.iter().cloned().map(Some).collect()),
            db::str_param(key),
        ],
    )
    .await?;
    let mut missing: Vec<String> = missing.iter().map(|r| db::text(r, 0)).collect();
    missing.sort();
    missing.dedup();
    Ok(missing)
}

/// Makes sure `setup_embeddings` holds every text's vector: one query finds the missing
/// ones, which are embedded (each text alone, so its vector does not depend on which others
/// were missing) and written back in one statement. A run reading stored vectors therefore
/// ranks exactly as a run that embeds every setup itself. Vectors come from the host's
/// model when it runs one, else from the component's; should the host fail mid-way, the
/// run uses the component's vectors for all its setups, never a mix.
async fn ensure_setup_embeddings(
    db: &Connection,
    tenant: &str,
    texts: &[String],
) -> Result<SetupEmbeddings, ApiError> {
    let mut source = embeddings::likely_source();
    let mut key = model::model_key(source);
    let mut missing = missing_setups(db, tenant, texts, &key).await?;
    if missing.is_empty() {
        return Ok(SetupEmbeddings {
            stored: texts.len(),
            embedded: 0,
            key,
            source,
            load_ms: 0,
            embed_ms: 0,
        });
    }
    let mut load_ms = match source {
        Source::Component => model::load()?,
        Source::Host => 0,
    };
    let mut started = std::time::Instant::now();
    let mut embedded = embeddings::embed_each(&missing)?;
    if embedded.source != source {
        source = embedded.source;
        key = model::model_key(source);
        missing = missing_setups(db, tenant, texts, &key).await?;
        load_ms = model::load()?;
        started = std::time::Instant::now();
        embedded.vectors = embeddings::embed_each_in_component(&missing)?;
    }
    let vectors = embedded.vectors;
    let embed_ms = started.elapsed().as_millis();
    // Rows past their week go in the same statement, except the ones this run uses (the
    // search below joins them).
    db::execute(
        db,
        "store setup embeddings",
        &format!(
            "WITH pruned AS (DELETE FROM setup_embeddings WHERE tenant_id = $1 \
               AND created_at < now() - interval '{SETUP_KEEP_DAYS} days' \
               AND text_hash <> ALL (SELECT {} FROM unnest($5::text[]) AS a(txt))) \
             INSERT INTO setup_embeddings (tenant_id, text_hash, embedding) \
             SELECT $1, {}, q.v::vector \
             FROM unnest($2::text[], $3::text[]) AS q(txt, v) \
             ON CONFLICT (tenant_id, text_hash) DO NOTHING",
            setup_key("$4", "a.txt"),
            setup_key("$4", "q.txt")
        ),
        vec![
            db::str_param(tenant),
            P::ArrayStr(missing.iter().cloned().map(Some).collect()),
            P::ArrayStr(vectors.iter().map(|v| Some(db::vector_text(v))).collect()),
            db::str_param(&key),
            P::ArrayStr(texts.iter().cloned().map(Some).collect()),
        ],
    )
    .await?;
    Ok(SetupEmbeddings {
        stored: texts.len() - missing.len(),
        embedded: missing.len(),
        key,
        source,
        load_ms,
        embed_ms,
    })
}

/// The similar-trade search's part of the run record.
fn setup_status(s: &SetupEmbeddings) -> Value {
    json!({
        "stored": s.stored,
        "embedded": s.embedded,
        "source": s.source.as_str(),
        "model_load_ms": s.load_ms as u64,
        "embed_ms": s.embed_ms as u64,
    })
}

/// The k most similar closed trades for the best base-scored candidates (by the embedding
/// of each candidate's setup against the trades' embeddings). Empty, and no model loaded,
/// when the tenant has no closed trade.
async fn similar_trades(
    db: &Connection,
    tenant: &str,
    candidates: &[Candidate],
    base: &PickerOutput,
    k: usize,
) -> Result<(BTreeMap<String, Vec<SimilarTrade>>, Option<SetupEmbeddings>), ApiError> {
    let closed = db::one(
        db,
        "count closed trades",
        "SELECT count(*) FROM picker_trades WHERE tenant_id = $1 AND return_pct IS NOT NULL",
        vec![db::str_param(tenant)],
    )
    .await?
    .map_or(0, |r| db::int(&r, 0));
    if closed == 0 || k == 0 {
        return Ok((BTreeMap::new(), None));
    }
    let mut best: Vec<(usize, f64)> = base
        .scores
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.score))
        .collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    best.truncate(SIMILARITY_CANDIDATES);
    let texts: Vec<String> = best
        .iter()
        .map(|(i, _)| candidate_description(&candidates[*i]))
        .collect();
    let setups = ensure_setup_embeddings(db, tenant, &texts).await?;
    let rows = db::rows(
        db,
        "similar trades",
        &format!(
            "SELECT q.ord::int8, 1 - (t.embedding <=> e.embedding), t.return_pct \
             FROM unnest($2::text[]) WITH ORDINALITY AS q(txt, ord) \
             JOIN setup_embeddings e ON e.tenant_id = $1 AND e.text_hash = {} \
             CROSS JOIN LATERAL (SELECT embedding, return_pct FROM picker_trades \
               WHERE tenant_id = $1 AND return_pct IS NOT NULL \
               ORDER BY embedding <=> e.embedding LIMIT $3) t \
             ORDER BY q.ord, 2 DESC, t.return_pct",
            setup_key("$4", "q.txt")
        ),
        vec![
            db::str_param(tenant),
            P::ArrayStr(texts.iter().cloned().map(Some).collect()),
            P::Int64(k as i64),
            db::str_param(&setups.key),
        ],
    )
    .await?;
    let mut out: BTreeMap<String, Vec<SimilarTrade>> = BTreeMap::new();
    for r in &rows {
        let ord = db::int(r, 0) as usize;
        let Some((i, _)) = best.get(ord.wrapping_sub(1)) else {
            continue;
        };
        out.entry(candidates[*i].symbol.ticker.clone())
            .or_default()
            .push(SimilarTrade {
                similarity: db::float(r, 1),
                return_pct: db::float(r, 2),
            });
    }
    Ok((out, Some(setups)))
}

fn run_json(r: &spin_sdk::pg::Row) -> Value {
    json!({
        "id": db::text(r, 0),
        "status": db::text(r, 1),
        "trigger": db::text(r, 2),
        "as_of": db::opt_text(r, 3),
        "settings": db::json(r, 4),
        "pickers": db::json(r, 5),
        "divergences": db::json(r, 6),
        "unscored": db::json(r, 7),
        "symbols": db::int(r, 8),
        "error": db::opt_text(r, 9),
        "started_at": db::text(r, 10),
        "finished_at": db::opt_text(r, 11),
        "suggestions": db::int(r, 12),
    })
}

fn run_select() -> String {
    format!(
        "SELECT r.id::text, r.status, r.trigger, r.as_of::text, r.settings, r.pickers, \
           r.divergences, r.unscored, r.symbols, r.error, \
           to_char(r.started_at AT TIME ZONE 'UTC', {iso}), \
           to_char(r.finished_at AT TIME ZONE 'UTC', {iso}), \
           (SELECT count(*) FROM discovery_suggestions s WHERE s.run_id = r.id)::int8 \
         FROM discovery_runs r WHERE r.tenant_id = $1",
        iso = db::ISO
    )
}

pub async fn get_run(tenant: &str, id: &str) -> Handled {
    let id = parse_uuid(id, "id")?;
    let db = tessera_spin_kit::connect(tenant).await?;
    let row = db::one(
        &db,
        "get run",
        &format!("{} AND r.id = $2::uuid", run_select()),
        vec![db::str_param(tenant), db::str_param(&id)],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("run_not_found", format!("no discovery run {id}")))?;
    Ok((StatusCode::OK, run_json(&row)))
}

pub async fn status(tenant: &str) -> Handled {
    let db = tessera_spin_kit::connect(tenant).await?;
    let running = db::one(
        &db,
        "running run",
        &format!("{} AND r.status = 'running'", run_select()),
        vec![db::str_param(tenant)],
    )
    .await?;
    let last = db::one(
        &db,
        "last run",
        &format!(
            "{} AND r.status <> 'running' ORDER BY r.started_at DESC LIMIT 1",
            run_select()
        ),
        vec![db::str_param(tenant)],
    )
    .await?;
    let counts = db::one(
        &db,
        "data counts",
        "SELECT (SELECT count(*) FROM market_symbols WHERE tenant_id = $1)::int8, \
           (SELECT count(*) FROM market_bars WHERE tenant_id = $1)::int8, \
           (SELECT count(*) FROM watchlist WHERE tenant_id = $1)::int8",
        vec![db::str_param(tenant)],
    )
    .await?
    .ok_or_else(|| ApiError::internal("data counts: no row"))?;
    Ok((
        StatusCode::OK,
        json!({
            "running": running.as_ref().map(run_json),
            "last_run": last.as_ref().map(run_json),
            "symbols": db::int(&counts, 0),
            "bars": db::int(&counts, 1),
            "latest_daily_bar": universe::latest_day(&db, tenant).await?,
            "watchlist_size": db::int(&counts, 2),
        }),
    ))
}

/// The latest successful run's suggestions in rank order; `source=` keeps one picker's (or
/// the ensemble's) own, `limit=` (default 20, at most 200).
pub async fn suggestions(tenant: &str, query: &tessera_api::Query) -> Handled {
    let source = query.get("source").unwrap_or("ensemble");
    if !["ensemble", "metric", "fuzzy", "llm", "all"].contains(&source) {
        return Err(ApiError::invalid(
            "source",
            "source must be ensemble, metric, fuzzy, llm or all",
        ));
    }
    let limit = match query.get("limit") {
        None => 20,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "limit must be 1-200"))?,
    };
    let db = tessera_spin_kit::connect(tenant).await?;
    let run = db::one(
        &db,
        "latest run",
        "SELECT id::text, as_of::text, pickers, divergences FROM discovery_runs \
         WHERE tenant_id = $1 AND status = 'succeeded' ORDER BY started_at DESC LIMIT 1",
        vec![db::str_param(tenant)],
    )
    .await?;
    let Some(run) = run else {
        return Ok((StatusCode::OK, json!({ "run_id": null, "suggestions": [] })));
    };
    let run_id = db::text(&run, 0);
    let rows = db::rows(
        &db,
        "read suggestions",
        "SELECT ticker, rank, score, rejected_by, sources, contributions, suggested_on::text \
         FROM discovery_suggestions WHERE tenant_id = $1 AND run_id = $2::uuid \
           AND ($3 = 'all' OR $3 = ANY(sources)) ORDER BY rank LIMIT $4",
        vec![
            db::str_param(tenant),
            db::str_param(&run_id),
            db::str_param(source),
            P::Int64(limit),
        ],
    )
    .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "ticker": db::text(r, 0),
                "rank": db::int(r, 1),
                "score": db::float(r, 2),
                "rejected_by": db::str_array(r, 3),
                "sources": db::str_array(r, 4),
                "pickers": db::json(r, 5),
                "suggested_on": db::text(r, 6),
            })
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!({
            "run_id": run_id,
            "as_of": db::opt_text(&run, 1),
            "source": source,
            "pickers": db::json(&run, 2),
            "divergences": db::json(&run, 3),
            "suggestions": list,
        }),
    ))
}
