//! safetensors + `config.json` of a BERT encoder → ONNX, written with tract-onnx's protobuf
//! types (the registries carry all-MiniLM-L6-v2 as fp32 safetensors, but not as fp32 ONNX).
//!
//! The graph computes what Hugging Face's `BertModel` does in inference, written so that
//! tract can type it with symbolic `batch` and `sequence` dimensions:
//!
//! - inputs `input_ids` (i64 `[batch, sequence]`) and `attention_bias` (f32
//!   `[batch, 1, 1, sequence]`, added to every head's attention scores: 0 for tokens, a large
//!   negative number for padding); token types are always 0 for one sentence, so row 0 of the
//!   token-type table is a constant rather than an input;
//! - plain attention (MatMul, Reshape with `0` = keep, Transpose, Softmax) instead of fused
//!   ops, and LayerNormalization (opset 17); GELU as `x · ½ · (1 + erf(x/√2))`;
//! - output `last_hidden_state` (f32 `[batch, sequence, hidden]`); pooling happens in Rust.
//!
//! Initialisers keep the checkpoint's names; linear weights are stored transposed (`[in,
//! out]`, for `x · W`) under `<name>.weight_t`. Node names follow the module path, e.g.
//! `/encoder/layer.0/attention/self/query/MatMul`.

use crate::model::{ATTENTION_BIAS, INPUT_IDS, LAST_HIDDEN_STATE};
use anyhow::{Context, Result, ensure};
use prost::Message;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension::Value as DimValue, type_proto,
};

/// Bump when the graph this module writes changes; the set-up then converts again.
pub const CONVERTER_VERSION: u32 = 1;
/// ONNX opset (17: the first with LayerNormalization) and IR version (8: opset 17's).
pub const OPSET: i64 = 17;
pub const IR_VERSION: i64 = 8;

/// The fields of a Hugging Face BERT `config.json` the graph depends on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

impl BertConfig {
    pub fn from_json(config_json: &[u8]) -> Result<Self> {
        let config: Self = serde_json::from_slice(config_json).context("parsing config.json")?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        ensure!(
            self.hidden_act == "gelu",
            "hidden_act {:?} is not supported (only exact \"gelu\")",
            self.hidden_act
        );
        ensure!(
            self.position_embedding_type == "absolute",
            "position_embedding_type {:?} is not supported (only \"absolute\")",
            self.position_embedding_type
        );
        ensure!(
            self.num_attention_heads > 0
                && self.hidden_size.is_multiple_of(self.num_attention_heads),
            "hidden_size {} is not a multiple of num_attention_heads {}",
            self.hidden_size,
            self.num_attention_heads
        );
        ensure!(
            self.type_vocab_size > 0,
            "type_vocab_size must be at least 1"
        );
        Ok(())
    }

    fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// Converts a BERT checkpoint to ONNX bytes. `safetensors` is the whole `model.safetensors`
/// file; names may carry a `bert.` prefix.
pub fn safetensors_to_onnx(safetensors: &[u8], config_json: &[u8]) -> Result<Vec<u8>> {
    let config = BertConfig::from_json(config_json)?;
    let tensors = SafeTensors::deserialize(safetensors).context("parsing model.safetensors")?;
    Ok(bert_to_onnx(&config, &tensors)?.encode_to_vec())
}

/// Builds the ONNX model (see the module documentation for its shape).
pub fn bert_to_onnx(config: &BertConfig, tensors: &SafeTensors<'_>) -> Result<ModelProto> {
    config.check()?;
    let weights = Weights::new(tensors);
    let mut g = GraphBuilder::default();
    let (hidden, heads, head_size) = (
        config.hidden_size,
        config.num_attention_heads,
        config.head_size(),
    );
    let eps = config.layer_norm_eps as f32;

    // Constants shared by every layer.
    let split_heads = g.i64_const(
        "const.split_heads_shape",
        &[4],
        &[0, 0, heads as i64, head_size as i64],
    );
    let merge_heads = g.i64_const("const.merge_heads_shape", &[3], &[0, 0, hidden as i64]);
    let scale = g.f32_const(
        "const.attention_scale",
        &[],
        &[(head_size as f32).sqrt().recip()],
    );
    let sqrt2 = g.f32_const("const.sqrt2", &[], &[std::f32::consts::SQRT_2]);
    let one = g.f32_const("const.one", &[], &[1.0]);
    let half = g.f32_const("const.half", &[], &[0.5]);
    let gelu = Gelu { sqrt2, one, half };

    // Embeddings: word + position (the first `sequence` rows) + token type 0, normalised.
    let word_table = weights.init(
        &mut g,
        "embeddings.word_embeddings.weight",
        &[config.vocab_size, hidden],
    )?;
    let position_table = weights.init(
        &mut g,
        "embeddings.position_embeddings.weight",
        &[config.max_position_embeddings, hidden],
    )?;
    let token_types = weights.get(
        "embeddings.token_type_embeddings.weight",
        &[config.type_vocab_size, hidden],
    )?;
    let token_type_0 = g.f32_const(
        "embeddings.token_type_embeddings.weight.row0",
        &[hidden],
        &token_types[..hidden],
    );
    let words = g.node(
        "Gather",
        "/embeddings/word_embeddings/Gather",
        &[&word_table, INPUT_IDS],
        vec![attr_int("axis", 0)],
    );
    let input_shape = g.node("Shape", "/embeddings/Shape", &[INPUT_IDS], vec![]);
    let zero_1d = g.i64_const("const.zero_1d", &[1], &[0]);
    let one_1d = g.i64_const("const.one_1d", &[1], &[1]);
    let two_1d = g.i64_const("const.two_1d", &[1], &[2]);
    // Slice(data, starts, ends, axes): the sequence length from the ids' shape, then that
    // many rows of the position table — symbolic, so tract keeps `sequence` free.
    let sequence_length = g.node(
        "Slice",
        "/embeddings/sequence_length",
        &[&input_shape, &one_1d, &two_1d, &zero_1d],
        vec![],
    );
    let positions = g.node(
        "Slice",
        "/embeddings/position_embeddings/Slice",
        &[&position_table, &zero_1d, &sequence_length, &zero_1d],
        vec![],
    );
    let sum = g.node("Add", "/embeddings/Add", &[&words, &positions], vec![]);
    let sum = g.node("Add", "/embeddings/Add_1", &[&sum, &token_type_0], vec![]);
    let mut state = layer_norm(
        &mut g,
        &weights,
        "embeddings.LayerNorm",
        &sum,
        hidden,
        eps,
        None,
    )?;

    for layer in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{layer}");
        let n = format!("/encoder/layer.{layer}");
        // Self-attention: [b, s, h] → heads [b, n, s, d]; keys transposed to [b, n, d, s].
        let project = |g: &mut GraphBuilder, which: &str, perm: [i64; 4]| -> Result<String> {
            let x = linear(
                g,
                &weights,
                &format!("{p}.attention.self.{which}"),
                &state,
                hidden,
                hidden,
            )?;
            let x = g.node(
                "Reshape",
                &format!("{n}/attention/self/{which}/Reshape"),
                &[&x, &split_heads],
                vec![],
            );
            Ok(g.node(
                "Transpose",
                &format!("{n}/attention/self/{which}/Transpose"),
                &[&x],
                vec![attr_ints("perm", &perm)],
            ))
        };
        let query = project(&mut g, "query", [0, 2, 1, 3])?;
        let key = project(&mut g, "key", [0, 2, 3, 1])?;
        let value = project(&mut g, "value", [0, 2, 1, 3])?;
        let a = format!("{n}/attention/self");
        let scores = g.node(
            "MatMul",
            &format!("{a}/scores/MatMul"),
            &[&query, &key],
            vec![],
        );
        let scores = g.node(
            "Mul",
            &format!("{a}/scores/Mul"),
            &[&scores, &scale],
            vec![],
        );
        let scores = g.node(
            "Add",
            &format!("{a}/scores/Add"),
            &[&scores, ATTENTION_BIAS],
            vec![],
        );
        let probs = g.node(
            "Softmax",
            &format!("{a}/Softmax"),
            &[&scores],
            vec![attr_int("axis", -1)],
        );
        let context = g.node(
            "MatMul",
            &format!("{a}/context/MatMul"),
            &[&probs, &value],
            vec![],
        );
        let context = g.node(
            "Transpose",
            &format!("{a}/context/Transpose"),
            &[&context],
            vec![attr_ints("perm", &[0, 2, 1, 3])],
        );
        let context = g.node(
            "Reshape",
            &format!("{a}/context/Reshape"),
            &[&context, &merge_heads],
            vec![],
        );
        let attended = linear(
            &mut g,
            &weights,
            &format!("{p}.attention.output.dense"),
            &context,
            hidden,
            hidden,
        )?;
        let residual = g.node(
            "Add",
            &format!("{n}/attention/output/Add"),
            &[&attended, &state],
            vec![],
        );
        let attention_out = layer_norm(
            &mut g,
            &weights,
            &format!("{p}.attention.output.LayerNorm"),
            &residual,
            hidden,
            eps,
            None,
        )?;

        // Feed-forward.
        let inner = linear(
            &mut g,
            &weights,
            &format!("{p}.intermediate.dense"),
            &attention_out,
            hidden,
            config.intermediate_size,
        )?;
        let inner = gelu.wire(&mut g, &format!("{n}/intermediate/gelu"), &inner);
        let out = linear(
            &mut g,
            &weights,
            &format!("{p}.output.dense"),
            &inner,
            config.intermediate_size,
            hidden,
        )?;
        let residual = g.node(
            "Add",
            &format!("{n}/output/Add"),
            &[&out, &attention_out],
            vec![],
        );
        let last = layer + 1 == config.num_hidden_layers;
        state = layer_norm(
            &mut g,
            &weights,
            &format!("{p}.output.LayerNorm"),
            &residual,
            hidden,
            eps,
            last.then_some(LAST_HIDDEN_STATE),
        )?;
    }
    if config.num_hidden_layers == 0 {
        state = g.node("Identity", LAST_HIDDEN_STATE, &[&state], vec![]);
    }
    debug_assert_eq!(state, LAST_HIDDEN_STATE);

