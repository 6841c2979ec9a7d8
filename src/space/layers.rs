//! The layer list of a subnet (DESIGN §2, §6): every layer that holds weights, in execution
//! order, each knowing its stage cuts, its tensor names, its shapes, its cost and how to cut its
//! weights into the per-stage pieces a file stores. The MACs counter, the file format (both
//! directions) and the weight containers walk this one list.

use std::ops::Range;

use serde::Serialize;

use super::plan::Plan;
use super::{Activation, StageCuts};

/// Elements reserved per channel for a depthwise kernel (7 × 7) in a dense weight.
pub const DW_STRIDE: usize = 49;

/// Taps of the stem conv per output channel: 3 × 3 over the image's 3 channels.
pub const STEM_TAPS: usize = 27;

/// What a layer computes; with [`Layer::block`] it says where the layer reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LayerKind {
    /// 3×3 stride-2 conv over the image's 3 channels (which belong to every stage), BN, hswish.
    Stem,
    /// A block's 1×1 expand (BN, act) of the block input.
    Expand,
    /// A block's depthwise conv (BN, act) of the expanded input (the block input when the block
    /// does not expand): kernel `kernels[s]` for stage s's channels.
    Depthwise {
        /// Kernel size per stage.
        kernels: Vec<usize>,
        /// Stride, 1 or 2.
        stride: usize,
    },
    /// A block's SE reduce (bias, relu) of the depthwise output's global average.
    SeReduce,
    /// A block's SE expand (bias, hsigmoid): the gate the depthwise output is multiplied by.
    SeExpand,
    /// A block's 1×1 project (BN) of the depthwise output, plus the block input when
    /// `residual`. A stage the block skips passes its slice of the block input through.
    Project {
        /// Whether the block adds its input.
        residual: bool,
    },
    /// The final 1×1 expand (BN, hswish) of the last block's output, then a global average.
    FinalExpand,
    /// The feature mix: stage-causal linear (no bias, hswish) of the pooled features.
    FeatureMix,
    /// Exit `stage`'s classifier: dense over the feature channels of stages ≤ `stage`.
    Classifier {
        /// The exit (0-based).
        stage: usize,
    },
}

/// One layer that holds weights.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Layer {
    /// Tensor name prefix (`stem`, `blocks.3.expand`, `classifier`, …).
    pub name: String,
    /// What it computes.
    pub kind: LayerKind,
    /// The plan's block it belongs to (`None` for the stem and the head).
    pub block: Option<usize>,
    /// Activation after the affine.
    pub act: Activation,
    /// Output channel cuts.
    pub rows: StageCuts,
    /// Input channel cuts (= `rows` for a depthwise conv; the image's for the stem).
    pub cols: StageCuts,
    /// Output positions per image.
    pub pixels: usize,
    /// Per stage: does the layer run for that stage?
    pub active: Vec<bool>,
    /// Whether it has a bias or a folded BN shift (the feature mix has neither).
    pub bias: bool,
}

/// One stage's piece of a layer as a file stores it: the weight (BN folded) and the bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    /// Tensor name of the weight; the bias is the same name with `bias` for `weight`.
    pub name: String,
    /// Shape of the weight.
    pub shape: Vec<usize>,
    /// The weight, row-major.
    pub weight: Vec<f32>,
    /// The bias, one per output row, when the layer has one.
    pub bias: Option<Vec<f32>>,
}

impl Layer {
    /// Output channels of the dense weight (the classes for a classifier).
    pub fn out_channels(&self) -> usize {
        match self.kind {
            LayerKind::Classifier { .. } => self.classes(),
            _ => self.rows.width() as usize,
        }
    }

    fn classes(&self) -> usize {
        self.rows.width() as usize
    }

    /// Elements of one output row of the dense weight.
    pub fn row_stride(&self) -> usize {
        match &self.kind {
            LayerKind::Stem => STEM_TAPS,
            LayerKind::Depthwise { .. } => DW_STRIDE,
            LayerKind::Classifier { stage } => self.cols.end(*stage) as usize,
            _ => self.cols.width() as usize,
        }
    }

    /// Elements of the dense weight.
    pub fn weight_len(&self) -> usize {
        self.out_channels() * self.row_stride()
    }

    /// Inputs each output of the layer reads at full width (a random initialisation's fan-in).
    pub fn fan_in(&self) -> usize {
        match &self.kind {
            LayerKind::Depthwise { .. } => 25,
            _ => self.row_stride(),
        }
    }

    /// The stages the layer stores weights for: the active ones, or the classifier's own.
    pub fn stored_stages(&self) -> Vec<usize> {
        match self.kind {
            LayerKind::Classifier { stage } => vec![stage],
            _ => (0..self.active.len()).filter(|&s| self.active[s]).collect(),
        }
    }

