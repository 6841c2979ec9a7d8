// Weight gradient of the depthwise k×k conv (training, DESIGN §4): padding k/2, stride s,
//
//   dw[c, ky, kx] = Σ_n Σ_{oy, ox} dy[n, c, oy, ox] · x[n, c, oy·s + ky − k/2, ox·s + kx − k/2]
//
// (taps outside the input read 0). NCHW; one workgroup of 256 threads per (tap, channel):
// workgroup (tap, c) on the grid's x and y, strided partial sums, tree-reduced.
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

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: Params;

var<workgroup> partial_sum: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tap = wg.x;
    let c = wg.y;
    let ky = tap / p.k;
    let kx = tap % p.k;
    let pad = p.k / 2u;
    let per_plane = p.out_height * p.out_width;
    var acc = 0.0;
    for (var j = li; j < p.batch * per_plane; j += 256u) {
        let n = j / per_plane;
        let r = j % per_plane;
        let oy = r / p.out_width;
        let ox = r % p.out_width;
        let sy = oy * p.stride + ky;
        let sx = ox * p.stride + kx;
        if (sy < pad || sx < pad) {
            continue;
        }
        let iy = sy - pad;
        let ix = sx - pad;
        if (iy >= p.height || ix >= p.width) {
            continue;
        }
        let plane = n * p.channels + c;
        acc = fma(
            dy[plane * per_plane + r],
            x[(plane * p.height + iy) * p.width + ix],
            acc,
        );
    }
    partial_sum[li] = acc;
    workgroupBarrier();
    for (var span = 128u; span > 0u; span >>= 1u) {
        if (li < span) {
            partial_sum[li] += partial_sum[li + span];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        dw[c * p.k * p.k + tap] = partial_sum[0];
    }
}
