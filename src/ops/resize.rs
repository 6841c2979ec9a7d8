//! Bilinear resize of NCHW planes (`shaders/resize.wgsl`), half-pixel centres
//! (align_corners = false), clamped at the borders: the input resize of elastic resolution.

use bytemuck::{Pod, Zeroable};

use super::{check_buffer, check_len, to_u32};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Kernel};

/// Shapes of one resize.
#[derive(Clone, Copy, Debug)]
pub struct ResizeSpec {
    /// Planes (batch · channels).
    pub planes: usize,
    /// Input height.
    pub in_height: usize,
    /// Input width.
    pub in_width: usize,
    /// Output height.
    pub out_height: usize,
    /// Output width.
    pub out_width: usize,
}

impl ResizeSpec {
    fn validate(&self) -> Result<()> {
        if self.in_height * self.in_width * self.out_height * self.out_width == 0 {
            return Err(Error::config("resize", "empty size"));
        }
        Ok(())
    }
}

fn source(o: usize, n_in: usize, n_out: usize) -> (usize, usize, f64) {
    let s = ((o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
    let lo = (s.floor() as usize).min(n_in - 1);
    let hi = (lo + 1).min(n_in - 1);
    (lo, hi, s - lo as f64)
}

/// Three `[0, 1]` planes of `height × width` as the network's input: bilinear resize to
/// `resolution × resolution` (skipped at that size already), then scaled to [−1, 1]. Training
/// batches and inference images both go through it.
pub fn to_network_input(
    planes: Vec<f32>,
    height: usize,
    width: usize,
    resolution: usize,
) -> Result<Vec<f32>> {
    let resized = if (height, width) == (resolution, resolution) {
        planes
    } else {
        let spec = ResizeSpec {
            planes: 3,
            in_height: height,
            in_width: width,
            out_height: resolution,
            out_width: resolution,
        };
        resize_reference(&spec, &planes)?
    };
    Ok(resized.into_iter().map(|v| v * 2.0 - 1.0).collect())
}

/// The reference resize (f64).
pub fn resize_reference(spec: &ResizeSpec, x: &[f32]) -> Result<Vec<f32>> {
    spec.validate()?;
    let (ih, iw, oh, ow) = (
        spec.in_height,
        spec.in_width,
        spec.out_height,
        spec.out_width,
    );
    check_len("resize", "x", x.len(), spec.planes * ih * iw)?;
    let mut y = Vec::with_capacity(spec.planes * oh * ow);
    for plane in x.chunks_exact(ih * iw) {
        for oy in 0..oh {
            let (y0, y1, ly) = source(oy, ih, oh);
            for ox in 0..ow {
                let (x0, x1, lx) = source(ox, iw, ow);
                let at = |r: usize, c: usize| f64::from(plane[r * iw + c]);
                let top = at(y0, x0) * (1.0 - lx) + at(y0, x1) * lx;
                let bottom = at(y1, x0) * (1.0 - lx) + at(y1, x1) * lx;
                y.push((top * (1.0 - ly) + bottom * ly) as f32);
            }
        }
    }
    Ok(y)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    planes: u32,
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    pad: [u32; 3],
}

/// Records the resize.
pub fn encode_resize(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    spec: &ResizeSpec,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<()> {
    spec.validate()?;
    let ny = spec.planes * spec.out_height * spec.out_width;
    check_buffer(
        "resize",
        "x",
        x,
        spec.planes * spec.in_height * spec.in_width,
    )?;
    check_buffer("resize", "y", y, ny)?;
    to_u32("x", spec.planes * spec.in_height * spec.in_width)?;
    to_u32("y", ny)?;
    let params = Params {
        planes: spec.planes as u32,
        in_height: spec.in_height as u32,
        in_width: spec.in_width as u32,
        out_height: spec.out_height as u32,
        out_width: spec.out_width as u32,
        pad: [0; 3],
    };
    let uniform = ctx.uniform("resize params", &params);
    ctx.dispatch(
        encoder,
        Kernel::Resize,
        &[x, y, &uniform],
        ctx.linear_groups(ny),
    );
    Ok(())
}

crate::ops::wgsl_mirror_tests! {
    params_mirror_the_wgsl: Params = crate::gpu::Kernel::Resize.source(),
        [planes, in_height, in_width, out_height, out_width, pad];
}
