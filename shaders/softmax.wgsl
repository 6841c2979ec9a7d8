// Softmax over each row of logits, with the confidence (maximum probability, = 1 / Σ exp(l − max))
// and the arg-max (first index of the maximum). One workgroup of 64 threads per row: strided
// scans, then tree reductions in workgroup memory.

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

const NONE: u32 = 0xffffffffu;

var<workgroup> best_value: array<f32, 64>;
var<workgroup> best_index: array<u32, 64>;
var<workgroup> sums: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row = wg.x + wg.y * groups.x;
    let valid = row < p.rows;
    let base = row * p.classes;

    // Arg-max: each thread keeps the first maximum of its strided slice.
    var top = 0.0;
    var arg = NONE;
    if (valid) {
        for (var i = li; i < p.classes; i += 64u) {
            let v = logits[base + i];
            if (arg == NONE || v > top) {
                top = v;
                arg = i;
            }
        }
    }
    best_value[li] = top;
    best_index[li] = arg;
    workgroupBarrier();
    for (var span = 32u; span > 0u; span >>= 1u) {
        if (li < span) {
            let ov = best_value[li + span];
            let oi = best_index[li + span];
            let mi = best_index[li];
            if (oi != NONE && (mi == NONE || ov > best_value[li] || (ov == best_value[li] && oi < mi))) {
                best_value[li] = ov;
                best_index[li] = oi;
            }
        }
        workgroupBarrier();
    }
    let m = best_value[0];

    var s = 0.0;
    if (valid) {
        for (var i = li; i < p.classes; i += 64u) {
            s += exp(logits[base + i] - m);
        }
    }
    sums[li] = s;
    workgroupBarrier();
    for (var span = 32u; span > 0u; span >>= 1u) {
        if (li < span) {
            sums[li] += sums[li + span];
        }
        workgroupBarrier();
    }
    let total = sums[0];
    if (valid) {
        for (var i = li; i < p.classes; i += 64u) {
            probs[base + i] = exp(logits[base + i] - m) / total;
        }
        if (li == 0u) {
            confidence[row] = 1.0 / total;
            class_index[row] = best_index[0];
        }
    }
}
