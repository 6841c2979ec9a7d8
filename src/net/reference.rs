//! The all-exits pass on the CPU, composed of the ops' references.

use super::pass::{all_exits, Ops};
use super::NetWeights;
use crate::error::{Error, Result};
use crate::ops::conv::{conv_reference, ConvSpec};
use crate::ops::dwconv::{dwconv_reference, DwConvSpec};
use crate::ops::gemm::{gemm_reference, GemmSpec};
use crate::ops::pool::pool_reference;
use crate::ops::se::se_scale_reference;
use crate::space::Plan;

/// Every exit's logits for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct AllExits {
    /// `logits[s]`: exit s's logits, `[batch, classes]`.
    pub logits: Vec<Vec<f32>>,
    /// Multiply-accumulates performed per image.
    pub macs: u64,
}

/// The ops' plain-Rust references.
struct Reference;

impl Ops for Reference {
    type Buf = Vec<f32>;

    fn conv(
        &mut self,
        spec: &ConvSpec,
        x: &Vec<f32>,
        w: &Vec<f32>,
        a: &Vec<f32>,
    ) -> Result<Vec<f32>> {
        conv_reference(spec, x, w, a)
    }

    fn gemm(
        &mut self,
        spec: &GemmSpec,
        x: &Vec<f32>,
        w: &Vec<f32>,
        a: &Vec<f32>,
        res: Option<&Vec<f32>>,
    ) -> Result<Vec<f32>> {
        gemm_reference(spec, x, w, a, res.map(Vec::as_slice))
    }

    fn dwconv(
        &mut self,
        spec: &DwConvSpec,
        x: &Vec<f32>,
        w: &Vec<f32>,
        a: &Vec<f32>,
    ) -> Result<Vec<f32>> {
        dwconv_reference(spec, x, w, a)
    }

    fn pool(&mut self, planes: usize, size: usize, x: &Vec<f32>) -> Result<Vec<f32>> {
        pool_reference(planes, size, x)
    }

    fn scale(&mut self, size: usize, x: &Vec<f32>, gate: &Vec<f32>) -> Result<Vec<f32>> {
        se_scale_reference(size, x, gate)
    }
}

/// Runs the whole masked network once on `images` (`[batch, 3, R, R]`, already at the
/// plan's resolution) and returns every exit's logits.
pub fn forward_reference(
    plan: &Plan,
    w: &NetWeights<Vec<f32>>,
    images: &[f32],
    batch: usize,
) -> Result<AllExits> {
    w.check(plan)?;
    let r = plan.resolution;
    if images.len() != batch * 3 * r * r {
        return Err(Error::Shape {
            op: "network",
            what: "images",
            expected: batch * 3 * r * r,
            got: images.len(),
        });
    }
    let (logits, macs) = all_exits(&mut Reference, plan, w, &images.to_vec(), batch)?;
    Ok(AllExits { logits, macs })
}
