//! Presigned feedback tokens (tessera_feedback::token) checked against the Spin variable
//! `feedback_signing_key`, which the chat component signs with.

use tessera_feedback::token::{self, MIN_KEY_LEN, TokenError};
use tessera_spin_kit::ApiError;

/// Where the token came from, for the error's `field`.
#[derive(Clone, Copy)]
pub enum Carrier {
    Header,
    Body,
}

impl Carrier {
    fn field(self) -> &'static str {
        match self {
            Carrier::Header => "authorization",
            Carrier::Body => "token",
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

pub async fn signing_key() -> Option<Vec<u8>> {
    let key = spin_sdk::variables::get("feedback_signing_key")
        .await
        .unwrap_or_default();
    let key = key.trim();
    (key.len() >= MIN_KEY_LEN).then(|| key.as_bytes().to_vec())
}

/// The bearer token of an `authorization` header, if there is one.
pub fn bearer(value: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    match v
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| v.trim().strip_prefix("bearer "))
    {
        // An API key in the same header is the caller's identity (tessera_spin_kit::auth).
        Some(t) if tessera_spin_kit::auth::key::is_key_shaped(t.trim()) => Ok(None),
        Some(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
        _ => Err(ApiError::new(
            401,
            "invalid_token",
            "expected `authorization: Bearer <feedback token>`",
        )
        .with_field("authorization")),
    }
}

/// Checks that `token` lets its bearer rate `message_id` now.
pub async fn check(token: &str, carrier: Carrier, message_id: &str) -> Result<(), ApiError> {
    let field = carrier.field();
    let key = signing_key().await.ok_or_else(|| {
        ApiError::new(
            401,
            "tokens_disabled",
            "feedback tokens are not enabled (the feedback_signing_key variable is not set)",
        )
        .with_field(field)
    })?;
    token::verify(&key, token, message_id, now()).map_err(|e| {
        let (status, code) = match &e {
            TokenError::Malformed | TokenError::BadSignature => (401, "invalid_token"),
            TokenError::Expired { .. } => (401, "token_expired"),
            TokenError::WrongMessage { .. } => (403, "token_wrong_message"),
        };
        ApiError::new(status, code, e.to_string()).with_field(field)
    })
}
