//! Upload, dispatch and asynchronous readback.

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::pipelines::Kernel;
use crate::error::{Error, Result};

/// Threads per workgroup of the one-dimensional kernels (must match the shaders).
pub const LINEAR_WORKGROUP: u32 = 256;

impl GpuContext {
    /// A storage buffer holding `data` (at least 4 bytes, as bindings cannot be empty).
    pub fn upload_f32(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        self.upload_bytes(label, bytemuck::cast_slice(data))
    }

    /// A storage buffer holding `data`.
    pub fn upload_u32(&self, label: &str, data: &[u32]) -> wgpu::Buffer {
        self.upload_bytes(label, bytemuck::cast_slice(data))
    }

    fn upload_bytes(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let contents: &[u8] = if bytes.is_empty() { &[0; 4] } else { bytes };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// An uninitialised (zeroed) storage buffer of `len` 4-byte elements.
    pub fn storage(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A uniform buffer holding `params`.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, params: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// Records one dispatch of `kernel` with `bindings` as bindings 0, 1, … of group 0.
    pub fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        kernel: Kernel,
        bindings: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) {
        let pipeline = self.pipelines.get(&self.device, kernel);
        let entries: Vec<wgpu::BindGroupEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.file()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(kernel.file()),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    }

    /// Workgroup counts covering `threads` invocations of a one-dimensional kernel, folded into
    /// two dimensions when one would exceed the per-dimension limit. The shaders recover the
    /// linear index as `id.x + id.y · num_workgroups.x · LINEAR_WORKGROUP`.
    pub fn linear_groups(&self, threads: usize) -> [u32; 3] {
        let max = self.adapter().limits.max_compute_workgroups_per_dimension;
        linear_groups_within(threads, max)
    }

    /// Workgroup counts for one workgroup per row, folded into two dimensions when needed; the
    /// shaders recover the row as `id.x + id.y · num_workgroups.x`.
    pub fn row_groups(&self, rows: usize) -> [u32; 3] {
        self.linear_groups(rows * LINEAR_WORKGROUP as usize)
    }

    /// A new command encoder.
    pub fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("enas4d"),
            })
    }

    /// Submits recorded work.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.queue.submit(Some(encoder.finish()));
    }

    /// Copies `buffer` back to the host. Awaits the map without blocking (WebGPU-safe).
    pub async fn read_f32(&self, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buffer).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Copies a `u32` buffer back to the host.
    pub async fn read_u32(&self, buffer: &wgpu::Buffer) -> Result<Vec<u32>> {
        let bytes = self.read_bytes(buffer).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    async fn read_bytes(&self, buffer: &wgpu::Buffer) -> Result<Vec<u8>> {
        let size = buffer.size();
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.encoder();
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.submit(encoder);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                let _ = tx.send(result);
            });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Readback(e.to_string()))?;
        rx.await
            .map_err(|_| Error::Readback("the map callback was dropped".into()))?
            .map_err(|e| Error::Readback(e.to_string()))?;
        let bytes = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Readback(e.to_string()))?;
            view.to_vec()
        };
        staging.unmap();
        self.take_error()?;
        Ok(bytes)
    }
}

/// Workgroup counts of [`LINEAR_WORKGROUP`] threads covering `threads` threads, folded into
/// two dimensions when one would exceed `max` workgroups.
pub(crate) fn linear_groups_within(threads: usize, max: u32) -> [u32; 3] {
    let groups = threads.div_ceil(LINEAR_WORKGROUP as usize).max(1);
    let max = max.max(1) as usize;
    if groups <= max {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(max);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}
