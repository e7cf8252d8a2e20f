//! The alert component's operations (its fragment of the API description, answered on
//! `GET /internal/openapi`): one per concrete arm of `route` in `lib.rs`, each request body
//! from the very type its handler parses. `/internal/dispatch` and `/internal/system-errors`
//! are reached only by service chaining and are not described.

use serde_json::{Value, json};
use tessera_api::openapi::{Fragment, Operation};

use crate::{channels, events, rules, silences};

pub fn fragment() -> Value {
    let mut f = Fragment::new("alert")
        .op(Operation::get(
            "/v1/alerts",
            "Recent events with the deliveries that carried them, newest first",
        )
        .query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
            "at most this many events",
        )
        .query(
            "type",
            json!({"type": "string"}),
            "only events of this exact type",
        ))
        .op_with::<events::EventInput>(
            Operation::post(
                "/v1/alerts/events",
                "Raise an event: routed, grouped and its due notifications sent",
            )
            .created_or_ok(202)
            .or_answers(
                200,
                "an `idempotency_key` seen before: the first event's id, \
                 `idempotent_replay: true`, nothing done",
            )
            .role("service"),
        );
    f = f
        .op_with::<channels::ChannelInput>(
            Operation::post("/v1/alerts/channels", "Create a notification channel")
                .created_or_ok(201)
                .role("operator"),
        )
        .op(Operation::get(
            "/v1/alerts/channels",
            "The notification channels",
        ))
        .op(Operation::get(
            "/v1/alerts/channels/{id}",
            "One notification channel",
        ))
        .op_with::<channels::ChannelInput>(
            Operation::put(
                "/v1/alerts/channels/{id}",
                "Replace a channel's settings (`disabled: false` re-enables it)",
            )
            .role("operator"),
        )
        .op(
            Operation::delete("/v1/alerts/channels/{id}", "Delete a notification channel")
                .role("operator"),
        );
    f = f
        .op_with::<rules::RuleInput>(
            Operation::post("/v1/alerts/rules", "Create a routing rule")
                .created_or_ok(201)
                .role("operator"),
        )
        .op(Operation::get("/v1/alerts/rules", "The routing rules"))
        .op(Operation::get("/v1/alerts/rules/{id}", "One routing rule"))
        .op_with::<rules::RuleInput>(
            Operation::put("/v1/alerts/rules/{id}", "Replace a routing rule").role("operator"),
        )
        .op(Operation::delete("/v1/alerts/rules/{id}", "Delete a routing rule").role("operator"));
    f = f
        .op_with::<silences::SilenceInput>(
            Operation::post("/v1/alerts/silences", "Create a silence")
                .created_or_ok(201)
                .role("operator"),
        )
        .op(Operation::get("/v1/alerts/silences", "The silences"))
        .op(Operation::get("/v1/alerts/silences/{id}", "One silence"))
        .op_with::<silences::SilenceInput>(
            Operation::put("/v1/alerts/silences/{id}", "Replace a silence").role("operator"),
        )
        .op(Operation::delete("/v1/alerts/silences/{id}", "Delete a silence").role("operator"));
    f.op(Operation::post(
        "/v1/alerts/deliveries/{id}/replay",
        "Send a delivery again (same `webhook-id`)",
    )
    .created_or_ok(202)
    .role("operator"))
        .to_json()
}
