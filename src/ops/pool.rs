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
    row_offset: u32,
    pad: u32,
}

/// Records the pool of rows `row_offset .. row_offset + rows` (of x and y): one workgroup
/// per row.
#[allow(clippy::too_many_arguments)]
pub fn encode_pool(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    row_offset: usize,
    rows: usize,
    size: usize,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<()> {
    if size == 0 {
        return Err(Error::config("pool.size", "empty plane"));
    }
    let end = row_offset + rows;
    check_buffer("pool", "x", x, end * size)?;
    check_buffer("pool", "y", y, end)?;
    to_u32("x", end * size)?;
    let params = Params {
        rows: to_u32("rows", rows)?,
        size: to_u32("size", size)?,
        row_offset: to_u32("row_offset", row_offset)?,
        pad: 0,
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
