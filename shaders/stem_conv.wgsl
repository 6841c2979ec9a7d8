// Dense k×k conv over few input channels (the stem: 3×3, stride 2, 3 → 16), padding k/2,
// fused folded BN (scale, shift) and activation. NCHW; weights [out][in][k][k].
// The image's channels belong to every stage, so each output channel is independent; the
// outputs may be the slice o_offset .. o_offset + out_channels of a tensor with o_total channels
// (weights and affine indexed within the slice).

struct Params {
    batch: u32,
    in_channels: u32,
    height: u32,
    width: u32,
    out_channels: u32,
    out_height: u32,
    out_width: u32,
    kernel: u32,
    stride: u32,
    act: u32,
    o_offset: u32,
    o_total: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    if (idx >= p.batch * p.out_channels * p.out_height * p.out_width) {
        return;
    }
    let ox = idx % p.out_width;
    let t = idx / p.out_width;
    let oy = t % p.out_height;
    let t2 = t / p.out_height;
    let o = t2 % p.out_channels;
    let b = t2 / p.out_channels;
    let at = ((b * p.o_total + p.o_offset + o) * p.out_height + oy) * p.out_width + ox;
    let k = p.kernel;
    let pad = i32(k / 2u);
    var acc = 0.0;
    for (var ci = 0u; ci < p.in_channels; ci++) {
        let base = (b * p.in_channels + ci) * p.height * p.width;
        let wbase = (o * p.in_channels + ci) * k * k;
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
    }
    y[at] = activate(acc * affine[o] + affine[p.out_channels + o], p.act);
}
