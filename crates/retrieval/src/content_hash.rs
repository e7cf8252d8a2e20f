//! A stable fingerprint of a document's content, so re-ingesting the same text is a
//! no-op. The text is normalised first, so edits that change nothing a reader or the
//! chunker sees (line endings, trailing spaces, extra blank lines, a byte-order mark)
//! keep the hash. Unicode normalisation (NFC) is not applied: it would need tables this
//! crate does not carry, and clients send one form consistently in practice.

use std::fmt;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// SHA-256 of the normalised content, shown as 64 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<ContentHash> {
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let digit = |b: u8| (b as char).to_digit(16);
            bytes[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Some(ContentHash(bytes))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The canonical form that is hashed: no byte-order mark, `\n` line endings, no trailing
/// whitespace on a line, at most one blank line in a row, no blank lines at either end.
pub fn normalise(content: &str) -> String {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let unified = content.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(unified.len());
    let mut blank_run = 0;
    for line in unified.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        out.push_str(line);
        blank_run = 0;
    }
    out
}

pub fn content_hash(content: &str) -> ContentHash {
    ContentHash(Sha256::digest(normalise(content).as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            content_hash("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            content_hash("").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn invisible_differences_hash_the_same() {
        let base = content_hash("# VaR\n\nA loss threshold.\nAt 99%.");
        for variant in [
            "# VaR\r\n\r\nA loss threshold.\r\nAt 99%.\r\n",
            "\u{feff}# VaR\n\n\n\nA loss threshold.   \nAt 99%.\t\n\n",
            "\n\n# VaR\n  \nA loss threshold.\rAt 99%.",
        ] {
            assert_eq!(content_hash(variant), base, "{variant:?}");
        }
    }

    #[test]
    fn visible_differences_change_the_hash() {
        let base = content_hash("A loss threshold.\nAt 99%.");
        for variant in [
            "a loss threshold.\nAt 99%.",
            "A loss threshold. At 99%.",
            "A loss threshold.\n\nAt 99%.",
            "  A loss threshold.\nAt 99%.",
        ] {
            assert_ne!(content_hash(variant), base, "{variant:?}");
        }
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let h = content_hash("x");
        assert_eq!(ContentHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(ContentHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(ContentHash::from_hex("zz"), None);
        assert_eq!(ContentHash::from_hex(&"g".repeat(64)), None);
        assert_eq!(ContentHash::from_hex(&"é".repeat(32)), None);
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{h}\""));
    }
}
