//! Presigned feedback tokens: a browser holding one may post feedback for one assistant
//! message, until it expires, without an API key (as LangSmith's presigned feedback URLs).
//!
//! Form: `fb1.<message id>.<expiry, unix seconds>.<hex HMAC-SHA256>`, the MAC over
//! `tessera-feedback:v1:<message id>:<expiry>` under the deployment's signing key. The message
//! id travels in clear so a token for another message is told apart from a forged one.

use hmac::{Hmac, KeyInit, Mac};
use sha2_11::Sha256;

const PREFIX: &str = "fb1";
/// Shorter keys are refused: an HMAC key of a few characters could be guessed offline.
pub const MIN_KEY_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of this form at all.
    Malformed,
    /// A genuine-looking token for a different message.
    WrongMessage { token_for: String },
    /// Past its expiry (unix seconds).
    Expired { at: u64 },
    /// The MAC does not match: forged, or signed with another key.
    BadSignature,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed => f.write_str("the feedback token is malformed"),
            Self::WrongMessage { token_for } => write!(
                f,
                "the feedback token is for message {token_for}, not this one"
            ),
            Self::Expired { at } => write!(f, "the feedback token expired at {at} (unix seconds)"),
            Self::BadSignature => f.write_str("the feedback token's signature is not valid"),
        }
    }
}

fn mac(key: &[u8], message_id: &str, expiry: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("tessera-feedback:v1:{message_id}:{expiry}").as_bytes());
    mac
}

/// A token for `message_id` valid until `expiry` (unix seconds).
pub fn sign(key: &[u8], message_id: &str, expiry: u64) -> String {
    let tag = mac(key, message_id, expiry).finalize().into_bytes();
    format!("{PREFIX}.{message_id}.{expiry}.{}", hex::encode(tag))
}

/// Checks `token` for `message_id` at time `now` (unix seconds). The signature is checked
/// before the expiry so an expired token is only reported as such when it is genuine.
pub fn verify(key: &[u8], token: &str, message_id: &str, now: u64) -> Result<(), TokenError> {
    let mut parts = token.trim().split('.');
    let (Some(PREFIX), Some(id), Some(expiry), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| TokenError::Malformed)?;
    // Constant-time comparison (hmac's verify_slice).
    mac(key, id, expiry)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    if !id.eq_ignore_ascii_case(message_id) {
        return Err(TokenError::WrongMessage {
            token_for: id.to_string(),
        });
    }
    if now >= expiry {
        return Err(TokenError::Expired { at: expiry });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const M1: &str = "0b9f3c2e-1111-4a4a-8888-000000000001";
    const M2: &str = "0b9f3c2e-1111-4a4a-8888-000000000002";

    #[test]
    fn a_signed_token_verifies_for_its_message_until_expiry() {
        let t = sign(KEY, M1, 1_000);
        assert!(t.starts_with("fb1.0b9f3c2e-"), "{t}");
        assert_eq!(verify(KEY, &t, M1, 999), Ok(()));
        assert_eq!(verify(KEY, &t, &M1.to_uppercase(), 999), Ok(()));
    }

    #[test]
    fn expired_wrong_message_forged_and_malformed_are_told_apart() {
        let t = sign(KEY, M1, 1_000);
        assert_eq!(
            verify(KEY, &t, M1, 1_000),
            Err(TokenError::Expired { at: 1_000 })
        );
        assert_eq!(
            verify(KEY, &t, M2, 10),
            Err(TokenError::WrongMessage {
                token_for: M1.into()
            })
        );
        assert_eq!(
            verify(b"another key, also long enough", &t, M1, 10),
            Err(TokenError::BadSignature)
        );
        // Moving the expiry or the message breaks the signature.
        let later = t.replace(".1000.", ".9999.");
        assert_eq!(verify(KEY, &later, M1, 10), Err(TokenError::BadSignature));
        let other = t.replace(M1, M2);
        assert_eq!(verify(KEY, &other, M2, 10), Err(TokenError::BadSignature));
        for bad in [
            "",
            "fb1",
            "fb1.a.b.c",
            "fb2.x.1.00",
            &format!("{t}.extra"),
            &t.replace(".1000.", ".-1."),
        ] {
            assert_eq!(
                verify(KEY, bad, M1, 10),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }
}
