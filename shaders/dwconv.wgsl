// Depthwise k×k conv with a kernel size per stage (DESIGN §1, §2), stride 1 or 2, padding
// k/2, fused folded BN (scale, shift) and activation. NCHW; one thread per output element.
// Channel c of stage s uses the k_s × k_s kernel stored row-major at w[c · w_stride ..].
// Channels of an inactive stage (bit s of `active` clear) are 0.

struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    out_height: u32,
    out_width: u32,
    stride: u32,
    stages: u32,
    act: u32,
    w_stride: u32,
    active_mask: u32,
    pad0: u32,
    cuts: array<vec4<u32>, 2>,
    kernels: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn stage_of(c: u32) -> u32 {
    var s = 0u;
    while (s + 1u < p.stages && c >= p.cuts[(s + 1u) / 4u][(s + 1u) % 4u]) {
        s = s + 1u;
    }
    return s;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    if (idx >= p.batch * p.channels * p.out_height * p.out_width) {
        return;
    }
    let ox = idx % p.out_width;
    let t = idx / p.out_width;
    let oy = t % p.out_height;
    let plane = t / p.out_height;
    let c = plane % p.channels;
    let s = stage_of(c);
    if (((p.active_mask >> s) & 1u) == 0u) {
        y[idx] = 0.0;
        return;
    }
    let k = p.kernels[s];
    let pad = i32(k / 2u);
    let base = plane * p.height * p.width;
    let wbase = c * p.w_stride;
    var acc = 0.0;
    for (var ky = 0u; ky < k; ky++) {
        let iy = i32(oy * p.stride + ky) - pad;
        if (iy < 0 || iy >= i32(p.height)) {
            continue;
        }
        for (var kx = 0u; kx < k; kx++) {
            let ix = i32(ox * p.stride + kx) - pad;
            if (ix < 0 || ix >= i32(p.width)) {
                continue;
            }
            acc = fma(w[wbase + ky * k + kx], x[base + u32(iy) * p.width + u32(ix)], acc);
        }
    }
    y[idx] = activate(acc * affine[c] + affine[p.channels + c], p.act);
}
