//! The exported net (DESIGN §6): one safetensors file holding a subnet's weights only, kernels
//! already at their size and BN folded into weight and bias, stored per layer and stage as the
//! lower-triangular block (rows of stage s over the input channels of stages ≤ s), plus — in the
//! file's metadata — the format version, the preset, the subnet config, the exit thresholds and
//! the class names.
//!
//! Tensor names: `stem.s{s}.{weight,bias}`, `blocks.{i}.{expand,dw,se_reduce,se_expand,project}
//! .s{s}.{weight,bias}` (absent where block i is inactive for stage s), `final_expand.s{s}.*`,
//! `feature_mix.s{s}.weight`, `classifier.s{s}.{weight,bias}`; s counts from 1.
//!
//! Loading checks everything — version, config, every tensor's presence, dtype, shape and
//! finiteness, no extra tensors — and fails with [`Error::Format`]; it allocates nothing before
//! the tensors that justify the allocation have been found in the file.

#[cfg(not(target_arch = "wasm32"))]
pub mod onnx;
#[cfg(not(target_arch = "wasm32"))]
mod onnx_proto;

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::net::NetWeights;
use crate::runtime::thresholds::{Operating, ThresholdChoice};
use crate::space::{Piece, Plan, Preset, SubnetConfig};

/// The format's name in the metadata.
pub const FORMAT_NAME: &str = "enas4d";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A self-contained exported subnet.
#[derive(Clone, Debug)]
pub struct ExportedNet {
    /// The preset the subnet was cut from.
    pub preset: Preset,
    /// The subnet.
    pub config: SubnetConfig,
    /// Exit thresholds τ_1 … τ_{S−1}.
    pub thresholds: Vec<f32>,
    /// Class names, by index.
    pub classes: Vec<String>,
    /// Weights at the subnet's size (on load: BN folded, scale 1).
    pub weights: NetWeights<Vec<f32>>,
    /// Measured operating points (thresholds → accuracy, average MACs) on the validation
    /// split, ascending cost; lets a runtime pick thresholds for a MACs budget. May be empty.
    pub operating: Vec<Operating>,
}

/// A tensor to write: name, shape, values.
type Entry = (String, Vec<usize>, Vec<f32>);

fn format_err(msg: impl Into<String>) -> Error {
    Error::Format(msg.into())
}

/// Reads one f32 tensor of exactly `shape`, finite.
fn get(st: &SafeTensors, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let view: TensorView = st
        .tensor(name)
        .map_err(|_| format_err(format!("tensor {name} is missing")))?;
    if view.dtype() != Dtype::F32 {
        return Err(format_err(format!(
            "tensor {name} is {:?}, expected F32",
            view.dtype()
        )));
    }
    if view.shape() != shape {
        return Err(format_err(format!(
            "tensor {name} has shape {:?}, expected {shape:?}",
            view.shape()
        )));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(format_err(format!(
            "tensor {name} holds a NaN or infinite value"
        )));
    }
    Ok(values)
}

