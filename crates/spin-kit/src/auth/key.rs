//! The API key format, `tsk_<prefix>_<secret>`: a 12-hex-digit prefix that is stored and
//! shown (lookup, lists, audit), and a 64-hex-digit (256-bit) secret of which only the
//! SHA-256 is stored. Pure: no I/O.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const SCHEME: &str = "tsk_";
pub const PREFIX_LEN: usize = 12;
pub const SECRET_LEN: usize = 64;

/// A key as presented: its prefix and secret.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub prefix: &'a str,
    pub secret: &'a str,
}

/// Why a presented credential is not a key; the text goes into the 401.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyFormatError {
    NotBearer,
    NotAKey,
}

impl KeyFormatError {
    pub fn message(&self) -> &'static str {
        match self {
            KeyFormatError::NotBearer => "expected `Authorization: Bearer tsk_<prefix>_<secret>`",
            KeyFormatError::NotAKey => {
                "the bearer credential is not a Tessera API key (tsk_ followed by a 12-hex-digit \
                 prefix, `_`, and a 64-hex-digit secret)"
            }
        }
    }
}

fn lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The credential of an `Authorization` header value: `Bearer <token>` (scheme case-insensitive).
pub fn bearer(header: &str) -> Result<&str, KeyFormatError> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').ok_or(KeyFormatError::NotBearer)?;
    let token = rest.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(KeyFormatError::NotBearer);
    }
    Ok(token)
}

/// Whether a bearer token looks like an API key at all (other bearer tokens, e.g. the
/// feedback component's presigned tokens, start otherwise).
pub fn is_key_shaped(token: &str) -> bool {
    token.starts_with(SCHEME)
}

/// Splits `tsk_<prefix>_<secret>`.
pub fn parse(token: &str) -> Result<PresentedKey<'_>, KeyFormatError> {
    let rest = token.strip_prefix(SCHEME).ok_or(KeyFormatError::NotAKey)?;
    let (prefix, secret) = rest.split_once('_').ok_or(KeyFormatError::NotAKey)?;
    if !lower_hex(prefix, PREFIX_LEN) || !lower_hex(secret, SECRET_LEN) {
        return Err(KeyFormatError::NotAKey);
    }
    Ok(PresentedKey { prefix, secret })
}

/// Whether `prefix` could be a key's prefix (paths name keys by it).
pub fn valid_prefix(prefix: &str) -> bool {
    lower_hex(prefix, PREFIX_LEN)
}

/// The stored form of a secret: SHA-256, lowercase hex. A fast hash is enough for 256-bit
/// random secrets (no dictionary to try); see docs/adr/0013-api-keys.md.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored_hash`, compared in constant time.
pub fn verify(secret: &str, stored_hash: &str) -> bool {
    let computed = hash_secret(secret);
    computed.len() == stored_hash.len()
        && bool::from(computed.as_bytes().ct_eq(stored_hash.as_bytes()))
}

/// A new key from 6 + 32 random bytes: `(prefix, full key)`.
pub fn format_key(prefix_bytes: &[u8; 6], secret_bytes: &[u8; 32]) -> (String, String) {
    let prefix = hex::encode(prefix_bytes);
    let key = format!("{SCHEME}{prefix}_{}", hex::encode(secret_bytes));
    (prefix, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "tsk_0123456789ab_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn a_key_splits_into_prefix_and_secret() {
        let k = parse(KEY).unwrap();
        assert_eq!(k.prefix, "0123456789ab");
        assert_eq!(k.secret.len(), 64);
        assert!(k.secret.starts_with("0011"));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "tsk_",
            "tsk_0123456789ab",
            "tsk_0123456789ab_",
            "tsk_0123456789AB_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "tsk_0123456789a_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "tsk_0123456789ab_00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
            "tsk_0123456789ab_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeffa",
            "tsk_0123456789ab_0011223344556677889zaabbccddeeff00112233445566778899aabbccddeeff",
            "sk_0123456789ab_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ] {
            assert_eq!(parse(bad), Err(KeyFormatError::NotAKey), "{bad:?}");
        }
    }

    #[test]
    fn bearer_takes_the_credential_of_any_case_scheme() {
        assert_eq!(bearer("Bearer abc"), Ok("abc"));
        assert_eq!(bearer("bearer  abc "), Ok("abc"));
        assert_eq!(bearer("BEARER abc"), Ok("abc"));
        assert_eq!(bearer("Basic abc"), Err(KeyFormatError::NotBearer));
        assert_eq!(bearer("Bearer "), Err(KeyFormatError::NotBearer));
        assert_eq!(bearer("abc"), Err(KeyFormatError::NotBearer));
    }

    #[test]
    fn verify_accepts_the_secret_and_nothing_else() {
        let k = parse(KEY).unwrap();
        let stored = hash_secret(k.secret);
        assert_eq!(stored.len(), 64);
        assert!(verify(k.secret, &stored));
        let mut other = k.secret.to_string();
        other.replace_range(63.., "0");
        assert!(!verify(&other, &stored));
        assert!(!verify(k.secret, &stored[..63]));
        assert!(!verify(k.secret, ""));
    }

    #[test]
    fn formatted_keys_parse_back() {
        let (prefix, key) = format_key(&[1, 2, 3, 4, 5, 0xab], &[0xfe; 32]);
        assert_eq!(prefix, "0102030405ab");
        let k = parse(&key).unwrap();
        assert_eq!(k.prefix, prefix);
        assert_eq!(k.secret, "fe".repeat(32));
        assert!(is_key_shaped(&key));
        assert!(!is_key_shaped("v1.abc"));
        assert!(valid_prefix(&prefix));
        assert!(!valid_prefix("xyz"));
    }
}
