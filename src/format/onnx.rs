//! The exported net as an ONNX graph (DESIGN §6): every layer of the layer list as a standard
//! operator (opset 17) over its BN-folded weights, dense with the stage mask's zeros, so that
//! any ONNX runtime computes what the stage-wise runtime does. One graph gives exits 1 … k
//! (a *prefix*): it holds only the channels of stages ≤ k, which never read later ones.
//!
//! Input `image`: `[N, 3, R, R]`, preprocessed as the runtime's input (DESIGN §6). Outputs
//! `logits1` … `logitsk`: `[N, classes]`.

use std::path::{Path, PathBuf};

use super::onnx_proto::{
    encode, float_type, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, ValueInfoProto, ATTR_FLOAT, ATTR_INT, ATTR_INTS, FLOAT,
};
use super::ExportedNet;
use crate::error::{Error, Result};
use crate::space::{Activation, Layer, LayerKind, Plan, DW_STRIDE, STEM_TAPS};

/// The ONNX opset the graphs use.
pub const OPSET: i64 = 17;

/// An ONNX graph under construction.
struct Graph {
    nodes: Vec<NodeProto>,
    weights: Vec<TensorProto>,
    values: usize,
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_INT,
        i,
        ..Default::default()
    }
}

fn ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_INTS,
        ints,
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_FLOAT,
        f,
        ..Default::default()
    }
}

impl Graph {
    /// A fresh value name.
    fn value(&mut self) -> String {
        self.values += 1;
        format!("v{}", self.values)
    }

    /// Adds a node with one output named `out` (a fresh name when `None`); returns that name.
    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        out: Option<String>,
    ) -> String {
        let out = out.unwrap_or_else(|| self.value());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: format!("{op}_{}", self.nodes.len()),
            op_type: op.into(),
            attribute: attrs,
        });
        out
    }

    /// Adds a constant tensor; returns its name.
    fn weight(&mut self, name: String, dims: &[usize], values: &[f32]) -> String {
        self.weights.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    /// The activation `act` of `x`.
    fn act(&mut self, act: Activation, x: String) -> String {
        match act {
            Activation::None => x,
            Activation::Relu => self.node("Relu", &[&x], vec![], None),
            Activation::Hswish => self.node("HardSwish", &[&x], vec![], None),
            Activation::Hsigmoid => self.node(
                "HardSigmoid",
                &[&x],
                vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)],
                None,
            ),
        }
    }
}

/// A layer's dense weight (stage mask's zeros included, scale folded) and bias over the
/// channels of stages `< k`: `(weight [rows, row_len], bias [rows], rows, row_len)` where
/// `row_len` is the input width (27 taps for the stem, 49 for a depthwise conv).
fn masked(layer: &Layer, w: &[f32], a: &[f32], k: usize) -> (Vec<f32>, Vec<f32>, usize, usize) {
    let (mut dense, mut affine) = layer.empty();
    for s in layer.stored_stages().into_iter().filter(|&s| s < k) {
        layer.paste(s, &layer.cut(s, w, a), &mut dense, &mut affine);
    }
    let n = layer.out_channels();
    let rows = match layer.kind {
        LayerKind::Classifier { .. } => n,
        _ => layer.rows.end(k - 1) as usize,
    };
    let (stride, len) = match layer.kind {
        LayerKind::Stem => (STEM_TAPS, STEM_TAPS),
        LayerKind::Depthwise { .. } => (DW_STRIDE, DW_STRIDE),
        LayerKind::Classifier { .. } => {
            // Dense over the feature channels of stages < k, zero beyond the exit's own.
            let (c, width) = (layer.row_stride(), layer.cols.end(k - 1) as usize);
            let mut wide = vec![0.0; n * width];
            for o in 0..n {
                wide[o * width..][..c].copy_from_slice(&dense[o * c..][..c]);
            }
            return (wide, affine[n..].to_vec(), n, width);
        }
        _ => (layer.row_stride(), layer.cols.end(k - 1) as usize),
    };
    let weight = (0..rows)
        .flat_map(|o| dense[o * stride..][..len].to_vec())
        .collect();
    (weight, affine[n..n + rows].to_vec(), rows, len)
}

