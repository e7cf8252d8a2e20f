//! The converter on a tiny random BERT built here: the graph's structure, and its numbers
//! against a plain-Rust BERT forward pass (no model download needed).

use super::*;
use crate::model::BertEncoder;
use crate::pooling::{cosine, l2_normalize, mean_pool};
use prost::Message;
use safetensors::tensor::TensorView;
use std::collections::{BTreeMap, HashSet};

/// Tensor name → (shape, values), as in a `BertModel` checkpoint.
type Checkpoint = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn tiny_config() -> BertConfig {
    BertConfig {
        vocab_size: 24,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 16,
        hidden_act: "gelu".into(),
        layer_norm_eps: 1e-12,
        max_position_embeddings: 16,
        type_vocab_size: 2,
        position_embedding_type: "absolute".into(),
    }
}

/// Deterministic pseudo-random weights (xorshift), `BertModel`'s names and shapes.
fn tiny_weights(config: &BertConfig) -> Checkpoint {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let mut w = BTreeMap::new();
    let mut add = |name: String, shape: Vec<usize>, offset: f32| {
        let data = (0..shape.iter().product::<usize>())
            .map(|_| offset + next())
            .collect();
        w.insert(name, (shape, data));
    };
    add(
        "embeddings.word_embeddings.weight".into(),
        vec![config.vocab_size, h],
        0.0,
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        vec![config.max_position_embeddings, h],
        0.0,
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        vec![config.type_vocab_size, h],
        0.0,
    );
    add("embeddings.LayerNorm.weight".into(), vec![h], 1.0);
    add("embeddings.LayerNorm.bias".into(), vec![h], 0.0);
    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", i, h),
            ("output.dense", h, i),
        ] {
            add(format!("{p}.{name}.weight"), vec![out, inp], 0.0);
            add(format!("{p}.{name}.bias"), vec![out], 0.0);
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            add(format!("{p}.{norm}.weight"), vec![h], 1.0);
            add(format!("{p}.{norm}.bias"), vec![h], 0.0);
        }
    }
    // Present in real checkpoints, unused by the encoder.
    add("pooler.dense.weight".into(), vec![h, h], 0.0);
    add("pooler.dense.bias".into(), vec![h], 0.0);
    w
}

fn to_safetensors(weights: &Checkpoint, prefix: &str) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .iter()
        .map(|(name, (shape, data))| {
            let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (format!("{prefix}{name}"), shape.clone(), raw)
        })
        .collect();
    safetensors::serialize(
        bytes.iter().map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
            )
        }),
        None,
    )
    .unwrap()
}

fn config_json(config: &BertConfig) -> Vec<u8> {
    format!(
        r#"{{"architectures": ["BertModel"], "model_type": "bert", "vocab_size": {},
            "hidden_size": {}, "num_hidden_layers": {}, "num_attention_heads": {},
            "intermediate_size": {}, "hidden_act": "{}", "layer_norm_eps": {:e},
            "max_position_embeddings": {}, "type_vocab_size": {},
            "position_embedding_type": "{}", "hidden_dropout_prob": 0.1}}"#,
        config.vocab_size,
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.intermediate_size,
        config.hidden_act,
        config.layer_norm_eps,
        config.max_position_embeddings,
        config.type_vocab_size,
        config.position_embedding_type,
    )
    .into_bytes()
}

fn tiny_onnx() -> (BertConfig, Checkpoint, Vec<u8>) {
    let config = tiny_config();
    let weights = tiny_weights(&config);
    let onnx = safetensors_to_onnx(&to_safetensors(&weights, ""), &config_json(&config)).unwrap();
    (config, weights, onnx)
}

// ---- A plain BERT forward pass, in f64, as the oracle ----------------------------------------

/// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), enough for a 1e-5 comparison.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

