//! Stage masks as tensors, built once per cut pattern and cached.

use std::collections::HashMap;

use burn::tensor::{Device, Tensor, TensorData};

use crate::space::StageCuts;

/// `[O, I]` block-lower-triangular mask: `M[o, k] = 1` iff input channel k belongs to a stage
/// ≤ the stage of output channel o (DESIGN §2).
pub fn causal_mask(out: &StageCuts, inp: &StageCuts) -> Vec<f32> {
    let (o_n, i_n) = (out.width() as usize, inp.width() as usize);
    let mut m = vec![0.0; o_n * i_n];
    for o in 0..o_n {
        let end = inp.end(out.stage_of(o)) as usize;
        m[o * i_n..o * i_n + end].fill(1.0);
    }
    m
}

/// `[C]` mask: 1 on the channels of the stages where the block runs.
pub fn channel_mask(cuts: &StageCuts, active: &[bool]) -> Vec<f32> {
    (0..cuts.width() as usize)
        .map(|c| f32::from(u8::from(active[cuts.stage_of(c)])))
        .collect()
}

/// Mask tensors on one device, keyed by their cut points.
#[derive(Debug)]
pub struct MaskCache {
    device: Device,
    causal: HashMap<(Vec<u32>, Vec<u32>), Tensor<2>>,
    channel: HashMap<(Vec<u32>, Vec<bool>), Tensor<1>>,
}

impl MaskCache {
    /// An empty cache for tensors on `device`.
    pub fn new(device: &Device) -> Self {
        MaskCache {
            device: device.clone(),
            causal: HashMap::new(),
            channel: HashMap::new(),
        }
    }

    /// The device masks are made on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The causal mask of a layer, `None` when it is dense (one stage).
    pub fn causal(&mut self, out: &StageCuts, inp: &StageCuts) -> Option<Tensor<2>> {
        if out.stages() == 1 {
            return None;
        }
        let key = (out.points().to_vec(), inp.points().to_vec());
        let device = &self.device;
        Some(
            self.causal
                .entry(key)
                .or_insert_with(|| {
                    let shape = [out.width() as usize, inp.width() as usize];
                    Tensor::from_data(TensorData::new(causal_mask(out, inp), shape), device)
                })
                .clone(),
        )
    }

    /// The channel mask of a block's axis, `None` when the block runs in every stage.
    pub fn channel(&mut self, cuts: &StageCuts, active: &[bool]) -> Option<Tensor<1>> {
        if active.iter().all(|a| *a) {
            return None;
        }
        let key = (cuts.points().to_vec(), active.to_vec());
        let device = &self.device;
        Some(
            self.channel
                .entry(key)
                .or_insert_with(|| {
                    let shape = [cuts.width() as usize];
                    Tensor::from_data(TensorData::new(channel_mask(cuts, active), shape), device)
                })
                .clone(),
        )
    }
}
