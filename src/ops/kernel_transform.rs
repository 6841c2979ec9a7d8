//! The elastic-kernel transform 7→5→3 (`shaders/kernel_transform.wgsl`, DESIGN §1).
//!
//! `k_out[c] = M · vec(centre_{k_out}(k_in[c]))`, vec row-major (index = row · k + col), M
//! indexed `[out, in]` (once-for-all's `F.linear(vec, M)`). k5 comes from k7, and k3 from the
//! transformed k5.

use bytemuck::{Pod, Zeroable};

use super::{check_buffer, check_len, to_u32};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Kernel};

/// One transform step over `channels` kernels.
#[derive(Clone, Debug)]
pub struct KernelTransformSpec {
    /// Number of channels (kernels).
    pub channels: usize,
    /// Input kernel size (7 or 5).
    pub k_in: usize,
    /// Output kernel size, k_in − 2.
    pub k_out: usize,
    /// Elements between channels in the source.
    pub src_stride: usize,
    /// Elements between channels in the destination.
    pub dst_stride: usize,
}

impl KernelTransformSpec {
    /// A packed step `k_in → k_in − 2` (strides k_in², k_out²).
    pub fn packed(channels: usize, k_in: usize) -> Self {
        let k_out = k_in.saturating_sub(2);
        KernelTransformSpec {
            channels,
            k_in,
            k_out,
            src_stride: k_in * k_in,
            dst_stride: k_out * k_out,
        }
    }

    /// Checks the spec.
    pub fn validate(&self) -> Result<()> {
        if !matches!((self.k_in, self.k_out), (7, 5) | (5, 3)) {
            return Err(Error::config(
                "kernel_transform",
                format!("{}→{} is not 7→5 or 5→3", self.k_in, self.k_out),
            ));
        }
        if self.src_stride < self.k_in * self.k_in || self.dst_stride < self.k_out * self.k_out {
            return Err(Error::config(
                "kernel_transform.stride",
                "stride below the kernel area",
            ));
        }
        Ok(())
    }

    /// Elements of src, matrix and dst.
    pub fn lens(&self) -> (usize, usize, usize) {
        let n = self.k_out * self.k_out;
        (
            self.channels * self.src_stride,
            n * n,
            self.channels * self.dst_stride,
        )
    }
}

/// The reference transform (f64 accumulation). Destination padding between channels is 0.
pub fn kernel_transform_reference(
    spec: &KernelTransformSpec,
    src: &[f32],
    matrix: &[f32],
) -> Result<Vec<f32>> {
    spec.validate()?;
    let (ns, nm, nd) = spec.lens();
    check_len("kernel_transform", "src", src.len(), ns)?;
    check_len("kernel_transform", "matrix", matrix.len(), nm)?;
    let (ki, ko) = (spec.k_in, spec.k_out);
    let n = ko * ko;
    let off = (ki - ko) / 2;
    let mut dst = vec![0f32; nd];
    for c in 0..spec.channels {
        for j in 0..n {
            let acc: f64 = (0..n)
                .map(|t| {
                    let (r, q) = (t / ko + off, t % ko + off);
                    f64::from(matrix[j * n + t]) * f64::from(src[c * spec.src_stride + r * ki + q])
                })
                .sum();
            dst[c * spec.dst_stride + j] = acc as f32;
        }
    }
    Ok(dst)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    channels: u32,
    k_in: u32,
    k_out: u32,
    src_stride: u32,
    dst_stride: u32,
    pad: [u32; 3],
}

/// Records one transform step.
pub fn encode_kernel_transform(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    spec: &KernelTransformSpec,
    src: &wgpu::Buffer,
    matrix: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Result<()> {
    spec.validate()?;
    let (ns, nm, nd) = spec.lens();
    check_buffer("kernel_transform", "src", src, ns)?;
    check_buffer("kernel_transform", "matrix", matrix, nm)?;
    check_buffer("kernel_transform", "dst", dst, nd)?;
    let params = Params {
        channels: to_u32("channels", spec.channels)?,
        k_in: spec.k_in as u32,
        k_out: spec.k_out as u32,
        src_stride: to_u32("src_stride", spec.src_stride)?,
        dst_stride: to_u32("dst_stride", spec.dst_stride)?,
        pad: [0; 3],
    };
    let uniform = ctx.uniform("kernel_transform params", &params);
    let threads = spec.channels * spec.k_out * spec.k_out;
    ctx.dispatch(
        encoder,
        Kernel::KernelTransform,
        &[src, matrix, dst, &uniform],
        ctx.linear_groups(threads),
    );
    Ok(())
}

crate::ops::wgsl_mirror_tests! {
    params_mirror_the_wgsl: Params = crate::gpu::Kernel::KernelTransform.source(),
        [channels, k_in, k_out, src_stride, dst_stride, pad];
}