impl ExportedNet {
    /// Serialises the net.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let plan = Plan::new(&self.preset, &self.config)?;
        self.weights.check(&plan)?;
        self.weights.check_finite()?;
        crate::runtime::check_thresholds(&self.thresholds, plan.stages)?;
        if self.classes.len() != plan.classes {
            return Err(Error::config(
                "classes",
                format!("{} names for {} classes", self.classes.len(), plan.classes),
            ));
        }
        let mut t: Vec<Entry> = Vec::new();
        for (layer, (w, a)) in plan.layers().iter().zip(self.weights.params()) {
            let n = layer.out_channels();
            if !layer.bias && (a[..n].iter().any(|&v| v != 1.0) || a[n..].iter().any(|&v| v != 0.0))
            {
                return Err(Error::config(
                    layer.name.clone(),
                    "has no BN and no bias: its affine must be the identity",
                ));
            }
            for s in layer.stored_stages() {
                let piece = layer.cut(s, w, a);
                t.push((piece.name, piece.shape, piece.weight));
                if let Some(bias) = piece.bias {
                    t.push((layer.bias_name(s), vec![bias.len()], bias));
                }
            }
        }
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT_NAME.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ("preset".to_string(), to_json(&self.preset)?),
            ("config".to_string(), to_json(&self.config)?),
            ("thresholds".to_string(), to_json(&self.thresholds)?),
            ("classes".to_string(), to_json(&self.classes)?),
            ("operating_points".to_string(), to_json(&self.operating)?),
        ]);
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = t
            .into_iter()
            .map(|(n, shape, v)| (n, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views = bytes
            .iter()
            .map(|(n, shape, b)| {
                TensorView::new(Dtype::F32, shape.clone(), b).map(|v| (n.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format_err(e.to_string()))?;
        safetensors::serialize(views, Some(metadata)).map_err(|e| format_err(e.to_string()))
    }

    /// Parses and validates a net.
    ///
    /// Every size the file asks for is bounded before anything is allocated for it: the preset's
    /// limits, the activations of one image ([`crate::space::MAX_ACTIVATION_FLOATS`]), every
    /// tensor's shape against the plan; the operating points must match the net's MACs.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.starts_with(b"ENAS4DCK") || bytes.starts_with(b"ENAS4DK2") {
            return Err(format_err(
                "this is a supernet or training checkpoint, not an exported net: `enas4d eval` \
                 measures its subnets, `enas4d export` writes an exported net from it",
            ));
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| format_err(format!("not a safetensors file: {e}")))?;
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| format_err(e.to_string()))?;
        let meta = header
            .metadata()
            .clone()
            .ok_or_else(|| format_err("no metadata: not an enas4d model"))?;
        let field = |key: &str| {
            meta.get(key)
                .ok_or_else(|| format_err(format!("metadata has no {key:?}")))
        };
        if field("format")? != FORMAT_NAME {
            return Err(format_err(format!(
                "format {:?} is not {FORMAT_NAME:?}",
                field("format")?
            )));
        }
        let version = field("format_version")?;
        if version != &FORMAT_VERSION.to_string() {
            return Err(format_err(format!(
                "format version {version} is not supported (this build reads {FORMAT_VERSION})"
            )));
        }
        let parse = |key: &str| -> Result<serde_json::Value> {
            serde_json::from_str(field(key)?)
                .map_err(|e| format_err(format!("metadata {key:?}: {e}")))
        };
        let preset: Preset = serde_json::from_value(parse("preset")?)
            .map_err(|e| format_err(format!("preset: {e}")))?;
        let preset = preset.validated()?;
        let config: SubnetConfig = serde_json::from_value(parse("config")?)
            .map_err(|e| format_err(format!("config: {e}")))?;
        let thresholds: Vec<f32> = serde_json::from_value(parse("thresholds")?)
            .map_err(|e| format_err(format!("thresholds: {e}")))?;
        let classes: Vec<String> = serde_json::from_value(parse("classes")?)
            .map_err(|e| format_err(format!("classes: {e}")))?;
        let operating: Vec<Operating> = match meta.get("operating_points") {
            Some(_) => serde_json::from_value(parse("operating_points")?)
                .map_err(|e| format_err(format!("operating_points: {e}")))?,
            None => Vec::new(),
        };
        let plan = Plan::new(&preset, &config)?;
        let cum_macs = crate::space::count(&preset, &config)?.cum_macs;
        for (i, p) in operating.iter().enumerate() {
            crate::runtime::check_thresholds(&p.thresholds, plan.stages)?;
            check_operating(p, &cum_macs)
                .map_err(|e| format_err(format!("operating_points[{i}]: {e}")))?;
        }
        crate::runtime::check_thresholds(&thresholds, plan.stages)?;
        if classes.len() != plan.classes {
            return Err(format_err(format!(
                "{} class names for {} classes",
                classes.len(),
                plan.classes
            )));
        }
        let mut count = 0usize;
        let mut params = Vec::with_capacity(plan.layers().len());
        for layer in plan.layers() {
            let (mut w, mut a) = layer.empty();
            for s in layer.stored_stages() {
                let shape = layer.stage_shape(s);
                let weight = get(&st, &layer.weight_name(s), &shape)?;
                let bias = if layer.bias {
                    count += 1;
                    Some(get(&st, &layer.bias_name(s), &shape[..1])?)
                } else {
                    None
                };
                count += 1;
                let piece = Piece {
                    name: layer.weight_name(s),
                    shape,
                    weight,
                    bias,
                };
                layer.paste(s, &piece, &mut w, &mut a);
            }
            params.push((w, a));
        }
        if st.len() != count {
            return Err(format_err(format!(
                "{} tensors in the file, the config explains {count}",
                st.len()
            )));
        }
        let weights = NetWeights::from_params(&plan, params)?;
        Ok(ExportedNet {
            preset,
            config,
            thresholds,
            classes,
            weights,
            operating,
        })
    }

    /// Writes the net to `path` atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::atomic::write_atomic(path, &self.to_bytes()?)
    }

    /// Reads and validates a net from `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes)
    }

    /// Number of stages (exits) S.
    pub fn stages(&self) -> usize {
        self.config.p.len() + 1
    }

    /// The exit thresholds `choice` means for this net (its stored ones, one for every exit,
    /// one per exit, or its best operating point within a budget), checked.
    pub fn thresholds_for(&self, choice: &ThresholdChoice) -> Result<Vec<f32>> {
        choice.resolve(self.stages(), &self.thresholds, &self.operating)
    }

    /// The name of class `index` (its number when the file names fewer classes).
    pub fn label(&self, index: usize) -> String {
        self.classes
            .get(index)
            .cloned()
            .unwrap_or_else(|| index.to_string())
    }
}

/// JSON encoding of a metadata value.
fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| format_err(e.to_string()))
}
/// An operating point that the net's MACs can produce: one share per exit, each in [0, 1],
/// summing to 1, accuracy in [0, 1], and the average MACs Σ share_s · cum_macs[s] (0.1 %).
fn check_operating(p: &Operating, cum_macs: &[u64]) -> std::result::Result<(), String> {
    if p.exit_shares.len() != cum_macs.len() {
        return Err(format!(
            "{} exit shares for {} exits",
            p.exit_shares.len(),
            cum_macs.len()
        ));
    }
    let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
    if !unit(p.accuracy) || !p.exit_shares.iter().all(|&x| unit(x)) {
        return Err("accuracy and exit shares must lie in [0, 1]".into());
    }
    if (p.exit_shares.iter().sum::<f64>() - 1.0).abs() > 1e-3 {
        return Err("exit shares do not sum to 1".into());
    }
    let macs: f64 = p
        .exit_shares
        .iter()
        .zip(cum_macs)
        .map(|(s, &m)| s * m as f64)
        .sum();
    if !(p.avg_macs.is_finite() && (p.avg_macs - macs).abs() <= 1e-3 * macs.max(1.0)) {
        return Err(format!(
            "average MACs {} do not match this net ({macs:.0} for these exit shares)",
            p.avg_macs
        ));
    }
    Ok(())
}
