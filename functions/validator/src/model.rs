//! `POST /v1/validate/model`: DCF and LBO model checks, each finding with its numbers.

use serde_json::json;
use spin_sdk::http::Request;
use tessera_spin_kit::{ApiError, StatusCode, connect};
use tessera_validation::model::{ModelRequest, check};

use crate::audit;
use crate::identity::Caller;

pub async fn post(req: Request, caller: &Caller) -> crate::Handled {
    let (input, body): (serde_json::Value, _) = crate::read(req).await?;
    match input.get("kind").and_then(|k| k.as_str()) {
        Some("dcf" | "lbo") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "kind",
                format!("kind is \"dcf\" or \"lbo\", got {other:?}"),
            ));
        }
        None => return Err(ApiError::missing("kind")),
    }
    let request: ModelRequest = tessera_api::parse_json(&body).map_err(crate::name_missing)?;
    let report = check(&request).map_err(|e| ApiError::invalid(&e.field, e.message))?;
    let mut result =
        serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    let verdict = if report.valid { "valid" } else { "invalid" };
    let db = connect(&caller.tenant).await?;
    let (id, at) =
        audit::record(&db, &caller.tenant, "model", verdict, None, &input, &result).await?;
    result["id"] = json!(id);
    result["created_at"] = json!(at);
    Ok((StatusCode::OK, result))
}