    let graph = GraphProto {
        name: "bert".into(),
        node: g.nodes,
        initializer: g.initializers,
        input: vec![
            value_info(INPUT_IDS, DataType::Int64, &[Dim::Batch, Dim::Sequence]),
            value_info(
                ATTENTION_BIAS,
                DataType::Float,
                &[Dim::Batch, Dim::Fixed(1), Dim::Fixed(1), Dim::Sequence],
            ),
        ],
        output: vec![value_info(
            LAST_HIDDEN_STATE,
            DataType::Float,
            &[Dim::Batch, Dim::Sequence, Dim::Fixed(hidden)],
        )],
        doc_string: "BERT encoder; attention_bias is 0 for tokens and large negative for padding"
            .into(),
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "tessera-embedder".into(),
        producer_version: format!(
            "{}+converter.{CONVERTER_VERSION}",
            env!("CARGO_PKG_VERSION")
        ),
        graph: Some(graph),
        metadata_props: vec![StringStringEntryProto {
            key: "converter_version".into(),
            value: CONVERTER_VERSION.to_string(),
        }],
        ..Default::default()
    })
}

/// The checkpoint's tensors, checked for dtype and shape as they are taken.
struct Weights<'a, 'data> {
    tensors: &'a SafeTensors<'data>,
    /// `bert.` when the checkpoint is a `BertFor…` model rather than a bare `BertModel`.
    prefix: &'static str,
}

