// Soft-target cross-entropy (training, DESIGN §4), gradient with respect to the logits, from
// the loss's gradient dy (one value):
//
//   dz_ic = dy · (softmax(z_i)_c · Σ_k t_ik − t_ic) / N
//
// One thread per logit (each recomputes its row's maximum and sum of exponentials: K is the
// number of classes), the linear index folded over x and y of the grid.
// Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    rows: u32,
    classes: u32,
}

@group(0) @binding(0) var<storage, read_write> z: array<f32>;
@group(0) @binding(1) var<storage, read_write> t: array<f32>;
@group(0) @binding(2) var<storage, read_write> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.rows * p.classes) {
        return;
    }
    let base = (i / p.classes) * p.classes;
    var m = z[base];
    for (var c = 1u; c < p.classes; c++) {
        m = max(m, z[base + c]);
    }
    var e = 0.0;
    var mass = 0.0;
    for (var c = 0u; c < p.classes; c++) {
        e += exp(z[base + c] - m);
        mass += t[base + c];
    }
    let soft = exp(z[i] - m) / e;
    dz[i] = dy[0] * (soft * mass - t[i]) / f32(p.rows);
}
