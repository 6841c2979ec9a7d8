// Weight gradient of the stage-masked 1×1 conv (training, DESIGN §2, §4):
//
//   dw[o, i] = Σ_n Σ_p dy[n, o, p] · x[n, i, p]   if i < lim(o), else 0,
//
// lim(o) = in_cuts[s + 1] for output row o of stage s (the forward's mask, gemm.wgsl). NCHW
// tensors, P = H·W. A GEMM over the reduction axis k = n·P + p: 16 × 16 outputs per
// workgroup, 16-deep tiles of dy and x staged in workgroup memory. Tiles wholly masked out
// skip the reduction. Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    rows: u32,
    depth: u32,
    cols: u32,
    batch: u32,
    stages: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
    out_cuts: array<vec4<u32>, 2>,
    in_cuts: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: Params;

const T: u32 = 16u;

var<workgroup> tile_dy: array<f32, 256>;
var<workgroup> tile_x: array<f32, 256>;

fn row_limit(row: u32) -> u32 {
    var s = 0u;
    while (s + 1u < p.stages && row >= p.out_cuts[(s + 1u) / 4u][(s + 1u) % 4u]) {
        s = s + 1u;
    }
    return p.in_cuts[(s + 1u) / 4u][(s + 1u) % 4u];
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let o0 = wg.y * T;
    let i0 = wg.x * T;
    let o = o0 + lid.y;
    let i = i0 + lid.x;
    // The largest limit of the tile's rows: uniform, so the barriers below stay uniform.
    let last = min(o0 + T, p.rows) - 1u;
    let any_kept = i0 < row_limit(last);
    let total = p.batch * p.cols;
    var acc = 0.0;
    if (any_kept) {
        for (var k0 = 0u; k0 < total; k0 += T) {
            // Thread (y, x) loads dy[row o0 + y, k0 + x] and x[row i0 + y, k0 + x].
            let k = k0 + lid.x;
            var a = 0.0;
            var b = 0.0;
            if (k < total) {
                let n = k / p.cols;
                let px = k % p.cols;
                let ro = o0 + lid.y;
                let ri = i0 + lid.y;
                if (ro < p.rows) {
                    a = dy[(n * p.rows + ro) * p.cols + px];
                }
                if (ri < p.depth) {
                    b = x[(n * p.depth + ri) * p.cols + px];
                }
            }
            tile_dy[lid.y * T + lid.x] = a;
            tile_x[lid.y * T + lid.x] = b;
            workgroupBarrier();
            for (var kk = 0u; kk < T; kk++) {
                acc = fma(tile_dy[lid.y * T + kk], tile_x[lid.x * T + kk], acc);
            }
            workgroupBarrier();
        }
    }
    if (o < p.rows && i < p.depth) {
        dw[o * p.depth + i] = select(0.0, acc, i < row_limit(o));
    }
}