impl<'a, 'data> Weights<'a, 'data> {
    fn new(tensors: &'a SafeTensors<'data>) -> Self {
        let bare = tensors.tensor("embeddings.word_embeddings.weight").is_ok();
        Self {
            tensors,
            prefix: if bare { "" } else { "bert." },
        }
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        let view = self
            .tensors
            .tensor(&full)
            .map_err(|_| anyhow::anyhow!("the checkpoint has no tensor {full:?}"))?;
        ensure!(
            view.dtype() == Dtype::F32,
            "{full} is {:?}; only F32 checkpoints are supported",
            view.dtype()
        );
        ensure!(
            view.shape() == shape,
            "{full} has shape {:?}, expected {shape:?} from config.json",
            view.shape()
        );
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// The tensor as an initialiser under its own name.
    fn init(&self, g: &mut GraphBuilder, name: &str, shape: &[usize]) -> Result<String> {
        let data = self.get(name, shape)?;
        Ok(g.f32_const(name, shape, &data))
    }
}

/// `x · Wᵀ + b` for a PyTorch `Linear` named `name` (weight `[out, in]`).
fn linear(
    g: &mut GraphBuilder,
    w: &Weights<'_, '_>,
    name: &str,
    x: &str,
    inputs: usize,
    outputs: usize,
) -> Result<String> {
    let weight = w.get(&format!("{name}.weight"), &[outputs, inputs])?;
    let mut transposed = vec![0f32; weight.len()];
    for (o, row) in weight.chunks_exact(inputs).enumerate() {
        for (i, v) in row.iter().enumerate() {
            transposed[i * outputs + o] = *v;
        }
    }
    let weight_t = g.f32_const(&format!("{name}.weight_t"), &[inputs, outputs], &transposed);
    let bias = w.init(g, &format!("{name}.bias"), &[outputs])?;
    let path = format!("/{}", name.replace('.', "/").replace("layer/", "layer."));
    let product = g.node("MatMul", &format!("{path}/MatMul"), &[x, &weight_t], vec![]);
    Ok(g.node("Add", &format!("{path}/Add"), &[&product, &bias], vec![]))
}

/// LayerNormalization over the last axis with the checkpoint's `weight` and `bias`.
fn layer_norm(
    g: &mut GraphBuilder,
    w: &Weights<'_, '_>,
    name: &str,
    x: &str,
    hidden: usize,
    eps: f32,
    output: Option<&str>,
) -> Result<String> {
    let gamma = w.init(g, &format!("{name}.weight"), &[hidden])?;
    let beta = w.init(g, &format!("{name}.bias"), &[hidden])?;
    let path = format!("/{}", name.replace('.', "/").replace("layer/", "layer."));
    let attrs = vec![attr_int("axis", -1), attr_float("epsilon", eps)];
    Ok(match output {
        Some(out) => {
            g.node_with_output("LayerNormalization", &path, out, &[x, &gamma, &beta], attrs)
        }
        None => g.node("LayerNormalization", &path, &[x, &gamma, &beta], attrs),
    })
}

/// Exact GELU, as Hugging Face's `"gelu"`: `x · ½ · (1 + erf(x / √2))`.
struct Gelu {
    sqrt2: String,
    one: String,
    half: String,
}

impl Gelu {
    fn wire(&self, g: &mut GraphBuilder, path: &str, x: &str) -> String {
        let scaled = g.node("Div", &format!("{path}/Div"), &[x, &self.sqrt2], vec![]);
        let erf = g.node("Erf", &format!("{path}/Erf"), &[&scaled], vec![]);
        let plus_one = g.node("Add", &format!("{path}/Add"), &[&erf, &self.one], vec![]);
        let gated = g.node("Mul", &format!("{path}/Mul"), &[x, &plus_one], vec![]);
        g.node(
            "Mul",
            &format!("{path}/Mul_1"),
            &[&gated, &self.half],
            vec![],
        )
    }
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl GraphBuilder {
    /// Adds a node whose single output is named after it; returns the output's name.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.node_with_output(op, name, name, inputs, attribute)
    }

    fn node_with_output(
        &mut self,
        op: &str,
        name: &str,
        output: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            name: name.into(),
            op_type: op.into(),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        });
        output.into()
    }

    fn f32_const(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, dims, DataType::Float, raw_data)
    }

    fn i64_const(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, dims, DataType::Int64, raw_data)
    }

    fn constant(
        &mut self,
        name: &str,
        dims: &[usize],
        data_type: DataType,
        raw_data: Vec<u8>,
    ) -> String {
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        });
        name.into()
    }
}

enum Dim {
    Batch,
    Sequence,
    Fixed(usize),
}

fn value_info(name: &str, elem_type: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Batch => DimValue::DimParam("batch".into()),
                Dim::Sequence => DimValue::DimParam("sequence".into()),
                Dim::Fixed(n) => DimValue::DimValue(*n as i64),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
