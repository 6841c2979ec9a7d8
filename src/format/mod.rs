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

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::error::{Error, Result};
use crate::net::NetWeights;
use crate::ops::mbconv::{MbConvWeights, DW_STRIDE};
use crate::ops::se::SeWeights;
use crate::runtime::thresholds::{Operating, ThresholdChoice};
use crate::space::{Plan, Preset, StageCuts, SubnetConfig};

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

/// Writes the lower-triangular stage blocks of a 1×1 / linear layer, BN folded.
fn put_pointwise(
    out: &mut Vec<Entry>,
    name: &str,
    (w, affine): (&[f32], &[f32]),
    rows: &StageCuts,
    cols: &StageCuts,
    active: &[bool],
    bias: bool,
) {
    let (o_n, i_n) = (rows.width() as usize, cols.width() as usize);
    for s in (0..rows.stages()).filter(|&s| active[s]) {
        let lim = cols.end(s) as usize;
        let range = rows.range(s);
        let mut weight = Vec::with_capacity(range.len() * lim);
        for o in range.clone() {
            weight.extend(w[o * i_n..][..lim].iter().map(|v| v * affine[o]));
        }
        out.push((
            format!("{name}.s{}.weight", s + 1),
            vec![range.len(), lim],
            weight,
        ));
        if bias {
            out.push((
                format!("{name}.s{}.bias", s + 1),
                vec![range.len()],
                range.map(|o| affine[o_n + o]).collect(),
            ));
        }
    }
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

/// Reads a 1×1 / linear layer's stage blocks back into a dense `[rows, cols]` weight (zeros
/// where nothing is stored) and an affine `[1…, bias…]`.
fn get_pointwise(
    st: &SafeTensors,
    name: &str,
    rows: &StageCuts,
    cols: &StageCuts,
    active: &[bool],
    bias: bool,
    count: &mut usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (o_n, i_n) = (rows.width() as usize, cols.width() as usize);
    let mut blocks = Vec::new();
    for s in (0..rows.stages()).filter(|&s| active[s]) {
        let lim = cols.end(s) as usize;
        let range = rows.range(s);
        let w = get(
            st,
            &format!("{name}.s{}.weight", s + 1),
            &[range.len(), lim],
        )?;
        let b = if bias {
            Some(get(st, &format!("{name}.s{}.bias", s + 1), &[range.len()])?)
        } else {
            None
        };
        *count += 1 + usize::from(bias);
        blocks.push((s, w, b));
    }
    let mut w = vec![0f32; o_n * i_n];
    let mut affine = vec![1f32; o_n];
    affine.extend(vec![0f32; o_n]);
    for (s, bw, bb) in blocks {
        let lim = cols.end(s) as usize;
        for (r, o) in rows.range(s).enumerate() {
            w[o * i_n..][..lim].copy_from_slice(&bw[r * lim..][..lim]);
            if let Some(bb) = &bb {
                affine[o_n + o] = bb[r];
            }
        }
    }
    Ok((w, affine))
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
        let w = &self.weights;
        let (fm_w, fm_a) = &w.feature_mix;
        let m = plan.mix_cuts.width() as usize;
        if fm_a[..m].iter().any(|&v| v != 1.0) || fm_a[m..].iter().any(|&v| v != 0.0) {
            return Err(Error::config(
                "feature_mix",
                "has no BN and no bias: its affine must be the identity",
            ));
        }
        let all = vec![true; plan.stages];
        let mut t: Vec<Entry> = Vec::new();
        // Stem: 3 × 3 × 3 per output row; the image belongs to every stage.
        let c0 = plan.stem_cuts.width() as usize;
        for s in 0..plan.stages {
            let range = plan.stem_cuts.range(s);
            let weight = range
                .clone()
                .flat_map(|o| {
                    w.stem.0[o * 27..][..27]
                        .iter()
                        .map(move |v| v * w.stem.1[o])
                })
                .collect();
            t.push((
                format!("stem.s{}.weight", s + 1),
                vec![range.len(), 3, 3, 3],
                weight,
            ));
            t.push((
                format!("stem.s{}.bias", s + 1),
                vec![range.len()],
                range.map(|o| w.stem.1[c0 + o]).collect(),
            ));
        }
        for (i, (b, bw)) in plan.blocks.iter().zip(&w.blocks).enumerate() {
            let name = format!("blocks.{i}");
            let mid = b.mid_cuts.width() as usize;
            if let Some((ew, ea)) = &bw.expand {
                put_pointwise(
                    &mut t,
                    &format!("{name}.expand"),
                    (ew, ea),
                    &b.mid_cuts,
                    &b.in_cuts,
                    &b.active,
                    true,
                );
            }
            for s in (0..plan.stages).filter(|&s| b.active[s]) {
                let k = b.kernels[s];
                let range = b.mid_cuts.range(s);
                let (dw, da) = &bw.dw;
                let weight = range
                    .clone()
                    .flat_map(|c| dw[c * DW_STRIDE..][..k * k].iter().map(move |v| v * da[c]))
                    .collect();
                t.push((
                    format!("{name}.dw.s{}.weight", s + 1),
                    vec![range.len(), k, k],
                    weight,
                ));
                t.push((
                    format!("{name}.dw.s{}.bias", s + 1),
                    vec![range.len()],
                    range.map(|c| da[mid + c]).collect(),
                ));
            }
            if let (Some(se), Some(red)) = (&bw.se, &b.se_cuts) {
                put_pointwise(
                    &mut t,
                    &format!("{name}.se_reduce"),
                    (&se.reduce_w, &se.reduce_affine),
                    red,
                    &b.mid_cuts,
                    &b.active,
                    true,
                );
                put_pointwise(
                    &mut t,
                    &format!("{name}.se_expand"),
                    (&se.expand_w, &se.expand_affine),
                    &b.mid_cuts,
                    red,
                    &b.active,
                    true,
                );
            }
            put_pointwise(
                &mut t,
                &format!("{name}.project"),
                (&bw.project.0, &bw.project.1),
                &b.out_cuts,
                &b.mid_cuts,
                &b.active,
                true,
            );
        }
        put_pointwise(
            &mut t,
            "final_expand",
            (&w.final_expand.0, &w.final_expand.1),
            &plan.final_cuts,
            plan.last_cuts(),
            &all,
            true,
        );
        put_pointwise(
            &mut t,
            "feature_mix",
            (fm_w, fm_a),
            &plan.mix_cuts,
            &plan.final_cuts,
            &all,
            false,
        );
        for (s, (cw, cb)) in w.classifiers.iter().enumerate() {
            let c = plan.mix_cuts.end(s) as usize;
            let k = plan.classes;
            let weight = (0..k)
                .flat_map(|o| cw[o * c..][..c].iter().map(move |v| v * cb[o]))
                .collect();
            t.push((format!("classifier.s{}.weight", s + 1), vec![k, c], weight));
            t.push((
                format!("classifier.s{}.bias", s + 1),
                vec![k],
                cb[k..].to_vec(),
            ));
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
        let all = vec![true; plan.stages];
        let mut count = 0usize;
        let c0 = plan.stem_cuts.width() as usize;
        let mut stem_w = vec![0f32; c0 * 27];
        let mut stem_a = vec![1f32; c0];
        stem_a.extend(vec![0f32; c0]);
        for s in 0..plan.stages {
            let range = plan.stem_cuts.range(s);
            let w = get(
                &st,
                &format!("stem.s{}.weight", s + 1),
                &[range.len(), 3, 3, 3],
            )?;
            let b = get(&st, &format!("stem.s{}.bias", s + 1), &[range.len()])?;
            count += 2;
            stem_w[range.start * 27..range.end * 27].copy_from_slice(&w);
            stem_a[c0 + range.start..c0 + range.end].copy_from_slice(&b);
        }
        let mut blocks = Vec::with_capacity(plan.blocks.len());
        for (i, b) in plan.blocks.iter().enumerate() {
            let name = format!("blocks.{i}");
            let mid = b.mid_cuts.width() as usize;
            let expand = if b.expand {
                Some(get_pointwise(
                    &st,
                    &format!("{name}.expand"),
                    &b.mid_cuts,
                    &b.in_cuts,
                    &b.active,
                    true,
                    &mut count,
                )?)
            } else {
                None
            };
            let mut dw = vec![0f32; mid * DW_STRIDE];
            let mut da = vec![1f32; mid];
            da.extend(vec![0f32; mid]);
            for s in (0..plan.stages).filter(|&s| b.active[s]) {
                let k = b.kernels[s];
                let range = b.mid_cuts.range(s);
                let w = get(
                    &st,
                    &format!("{name}.dw.s{}.weight", s + 1),
                    &[range.len(), k, k],
                )?;
                let bias = get(&st, &format!("{name}.dw.s{}.bias", s + 1), &[range.len()])?;
                count += 2;
                for (r, c) in range.clone().enumerate() {
                    dw[c * DW_STRIDE..][..k * k].copy_from_slice(&w[r * k * k..][..k * k]);
                }
                da[mid + range.start..mid + range.end].copy_from_slice(&bias);
            }
            let se = match &b.se_cuts {
                Some(red) => {
                    let (reduce_w, reduce_affine) = get_pointwise(
                        &st,
                        &format!("{name}.se_reduce"),
                        red,
                        &b.mid_cuts,
                        &b.active,
                        true,
                        &mut count,
                    )?;
                    let (expand_w, expand_affine) = get_pointwise(
                        &st,
                        &format!("{name}.se_expand"),
                        &b.mid_cuts,
                        red,
                        &b.active,
                        true,
                        &mut count,
                    )?;
                    Some(SeWeights {
                        reduce_w,
                        reduce_affine,
                        expand_w,
                        expand_affine,
                    })
                }
                None => None,
            };
            let project = get_pointwise(
                &st,
                &format!("{name}.project"),
                &b.out_cuts,
                &b.mid_cuts,
                &b.active,
                true,
                &mut count,
            )?;
            blocks.push(MbConvWeights {
                expand,
                dw: (dw, da),
                se,
                project,
            });
        }
        let final_expand = get_pointwise(
            &st,
            "final_expand",
            &plan.final_cuts,
            plan.last_cuts(),
            &all,
            true,
            &mut count,
        )?;
        let feature_mix = get_pointwise(
            &st,
            "feature_mix",
            &plan.mix_cuts,
            &plan.final_cuts,
            &all,
            false,
            &mut count,
        )?;
        let mut classifiers = Vec::with_capacity(plan.stages);
        for s in 0..plan.stages {
            let (k, c) = (plan.classes, plan.mix_cuts.end(s) as usize);
            let w = get(&st, &format!("classifier.s{}.weight", s + 1), &[k, c])?;
            let mut affine = vec![1f32; k];
            affine.extend(get(&st, &format!("classifier.s{}.bias", s + 1), &[k])?);
            count += 2;
            classifiers.push((w, affine));
        }
        if st.len() != count {
            return Err(format_err(format!(
                "{} tensors in the file, the config explains {count}",
                st.len()
            )));
        }
        let weights = NetWeights {
            stem: (stem_w, stem_a),
            blocks,
            final_expand,
            feature_mix,
            classifiers,
        };
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