    /// Output rows of stage s's piece.
    pub fn stage_rows(&self, s: usize) -> Range<usize> {
        match self.kind {
            LayerKind::Classifier { .. } => 0..self.classes(),
            _ => self.rows.range(s),
        }
    }

    /// Elements per output row of stage s's piece (a prefix of the dense row).
    pub fn stage_row_len(&self, s: usize) -> usize {
        match &self.kind {
            LayerKind::Stem => STEM_TAPS,
            LayerKind::Depthwise { kernels, .. } => kernels[s] * kernels[s],
            LayerKind::Classifier { stage } => self.cols.end(*stage) as usize,
            _ => self.cols.end(s) as usize,
        }
    }

    /// Shape of stage s's weight piece.
    pub fn stage_shape(&self, s: usize) -> Vec<usize> {
        let rows = self.stage_rows(s).len();
        match &self.kind {
            LayerKind::Stem => vec![rows, 3, 3, 3],
            LayerKind::Depthwise { kernels, .. } => vec![rows, kernels[s], kernels[s]],
            _ => vec![rows, self.stage_row_len(s)],
        }
    }

    /// Tensor name of stage s's weight (s counts from 1 in names).
    pub fn weight_name(&self, s: usize) -> String {
        format!("{}.s{}.weight", self.name, s + 1)
    }

    /// Tensor name of stage s's bias.
    pub fn bias_name(&self, s: usize) -> String {
        format!("{}.s{}.bias", self.name, s + 1)
    }

    /// Multiply-accumulates stage s adds per image.
    pub fn macs(&self, s: usize) -> u64 {
        (self.stage_rows(s).len() * self.stage_row_len(s) * self.pixels) as u64
    }

    /// Parameters stage s's piece stores (weight and bias).
    pub fn params(&self, s: usize) -> u64 {
        let rows = self.stage_rows(s).len();
        (rows * self.stage_row_len(s) + if self.bias { rows } else { 0 }) as u64
    }

    /// Stage s's piece of a dense weight and its affine `[scale(C), shift(C)]`, the scale
    /// folded into the weight.
    pub fn cut(&self, s: usize, weight: &[f32], affine: &[f32]) -> Piece {
        let (stride, len, n) = (
            self.row_stride(),
            self.stage_row_len(s),
            self.out_channels(),
        );
        let rows = self.stage_rows(s);
        let folded = rows
            .clone()
            .flat_map(|o| {
                weight[o * stride..][..len]
                    .iter()
                    .map(move |v| v * affine[o])
            })
            .collect();
        Piece {
            name: self.weight_name(s),
            shape: self.stage_shape(s),
            weight: folded,
            bias: self.bias.then(|| rows.map(|o| affine[n + o]).collect()),
        }
    }

    /// Writes stage s's piece into a dense weight and affine (scale 1), the inverse of
    /// [`Layer::cut`]. The piece's sizes must be those of [`Layer::stage_shape`].
    pub fn paste(&self, s: usize, piece: &Piece, weight: &mut [f32], affine: &mut [f32]) {
        let (stride, len, n) = (
            self.row_stride(),
            self.stage_row_len(s),
            self.out_channels(),
        );
        for (r, o) in self.stage_rows(s).enumerate() {
            weight[o * stride..][..len].copy_from_slice(&piece.weight[r * len..][..len]);
            affine[o] = 1.0;
            if let Some(bias) = &piece.bias {
                affine[n + o] = bias[r];
            }
        }
    }

    /// A dense weight of zeros and the identity affine, the start of [`Layer::paste`].
    pub fn empty(&self) -> (Vec<f32>, Vec<f32>) {
        let n = self.out_channels();
        let mut affine = vec![1.0; n];
        affine.extend(vec![0.0; n]);
        (vec![0.0; self.weight_len()], affine)
    }
}

