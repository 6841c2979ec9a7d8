//! Softmax with confidence and arg-max (`shaders/softmax.wgsl`, DESIGN §2 exits).
//!
//! Per row of logits: probabilities, the confidence (maximum probability) and the class (first
//! index of the maximum logit).

use bytemuck::{Pod, Zeroable};

use super::{check_buffer, check_len, to_u32};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Kernel};

/// Softmax output of a batch of logits.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxOutput {
    /// Probabilities `[rows, classes]`.
    pub probs: Vec<f32>,
    /// Maximum probability per row.
    pub confidence: Vec<f32>,
    /// Arg-max per row.
    pub class: Vec<u32>,
}

/// The reference softmax (f64).
pub fn softmax_reference(rows: usize, classes: usize, logits: &[f32]) -> Result<SoftmaxOutput> {
    if classes == 0 {
        return Err(Error::config("softmax.classes", "no classes"));
    }
    check_len("softmax", "logits", logits.len(), rows * classes)?;
    let mut out = SoftmaxOutput {
        probs: Vec::with_capacity(rows * classes),
        confidence: vec![],
        class: vec![],
    };
    for row in logits.chunks_exact(classes) {
        let (mut arg, mut top) = (0usize, row[0]);
        for (i, &v) in row.iter().enumerate().skip(1) {
            if v > top {
                top = v;
                arg = i;
            }
        }
        let sum: f64 = row
            .iter()
            .map(|&v| (f64::from(v) - f64::from(top)).exp())
            .sum();
        out.probs.extend(
            row.iter()
                .map(|&v| ((f64::from(v) - f64::from(top)).exp() / sum) as f32),
        );
        out.confidence.push((1.0 / sum) as f32);
        out.class.push(arg as u32);
    }
    Ok(out)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    classes: u32,
    pad: [u32; 2],
}

/// Records the softmax into `probs` `[rows, classes]`, `confidence` `[rows]` (f32) and `class`
/// `[rows]` (u32).
#[allow(clippy::too_many_arguments)]
pub fn encode_softmax(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    rows: usize,
    classes: usize,
    logits: &wgpu::Buffer,
    probs: &wgpu::Buffer,
    confidence: &wgpu::Buffer,
    class: &wgpu::Buffer,
) -> Result<()> {
    if classes == 0 {
        return Err(Error::config("softmax.classes", "no classes"));
    }
    check_buffer("softmax", "logits", logits, rows * classes)?;
    check_buffer("softmax", "probs", probs, rows * classes)?;
    check_buffer("softmax", "confidence", confidence, rows)?;
    check_buffer("softmax", "class", class, rows)?;
    to_u32("logits", rows * classes)?;
    let params = Params {
        rows: to_u32("rows", rows)?,
        classes: to_u32("classes", classes)?,
        pad: [0; 2],
    };
    let uniform = ctx.uniform("softmax params", &params);
    ctx.dispatch(
        encoder,
        Kernel::Softmax,
        &[logits, probs, confidence, class, &uniform],
        ctx.row_groups(rows),
    );
    Ok(())
}

crate::ops::wgsl_mirror_tests! {
    params_mirror_the_wgsl: Params = crate::gpu::Kernel::Softmax.source(),
        [rows, classes, pad];
}