/// The ONNX graph of exits 1 … `k` of `net` (1 ≤ k ≤ S).
pub fn to_onnx(net: &ExportedNet, k: usize) -> Result<Vec<u8>> {
    let plan = Plan::new(&net.preset, &net.config)?;
    if !(1..=plan.stages).contains(&k) {
        return Err(Error::config(
            "exits",
            format!("{k} is not in 1..={}", plan.stages),
        ));
    }
    net.weights.check(&plan)?;
    let mut g = Graph {
        nodes: Vec::new(),
        weights: Vec::new(),
        values: 0,
    };
    let r = plan.resolution;
    let mut x = "image".to_string();
    // The current block's input (for the residual) and depthwise output (for SE). A layer no
    // stage < k runs is left out: a block skipped by those stages is the identity there.
    let mut block_input = String::new();
    let mut mid = String::new();
    let mut outputs = Vec::new();
    for (layer, (w, a)) in plan.layers().iter().zip(net.weights.params()) {
        let runs = layer.active[..k].iter().any(|&v| v);
        if !runs {
            continue;
        }
        if let LayerKind::Classifier { stage } = layer.kind {
            if stage >= k {
                continue;
            }
        }
        let (weight, bias, rows, len) = masked(layer, w, a, k);
        let name = |part: &str| format!("{}.{part}", layer.name);
        match &layer.kind {
            LayerKind::Stem => {
                let wn = g.weight(name("weight"), &[rows, 3, 3, 3], &weight);
                let bn = g.weight(name("bias"), &[rows], &bias);
                let attrs = vec![ints("strides", vec![2, 2]), ints("pads", vec![1, 1, 1, 1])];
                let y = g.node("Conv", &[&x, &wn, &bn], attrs, None);
                x = g.act(layer.act, y);
            }
            LayerKind::Depthwise { kernels, stride } => {
                // Every stage's kernel centred in the largest one of stages < k.
                let big = (0..k)
                    .filter(|&s| layer.active[s])
                    .map(|s| kernels[s])
                    .max()
                    .unwrap_or(1);
                let mut kernel = vec![0.0; rows * big * big];
                for s in (0..k).filter(|&s| layer.active[s]) {
                    let (ks, off) = (kernels[s], (big - kernels[s]) / 2);
                    for c in layer.rows.range(s) {
                        for t in 0..ks * ks {
                            let (dy, dx) = (t / ks + off, t % ks + off);
                            kernel[(c * big + dy) * big + dx] = weight[c * DW_STRIDE + t];
                        }
                    }
                }
                let wn = g.weight(name("weight"), &[rows, 1, big, big], &kernel);
                let bn = g.weight(name("bias"), &[rows], &bias);
                let p = (big / 2) as i64;
                let attrs = vec![
                    int("group", rows as i64),
                    ints("strides", vec![*stride as i64; 2]),
                    ints("pads", vec![p; 4]),
                ];
                let y = g.node("Conv", &[&x, &wn, &bn], attrs, None);
                mid = g.act(layer.act, y);
                x = mid.clone();
            }
            LayerKind::Classifier { stage } => {
                let wn = g.weight(
                    name(&format!("s{}.weight", stage + 1)),
                    &[rows, len],
                    &weight,
                );
                let bn = g.weight(name(&format!("s{}.bias", stage + 1)), &[rows], &bias);
                let out = format!("logits{}", stage + 1);
                g.node(
                    "Gemm",
                    &[&x, &wn, &bn],
                    vec![int("transB", 1)],
                    Some(out.clone()),
                );
                outputs.push(out);
            }
            LayerKind::FeatureMix => {
                let wn = g.weight(name("weight"), &[rows, len], &weight);
                let y = g.node("Gemm", &[&x, &wn], vec![int("transB", 1)], None);
                x = g.act(layer.act, y);
            }
            kind => {
                // A 1×1 conv: expand, SE, project, final expand.
                let wn = g.weight(name("weight"), &[rows, len, 1, 1], &weight);
                let bn = g.weight(name("bias"), &[rows], &bias);
                let input = match kind {
                    LayerKind::SeReduce => g.node("GlobalAveragePool", &[&mid], vec![], None),
                    _ => x.clone(),
                };
                let y = g.node("Conv", &[&input, &wn, &bn], vec![], None);
                let y = g.act(layer.act, y);
                x = match kind {
                    LayerKind::SeExpand => g.node("Mul", &[&mid, &y], vec![], None),
                    LayerKind::Project { residual: true } => {
                        g.node("Add", &[&y, &block_input], vec![], None)
                    }
                    LayerKind::Project { residual: false } => {
                        if !layer.active[..k].iter().all(|&v| v) {
                            return Err(Error::config(
                                layer.name.clone(),
                                "a block without residual skips a stage",
                            ));
                        }
                        y
                    }
                    LayerKind::FinalExpand => {
                        let p = g.node("GlobalAveragePool", &[&y], vec![], None);
                        g.node("Flatten", &[&p], vec![int("axis", 1)], None)
                    }
                    _ => y,
                };
            }
        }
        if matches!(layer.kind, LayerKind::Stem | LayerKind::Project { .. }) {
            block_input = x.clone();
        }
    }
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "enas4d".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "exits 1..={k} of a {}-stage net, input [N, 3, {r}, {r}]",
            plan.stages
        ),
        graph: Some(GraphProto {
            node: g.nodes,
            name: format!("enas4d_exits_1_to_{k}"),
            initializer: g.weights,
            input: vec![ValueInfoProto {
                name: "image".into(),
                r#type: Some(float_type(&[None, Some(3), Some(r), Some(r)])),
            }],
            output: outputs
                .iter()
                .map(|o| ValueInfoProto {
                    name: o.clone(),
                    r#type: Some(float_type(&[None, Some(plan.classes)])),
                })
                .collect(),
        }),
    };
    Ok(encode(&model))
}

