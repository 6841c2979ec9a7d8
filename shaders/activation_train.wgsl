// The activations in training form (DESIGN §4), after activation.wgsl: forward y = act(x), or
// (backward = 1) the input gradient dx = dy · act'(x), the slope at a kink taken from the flat
// side. With gated = 1 both are multiplied by a per-channel 0/1 mask m[c] of x [N, C, P] (a
// block's depth gate, DESIGN §2). One thread per element, the linear index folded over x and y
// of the grid.
// Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    len: u32,
    kind: u32,
    backward: u32,
    gated: u32,
    channels: u32,
    plane: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> p: Params;

fn slope(v: f32, kind: u32) -> f32 {
    switch kind {
        case 1u: { return select(0.0, 1.0, v > 0.0); }
        case 2u: {
            if (v <= -3.0) { return 0.0; }
            if (v >= 3.0) { return 1.0; }
            return v * (1.0 / 3.0) + 0.5;
        }
        case 3u: { return select(0.0, 1.0 / 6.0, v > -3.0 && v < 3.0); }
        default: { return 1.0; }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.len) {
        return;
    }
    var gate = 1.0;
    if (p.gated == 1u) {
        gate = mask[(i / p.plane) % p.channels];
    }
    if (p.backward == 1u) {
        out[i] = dy[i] * slope(x[i], p.kind) * gate;
    } else {
        out[i] = activate(x[i], p.kind) * gate;
    }
}
