//! Standard Webhooks (standardwebhooks.com): `whsec_` secrets, `v1` HMAC-SHA256 signatures over
//! `{msg_id}.{timestamp}.{payload}`, the three `webhook-*` headers, and verification with a
//! timestamp tolerance, several signatures per header and several valid secrets (rotation).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::headers::Headers;
use crate::inbound::RejectReason;
use crate::mac::{ct_eq, hmac_sha256};

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The specification's default: a message more than 5 minutes from now either way is refused,
/// which bounds replays of a captured request.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;
pub const SECRET_PREFIX: &str = "whsec_";
/// The specification asks for secrets of 24 to 64 random bytes.
pub const MIN_SECRET_BYTES: usize = 24;
pub const MAX_SECRET_BYTES: usize = 64;

/// A signing secret's key bytes. Never printed: `Debug` is redacted and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    NotBase64,
    /// Outside 24..=64 bytes.
    BadLength(usize),
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotBase64 => f.write_str("the secret is not base64 after its whsec_ prefix"),
            Self::BadLength(n) => write!(
                f,
                "the secret is {n} bytes; Standard Webhooks secrets are {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

impl Secret {
    /// Parses `whsec_<base64>` (the prefix is optional, as in the reference libraries).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let b64 = text.trim();
        let b64 = b64.strip_prefix(SECRET_PREFIX).unwrap_or(b64);
        let key = BASE64.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        Ok(Self(key))
    }

    /// A new secret from caller-supplied random bytes (the crate draws no randomness itself).
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.to_vec())
    }

    /// The `whsec_…` form shown once to the endpoint's owner.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.0))
    }

    fn tag(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> [u8; 32] {
        let timestamp = timestamp.to_string();
        hmac_sha256(
            &self.0,
            &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", payload],
        )
    }

    /// `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{payload}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, payload: &[u8]) -> String {
        format!("v1,{}", BASE64.encode(self.tag(msg_id, timestamp, payload)))
    }
}

/// The `webhook-signature` value: one `v1,…` per secret, space-separated, so receivers holding
/// either the old or the new secret accept the message during a rotation.
pub fn signature_header(
    secrets: &[Secret],
    msg_id: &str,
    timestamp: i64,
    payload: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, payload))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers of an outgoing message. `msg_id` must be the same on every attempt of a
/// delivery so receivers can deduplicate; `timestamp` (unix seconds) is the attempt's time.
pub fn outgoing_headers(
    secrets: &[Secret],
    msg_id: &str,
    timestamp: i64,
    payload: &[u8],
) -> [(&'static str, String); 3] {
    [
        (HEADER_ID, msg_id.to_string()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (
            HEADER_SIGNATURE,
            signature_header(secrets, msg_id, timestamp, payload),
        ),
    ]
}

/// What a verified message carries besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMessage {
    pub msg_id: String,
    pub timestamp: i64,
}

/// Verifies a received message against any of `secrets` at `now` (unix seconds).
pub fn verify(
    secrets: &[Secret],
    headers: &(impl Headers + ?Sized),
    payload: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<VerifiedMessage, RejectReason> {
    let msg_id = headers
        .header(HEADER_ID)
        .ok_or(RejectReason::MissingHeader(HEADER_ID))?;
    let timestamp = headers
        .header(HEADER_TIMESTAMP)
        .ok_or(RejectReason::MissingHeader(HEADER_TIMESTAMP))?;
    let signatures = headers
        .header(HEADER_SIGNATURE)
        .ok_or(RejectReason::MissingHeader(HEADER_SIGNATURE))?;
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| RejectReason::MalformedHeader(HEADER_TIMESTAMP))?;
    check_tolerance(timestamp, now, tolerance_secs)?;
    if secrets.is_empty() {
        return Err(RejectReason::NoSecret);
    }
    // Decode once; entries of other versions (e.g. `v1a` asymmetric) are skipped, as the
    // reference libraries do.
    let candidates: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| BASE64.decode(sig).ok())
        .collect();
    if candidates.is_empty() {
        return Err(RejectReason::MalformedHeader(HEADER_SIGNATURE));
    }
    let matched = secrets.iter().any(|secret| {
        let expected = secret.tag(msg_id, timestamp, payload);
        candidates.iter().any(|c| ct_eq(&expected, c))
    });
    if !matched {
        return Err(RejectReason::SignatureMismatch);
    }
    Ok(VerifiedMessage {
        msg_id: msg_id.to_string(),
        timestamp,
    })
}