fn reference_hidden_states(
    config: &BertConfig,
    weights: &Checkpoint,
    ids: &[i64],
) -> Vec<Vec<f64>> {
    let w = |name: &str| -> Vec<f64> { weights[name].1.iter().map(|&v| f64::from(v)).collect() };
    let h = config.hidden_size;
    let eps = config.layer_norm_eps;
    let layer_norm = |x: &mut Vec<Vec<f64>>, name: &str| {
        let (gamma, beta) = (w(&format!("{name}.weight")), w(&format!("{name}.bias")));
        for row in x.iter_mut() {
            let mean = row.iter().sum::<f64>() / row.len() as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / row.len() as f64;
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) / (var + eps).sqrt() * gamma[j] + beta[j];
            }
        }
    };
    let linear = |x: &[Vec<f64>], name: &str| -> Vec<Vec<f64>> {
        let (weight, bias) = (w(&format!("{name}.weight")), w(&format!("{name}.bias")));
        let inputs = x[0].len();
        x.iter()
            .map(|row| {
                (0..bias.len())
                    .map(|o| {
                        bias[o]
                            + (0..inputs)
                                .map(|i| weight[o * inputs + i] * row[i])
                                .sum::<f64>()
                    })
                    .collect()
            })
            .collect()
    };
    let (word, pos, types) = (
        w("embeddings.word_embeddings.weight"),
        w("embeddings.position_embeddings.weight"),
        w("embeddings.token_type_embeddings.weight"),
    );
    let mut x: Vec<Vec<f64>> = ids
        .iter()
        .enumerate()
        .map(|(s, &id)| {
            (0..h)
                .map(|j| word[id as usize * h + j] + pos[s * h + j] + types[j])
                .collect()
        })
        .collect();
    layer_norm(&mut x, "embeddings.LayerNorm");
    let (heads, d) = (config.num_attention_heads, config.head_size());
    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        let q = linear(&x, &format!("{p}.attention.self.query"));
        let k = linear(&x, &format!("{p}.attention.self.key"));
        let v = linear(&x, &format!("{p}.attention.self.value"));
        let n = ids.len();
        let mut context = vec![vec![0.0; h]; n];
        for head in 0..heads {
            let cols = head * d..(head + 1) * d;
            for i in 0..n {
                let scores: Vec<f64> = (0..n)
                    .map(|j| {
                        cols.clone().map(|c| q[i][c] * k[j][c]).sum::<f64>() / (d as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                for c in cols.clone() {
                    context[i][c] = (0..n).map(|j| exps[j] / total * v[j][c]).sum();
                }
            }
        }
        let mut attended = linear(&context, &format!("{p}.attention.output.dense"));
        for (a, r) in attended.iter_mut().zip(&x) {
            a.iter_mut().zip(r).for_each(|(a, r)| *a += r);
        }
        layer_norm(&mut attended, &format!("{p}.attention.output.LayerNorm"));
        let mut inner = linear(&attended, &format!("{p}.intermediate.dense"));
        for v in inner.iter_mut().flatten() {
            *v = *v * 0.5 * (1.0 + erf(*v / std::f64::consts::SQRT_2));
        }
        let mut out = linear(&inner, &format!("{p}.output.dense"));
        for (o, r) in out.iter_mut().zip(&attended) {
            o.iter_mut().zip(r).for_each(|(o, r)| *o += r);
        }
        layer_norm(&mut out, &format!("{p}.output.LayerNorm"));
        x = out;
    }
    x
}

fn reference_embedding(config: &BertConfig, weights: &Checkpoint, ids: &[i64]) -> Vec<f32> {
    let states: Vec<f32> = reference_hidden_states(config, weights, ids)
        .into_iter()
        .flatten()
        .map(|v| v as f32)
        .collect();
    let mut pooled = mean_pool(&states, config.hidden_size, &vec![true; ids.len()]);
    l2_normalize(&mut pooled);
    pooled
}

// ---- Tests ---------------------------------------------------------------------------------

#[test]
fn graph_declares_symbolic_inputs_and_output() {
    let (config, _, onnx) = tiny_onnx();
    let model = ModelProto::decode(onnx.as_slice()).unwrap();
    assert_eq!(model.ir_version, IR_VERSION);
    assert_eq!(model.opset_import[0].version, OPSET);
    let graph = model.graph.unwrap();
    let dims = |v: &ValueInfoProto| -> Vec<String> {
        let Some(type_proto::Value::TensorType(t)) =
            v.r#type.as_ref().and_then(|t| t.value.clone())
        else {
            panic!("{} has no tensor type", v.name)
        };
        t.shape
            .unwrap()
            .dim
            .into_iter()
            .map(|d| match d.value.unwrap() {
                DimValue::DimParam(p) => p,
                DimValue::DimValue(n) => n.to_string(),
            })
            .collect()
    };
    let inputs: Vec<(&str, Vec<String>)> = graph
        .input
        .iter()
        .map(|v| (v.name.as_str(), dims(v)))
        .collect();
    assert_eq!(
        inputs,
        [
            ("input_ids", vec!["batch".to_owned(), "sequence".to_owned()]),
            (
                "attention_bias",
                vec!["batch".into(), "1".into(), "1".into(), "sequence".into()]
            ),
        ]
    );
    assert_eq!(graph.output.len(), 1);
    assert_eq!(graph.output[0].name, "last_hidden_state");
    assert_eq!(
        dims(&graph.output[0]),
        ["batch", "sequence", &config.hidden_size.to_string()]
    );
}

#[test]
fn graph_has_one_block_per_layer_and_is_well_formed() {
    let (config, _, onnx) = tiny_onnx();
    let graph = ModelProto::decode(onnx.as_slice()).unwrap().graph.unwrap();
    let count = |op: &str| graph.node.iter().filter(|n| n.op_type == op).count();
    let layers = config.num_hidden_layers;
    // q, k, v, scores, context, attention output, intermediate, output.
    assert_eq!(count("MatMul"), 8 * layers);
    assert_eq!(count("Softmax"), layers);
    assert_eq!(count("Erf"), layers);
    assert_eq!(count("LayerNormalization"), 1 + 2 * layers);
    assert_eq!(count("Gather"), 1);
    assert!(
        graph.node.iter().all(|n| n.domain.is_empty()),
        "standard ops only"
    );

    // Every node reads only what exists before it, and names are unique.
    let mut defined: HashSet<&str> = graph.input.iter().map(|v| v.name.as_str()).collect();
    defined.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    let mut names = HashSet::new();
    for node in &graph.node {
        for input in &node.input {
            assert!(
                defined.contains(input.as_str()),
                "{} reads undefined {input}",
                node.name
            );
        }
        assert!(
            names.insert(node.name.as_str()),
            "duplicate node name {}",
            node.name
        );
        defined.extend(node.output.iter().map(String::as_str));
    }
    assert!(defined.contains("last_hidden_state"));

    // Linear weights are stored transposed, biases as they are; the pooler is left out.
    let init = |name: &str| -> Vec<i64> {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no initializer {name}"))
            .dims
            .clone()
    };
    assert_eq!(init("encoder.layer.0.intermediate.dense.weight_t"), [8, 16]);
    assert_eq!(init("encoder.layer.1.output.dense.weight_t"), [16, 8]);
    assert_eq!(init("encoder.layer.1.attention.self.query.bias"), [8]);
    assert_eq!(init("embeddings.word_embeddings.weight"), [24, 8]);
    assert!(
        graph
            .initializer
            .iter()
            .all(|t| !t.name.starts_with("pooler"))
    );
    assert!(
        graph
            .node
            .iter()
            .any(|n| n.name == "/encoder/layer.1/attention/self/query/MatMul")
    );
}

#[test]
fn transposed_weights_hold_the_checkpoint_values() {
    let (_, weights, onnx) = tiny_onnx();
    let graph = ModelProto::decode(onnx.as_slice()).unwrap().graph.unwrap();
    let t = graph
        .initializer
        .iter()
        .find(|t| t.name == "encoder.layer.0.intermediate.dense.weight_t")
        .unwrap();
    let stored: Vec<f32> = t
        .raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let (shape, original) = &weights["encoder.layer.0.intermediate.dense.weight"];
    let (out, inp) = (shape[0], shape[1]);
    for o in 0..out {
        for i in 0..inp {
            assert_eq!(stored[i * out + o], original[o * inp + i]);
        }
    }
}

#[test]
fn tract_runs_the_graph_like_a_plain_bert() {
    let (config, weights, onnx) = tiny_onnx();
    let encoder = BertEncoder::from_onnx(&onnx).unwrap();
    assert_eq!(encoder.hidden_size(), config.hidden_size);
    let sequences: [&[i64]; 4] = [
        &[2, 5, 7, 3],
        &[2, 3],
        &[2, 9, 9, 9, 11, 13, 17, 19, 23, 3],
        &[2, 1, 3],
    ];
    for ids in sequences {
        let ours = encoder.embed_batch(&[ids]).unwrap().remove(0);
        let expected = reference_embedding(&config, &weights, ids);
        let max_diff = ours
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max_diff < 1e-5, "{ids:?}: max difference {max_diff}");
    }
    // The same sequences in one padded batch: padding must not change any of them.
    let batched = encoder.embed_batch(&sequences).unwrap();
    for (ids, got) in sequences.iter().zip(&batched) {
        let single = encoder.embed_batch(&[ids]).unwrap().remove(0);
        assert!(
            cosine(got, &single) > 0.999_999,
            "{ids:?} changed when batched"
        );
    }
}

