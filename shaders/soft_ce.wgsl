// Soft-target cross-entropy (training, DESIGN §4), forward: for logits z and targets t, both
// [N, K],
//
//   loss = −(1/N) Σ_i Σ_c t_ic (z_ic − lse_i),   lse_i = log Σ_c exp(z_ic)
//
// One workgroup: each thread takes a strided share of the rows (the row maximum subtracted
// before exp), the workgroup adds the 256 partial sums in a tree.
// Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    rows: u32,
    classes: u32,
}

@group(0) @binding(0) var<storage, read_write> z: array<f32>;
@group(0) @binding(1) var<storage, read_write> t: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: Params;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) local: vec3<u32>) {
    let lid = local.x;
    var s = 0.0;
    for (var r = lid; r < p.rows; r += 256u) {
        let base = r * p.classes;
        var m = z[base];
        for (var c = 1u; c < p.classes; c++) {
            m = max(m, z[base + c]);
        }
        var e = 0.0;
        for (var c = 0u; c < p.classes; c++) {
            e += exp(z[base + c] - m);
        }
        let lse = m + log(e);
        for (var c = 0u; c < p.classes; c++) {
            s -= t[base + c] * (z[base + c] - lse);
        }
    }
    partial[lid] = s;
    for (var k = 128u; k > 0u; k = k >> 1u) {
        workgroupBarrier();
        if (lid < k) {
            partial[lid] += partial[lid + k];
        }
    }
    if (lid == 0u) {
        loss[0] = partial[0] / f32(p.rows);
    }
}
