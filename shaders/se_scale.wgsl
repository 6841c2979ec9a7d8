// Squeeze-excite's last step: y[b, c, h, w] = x[b, c, h, w] · gate[b, c], over channels
// offset .. offset + len of every sample of a [batch, total, size] layout (count = batch · len
// · size elements).

struct Params {
    count: u32,
    size: u32,
    offset: u32,
    total: u32,
    len: u32,
    pad1: u32,
    pad2: u32,
    pad3: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    if (idx >= p.count) {
        return;
    }
    let per_sample = p.len * p.size;
    let plane = (idx / per_sample) * p.total + p.offset + (idx % per_sample) / p.size;
    let at = plane * p.size + idx % p.size;
    y[at] = x[at] * gate[plane];
}
