//! The provider-neutral request and the HTTP request built from it.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::ProviderKind;
use super::event::ToolCall;

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    User {
        content: String,
    },
    Assistant {
        content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of running a tool the model called.
    Tool {
        call_id: String,
        name: String,
        content: String,
    },
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Self::User {
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::Assistant {
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    /// The message's text, for token estimates and cache keys.
    pub fn text(&self) -> &str {
        match self {
            Self::User { content }
            | Self::Assistant { content, .. }
            | Self::Tool { content, .. } => content,
        }
    }
}

/// A tool the model may call; `parameters` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A provider-neutral streaming chat request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The provider's model id (`gpt-4o-mini`, `claude-3-5-haiku-latest`, ...).
    pub model: String,
    #[serde(default)]
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// Upper bound on output tokens (Anthropic requires one; every provider gets it).
    pub max_output_tokens: u32,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Stop sequences. The OpenAI Responses API has no such parameter: they are not sent there.
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
}

/// Default output bound for [`ChatRequest::new`].
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 1024;

impl ChatRequest {
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            system: None,
            messages,
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
            tools: Vec::new(),
        }
    }

    pub fn with_system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// All prompt text (system and messages), for token estimates.
    pub fn prompt_text(&self) -> String {
        let mut s = self.system.clone().unwrap_or_default();
        for m in &self.messages {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(m.text());
        }
        s
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.model.trim().is_empty() {
            return Err(BuildError::Invalid("model is empty"));
        }
        if self.messages.is_empty() {
            return Err(BuildError::Invalid("no messages"));
        }
        if self.max_output_tokens == 0 {
            return Err(BuildError::Invalid("max_output_tokens is 0"));
        }
        Ok(())
    }
}

/// Where and how to reach one provider. The key is a secret: [`fmt::Debug`] hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_key: Option<String>,
}

impl Endpoint {
    pub fn new(kind: ProviderKind, base_url: impl Into<String>, api_key: Option<String>) -> Self {
        Self {
            kind,
            base_url: base_url.into(),
            api_key,
        }
    }

    /// The key, or an error when this kind requires one.
    pub(crate) fn key(&self) -> Result<Option<&str>, BuildError> {
        match self.api_key.as_deref().filter(|k| !k.is_empty()) {
            Some(k) if k.contains(['\r', '\n']) => {
                Err(BuildError::Invalid("API key contains a line break"))
            }
            Some(k) => Ok(Some(k)),
            None if self.kind.requires_key() => Err(BuildError::MissingKey(self.kind)),
            None => Ok(None),
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A built HTTP request, for the caller to send (spin-sdk outbound HTTP, or a test client).
/// [`fmt::Debug`] redacts credential headers, so the request can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    /// Lower-case header names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

const SECRET_HEADERS: [&str; 3] = ["authorization", "x-api-key", "x-goog-api-key"];

impl HttpRequest {
    pub(crate) fn post_json(url: String, body: &serde_json::Value) -> Self {
        Self {
            method: "POST",
            url,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("accept".into(), "text/event-stream".into()),
            ],
            body: serde_json::to_vec(body).expect("a serde_json::Value always serialises"),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (every built body is JSON).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Into an [`http::Request`], for callers built on the `http` crate.
    #[cfg(feature = "http")]
    pub fn into_http(self) -> Result<http::Request<Vec<u8>>, http::Error> {
        let mut b = http::Request::builder().method(self.method).uri(self.url);
        for (n, v) in &self.headers {
            b = b.header(n.as_str(), v.as_str());
        }
        b.body(self.body)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let secret = SECRET_HEADERS.iter().any(|s| n.eq_ignore_ascii_case(s));
                (n.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    #[error("invalid request: {0}")]
    Invalid(&'static str),
    #[error("no API key configured for a {} provider", .0.as_str())]
    MissingKey(ProviderKind),
    #[error("invalid base URL {0:?}: expected http(s)://host[/path] without query")]
    InvalidBaseUrl(String),
    #[error("invalid model id {0:?} for this provider")]
    InvalidModel(String),
    #[error("tool call {0:?} has arguments that are not a JSON object")]
    InvalidToolArguments(String),
    #[error("the local provider makes no HTTP call; use `local::answer`")]
    LocalProvider,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_keys() {
        let ep = Endpoint::new(
            ProviderKind::OpenAi,
            "https://api.openai.com",
            Some("sk-secret".into()),
        );
        assert!(!format!("{ep:?}").contains("sk-secret"));
        let req = HttpRequest::post_json("https://x".into(), &serde_json::json!({}))
            .header("authorization", "Bearer sk-secret")
            .header("X-Api-Key", "sk-secret");
        let dbg = format!("{req:?}");
        assert!(!dbg.contains("sk-secret"), "{dbg}");
        assert!(dbg.contains("text/event-stream"));
    }

    #[test]
    fn key_rules() {
        let ep = Endpoint::new(ProviderKind::Anthropic, "https://a", None);
        assert_eq!(
            ep.key(),
            Err(BuildError::MissingKey(ProviderKind::Anthropic))
        );
        let ep = Endpoint::new(ProviderKind::Anthropic, "https://a", Some(String::new()));
        assert_eq!(
            ep.key(),
            Err(BuildError::MissingKey(ProviderKind::Anthropic))
        );
        let ep = Endpoint::new(ProviderKind::OpenAiCompatible, "http://a", None);
        assert_eq!(ep.key(), Ok(None));
        let ep = Endpoint::new(ProviderKind::OpenAi, "http://a", Some("k\r\nx: y".into()));
        assert!(matches!(ep.key(), Err(BuildError::Invalid(_))));
    }

    #[test]
    fn request_validation() {
        let mut r = ChatRequest::new("m", vec![Message::user("hi")]);
        assert!(r.validate().is_ok());
        r.max_output_tokens = 0;
        assert!(r.validate().is_err());
        assert!(ChatRequest::new("m", vec![]).validate().is_err());
        assert!(
            ChatRequest::new(" ", vec![Message::user("x")])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn messages_serialise_with_role_tag() {
        let m = Message::Tool {
            call_id: "c1".into(),
            name: "f".into(),
            content: "42".into(),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["role"], "tool");
        assert_eq!(serde_json::from_value::<Message>(v).unwrap(), m);
    }

    #[cfg(feature = "http")]
    #[test]
    fn converts_to_http_request() {
        let req = HttpRequest::post_json(
            "https://api.openai.com/v1/chat/completions".into(),
            &serde_json::json!({"a":1}),
        )
        .header("authorization", "Bearer k");
        let h = req.into_http().unwrap();
        assert_eq!(h.method(), http::Method::POST);
        assert_eq!(h.headers()["authorization"], "Bearer k");
        assert_eq!(h.body(), br#"{"a":1}"#);
    }
}
