//! Bring-your-own-key storage: provider keys are encrypted with ChaCha20-Poly1305 (RFC 8439)
//! under the 32-byte component variable `key_encryption_key`, with a random 96-bit nonce per
//! key and the tenant, user and provider as associated data, so a ciphertext copied to
//! another user's row does not decrypt.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde_json::{Value, json};

pub fn parse_key(hex_text: &str) -> Option<[u8; 32]> {
    let bytes = from_hex(hex_text.trim())?;
    bytes.try_into().ok()
}

fn aad(tenant: &str, user: &str, provider: &str) -> Vec<u8> {
    format!("tessera-byok-v1\0{tenant}\0{user}\0{provider}").into_bytes()
}

pub fn encrypt(kek: &[u8; 32], tenant: &str, user: &str, provider: &str, secret: &str) -> Value {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(kek));
    let nonce = crate::clock::random_bytes(12);
    let ad = aad(tenant, user, provider);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &ad,
            },
        )
        .expect("ChaCha20-Poly1305 encryption of a short key cannot fail");
    json!({ "alg": "chacha20poly1305", "nonce": to_hex(&nonce), "ciphertext": to_hex(&ciphertext) })
}

/// The key, or `None` when the stored value does not decrypt (wrong key, tampered row).
pub fn decrypt(
    kek: &[u8; 32],
    tenant: &str,
    user: &str,
    provider: &str,
    stored: &Value,
) -> Option<String> {
    let nonce = from_hex(stored["nonce"].as_str()?)?;
    let ciphertext = from_hex(stored["ciphertext"].as_str()?)?;
    if nonce.len() != 12 {
        return None;
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(kek));
    let ad = aad(tenant, user, provider);
    let plain = cipher
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: &ad,
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
