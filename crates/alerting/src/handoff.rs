//! Inbound events handed to the capability that owns them: after a verified webhook is
//! stored, a Standard Webhooks envelope (`{"type": …, "data": …}`) whose type the source
//! accepts becomes a request to that capability's own API — market data to the picker,
//! broker fills to the trades log, documents to the knowledge base — so the event is
//! validated exactly as if a client had sent it. Pure: the webhooks component sends.

use serde_json::Value;

/// A request to a capability of the application.
#[derive(Clone, Debug, PartialEq)]
pub struct HandOff {
    pub method: &'static str,
    pub path: String,
    /// `None` for a request without a body.
    pub body: Option<Value>,
}

/// Why an accepted event cannot be handed off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandOffError {
    /// The body is not a JSON object with a string `type` and a `data` member.
    NotAnEnvelope,
    /// The type has no capability here.
    UnknownType(String),
    /// `data` has the wrong shape for the type (the field named).
    BadData(&'static str),
}

impl HandOffError {
    pub fn message(&self) -> String {
        match self {
            Self::NotAnEnvelope => {
                "the event is not a JSON object with a string `type` and `data`".into()
            }
            Self::UnknownType(t) => format!("no capability takes events of type {t:?}"),
            Self::BadData(field) => format!("`{field}` is missing or has the wrong type"),
        }
    }
}

/// The event types that can be handed off, and where they go.
pub const TYPES: [&str; 5] = [
    "market.bars",
    "market.symbols",
    "broker.fill",
    "document.upsert",
    "document.delete",
];

/// The `type` of a Standard Webhooks envelope, if the body is one.
pub fn event_type(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("type")?.as_str().map(str::to_string)
}

/// Whether a source that accepts `accepted` (space-separated types, as in its
/// `webhook_<source>_accepts` variable) hands off `event_type`.
pub fn accepts(accepted: &str, event_type: &str) -> bool {
    accepted.split_whitespace().any(|t| t == event_type)
}

/// The request that hands `body` (a Standard Webhooks envelope) to its capability.
pub fn plan(body: &[u8]) -> Result<HandOff, HandOffError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| HandOffError::NotAnEnvelope)?;
    let (Some(event_type), Some(data)) = (v.get("type").and_then(Value::as_str), v.get("data"))
    else {
        return Err(HandOffError::NotAnEnvelope);
    };
    let post = |path: &str, data: &Value| HandOff {
        method: "POST",
        path: path.into(),
        body: Some(data.clone()),
    };
    match event_type {
        "market.bars" | "market.symbols" if data.is_object() || data.is_array() => Ok(post(
            if event_type == "market.bars" {
                "/v1/market/bars"
            } else {
                "/v1/market/symbols"
            },
            data,
        )),
        "market.bars" | "market.symbols" => Err(HandOffError::BadData("data")),
        "broker.fill" if data.is_object() => Ok(post("/v1/trades", data)),
        "document.upsert" if data.is_object() => Ok(post("/v1/kb/documents", data)),
        "broker.fill" | "document.upsert" => Err(HandOffError::BadData("data")),
        "document.delete" => {
            let id = data
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| {
                    !id.is_empty()
                        && id.len() <= 200
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
                })
                .ok_or(HandOffError::BadData("data.id"))?;
            Ok(HandOff {
                method: "DELETE",
                path: format!("/v1/kb/documents/{id}"),
                body: None,
            })
        }
        other => Err(HandOffError::UnknownType(other.into())),
    }
}

/// What came of a hand-off, from the capability's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the capability took it.
    Done,
    /// 4xx: the capability refused the event itself; sending it again cannot help.
    Rejected,
    /// 5xx or no answer: to be tried again (the sender's retry of the same event does).
    Failed,
}

impl Outcome {
    pub fn of_status(status: Option<u16>) -> Outcome {
        match status {
            Some(200..=299) => Outcome::Done,
            Some(400..=499) => Outcome::Rejected,
            _ => Outcome::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn market_data_goes_to_the_picker_as_sent() {
        let data = json!({"interval": "1d", "rows": [{"symbol": "AAA"}]});
        let h = plan(&body(json!({"type": "market.bars", "data": data}))).unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/v1/market/bars");
        assert_eq!(h.body, Some(data));
        let h = plan(&body(
            json!({"type": "market.symbols", "data": [{"ticker": "AAA"}]}),
        ))
        .unwrap();
        assert_eq!(h.path, "/v1/market/symbols");
    }

    #[test]
    fn fills_and_documents_go_to_their_capabilities() {
        let h = plan(&body(
            json!({"type": "broker.fill", "data": {"symbol": "AAA"}}),
        ))
        .unwrap();
        assert_eq!(h.path, "/v1/trades");
        let h = plan(&body(
            json!({"type": "document.upsert", "data": {"text": "x"}}),
        ))
        .unwrap();
        assert_eq!(h.path, "/v1/kb/documents");
        let h = plan(&body(
            json!({"type": "document.delete", "data": {"id": "doc-1"}}),
        ))
        .unwrap();
        assert_eq!(
            (h.method, h.path.as_str(), h.body),
            ("DELETE", "/v1/kb/documents/doc-1", None)
        );
    }

    #[test]
    fn a_path_cannot_be_smuggled_through_a_document_id() {
        for id in ["../admin/keys", "a/b", "", "a b", "a?x=1"] {
            assert_eq!(
                plan(&body(
                    json!({"type": "document.delete", "data": {"id": id}})
                )),
                Err(HandOffError::BadData("data.id")),
                "{id:?}"
            );
        }
    }

    #[test]
    fn bad_envelopes_and_unknown_types_are_named() {
        assert_eq!(plan(b"not json"), Err(HandOffError::NotAnEnvelope));
        assert_eq!(
            plan(&body(json!({"type": "market.bars"}))),
            Err(HandOffError::NotAnEnvelope)
        );
        assert_eq!(
            plan(&body(json!({"type": "market.bars", "data": 3}))),
            Err(HandOffError::BadData("data"))
        );
        assert_eq!(
            plan(&body(json!({"type": "push", "data": {}}))),
            Err(HandOffError::UnknownType("push".into()))
        );
    }

    #[test]
    fn a_source_hands_off_only_the_types_it_accepts() {
        assert!(accepts("market.bars  market.symbols", "market.symbols"));
        assert!(!accepts("market.bars", "document.upsert"));
        assert!(!accepts("", "market.bars"));
        assert_eq!(
            event_type(br#"{"type":"market.bars","data":{}}"#).as_deref(),
            Some("market.bars")
        );
        assert_eq!(event_type(b"[1]"), None);
    }

    #[test]
    fn answers_classify_as_done_rejected_or_failed() {
        assert_eq!(Outcome::of_status(Some(201)), Outcome::Done);
        assert_eq!(Outcome::of_status(Some(400)), Outcome::Rejected);
        assert_eq!(Outcome::of_status(Some(503)), Outcome::Failed);
        assert_eq!(Outcome::of_status(None), Outcome::Failed);
    }
}
