//! Global average pool (`shaders/pool.wgsl`): `[rows, size] → [rows]`, rows = batch · channels,
//! size = H · W.

use bytemuck::{Pod, Zeroable};

use super::{check_buffer, check_len, to_u32, Planes};
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, Kernel};

/// The reference pool (f64 sum).
pub fn pool_reference(rows: usize, size: usize, x: &[f32]) -> Result<Vec<f32>> {
    if size == 0 {
        return Err(Error::config("pool.size", "empty plane"));
    }
    check_len("pool", "x", x.len(), rows * size)?;
    Ok(x.chunks_exact(size)
        .map(|plane| (plane.iter().map(|&v| f64::from(v)).sum::<f64>() / size as f64) as f32)
        .collect())
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    len: u32,
    size: u32,
    offset: u32,
    total: u32,
    rows: u32,
    pad: [u32; 3],
}

/// Records the pool of `planes` of x (`[batch, total, size]`) into the same rows of y
/// (`[batch, total]`): one workgroup per row.
pub fn encode_pool(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    planes: Planes,
    size: usize,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<()> {
    if size == 0 {
        return Err(Error::config("pool.size", "empty plane"));
    }
    let end = planes.check("pool.planes")?;
    if planes.count() == 0 {
        return Ok(());
    }
    check_buffer("pool", "x", x, end * size)?;
    check_buffer("pool", "y", y, end)?;
    to_u32("x", end * size)?;
    let params = Params {
        len: to_u32("len", planes.len)?,
        size: to_u32("size", size)?,
        offset: to_u32("offset", planes.offset)?,
        total: to_u32("total", planes.total)?,
        rows: to_u32("rows", planes.count())?,
        pad: [0; 3],
    };
    let uniform = ctx.uniform("pool params", &params);
    ctx.dispatch(
        encoder,
        Kernel::Pool,
        &[x, y, &uniform],
        ctx.row_groups(planes.count()),
    );
    Ok(())
}

crate::ops::wgsl_mirror_tests! {
    params_mirror_the_wgsl: Params = crate::gpu::Kernel::Pool.source(),
        [len, size, offset, total, rows, pad];
}
