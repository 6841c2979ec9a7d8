// Batch norm over batch statistics (training, DESIGN §4), backward: per channel c of
// x [N, C, P], from the forward's mean and (biased) var and the output gradient dy,
//
//   r = 1 / √(var + ε),   dβ = Σ dy,   dγ = r · Σ dy (x − mean)
//   dx = a · dy − a·k · x + a (k · mean − dβ / M),   a = γ r,  k = r dγ / M   (M = N·P)
//
// One workgroup per channel, both sums in one pass (tree-added partial sums), then dx.
// Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    batch: u32,
    channels: u32,
    plane: u32,
    eps: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> variance: array<f32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> p: Params;

var<workgroup> partial_dy: array<f32, 256>;
var<workgroup> partial_cross: array<f32, 256>;

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
    let mu = mean[c];
    var sum = 0.0;
    var cross = 0.0;
    for (var j = lid; j < m; j += 256u) {
        let i = at(c, j);
        sum += dy[i];
        cross += dy[i] * (x[i] - mu);
    }
    partial_dy[lid] = sum;
    partial_cross[lid] = cross;
    for (var s = 128u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            partial_dy[lid] += partial_dy[lid + s];
            partial_cross[lid] += partial_cross[lid + s];
        }
    }
    workgroupBarrier();
    let r = 1.0 / sqrt(variance[c] + p.eps);
    let db = partial_dy[0];
    let dg = partial_cross[0] * r;
    let count = f32(m);
    let a = gamma[c] * r;
    let k = r * dg / count;
    let ax = -a * k;
    let shift = a * (k * mu - db / count);
    for (var j = lid; j < m; j += 256u) {
        let i = at(c, j);
        dx[i] = a * dy[i] + ax * x[i] + shift;
    }
    if (lid == 0u) {
        dgamma[c] = dg;
        dbeta[c] = db;
    }
}
