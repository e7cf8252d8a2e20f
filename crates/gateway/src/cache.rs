//! Response cache decisions: the exact key, semantic matching and freshness. The rows come
//! from the caller (`response_cache`, already narrowed by an index lookup); this module only
//! judges them.
//!
//! **Exact key** = SHA-256 over a versioned, canonical JSON of tenant, step kind, model,
//! normalised system prompt and messages, and the generation parameters. The tenant is part
//! of the key: answers are never shared across tenants, not even for identical prompts.
//!
//! **Prompt normalisation** ([`normalise_prompt`]) folds differences that do not change what
//! is asked: line endings (CRLF/CR → LF); runs of spaces and tabs (and Unicode spaces such as
//! NBSP) → one space; spaces at line ends; more than one blank line → one; leading and
//! trailing whitespace; invisible characters (zero-width space/joiners, word joiner, BOM,
//! soft hyphen) removed; typographic quotes, dashes and ellipsis → ASCII; full-width ASCII
//! forms → ASCII. Letter case is kept (tickers, units, code), and so is any other Unicode:
//! no NFC/NFKC tables here, and the input methods that produce decomposed text are rare.
//!
//! **Semantic match**: cosine(prompt embedding, cached embedding) ≥ threshold (default
//! 0.95), only among fresh rows of the same tenant and step kind.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::breaker::UnixMillis;
use crate::providers::{ChatRequest, Message};
use crate::usage::CacheHit;

/// What a cached response answered; each kind has its own lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Analysis,
    Planning,
    Implementation,
    Validation,
    Synthesis,
    Embedding,
}

impl StepKind {
    /// Time to live. From the brief: analysis 2 h, planning 1 h, validation 4 h,
    /// embeddings 7 d. Chosen here: implementation 1 h, like the plan it carries out;
    /// synthesis 30 min, because it is the user-facing answer and should pick up new
    /// knowledge-base content soonest (a semantic hit can match a prompt with older context).
    pub const fn cache_ttl(self) -> Duration {
        const H: u64 = 3_600;
        Duration::from_secs(match self {
            Self::Analysis => 2 * H,
            Self::Planning => H,
            Self::Implementation => H,
            Self::Validation => 4 * H,
            Self::Synthesis => H / 2,
            Self::Embedding => 7 * 24 * H,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Analysis => "analysis",
            Self::Planning => "planning",
            Self::Implementation => "implementation",
            Self::Validation => "validation",
            Self::Synthesis => "synthesis",
            Self::Embedding => "embedding",
        }
    }
}

/// Default cosine threshold for a semantic hit.
pub const DEFAULT_SEMANTIC_THRESHOLD: f32 = 0.95;

/// Normalises prompt text for the exact key (see the module docs for the rules).
pub fn normalise_prompt(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut newlines = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let c = match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                '\n'
            }
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => continue,
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            '\u{2026}' => {
                push_char(&mut out, &mut pending_space, &mut newlines, '.');
                push_char(&mut out, &mut pending_space, &mut newlines, '.');
                '.'
            }
            // Full-width ASCII variants (U+FF01..U+FF5E) map to U+0021..U+007E.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        };
        if c == '\n' {
            pending_space = false;
            newlines += 1;
        } else if c.is_whitespace() {
            pending_space = true;
        } else {
            push_char(&mut out, &mut pending_space, &mut newlines, c);
        }
    }
    out
}

/// Appends a visible character, first emitting the whitespace seen before it: at most one
/// blank line, or one space; nothing at the very start.
fn push_char(out: &mut String, pending_space: &mut bool, newlines: &mut usize, c: char) {
    if !out.is_empty() {
        if *newlines > 0 {
            out.push_str(if *newlines > 1 { "\n\n" } else { "\n" });
        } else if *pending_space {
            out.push(' ');
        }
    }
    *newlines = 0;
    *pending_space = false;
    out.push(c);
}

/// A hex SHA-256 exact-match key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CacheKey(pub String);

/// The exact key of `req` for `tenant` and `step`.
pub fn exact_key(tenant: &str, step: StepKind, req: &ChatRequest) -> CacheKey {
    // Canonical: fixed field order (struct order in `json!` is insertion order), normalised
    // text, parameters spelled out so that "absent" and "default" stay distinct.
    let messages: Vec<serde_json::Value> = req
        .messages
        .iter()
        .map(|m| match m {
            Message::User { content } => serde_json::json!(["user", normalise_prompt(content)]),
            Message::Assistant {
                content,
                tool_calls,
            } => serde_json::json!([
                "assistant",
                normalise_prompt(content),
                tool_calls
                    .iter()
                    .map(|c| [&c.name, &c.arguments])
                    .collect::<Vec<_>>(),
            ]),
            Message::Tool { name, content, .. } => {
                serde_json::json!(["tool", name, normalise_prompt(content)])
            }
        })
        .collect();
    let material = serde_json::json!([
        "tessera-cache-v1",
        tenant,
        step.as_str(),
        req.model,
        req.system.as_deref().map(normalise_prompt),
        messages,
        req.max_output_tokens,
        req.temperature,
        req.top_p,
        req.stop,
        req.tools
            .iter()
            .map(|t| serde_json::json!([t.name, t.description, t.parameters]))
            .collect::<Vec<_>>(),
    ]);
    CacheKey(hex::encode(Sha256::digest(material.to_string().as_bytes())))
}

