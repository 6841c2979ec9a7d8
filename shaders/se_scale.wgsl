// Squeeze-excite's last step: y[b, c, h, w] = x[b, c, h, w] · gate[b, c], over the planes
// offset .. offset + total / size.

struct Params {
    total: u32,
    size: u32,
    offset: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    if (idx >= p.total) {
        return;
    }
    let at = p.offset * p.size + idx;
    y[at] = x[at] * gate[at / p.size];
}
