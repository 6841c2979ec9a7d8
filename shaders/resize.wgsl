// Bilinear resize of NCHW planes with half-pixel centres (align_corners = false): source
// coordinate (o + ½) · in / out − ½, clamped at 0 and at the last row / column.

struct Params {
    planes: u32,
    in_height: u32,
    in_width: u32,
    out_height: u32,
    out_width: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn source(o: u32, n_in: u32, n_out: u32) -> vec3<f32> {
    let s = max((f32(o) + 0.5) * f32(n_in) / f32(n_out) - 0.5, 0.0);
    let lo = min(u32(floor(s)), n_in - 1u);
    let hi = min(lo + 1u, n_in - 1u);
    return vec3<f32>(f32(lo), f32(hi), s - f32(lo));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    if (idx >= p.planes * p.out_height * p.out_width) {
        return;
    }
    let ox = idx % p.out_width;
    let t = idx / p.out_width;
    let oy = t % p.out_height;
    let plane = t / p.out_height;
    let sy = source(oy, p.in_height, p.out_height);
    let sx = source(ox, p.in_width, p.out_width);
    let base = plane * p.in_height * p.in_width;
    let r0 = base + u32(sy.x) * p.in_width;
    let r1 = base + u32(sy.y) * p.in_width;
    let top = mix(x[r0 + u32(sx.x)], x[r0 + u32(sx.y)], sx.z);
    let bottom = mix(x[r1 + u32(sx.x)], x[r1 + u32(sx.y)], sx.z);
    y[idx] = mix(top, bottom, sy.z);
}
