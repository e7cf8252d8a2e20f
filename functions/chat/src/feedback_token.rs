//! Presigned feedback tokens for assistant messages (tessera_feedback::token), signed with
//! the Spin variable `feedback_signing_key` that the feedback component verifies with. They
//! go out in the stream's `finish` event and with each completed answer of
//! `GET /v1/chat/conversations/{id}`, so a browser can rate that answer without an API key.

use tessera_feedback::token::{MIN_KEY_LEN, sign};

/// How long a token is valid unless `feedback_token_ttl_s` says otherwise: a week.
const DEFAULT_TTL_S: u64 = 7 * 24 * 3600;

/// The signing key and lifetime; `None` when tokens are not configured (empty or short key).
pub struct Signer {
    key: Vec<u8>,
    ttl_s: u64,
}

impl Signer {
    pub async fn load() -> Option<Self> {
        let key = spin_sdk::variables::get("feedback_signing_key")
            .await
            .unwrap_or_default();
        let key = key.trim();
        if key.len() < MIN_KEY_LEN {
            return None;
        }
        let ttl_s = spin_sdk::variables::get("feedback_token_ttl_s")
            .await
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TTL_S);
        Some(Self {
            key: key.as_bytes().to_vec(),
            ttl_s,
        })
    }

    pub fn token(&self, message_id: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        sign(&self.key, message_id, now + self.ttl_s)
    }
}
