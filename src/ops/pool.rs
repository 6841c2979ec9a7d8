//! Global average pool (`shaders/pool.wgsl`): `[rows, size] → [rows]`, rows = batch · channels,
//! size = H · W.

use bytemuck::{Pod, Zeroable};

use super::{check_buffer, check_len, to_u32};
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
    rows: u32,
    size: u32,
    pad: [u32; 2],
}

/// Records the pool: one workgroup per row.
pub fn encode_pool(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    rows: usize,
    size: usize,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<()> {
    if size == 0 {
        return Err(Error::config("pool.size", "empty plane"));
    }
    check_buffer("pool", "x", x, rows * size)?;
    check_buffer("pool", "y", y, rows)?;
    to_u32("x", rows * size)?;
    let params = Params {
        rows: to_u32("rows", rows)?,
        size: to_u32("size", size)?,
        pad: [0; 2],
    };
    let uniform = ctx.uniform("pool params", &params);
    ctx.dispatch(
        encoder,
        Kernel::Pool,
        &[x, y, &uniform],
        ctx.row_groups(rows),
    );
    Ok(())
}
