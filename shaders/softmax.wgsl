// Softmax over each row of logits, with the confidence (maximum probability, = 1 / Σ exp(l − max))
// and the arg-max (first index of the maximum). One thread per row.

struct Params {
    rows: u32,
    classes: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> probs: array<f32>;
@group(0) @binding(2) var<storage, read_write> confidence: array<f32>;
@group(0) @binding(3) var<storage, read_write> class_index: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = gid.x + gid.y * groups.x * 256u;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.classes;
    var top = logits[base];
    var arg = 0u;
    for (var i = 1u; i < p.classes; i++) {
        let v = logits[base + i];
        if (v > top) {
            top = v;
            arg = i;
        }
    }
    var sum = 0.0;
    for (var i = 0u; i < p.classes; i++) {
        sum += exp(logits[base + i] - top);
    }
    for (var i = 0u; i < p.classes; i++) {
        probs[base + i] = exp(logits[base + i] - top) / sum;
    }
    confidence[row] = 1.0 / sum;
    class_index[row] = arg;
}
