//! The analysis step: what the question wants (intent), how hard it is (complexity in
//! [0, 1]) and which product components it involves — with no paid call.
//!
//! The question's all-MiniLM-L6-v2 embedding (computed by the caller) is compared with
//! labelled prototype phrases shipped in `data/prototypes.json`, whose embeddings were made
//! by `examples/embed_prototypes.rs` from `data/prototypes.src.json` with the same model.
//!
//! - **intent**: the label whose two closest prototypes are closest on average;
//! - **components**: the closest component, plus any other within a margin of it and above
//!   an absolute floor;
//! - **complexity**: 0.65 × a similarity-weighted vote of the nearest complexity prototypes
//!   (simple 0.1, moderate 0.5, complex 0.9) + 0.35 × structure (length, number of parts,
//!   number of components). Routing reads it against the 0.3 / 0.7 thresholds.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tessera_gateway::cache::cosine;
use thiserror::Error;

/// The shipped prototypes (see the module docs).
pub const PROTOTYPES_JSON: &str = include_str!("../data/prototypes.json");
/// The texts they were made from; the generator's input.
pub const PROTOTYPES_SOURCE_JSON: &str = include_str!("../data/prototypes.src.json");
pub const DIM: usize = 384;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// What is X, how does X work.
    Explain,
    /// Compute a number.
    Calculate,
    /// X versus Y.
    Compare,
    /// Build or structure a financial model or spreadsheet.
    BuildModel,
    /// Should I buy, size or exit a position.
    TradeDecision,
    /// How to use the copilot itself.
    HowTo,
    /// Something is wrong: an error in a model, a failing check.
    Troubleshoot,
}

impl Intent {
    pub const ALL: [Intent; 7] = [
        Self::Explain,
        Self::Calculate,
        Self::Compare,
        Self::BuildModel,
        Self::TradeDecision,
        Self::HowTo,
        Self::Troubleshoot,
    ];
}

/// A product capability a question touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    KnowledgeBase,
    Calculation,
    SpreadsheetModel,
    MarketData,
    SymbolPicker,
    TradeValidator,
    Alerts,
}

/// The analysis step's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub intent: Intent,
    /// Mean cosine of the intent's two nearest prototypes.
    pub intent_score: f32,
    /// In [0, 1]; see the module docs.
    pub complexity: f32,
    pub components: Vec<Component>,
    pub semantic_complexity: f32,
    pub structural_complexity: f32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrototypeKind {
    Intent,
    Component,
    Complexity,
}

/// One labelled phrase and its embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prototype {
    pub kind: PrototypeKind,
    pub label: String,
    pub text: String,
    /// 384 little-endian f32s, base64: a quarter of the size of JSON numbers.
    #[serde(with = "b64_f32")]
    pub embedding: Vec<f32>,
}

/// The file format of `data/prototypes.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrototypeFile {
    pub model: String,
    pub dim: usize,
    pub prototypes: Vec<Prototype>,
}

/// The generator's input: kind → label → phrases.
pub type PrototypeSource = BTreeMap<String, BTreeMap<String, Vec<String>>>;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClassifierError {
    #[error("prototypes: {0}")]
    Invalid(String),
}

struct Labelled<L> {
    label: L,
    embedding: Vec<f32>,
}

pub struct Classifier {
    intents: Vec<Labelled<Intent>>,
    components: Vec<Labelled<Component>>,
    complexity: Vec<Labelled<f32>>,
}

/// Complexity level each complexity label stands for.
fn complexity_level(label: &str) -> Option<f32> {
    Some(match label {
        "simple" => 0.1,
        "moderate" => 0.5,
        "complex" => 0.9,
        _ => return None,
    })
}

fn parse_label<T: for<'de> Deserialize<'de>>(label: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(label.into())).ok()
}

/// Components other than the best are kept within this cosine of it…
const COMPONENT_MARGIN: f32 = 0.06;
/// …and above this floor.
const COMPONENT_FLOOR: f32 = 0.35;
/// Nearest complexity prototypes that vote.
const COMPLEXITY_K: usize = 7;
const SEMANTIC_WEIGHT: f32 = 0.65;