#[test]
fn empty_batch_runs_nothing() {
    let (_, _, onnx) = tiny_onnx();
    let encoder = BertEncoder::from_onnx(&onnx).unwrap();
    assert!(encoder.embed_batch(&[]).unwrap().is_empty());
}

#[test]
fn accepts_a_bert_prefixed_checkpoint() {
    let config = tiny_config();
    let weights = tiny_weights(&config);
    let plain = safetensors_to_onnx(&to_safetensors(&weights, ""), &config_json(&config)).unwrap();
    let prefixed =
        safetensors_to_onnx(&to_safetensors(&weights, "bert."), &config_json(&config)).unwrap();
    assert_eq!(plain, prefixed);
}

#[test]
fn reports_what_is_wrong_with_a_checkpoint() {
    let config = tiny_config();
    let mut weights = tiny_weights(&config);
    weights.remove("encoder.layer.1.output.dense.bias");
    let err =
        safetensors_to_onnx(&to_safetensors(&weights, ""), &config_json(&config)).unwrap_err();
    assert!(
        format!("{err:#}").contains("encoder.layer.1.output.dense.bias"),
        "{err:#}"
    );

    let mut weights = tiny_weights(&config);
    weights.insert(
        "encoder.layer.0.attention.self.key.weight".into(),
        (vec![8, 4], vec![0.0; 32]),
    );
    let err =
        safetensors_to_onnx(&to_safetensors(&weights, ""), &config_json(&config)).unwrap_err();
    assert!(
        format!("{err:#}").contains("has shape [8, 4], expected [8, 8]"),
        "{err:#}"
    );

    let weights = to_safetensors(&tiny_weights(&config), "");
    let relu = BertConfig {
        hidden_act: "relu".into(),
        ..tiny_config()
    };
    assert!(safetensors_to_onnx(&weights, &config_json(&relu)).is_err());
    let odd_heads = BertConfig {
        num_attention_heads: 3,
        ..tiny_config()
    };
    assert!(safetensors_to_onnx(&weights, &config_json(&odd_heads)).is_err());
    assert!(safetensors_to_onnx(b"not safetensors", &config_json(&config)).is_err());
    assert!(safetensors_to_onnx(&weights, b"{}").is_err());
}

#[test]
fn the_embedder_refuses_a_model_of_another_width() {
    let (_, _, onnx) = tiny_onnx();
    let tokenizer = crate::tokenize::tests::tiny_tokenizer_json();
    let err = crate::Embedder::from_bytes(&onnx, tokenizer.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            crate::EmbedError::Dimension {
                expected: 384,
                found: 8
            }
        ),
        "{err}"
    );
}

#[test]
fn the_encoder_refuses_bytes_that_are_not_this_graph() {
    assert!(matches!(
        BertEncoder::from_onnx(b"not onnx"),
        Err(crate::EmbedError::ModelLoad(_))
    ));
    // A valid graph whose ids input has another name.
    let mut model = ModelProto::decode(tiny_onnx().2.as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    graph.input[0].name = "token_ids".into();
    for input in graph.node.iter_mut().flat_map(|n| n.input.iter_mut()) {
        if input == "input_ids" {
            *input = "token_ids".into();
        }
    }
    let err = BertEncoder::from_onnx(&model.encode_to_vec()).unwrap_err();
    assert!(
        matches!(&err, crate::EmbedError::ModelLoad(m) if m.contains("expected [\"input_ids\"")),
        "{err}"
    );
}
