// Gradient of a slice (training, DESIGN §4): dy [count] placed at `start` in zeros of shape
// `full`, in one pass. Shapes are right-aligned to four axes (leading axes of size 1). One
// thread per output element, the linear index folded over x and y of the grid.
// Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    len: u32,
    full: array<u32, 4>,
    start: array<u32, 4>,
    count: array<u32, 4>,
}

@group(0) @binding(0) var<storage, read_write> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.len) {
        return;
    }
    var rem = i;
    var src = 0u;
    var stride = 1u;
    var inside = true;
    for (var d = 3; d >= 0; d--) {
        let c = rem % p.full[d];
        rem = rem / p.full[d];
        if (c < p.start[d] || c >= p.start[d] + p.count[d]) {
            inside = false;
        } else {
            src += (c - p.start[d]) * stride;
        }
        stride *= p.count[d];
    }
    if (inside) {
        out[i] = dy[src];
    } else {
        out[i] = 0.0;
    }
}
