// Input gradient of the depthwise k×k conv (training, DESIGN §4): padding k/2, stride s,
//
//   dx[n, c, iy, ix] = Σ_{ky, kx} w[c, ky, kx] · dy[n, c, oy, ox]
//   where oy·s = iy + k/2 − ky and ox·s = ix + k/2 − kx (exactly, inside the output).
//
// NCHW; one thread per input element, the linear index folded over x and y of the grid.
// Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    out_height: u32,
    out_width: u32,
    stride: u32,
    k: u32,
}

@group(0) @binding(0) var<storage, read_write> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    if (idx >= p.batch * p.channels * p.height * p.width) {
        return;
    }
    let ix = idx % p.width;
    let t = idx / p.width;
    let iy = t % p.height;
    let plane = t / p.height;
    let c = plane % p.channels;
    let pad = p.k / 2u;
    let base = plane * p.out_height * p.out_width;
    var acc = 0.0;
    for (var ky = 0u; ky < p.k; ky++) {
        let ny = iy + pad;
        if (ny < ky || (ny - ky) % p.stride != 0u) {
            continue;
        }
        let oy = (ny - ky) / p.stride;
        if (oy >= p.out_height) {
            continue;
        }
        for (var kx = 0u; kx < p.k; kx++) {
            let nx = ix + pad;
            if (nx < kx || (nx - kx) % p.stride != 0u) {
                continue;
            }
            let ox = (nx - kx) / p.stride;
            if (ox >= p.out_width) {
                continue;
            }
            acc = fma(w[(c * p.k + ky) * p.k + kx], dy[base + oy * p.out_width + ox], acc);
        }
    }
    dx[idx] = acc;
}