/// Where the graph of exits 1 … k goes beside the full graph `path` (`net.onnx` →
/// `net.exit1.onnx`); the full graph itself for k = S.
pub fn prefix_path(path: &Path, k: usize, stages: usize) -> PathBuf {
    if k == stages {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}.exit{k}.onnx"))
}

impl ExportedNet {
    /// Writes the ONNX graph of every exit to `path` and, for each k < S, the graph of exits
    /// 1 … k beside it ([`prefix_path`]), atomically; returns the paths written.
    pub fn save_onnx(&self, path: &Path) -> Result<Vec<PathBuf>> {
        let stages = self.stages();
        let mut written = Vec::with_capacity(stages);
        for k in (1..=stages).rev() {
            let p = prefix_path(path, k, stages);
            crate::atomic::write_atomic(&p, &to_onnx(self, k)?)?;
            written.push(p);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use super::super::onnx_proto::ModelProto;
    use super::*;
    use crate::net::NetWeights;
    use crate::space::{Preset, SubnetConfig};

    fn sample(seed: u64) -> ExportedNet {
        let preset = Preset::tiny(3, 10).unwrap();
        let mut rng = SmallRng::seed_from_u64(seed);
        let config = SubnetConfig::random(&preset, &mut rng);
        let plan = Plan::new(&preset, &config).unwrap();
        ExportedNet {
            weights: NetWeights::random(&plan, &mut rng),
            thresholds: vec![0.9; 2],
            classes: (0..10).map(|i| i.to_string()).collect(),
            preset,
            config,
            operating: Vec::new(),
        }
    }

    /// Every node reads only the input, weights and earlier outputs; every weight's data
    /// matches its shape; a prefix graph gives exactly its exits.
    #[test]
    fn should_write_well_formed_prefix_graphs() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        println!("seed {seed}");
        let net = sample(seed);
        for k in 1..=3 {
            let model = ModelProto::decode(to_onnx(&net, k).unwrap().as_slice()).unwrap();
            let g = model.graph.unwrap();
            let mut known: Vec<String> = vec!["image".into()];
            for t in &g.initializer {
                let n: i64 = t.dims.iter().product();
                assert_eq!(t.raw_data.len() as i64, 4 * n, "{}", t.name);
                known.push(t.name.clone());
            }
            for node in &g.node {
                for i in &node.input {
                    assert!(
                        known.contains(i),
                        "{} reads {i} before it exists",
                        node.name
                    );
                }
                known.extend(node.output.iter().cloned());
            }
            let outputs: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
            let want: Vec<String> = (1..=k).map(|t| format!("logits{t}")).collect();
            assert_eq!(outputs, want);
            assert!(outputs.iter().all(|o| known.iter().any(|n| n == o)));
        }
        assert!(to_onnx(&net, 0).is_err());
        assert!(to_onnx(&net, 4).is_err());
    }
}
