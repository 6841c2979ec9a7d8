// Stage-masked GEMM for 1×1 convs and linear layers (DESIGN §2, §7).
//
//   y[b, o, c] = act(scale[o] · Σ_{k < lim(o)} w[o, k] · x[b, k, c] + shift[o]) (+ res[b, o, c])
//
// Row o belongs to stage s when out_cuts[s] ≤ o < out_cuts[s + 1]; its reduction stops at
// lim(o) = in_cuts[s + 1], so it never reads the input channels of later stages (the weight
// tile is loaded only below that bound, and the product is selected, never multiplied by a
// 0 mask). Rows of an inactive stage (bit s of `active` clear) do no work and write the
// residual (pass_through = 1) or 0. Tensor addressing is by strides, so NCHW 1×1 convs
// (x_sk = P, x_sp = 1) and row-major linear layers (x_sk = 1, x_sp = I) share the kernel, and
// the output (and residual) may be a channel slice of a wider tensor (y_off, y strides).
// Entry points: `main`, tiles of 64 rows × 64 columns per workgroup, 4 × 4 per thread, 16-deep
// reduction steps; `gemv`, one workgroup per output for linear layers with few samples.

struct Params {
    rows: u32,
    depth: u32,
    cols: u32,
    stages: u32,
    act: u32,
    has_res: u32,
    active_mask: u32,
    pass_through: u32,
    x_sk: u32,
    x_sp: u32,
    x_sb: u32,
    y_so: u32,
    y_sp: u32,
    y_sb: u32,
    y_off: u32,
    pad0: u32,
    out_cuts: array<vec4<u32>, 2>,
    in_cuts: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> tile_a: array<f32, 1024>;
var<workgroup> tile_b: array<f32, 1024>;
var<workgroup> tile_lim: array<u32, 64>;

fn out_cut(j: u32) -> u32 {
    return p.out_cuts[j / 4u][j % 4u];
}

fn in_cut(j: u32) -> u32 {
    return p.in_cuts[j / 4u][j % 4u];
}

fn stage_of(row: u32) -> u32 {
    var s = 0u;
    while (s + 1u < p.stages && row >= out_cut(s + 1u)) {
        s = s + 1u;
    }
    return s;
}

fn is_active(s: u32) -> bool {
    return ((p.active_mask >> s) & 1u) == 1u;
}

fn row_limit(row: u32) -> u32 {
    let s = stage_of(row);
    if (is_active(s)) {
        return in_cut(s + 1u);
    }
    return 0u;
}

// Affine, activation and residual of one output; rows of an inactive stage copy the residual
// (pass_through) or are 0.
fn finish(batch: u32, row: u32, col: u32, acc: f32) {
    let at = p.y_off + batch * p.y_sb + row * p.y_so + col * p.y_sp;
    var v = 0.0;
    if (is_active(stage_of(row))) {
        v = activate(acc * affine[row] + affine[p.rows + row], p.act);
        if (p.has_res == 1u) {
            v = v + res[at];
        }
    } else if (p.pass_through == 1u) {
        v = res[at];
    }
    y[at] = v;
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let batch = wg.z;

    // The longest reduction any row of this tile needs (uniform across the workgroup).
    var kmax = 0u;
    for (var s = 0u; s < p.stages; s++) {
        if (is_active(s) && out_cut(s) < min(row0 + TM, p.rows) && out_cut(s + 1u) > row0) {
            kmax = max(kmax, in_cut(s + 1u));
        }
    }

    // Each thread owns rows lid.y + 16·i and columns lid.x + 16·j (conflict-free tile reads,
    // coalesced stores); the first 64 threads look up the tile's row bounds once.
    if (li < TM) {
        let r = row0 + li;
        tile_lim[li] = select(0u, row_limit(r), r < p.rows);
    }
    workgroupBarrier();
    var lim: array<u32, 4>;
    var lim_min = 0xffffffffu;
    for (var i = 0u; i < 4u; i++) {
        lim[i] = tile_lim[lid.y + 16u * i];
        lim_min = min(lim_min, lim[i]);
    }

    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < kmax; k0 += TK) {
        for (var t = 0u; t < 4u; t++) {
            let idx = li + 256u * t;
            let ra = idx / TK;
            let ka = k0 + idx % TK;
            var a = 0.0;
            if (ka < tile_lim[ra]) {
                a = w[(row0 + ra) * p.depth + ka];
            }
            tile_a[(idx % TK) * TM + ra] = a;

            let kb = idx / TN;
            let cb = idx % TN;
            let col = col0 + cb;
            var b = 0.0;
            if (k0 + kb < kmax && col < p.cols) {
                b = x[batch * p.x_sb + (k0 + kb) * p.x_sk + col * p.x_sp];
            }
            tile_b[kb * TN + cb] = b;
        }
        workgroupBarrier();
        if (k0 + TK <= lim_min) {
            // Every row of this thread reduces over the whole step: no selection needed.
            for (var kk = 0u; kk < TK; kk++) {
                let bb = kk * TN + lid.x;
                let bv = vec4<f32>(tile_b[bb], tile_b[bb + 16u], tile_b[bb + 32u], tile_b[bb + 48u]);
                for (var i = 0u; i < 4u; i++) {
                    acc[i] = fma(vec4<f32>(tile_a[kk * TM + lid.y + 16u * i]), bv, acc[i]);
                }
            }
        } else {
            for (var kk = 0u; kk < TK; kk++) {
                let k = k0 + kk;
                let bb = kk * TN + lid.x;
                let bv = vec4<f32>(tile_b[bb], tile_b[bb + 16u], tile_b[bb + 32u], tile_b[bb + 48u]);
                for (var i = 0u; i < 4u; i++) {
                    let a = tile_a[kk * TM + lid.y + 16u * i];
                    acc[i] = select(acc[i], fma(vec4<f32>(a), bv, acc[i]), k < lim[i]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        if (row >= p.rows) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if (col < p.cols) {
                finish(batch, row, col, acc[i][j]);
            }
        }
    }
}

var<workgroup> partial_sum: array<f32, 64>;

// Matrix-vector variant for linear layers with few samples: one workgroup of 64 threads per
// (row, column), strided partial dot products up to the row's stage bound, tree-reduced.
@compute @workgroup_size(64)
fn gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.x;
    let col = wg.y;
    let batch = wg.z;
    let lim = row_limit(row);
    var acc = 0.0;
    for (var k = li; k < lim; k += 64u) {
        acc = fma(w[row * p.depth + k], x[batch * p.x_sb + k * p.x_sk + col * p.x_sp], acc);
    }
    partial_sum[li] = acc;
    workgroupBarrier();
    for (var span = 32u; span > 0u; span >>= 1u) {
        if (li < span) {
            partial_sum[li] += partial_sum[li + span];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        finish(batch, row, col, partial_sum[0]);
    }
}
