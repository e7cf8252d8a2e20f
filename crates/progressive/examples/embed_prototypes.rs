//! Regenerates `data/prototypes.json` from `data/prototypes.src.json` with the real
//! all-MiniLM-L6-v2 (the model the kb component serves), after editing the phrases:
//!
//! ```sh
//! cargo run --release -p tessera-progressive --example embed_prototypes
//! ```
//!
//! The model is set up under the workspace's `.tessera/` as `cargo xtask setup` does.

use std::path::Path;
use tessera_progressive::classify::{
    DIM, PROTOTYPES_SOURCE_JSON, Prototype, PrototypeFile, PrototypeKind, PrototypeSource,
};

fn main() -> anyhow::Result<()> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .nth(2)
        .expect("crates/progressive is two levels down");
    let files = tessera_embedder::setup::ensure_model(&root.join(".tessera"))?;
    let embedder = files.load()?;
    let source: PrototypeSource = serde_json::from_str(PROTOTYPES_SOURCE_JSON)?;
    let mut prototypes = Vec::new();
    for (kind, labels) in &source {
        let kind: PrototypeKind = serde_json::from_value(serde_json::Value::String(kind.clone()))?;
        for (label, texts) in labels {
            let vectors = embedder.embed(texts)?;
            for (text, embedding) in texts.iter().zip(vectors) {
                prototypes.push(Prototype {
                    kind: kind.clone(),
                    label: label.clone(),
                    text: text.clone(),
                    embedding: embedding.to_vec(),
                });
            }
        }
    }
    let file = PrototypeFile {
        model: tessera_embedder::MODEL_ID.into(),
        dim: DIM,
        prototypes,
    };
    let out = crate_dir.join("data/prototypes.json");
    std::fs::write(&out, serde_json::to_string_pretty(&file)? + "\n")?;
    println!(
        "wrote {} prototypes to {}",
        file.prototypes.len(),
        out.display()
    );
    Ok(())
}
