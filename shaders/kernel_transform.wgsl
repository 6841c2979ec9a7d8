// Elastic-kernel transform (DESIGN §1): dst[c] = M · vec(centre_{k_out}(src[c])), with vec
// row-major (index = row · k + col) and M indexed [out, in]. Run 7→5, then 5→3 on the result.

struct Params {
    channels: u32,
    k_in: u32,
    k_out: u32,
    src_stride: u32,
    dst_stride: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> matrix: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    let n = p.k_out * p.k_out;
    if (idx >= p.channels * n) {
        return;
    }
    let c = idx / n;
    let j = idx % n;
    let off = (p.k_in - p.k_out) / 2u;
    var acc = 0.0;
    for (var t = 0u; t < n; t++) {
        let r = t / p.k_out + off;
        let q = t % p.k_out + off;
        acc = fma(matrix[j * n + t], src[c * p.src_stride + r * p.k_in + q], acc);
    }
    dst[c * p.dst_stride + j] = acc;
}
