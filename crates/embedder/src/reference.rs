//! The committed reference embeddings (`tests/fixtures/reference.json`, made by
//! `tests/fixtures/make_reference.py` with sentence-transformers) and the check against them
//! that the set-up and the tests share.

use crate::{Embedder, cosine};
use anyhow::{Context, Result, ensure};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The fixture, compiled in so the set-up can verify a converted model anywhere.
pub const REFERENCE_JSON: &str = include_str!("../tests/fixtures/reference.json");
/// Cosine every sentence must reach against its reference vector.
pub const MIN_COSINE: f32 = 0.9999;

#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceSet {
    pub model: String,
    pub dim: usize,
    pub max_tokens: usize,
    pub sentences: Vec<ReferenceSentence>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReferenceSentence {
    pub text: String,
    /// Word pieces with `[CLS]`/`[SEP]`, before truncation, per the reference tokenizer.
    pub tokens: usize,
    pub truncated: bool,
    pub embedding: Vec<f32>,
}

/// The parsed fixture.
pub fn reference_set() -> Result<ReferenceSet> {
    let set: ReferenceSet =
        serde_json::from_str(REFERENCE_JSON).context("parsing the reference fixture")?;
    ensure!(
        set.model == crate::MODEL_ID
            && set.dim == crate::DIM
            && set.max_tokens == crate::MAX_TOKENS,
        "the reference fixture is for {} ({}-d, {} tokens), not this crate's model",
        set.model,
        set.dim,
        set.max_tokens
    );
    Ok(set)
}

/// SHA-256 of the fixture: the set-up's marker records it, so a new fixture re-verifies.
pub fn reference_sha256() -> String {
    hex::encode(Sha256::digest(REFERENCE_JSON.as_bytes()))
}

/// Outcome of comparing an embedder with the fixture.
#[derive(Debug, Clone)]
pub struct Agreement {
    /// Cosine per sentence, in fixture order.
    pub cosines: Vec<f32>,
}

impl Agreement {
    pub fn min(&self) -> f32 {
        self.cosines.iter().copied().fold(f32::INFINITY, f32::min)
    }
}

/// Embeds every reference sentence (one call for all of them) and returns the cosines.
pub fn compare(embedder: &Embedder, set: &ReferenceSet) -> Result<Agreement> {
    let texts: Vec<&str> = set.sentences.iter().map(|s| s.text.as_str()).collect();
    let ours = embedder.embed(&texts)?;
    Ok(Agreement {
        cosines: ours
            .iter()
            .zip(&set.sentences)
            .map(|(v, s)| cosine(v, &s.embedding))
            .collect(),
    })
}

/// [`compare`], failing with the worst sentences named when any is below [`MIN_COSINE`].
pub fn verify(embedder: &Embedder) -> Result<Agreement> {
    let set = reference_set()?;
    let agreement = compare(embedder, &set)?;
    let failures: Vec<String> = agreement
        .cosines
        .iter()
        .zip(&set.sentences)
        .filter(|(c, _)| **c < MIN_COSINE)
        .map(|(c, s)| format!("{c:.6} for {:?}", truncate_for_display(&s.text)))
        .collect();
    ensure!(
        failures.is_empty(),
        "the model disagrees with sentence-transformers (cosine < {MIN_COSINE}): {}",
        failures.join("; ")
    );
    Ok(agreement)
}

fn truncate_for_display(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
