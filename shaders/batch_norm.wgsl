// Batch norm over batch statistics (training, DESIGN §4), forward: per channel c of
// x [N, C, P] (P = H·W)
//
//   mean = Σ x / M,   var = Σ (x − mean)² / M   (M = N·P, biased)
//   y = x · s + (β − mean · s),   s = γ / √(var + ε)
//
// One workgroup per channel: each thread sums a strided share of the channel's M values, the
// workgroup adds the 256 partial sums in a tree; mean, then variance (two passes), then y.
// Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    batch: u32,
    channels: u32,
    plane: u32,
    eps: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> var_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> p: Params;

var<workgroup> partial: array<f32, 256>;

// The workgroup's sum of `value` (every thread gets it).
fn workgroup_sum(lid: u32, value: f32) -> f32 {
    partial[lid] = value;
    for (var s = 128u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
    }
    workgroupBarrier();
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// Index of the j-th value (j < N·P) of channel c.
fn at(c: u32, j: u32) -> u32 {
    return ((j / p.plane) * p.channels + c) * p.plane + j % p.plane;
}

@compute @workgroup_size(256)
fn main(
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // The channel, folded over x and y of the grid (uniform in the workgroup).
    let c = group.x + group.y * groups.x;
    if (c >= p.channels) {
        return;
    }
    let lid = local.x;
    let m = p.batch * p.plane;
    var s = 0.0;
    for (var j = lid; j < m; j += 256u) {
        s += x[at(c, j)];
    }
    let mean = workgroup_sum(lid, s) / f32(m);
    var q = 0.0;
    for (var j = lid; j < m; j += 256u) {
        let d = x[at(c, j)] - mean;
        q += d * d;
    }
    let variance = workgroup_sum(lid, q) / f32(m);
    let scale = gamma[c] / sqrt(variance + p.eps);
    let shift = beta[c] - mean * scale;
    for (var j = lid; j < m; j += 256u) {
        let i = at(c, j);
        y[i] = x[i] * scale + shift;
    }
    if (lid == 0u) {
        mean_out[c] = mean;
        var_out[c] = variance;
    }
}
