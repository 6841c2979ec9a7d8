// Depthwise k×k conv with a kernel size per stage (DESIGN §1, §2), stride 1 or 2, padding
// k/2, fused folded BN (scale, shift) and activation. NCHW; one thread per output element.
// Channel c of stage s uses the k_s × k_s kernel stored row-major at w[c · w_stride ..].
// Channels of an inactive stage (bit s of `active` clear) are 0. The channels may be the slice
// c_offset .. c_offset + channels of tensors with c_total channels (the stage-wise runtime);
// weights, affine and stage cuts are indexed within the slice.

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
    c_offset: u32,
    c_total: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
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
    let wide = (plane / p.channels) * p.c_total + p.c_offset + c;
    let at = (wide * p.out_height + oy) * p.out_width + ox;
    let s = stage_of(c);
    if (((p.active_mask >> s) & 1u) == 0u) {
        y[at] = 0.0;
        return;
    }
    let k = p.kernels[s];
    let pad = i32(k / 2u);
    let base = wide * p.height * p.width;
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
    y[at] = activate(acc * affine[c] + affine[p.channels + c], p.act);
}