impl Classifier {
    /// The classifier over the shipped prototypes, parsed once per process (instance).
    pub fn builtin() -> &'static Classifier {
        static BUILTIN: OnceLock<Classifier> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Classifier::from_json(PROTOTYPES_JSON)
                .expect("the shipped prototypes are valid (tested)")
        })
    }

    pub fn from_json(json: &str) -> Result<Self, ClassifierError> {
        let file: PrototypeFile =
            serde_json::from_str(json).map_err(|e| ClassifierError::Invalid(e.to_string()))?;
        Self::new(file)
    }

    pub fn new(file: PrototypeFile) -> Result<Self, ClassifierError> {
        let bad = |m: String| Err(ClassifierError::Invalid(m));
        if file.dim != DIM {
            return bad(format!("dimension {} (expected {DIM})", file.dim));
        }
        let mut c = Classifier {
            intents: vec![],
            components: vec![],
            complexity: vec![],
        };
        for p in file.prototypes {
            if p.embedding.len() != DIM {
                return bad(format!("{:?} has {} dimensions", p.text, p.embedding.len()));
            }
            let embedding = p.embedding;
            match p.kind {
                PrototypeKind::Intent => match parse_label::<Intent>(&p.label) {
                    Some(label) => c.intents.push(Labelled { label, embedding }),
                    None => return bad(format!("unknown intent {:?}", p.label)),
                },
                PrototypeKind::Component => match parse_label::<Component>(&p.label) {
                    Some(label) => c.components.push(Labelled { label, embedding }),
                    None => return bad(format!("unknown component {:?}", p.label)),
                },
                PrototypeKind::Complexity => match complexity_level(&p.label) {
                    Some(label) => c.complexity.push(Labelled { label, embedding }),
                    None => return bad(format!("unknown complexity {:?}", p.label)),
                },
            }
        }
        for i in Intent::ALL {
            if !c.intents.iter().any(|p| p.label == i) {
                return bad(format!("no prototype for intent {i:?}"));
            }
        }
        if c.components.is_empty() || c.complexity.len() < COMPLEXITY_K {
            return bad("too few component or complexity prototypes".into());
        }
        Ok(c)
    }

    /// Classifies `question` given its embedding.
    pub fn analyse(&self, question: &str, embedding: &[f32]) -> Analysis {
        let (intent, intent_score) = self.intent(embedding);
        let components = self.components(embedding);
        let semantic = self.semantic_complexity(embedding);
        let structural = structural_complexity(question, components.len());
        let complexity =
            (SEMANTIC_WEIGHT * semantic + (1.0 - SEMANTIC_WEIGHT) * structural).clamp(0.0, 1.0);
        Analysis {
            intent,
            intent_score,
            complexity: round3(complexity),
            components,
            semantic_complexity: round3(semantic),
            structural_complexity: round3(structural),
        }
    }

    fn intent(&self, q: &[f32]) -> (Intent, f32) {
        let mut best = (Intent::Explain, f32::MIN);
        for i in Intent::ALL {
            let mut sims: Vec<f32> = self
                .intents
                .iter()
                .filter(|p| p.label == i)
                .map(|p| cosine(q, &p.embedding))
                .collect();
            sims.sort_by(|a, b| b.total_cmp(a));
            let top: Vec<f32> = sims.into_iter().take(2).collect();
            let score = top.iter().sum::<f32>() / top.len().max(1) as f32;
            if score > best.1 {
                best = (i, score);
            }
        }
        (best.0, round3(best.1))
    }

    fn components(&self, q: &[f32]) -> Vec<Component> {
        let mut best: BTreeMap<Component, f32> = BTreeMap::new();
        for p in &self.components {
            let s = cosine(q, &p.embedding);
            let e = best.entry(p.label).or_insert(f32::MIN);
            *e = e.max(s);
        }
        let top = best.values().copied().fold(f32::MIN, f32::max);
        let mut picked: Vec<(Component, f32)> = best
            .into_iter()
            .filter(|(_, s)| *s >= top - COMPONENT_MARGIN && (*s >= COMPONENT_FLOOR || *s == top))
            .collect();
        picked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        picked.into_iter().map(|(c, _)| c).collect()
    }

    fn semantic_complexity(&self, q: &[f32]) -> f32 {
        let mut sims: Vec<(f32, f32)> = self
            .complexity
            .iter()
            .map(|p| (cosine(q, &p.embedding), p.label))
            .collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Softmax-like weights: nearer prototypes count much more (temperature 0.05).
        let top = &sims[..COMPLEXITY_K.min(sims.len())];
        let max = top[0].0;
        let (mut num, mut den) = (0f32, 0f32);
        for (s, level) in top {
            let w = ((s - max) / 0.05).exp();
            num += w * level;
            den += w;
        }
        if den > 0.0 { num / den } else { 0.5 }
    }
}

