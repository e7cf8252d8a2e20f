//! `POST /v1/validate/formula`: a sheet of cells evaluated as a spreadsheet would, with parse
//! errors, missing references, cycles, every cell's value in dependency order and claimed
//! values checked. A request over a whole-request limit is refused naming the limit.

use serde_json::json;
use spin_sdk::http::Request;
use tessera_spin_kit::{ApiError, StatusCode, connect};
use tessera_validation::formula::sheet::{SheetError, SheetRequest, evaluate};
use tessera_validation::limits::Limits;

use crate::audit;
use crate::identity::Caller;

pub async fn post(req: Request, caller: &Caller) -> crate::Handled {
    let (request, body): (SheetRequest, _) = crate::read(req).await?;
    if let Some(t) = request.tolerance
        && !(t.is_finite() && (0.0..=1.0).contains(&t))
    {
        return Err(ApiError::invalid(
            "tolerance",
            "tolerance is a number from 0 to 1",
        ));
    }
    let limits = Limits::default();
    let started = std::time::Instant::now();
    let report = evaluate(&request, &limits).map_err(|e| match e {
        SheetError::Invalid { field, message } => ApiError::invalid(&field, message),
        SheetError::Limit(hit) => ApiError::new(
            422,
            "limit_exceeded",
            format!("the request is over the {} limit of {}", hit.limit, hit.max),
        )
        // `cells` is also the request's field; `range_reads` names the limit itself.
        .with_field(hit.limit),
    })?;
    let evaluate_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut result =
        serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    let verdict = if report.valid { "valid" } else { "invalid" };
    let input: serde_json::Value = tessera_api::parse_json(&body)?;
    // The audit keeps the sheet and the findings; every cell's value follows from the sheet.
    let mut findings = result.clone();
    if let Some(o) = findings.as_object_mut() {
        o.remove("cells");
    }
    let db = connect(&caller.tenant).await?;
    let (id, at) = audit::record(
        &db,
        &caller.tenant,
        "formula",
        verdict,
        None,
        &input,
        &findings,
    )
    .await?;
    result["timing"] = json!({ "evaluate_ms": evaluate_ms });
    result["id"] = json!(id);
    result["created_at"] = json!(at);
    result["limits"] = json!({
        "formula_length": limits.formula_length, "tokens": limits.tokens, "depth": limits.depth,
        "tree_height": limits.tree_height, "cells": limits.cells, "range_reads": limits.range_reads,
    });
    Ok((StatusCode::OK, result))
}
