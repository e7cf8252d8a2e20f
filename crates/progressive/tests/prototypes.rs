//! The shipped prototype embeddings are what the real model gives for their texts today:
//! re-embeds a sample with all-MiniLM-L6-v2 (set up under the workspace's `.tessera/`).

use std::path::Path;
use tessera_progressive::classify::{PROTOTYPES_JSON, PrototypeFile};

#[test]
fn shipped_embeddings_match_the_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let files =
        tessera_embedder::setup::ensure_model(&root.join(".tessera")).expect("set up the model");
    let embedder = files.load().expect("load the model");
    let file: PrototypeFile = serde_json::from_str(PROTOTYPES_JSON).unwrap();
    // Every 9th prototype: a sample across kinds and labels.
    let sample: Vec<_> = file.prototypes.iter().step_by(9).collect();
    assert!(sample.len() >= 5);
    let texts: Vec<&str> = sample.iter().map(|p| p.text.as_str()).collect();
    let fresh = embedder.embed(&texts).unwrap();
    for (p, v) in sample.iter().zip(fresh) {
        let cos = tessera_embedder::cosine(&p.embedding, &v);
        assert!(
            cos >= 0.999,
            "{:?}: cosine {cos} to a fresh embedding",
            p.text
        );
    }
}