impl Plan {
    /// Every layer that holds weights, in execution order: the stem; per block its expand
    /// (when it has one), depthwise conv, SE reduce and expand (when it has SE) and project;
    /// the final expand; the feature mix; one classifier per exit (`classes`: the classes'
    /// single cut).
    pub(super) fn build_layers(&self, classes: &StageCuts) -> Vec<Layer> {
        let all = vec![true; self.stages];
        let sq = |n: usize| n * n;
        let head = |kind, act, rows: &StageCuts, cols: &StageCuts, pixels| Layer {
            name: match kind {
                LayerKind::Stem => "stem",
                LayerKind::FinalExpand => "final_expand",
                LayerKind::FeatureMix => "feature_mix",
                _ => "classifier",
            }
            .into(),
            bias: kind != LayerKind::FeatureMix,
            kind,
            block: None,
            act,
            rows: rows.clone(),
            cols: cols.clone(),
            pixels,
            active: all.clone(),
        };
        let mut v = vec![head(
            LayerKind::Stem,
            Activation::Hswish,
            &self.stem_cuts,
            &self.stem_cuts,
            sq(self.stem_size()),
        )];
        for (i, b) in self.blocks.iter().enumerate() {
            let (size, out) = (sq(b.size), sq(b.out_size()));
            let layer = |kind: LayerKind, act, rows: &StageCuts, cols: &StageCuts, pixels| Layer {
                name: format!(
                    "blocks.{i}.{}",
                    match kind {
                        LayerKind::Expand => "expand",
                        LayerKind::Depthwise { .. } => "dw",
                        LayerKind::SeReduce => "se_reduce",
                        LayerKind::SeExpand => "se_expand",
                        _ => "project",
                    }
                ),
                kind,
                block: Some(i),
                act,
                rows: rows.clone(),
                cols: cols.clone(),
                pixels,
                active: b.active.clone(),
                bias: true,
            };
            let (mid, act) = (&b.mid_cuts, b.act);
            if b.expand {
                v.push(layer(LayerKind::Expand, act, mid, &b.in_cuts, size));
            }
            let dw = LayerKind::Depthwise {
                kernels: b.kernels.clone(),
                stride: b.stride,
            };
            v.push(layer(dw, act, mid, mid, out));
            if let Some(red) = &b.se_cuts {
                v.push(layer(LayerKind::SeReduce, Activation::Relu, red, mid, 1));
                v.push(layer(
                    LayerKind::SeExpand,
                    Activation::Hsigmoid,
                    mid,
                    red,
                    1,
                ));
            }
            let project = LayerKind::Project {
                residual: b.residual(),
            };
            v.push(layer(project, Activation::None, &b.out_cuts, mid, out));
        }
        let fs = sq(self.final_size());
        v.push(head(
            LayerKind::FinalExpand,
            Activation::Hswish,
            &self.final_cuts,
            self.last_cuts(),
            fs,
        ));
        v.push(head(
            LayerKind::FeatureMix,
            Activation::Hswish,
            &self.mix_cuts,
            &self.final_cuts,
            1,
        ));
        for stage in 0..self.stages {
            v.push(head(
                LayerKind::Classifier { stage },
                Activation::None,
                classes,
                &self.mix_cuts,
                1,
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Preset, SubnetConfig};

    #[test]
    fn should_cut_and_paste_every_layer_back() {
        let preset = Preset::tiny(3, 10).unwrap();
        let mut config = SubnetConfig::largest(&preset);
        config.p = vec![0.375, 0.625];
        config.kernel[0][1] = 3;
        config.depth[2][1] = 2;
        let plan = Plan::new(&preset, &config).unwrap();
        let mut seed = 1u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 + 0.5
        };
        for layer in plan.layers() {
            let (mut w, mut a) = layer.empty();
            w.iter_mut().for_each(|v| *v = next());
            a.iter_mut().for_each(|v| *v = next());
            let (mut w2, mut a2) = layer.empty();
            for s in layer.stored_stages() {
                let piece = layer.cut(s, &w, &a);
                assert_eq!(piece.weight.len(), piece.shape.iter().product::<usize>());
                assert_eq!(
                    piece.weight.len() as u64 + piece.bias.as_ref().map_or(0, |b| b.len() as u64),
                    layer.params(s)
                );
                layer.paste(s, &piece, &mut w2, &mut a2);
            }
            // Every stored element comes back with the scale folded in.
            for s in layer.stored_stages() {
                for o in layer.stage_rows(s) {
                    let (stride, len) = (layer.row_stride(), layer.stage_row_len(s));
                    for j in 0..len {
                        let want = w[o * stride + j] * a[o];
                        assert_eq!(w2[o * stride + j], want, "{} row {o}", layer.name);
                    }
                    if layer.bias {
                        assert_eq!(a2[layer.out_channels() + o], a[layer.out_channels() + o]);
                    }
                }
            }
        }
    }

    #[test]
    fn should_name_every_tensor_once() {
        let preset = Preset::tiny(3, 10).unwrap();
        let plan = Plan::new(&preset, &SubnetConfig::largest(&preset)).unwrap();
        let mut names: Vec<String> = plan
            .layers()
            .iter()
            .flat_map(|l| {
                l.stored_stages()
                    .into_iter()
                    .map(|s| l.weight_name(s))
                    .collect::<Vec<_>>()
            })
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(names.contains(&"classifier.s3.weight".to_string()));
        assert!(names.contains(&"blocks.0.dw.s1.weight".to_string()));
    }
}