/// Cosine similarity; 0 for empty, zero or mismatched vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 || !dot.is_finite() {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// A cached row as read from `response_cache`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry<T> {
    pub tenant_id: String,
    pub step: StepKind,
    pub key: CacheKey,
    /// The prompt's embedding, for semantic hits; `None` stores exact-only entries.
    pub embedding: Option<Vec<f32>>,
    pub created_at: UnixMillis,
    pub value: T,
}

impl<T> CacheEntry<T> {
    /// Whether the entry is still within its step kind's TTL at `now`.
    pub fn is_fresh(&self, now: UnixMillis) -> bool {
        let ttl = self.step.cache_ttl().as_millis() as u64;
        now.saturating_sub(self.created_at) < ttl
    }
}

/// What to look up.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheQuery<'a> {
    pub tenant_id: &'a str,
    pub step: StepKind,
    pub key: &'a CacheKey,
    /// The prompt's embedding; `None` skips semantic matching.
    pub embedding: Option<&'a [f32]>,
    pub threshold: f32,
}

/// A usable cached answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a, T> {
    pub entry: &'a CacheEntry<T>,
    pub kind: CacheHit,
    /// 1.0 for an exact hit.
    pub similarity: f32,
}

/// The best fresh entry for `q`: an exact key match (newest first), else the most similar
/// embedding at or above the threshold (ties to the newest). Other tenants' and other step
/// kinds' rows are never returned, even if the caller passes them.
pub fn lookup<'a, T>(
    entries: &'a [CacheEntry<T>],
    q: &CacheQuery<'_>,
    now: UnixMillis,
) -> Option<Hit<'a, T>> {
    let in_scope = || {
        entries
            .iter()
            .filter(|e| e.tenant_id == q.tenant_id && e.step == q.step && e.is_fresh(now))
    };
    if let Some(entry) = in_scope()
        .filter(|e| &e.key == q.key)
        .max_by_key(|e| e.created_at)
    {
        return Some(Hit {
            entry,
            kind: CacheHit::Exact,
            similarity: 1.0,
        });
    }
    let query = q.embedding?;
    in_scope()
        .filter_map(|e| Some((e, cosine(query, e.embedding.as_deref()?))))
        .filter(|(_, sim)| *sim >= q.threshold)
        .max_by(|(a, sa), (b, sb)| sa.total_cmp(sb).then(a.created_at.cmp(&b.created_at)))
        .map(|(entry, similarity)| Hit {
            entry,
            kind: CacheHit::Semantic,
            similarity,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_folds_spacing_and_typography_only() {
        assert_eq!(
            normalise_prompt("  What  is\tthe\u{00A0}margin?  "),
            "What is the margin?"
        );
        assert_eq!(
            normalise_prompt("a \r\nb\r\rc\n\n\n\nd  \n"),
            "a\nb\n\nc\n\nd"
        );
        assert_eq!(normalise_prompt("“Q3” – don’t…"), "\"Q3\" - don't...");
        assert_eq!(normalise_prompt("ＡＡＰＬ\u{200B}！"), "AAPL!");
        assert_eq!(normalise_prompt("soft\u{00AD}ware"), "software");
        // Case and other scripts are kept.
        assert_eq!(normalise_prompt("MW vs mW 株価"), "MW vs mW 株価");
        assert_eq!(normalise_prompt("   \n\n "), "");
    }

    fn req(text: &str) -> ChatRequest {
        ChatRequest::new("gpt-4o-mini", vec![Message::user(text)]).with_system("Be exact.")
    }

    #[test]
    fn exact_key_ignores_formatting_but_not_meaning_or_scope() {
        let k = exact_key("t1", StepKind::Planning, &req("What is the  margin?"));
        assert_eq!(k.0.len(), 64);
        assert_eq!(
            k,
            exact_key("t1", StepKind::Planning, &req(" What is the margin? "))
        );
        assert_ne!(
            k,
            exact_key("t1", StepKind::Planning, &req("What is the Margin?"))
        );
        assert_ne!(
            k,
            exact_key("t2", StepKind::Planning, &req("What is the margin?"))
        );
        assert_ne!(
            k,
            exact_key("t1", StepKind::Synthesis, &req("What is the margin?"))
        );
        let mut other = req("What is the margin?");
        other.model = "gpt-4o".into();
        assert_ne!(k, exact_key("t1", StepKind::Planning, &other));
        let mut other = req("What is the margin?");
        other.temperature = Some(0.0);
        assert_ne!(k, exact_key("t1", StepKind::Planning, &other));
        let mut other = req("What is the margin?");
        other.max_output_tokens = 10;
        assert_ne!(k, exact_key("t1", StepKind::Planning, &other));
        // A fixed value, computed independently: SHA-256 of the compact JSON
        // ["tessera-cache-v1","t1","planning","gpt-4o-mini","Be exact.",
        //  [["user","What is the margin?"]],1024,null,null,[],[]].
        // Changing the scheme must change the version tag, not silently the keys.
        assert_eq!(
            k.0,
            "be0b10637c233b8d6466de58cda2638249ea1e1bf15937c2646afc88695d3731"
        );
    }

    #[test]
    fn ttls_from_the_brief() {
        assert_eq!(StepKind::Analysis.cache_ttl(), Duration::from_secs(7_200));
        assert_eq!(StepKind::Planning.cache_ttl(), Duration::from_secs(3_600));
        assert_eq!(
            StepKind::Validation.cache_ttl(),
            Duration::from_secs(14_400)
        );
        assert_eq!(
            StepKind::Embedding.cache_ttl(),
            Duration::from_secs(604_800)
        );
    }

    #[test]
    fn cosine_edge_cases() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[], &[]), 0.0);
    }

    fn entry(
        tenant: &str,
        step: StepKind,
        key: &str,
        emb: Option<Vec<f32>>,
        at: u64,
        v: &'static str,
    ) -> CacheEntry<&'static str> {
        CacheEntry {
            tenant_id: tenant.into(),
            step,
            key: CacheKey(key.into()),
            embedding: emb,
            created_at: at,
            value: v,
        }
    }

    #[test]
    fn lookup_prefers_exact_then_best_semantic_within_scope() {
        let hour = 3_600_000;
        let rows = vec![
            entry(
                "t1",
                StepKind::Planning,
                "k1",
                Some(vec![0.0, 1.0]),
                0,
                "old exact",
            ),
            entry("t1", StepKind::Planning, "k1", None, 10, "new exact"),
            entry(
                "t1",
                StepKind::Planning,
                "k2",
                Some(vec![0.96, 0.28]),
                20,
                "close",
            ),
            entry(
                "t1",
                StepKind::Planning,
                "k3",
                Some(vec![0.999, 0.045]),
                30,
                "closest",
            ),
            entry(
                "t2",
                StepKind::Planning,
                "k4",
                Some(vec![1.0, 0.0]),
                40,
                "other tenant",
            ),
            entry(
                "t1",
                StepKind::Synthesis,
                "k5",
                Some(vec![1.0, 0.0]),
                40,
                "other step",
            ),
            entry(
                "t1",
                StepKind::Planning,
                "k6",
                Some(vec![0.6, 0.8]),
                50,
                "far",
            ),
        ];
        let key = CacheKey("k1".into());
        let mut q = CacheQuery {
            tenant_id: "t1",
            step: StepKind::Planning,
            key: &key,
            embedding: Some(&[1.0, 0.0]),
            threshold: DEFAULT_SEMANTIC_THRESHOLD,
        };
        let hit = lookup(&rows, &q, 100).unwrap();
        assert_eq!((hit.kind, hit.entry.value), (CacheHit::Exact, "new exact"));

        let miss_key = CacheKey("zz".into());
        q.key = &miss_key;
        let hit = lookup(&rows, &q, 100).unwrap();
        assert_eq!((hit.kind, hit.entry.value), (CacheHit::Semantic, "closest"));
        assert!(hit.similarity > 0.99);

        // Past the planning TTL (1 h) nothing is fresh.
        assert!(lookup(&rows, &q, hour + 60).is_none());
        // Above every similarity: no hit; without an embedding: no semantic hit.
        q.threshold = 0.9999;
        assert!(lookup(&rows, &q, 100).is_none());
        q.threshold = 0.5;
        q.embedding = None;
        assert!(lookup(&rows, &q, 100).is_none());
        // Other tenants' rows never match, even when passed in.
        q.tenant_id = "t3";
        q.embedding = Some(&[1.0, 0.0]);
        assert!(lookup(&rows, &q, 100).is_none());
    }
}
