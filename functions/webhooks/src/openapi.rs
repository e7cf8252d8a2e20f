//! The webhooks component's part of `/openapi.json`.

use serde_json::{Value, json};
use tessera_api::openapi::{Fragment, Operation};

pub fn fragment() -> Value {
    Fragment::new("webhooks")
        // The body is the sender's raw bytes, verified against its signature before anything
        // is parsed; a Standard Webhooks envelope ({type, timestamp, data}) may be handed on.
        .op_with_body(
            Operation::post(
                "/v1/webhooks/{source}",
                "Receive a signed event from a configured source",
            )
            .keyless("the sender's signature (Standard Webhooks, GitHub or Stripe)"),
            "application/json",
            json!({
                "type": "object",
                "description": "the sender's event, as signed; a Standard Webhooks envelope \
                                {\"type\", \"timestamp\", \"data\"} can be handed on to the \
                                capability that owns its type",
            }),
        )
        .to_json()
}