/// Structure alone: longer questions, more parts and more components are harder.
pub fn structural_complexity(question: &str, components: usize) -> f32 {
    let words = question.split_whitespace().count() as f32;
    let length = ((words - 6.0) / 40.0).clamp(0.0, 1.0);
    let lower = question.to_lowercase();
    let joins = [
        " and ",
        " then ",
        ", ",
        "; ",
        " versus ",
        " vs ",
        " compare ",
    ]
    .iter()
    .map(|j| lower.matches(j).count())
    .sum::<usize>()
        + question.matches('?').count().saturating_sub(1);
    let parts = (joins as f32 / 4.0).clamp(0.0, 1.0);
    let comps = ((components as f32 - 1.0) / 2.0).clamp(0.0, 1.0);
    0.5 * length + 0.3 * parts + 0.2 * comps
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

/// Base64 (standard alphabet, padded) of little-endian f32s, as serde `with` functions.
pub mod b64_f32 {
    use serde::{Deserialize, Deserializer, Serializer};

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(v: &[f32]) -> String {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = (u32::from(chunk[0]) << 16)
                | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                | u32::from(*chunk.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(s: &str) -> Result<Vec<f32>, String> {
        let mut bytes = Vec::with_capacity(s.len() / 4 * 3);
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in s.bytes().filter(|c| *c != b'=') {
            let v = ALPHABET
                .iter()
                .position(|a| *a == c)
                .ok_or_else(|| format!("invalid base64 byte {c:#x}"))?;
            acc = (acc << 6) | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                bytes.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        if bytes.len() % 4 != 0 {
            return Err(format!(
                "{} bytes is not a whole number of f32s",
                bytes.len()
            ));
        }
        Ok(bytes
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let s = String::deserialize(d)?;
        decode(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> PrototypeFile {
        serde_json::from_str(PROTOTYPES_JSON).unwrap()
    }

    #[test]
    fn base64_round_trips() {
        let v = vec![0.0f32, -1.5, 3.25e-7, f32::MAX, 0.1];
        assert_eq!(b64_f32::decode(&b64_f32::encode(&v)).unwrap(), v);
        assert_eq!(
            b64_f32::decode(&b64_f32::encode(&v[..1])).unwrap(),
            v[..1].to_vec()
        );
        assert!(b64_f32::decode("!!!!").is_err());
        assert!(b64_f32::decode("AAA=").is_err());
    }

    #[test]
    fn shipped_prototypes_match_their_source_and_load() {
        let f = file();
        assert_eq!(f.model, "all-MiniLM-L6-v2");
        let src: PrototypeSource = serde_json::from_str(PROTOTYPES_SOURCE_JSON).unwrap();
        let expected: Vec<(String, String, String)> = src
            .iter()
            .flat_map(|(kind, labels)| {
                labels.iter().flat_map(move |(label, texts)| {
                    texts
                        .iter()
                        .map(move |t| (kind.clone(), label.clone(), t.clone()))
                })
            })
            .collect();
        let shipped: Vec<(String, String, String)> = f
            .prototypes
            .iter()
            .map(|p| {
                let kind = serde_json::to_value(&p.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string();
                (kind, p.label.clone(), p.text.clone())
            })
            .collect();
        assert_eq!(
            shipped, expected,
            "data/prototypes.json is stale: run the generator (see the module docs)"
        );
        for p in &f.prototypes {
            let norm: f32 = p.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3, "{} has norm {norm}", p.text);
        }
        Classifier::builtin();
    }

    /// A prototype's own embedding is classified as its own label.
    #[test]
    fn prototypes_classify_as_themselves() {
        let c = Classifier::builtin();
        let f = file();
        let mut wrong = Vec::new();
        for p in f
            .prototypes
            .iter()
            .filter(|p| p.kind == PrototypeKind::Intent)
        {
            let a = c.analyse(&p.text, &p.embedding);
            if a.intent != parse_label::<Intent>(&p.label).unwrap() {
                wrong.push(format!("{} → {:?}", p.text, a.intent));
            }
        }
        // Nearest-two averaging may pull a borderline phrase elsewhere; most stay put.
        let total = f
            .prototypes
            .iter()
            .filter(|p| p.kind == PrototypeKind::Intent)
            .count();
        assert!(wrong.len() * 10 <= total, "{wrong:?}");
        for p in f
            .prototypes
            .iter()
            .filter(|p| p.kind == PrototypeKind::Component)
        {
            let a = c.analyse(&p.text, &p.embedding);
            assert!(
                a.components
                    .contains(&parse_label::<Component>(&p.label).unwrap()),
                "{} → {:?}",
                p.text,
                a.components
            );
        }
    }

    #[test]
    fn complexity_separates_simple_from_complex_prototypes() {
        let c = Classifier::builtin();
        let f = file();
        for p in f
            .prototypes
            .iter()
            .filter(|p| p.kind == PrototypeKind::Complexity)
        {
            let a = c.analyse(&p.text, &p.embedding);
            assert!((0.0..=1.0).contains(&a.complexity));
            match p.label.as_str() {
                "simple" => assert!(a.complexity < 0.3, "{} → {}", p.text, a.complexity),
                "complex" => assert!(a.complexity >= 0.5, "{} → {}", p.text, a.complexity),
                _ => {}
            }
        }
    }

    #[test]
    fn structure_counts_length_parts_and_components() {
        assert!(structural_complexity("What is WACC?", 1) < 0.05);
        let long = "Build a three statement model, then compute WACC and discount the cash flows, \
                    compare the result with trading multiples and stress test the debt schedule";
        assert!(
            structural_complexity(long, 3) > 0.6,
            "{}",
            structural_complexity(long, 3)
        );
    }

    #[test]
    fn rejects_bad_files() {
        let mut f = file();
        f.dim = 10;
        assert!(Classifier::new(f).is_err());
        let mut f = file();
        f.prototypes[0].label = "nonsense".into();
        assert!(Classifier::new(f).is_err());
        let mut f = file();
        f.prototypes.retain(|p| p.label != "how_to");
        assert!(Classifier::new(f).is_err());
    }
}
