//! The chat component's operations, answered on `GET /internal/openapi` for the application's
//! one API description (tessera_api::openapi). Request bodies are the types the handlers
//! parse.

use serde_json::{Value, json};
use tessera_api::openapi::{Fragment, Operation};

use crate::conversations::{NewConversation, NewMessage};
use crate::edit::EditRequest;
use crate::profile::Update;

pub fn fragment() -> Value {
    let user = json!({"type": "string", "pattern": "^[A-Za-z0-9._@-]{1,64}$"});
    let day = json!({"type": "string", "format": "date"});
    Fragment::new("chat")
        // An empty body is accepted too (no title, no context).
        .op_with::<NewConversation>(
            Operation::post("/v1/chat/conversations", "Start a conversation")
                .created_or_ok(201)
                .body_optional(),
        )
        .op(Operation::get(
            "/v1/chat/conversations/{id}",
            "A conversation: its messages and their steps",
        ))
        .op_with::<NewMessage>(
            Operation::post(
                "/v1/chat/conversations/{id}/messages",
                "Ask a question; the answer is streamed step by step",
            )
            .answers(
                "text/event-stream",
                "the turn's events (start, steps, finish), then [DONE] (docs/chat-stream.md)",
            ),
        )
        // `mode: apply` answers text/event-stream (the reruns, as a turn); one success media
        // type per operation can be described, so the default's (preview, JSON) is.
        .op_with::<EditRequest>(
            Operation::post(
                "/v1/chat/conversations/{id}/steps/{n}/edit",
                "Change a step's requirements: preview the reruns or apply them",
            )
            .answers(
                "application/json",
                "preview: the steps that would rerun and the estimated cost; with `mode: apply` \
                 the reruns are streamed as text/event-stream instead",
            ),
        )
        .op(
            Operation::get("/v1/chat/profile", "The caller's profile").query(
                "user",
                user.clone(),
                "another user's profile (needs an operator)",
            ),
        )
        .op_with::<Update>(
            Operation::put(
                "/v1/chat/profile",
                "Set skill level, own provider keys (and, for operators, tier and budget)",
            )
            .query("user", user, "another user's profile (needs an operator)"),
        )
        .op(Operation::get(
            "/v1/usage",
            "Tokens and cost by user, provider, model and day",
        )
        .query(
            "period",
            json!({"type": "string", "enum": ["day", "month", "all"], "default": "month"}),
            "the current UTC day or month, or everything (when from and to are not given)",
        )
        .query("from", day.clone(), "first day, UTC (with `to`)")
        .query("to", day, "last day, UTC, inclusive (with `from`)")
        .query(
            "user",
            json!({"type": "string"}),
            "only this user's; default: the caller's own for a member, the whole tenant \
                     for an operator (another user's needs an operator)",
        ))
        .to_json()
}