/// Refuses timestamps more than `tolerance_secs` before or after `now`.
pub(crate) fn check_tolerance(
    timestamp: i64,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), RejectReason> {
    if timestamp < now.saturating_sub(tolerance_secs) {
        return Err(RejectReason::TimestampTooOld { timestamp, now });
    }
    if timestamp > now.saturating_add(tolerance_secs) {
        return Err(RejectReason::TimestampTooNew { timestamp, now });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published vector of the standard-webhooks reference libraries, recomputed
    // independently with `openssl dgst -sha256 -mac HMAC` before being written here.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(sig: &str, ts: i64) -> Vec<(&'static str, String)> {
        vec![
            (HEADER_ID, MSG_ID.to_string()),
            (HEADER_TIMESTAMP, ts.to_string()),
            (HEADER_SIGNATURE, sig.to_string()),
        ]
    }

    fn other_secret() -> Secret {
        Secret::from_random_bytes([7; 32])
    }

    #[test]
    fn signs_the_published_vector() {
        let secret = Secret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(MSG_ID, TIMESTAMP, PAYLOAD), SIGNATURE);
        // Without the prefix too, as the reference libraries accept.
        let bare = Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(bare, secret);
        assert_eq!(secret.to_whsec(), SECRET);
    }

    #[test]
    fn verifies_the_published_vector_within_tolerance() {
        let secrets = [Secret::parse(SECRET).unwrap()];
        let h = headers(SIGNATURE, TIMESTAMP);
        let ok = verify(&secrets, &h, PAYLOAD, TIMESTAMP + 300, 300).unwrap();
        assert_eq!(ok.msg_id, MSG_ID);
        assert_eq!(ok.timestamp, TIMESTAMP);
        assert_eq!(
            verify(&secrets, &h, PAYLOAD, TIMESTAMP + 301, 300),
            Err(RejectReason::TimestampTooOld {
                timestamp: TIMESTAMP,
                now: TIMESTAMP + 301
            })
        );
        assert!(verify(&secrets, &h, PAYLOAD, TIMESTAMP - 300, 300).is_ok());
        assert!(matches!(
            verify(&secrets, &h, PAYLOAD, TIMESTAMP - 301, 300),
            Err(RejectReason::TimestampTooNew { .. })
        ));
    }

    #[test]
    fn rejects_tampering() {
        let secrets = [Secret::parse(SECRET).unwrap()];
        let now = TIMESTAMP;
        let h = headers(SIGNATURE, TIMESTAMP);
        assert_eq!(
            verify(&secrets, &h, br#"{"test": 2432232315}"#, now, 300),
            Err(RejectReason::SignatureMismatch)
        );
        // The timestamp is signed: moving it invalidates the signature.
        let moved = headers(SIGNATURE, TIMESTAMP + 1);
        assert_eq!(
            verify(&secrets, &moved, PAYLOAD, now, 300),
            Err(RejectReason::SignatureMismatch)
        );
        assert_eq!(
            verify(&[other_secret()], &h, PAYLOAD, now, 300),
            Err(RejectReason::SignatureMismatch)
        );
        let no_v1 = headers("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", TIMESTAMP);
        assert_eq!(
            verify(&secrets, &no_v1, PAYLOAD, now, 300),
            Err(RejectReason::MalformedHeader(HEADER_SIGNATURE))
        );
        let missing: Vec<(&str, &str)> = vec![(HEADER_ID, MSG_ID)];
        assert_eq!(
            verify(&secrets, &missing, PAYLOAD, now, 300),
            Err(RejectReason::MissingHeader(HEADER_TIMESTAMP))
        );
    }

    #[test]
    fn any_of_several_signatures_and_secrets_is_enough() {
        let current = Secret::parse(SECRET).unwrap();
        let old = other_secret();
        // A header carrying a stale signature, an unknown version, then the good one.
        let sig = format!(
            "{} v1a,AAAA {}",
            old.sign(MSG_ID, TIMESTAMP, PAYLOAD),
            SIGNATURE
        );
        let h = headers(&sig, TIMESTAMP);
        assert!(verify(std::slice::from_ref(&current), &h, PAYLOAD, TIMESTAMP, 300).is_ok());
        // Rotation on the receiving side: old and new secrets both accepted.
        let only_old = headers(&old.sign(MSG_ID, TIMESTAMP, PAYLOAD), TIMESTAMP);
        assert!(
            verify(
                &[current.clone(), old.clone()],
                &only_old,
                PAYLOAD,
                TIMESTAMP,
                300
            )
            .is_ok()
        );
        assert!(
            verify(
                std::slice::from_ref(&current),
                &only_old,
                PAYLOAD,
                TIMESTAMP,
                300
            )
            .is_err()
        );
    }

    #[test]
    fn outgoing_headers_sign_with_every_secret() {
        let current = Secret::parse(SECRET).unwrap();
        let old = other_secret();
        let out = outgoing_headers(&[current.clone(), old.clone()], MSG_ID, TIMESTAMP, PAYLOAD);
        assert_eq!(out[0], (HEADER_ID, MSG_ID.to_string()));
        assert_eq!(out[1], (HEADER_TIMESTAMP, "1614265330".to_string()));
        let (first, second) = out[2].1.split_once(' ').unwrap();
        assert_eq!(first, SIGNATURE);
        assert_eq!(second, old.sign(MSG_ID, TIMESTAMP, PAYLOAD));
        let h: Vec<(&str, String)> = out.into_iter().collect();
        assert!(verify(&[old], &h, PAYLOAD, TIMESTAMP, 300).is_ok());
    }

    #[test]
    fn secrets_are_validated_and_never_printed() {
        assert_eq!(Secret::parse("whsec_!!"), Err(SecretError::NotBase64));
        assert_eq!(Secret::parse("whsec_AAAA"), Err(SecretError::BadLength(3)));
        let s = Secret::from_random_bytes([1; 32]);
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(Secret::parse(&s.to_whsec()).unwrap(), s);
    }
}
