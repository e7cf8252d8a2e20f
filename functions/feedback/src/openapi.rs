//! The feedback component's operations, answered on `GET /internal/openapi` for the
//! application's one API description (tessera_api::openapi). Request bodies are the types
//! the handlers parse.

use serde_json::{Value, json};
use tessera_api::openapi::{Fragment, Operation};
use tessera_feedback::cluster::DEFAULT_THRESHOLD;

use crate::promote::Promotion;
use crate::submit::NewFeedback;

pub fn fragment() -> Value {
    let day = json!({"type": "string", "format": "date"});
    Fragment::new("feedback")
        // An API key, or the presigned feedback token handed out with the answer (as the
        // bearer credential or the body's `token`).
        .op_with::<NewFeedback>(
            Operation::post(
                "/v1/messages/{id}/feedback",
                "Rate an answer (replaces the rater's earlier rating)",
            )
            .created_or_ok(201)
            .or_answers(200, "the rater's earlier rating replaced"),
        )
        .op(Operation::get(
            "/v1/messages/{id}/feedback",
            "The current feedback on an answer, and the replaced ratings",
        ))
        .op(Operation::get(
            "/v1/feedback/report",
            "Questions clustered by meaning, worst feedback first",
        )
        .role("operator")
        .query(
            "from",
            day.clone(),
            "first day, UTC; default: 29 days before `to`, or (neither given) the 30 \
                 complete days before today; a report covers at most 366 days",
        )
        .query(
            "to",
            day,
            "last day, UTC, inclusive; default: today when `from` is given, else yesterday",
        )
        .query(
            "scope",
            json!({"type": "string", "default": "all",
                       "pattern": "^(all|user:[A-Za-z0-9._@-]{1,64}|page:/.{0,199})$"}),
            "all, one rater (`user:<id>`) or one page's conversations (`page:/<path>`)",
        )
        .query(
            "threshold",
            json!({"type": "number", "minimum": 0.05, "maximum": 0.95,
                       "default": (f64::from(DEFAULT_THRESHOLD) * 1e4).round() / 1e4}),
            "the cosine distance within which questions cluster",
        ))
        // An empty body is accepted too (the question becomes the title).
        .op_with::<Promotion>(
            Operation::post(
                "/v1/feedback/{id}/promote",
                "Promote a correction into the curated knowledge base",
            )
            .created_or_ok(201)
            .or_answers(200, "promoted before: the existing curated document")
            .body_optional()
            .role("operator"),
        )
        .to_json()
}
