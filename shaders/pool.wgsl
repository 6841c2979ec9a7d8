// Global average pool: y[row] = mean(x[row, 0 .. size]), one workgroup per (sample, channel)
// row, a tree reduction in workgroup memory. The rows are channels offset .. offset + len of
// every sample of a [batch, total] layout (rows = batch · len).

struct Params {
    len: u32,
    size: u32,
    offset: u32,
    total: u32,
    rows: u32,
    pad1: u32,
    pad2: u32,
    pad3: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let local = wg.x + wg.y * groups.x;
    let row = (local / p.len) * p.total + p.offset + local % p.len;
    var sum = 0.0;
    if (local < p.rows) {
        for (var i = li; i < p.size; i += 256u) {
            sum += x[row * p.size + i];
        }
    }
    partial[li] = sum;
    workgroupBarrier();
    for (var span = 128u; span > 0u; span >>= 1u) {
        if (li < span) {
            partial[li] += partial[li + span];
        }
        workgroupBarrier();
    }
    if (li == 0u && local < p.rows) {
        y[row] = partial[0] / f32(p.size);
    }
}
