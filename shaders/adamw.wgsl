// One AdamW step (training, DESIGN §4) over a parameter tensor, element by element:
//
//   m1' = β1·m1 + (1 − β1)·g          m2' = β2·m2 + (1 − β2)·g²
//   p'  = p·(1 − lr·λ) − lr · (m1' / c1) / (√(m2' / c2) + ε)
//
// with the bias corrections c1 = 1 − β1^t, c2 = 1 − β2^t of step t. One thread per element,
// the linear index folded over x and y of the grid; the three results go to fresh buffers.
// The gradient is read through its strides (burn hands over transposed views); shape and
// strides are right-aligned to four axes.
// Every binding is read_write: burn's pooled buffers may alias.

struct Params {
    len: u32,
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    corr1: f32,
    corr2: f32,
    eps: f32,
    lr: f32,
    decay: f32,
    shape: array<u32, 4>,
    grad_strides: array<u32, 4>,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m1: array<f32>;
@group(0) @binding(3) var<storage, read_write> m2: array<f32>;
@group(0) @binding(4) var<storage, read_write> param_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> m1_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> m2_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.len) {
        return;
    }
    var rem = i;
    var at = 0u;
    for (var d = 3; d >= 0; d--) {
        at += (rem % p.shape[d]) * p.grad_strides[d];
        rem = rem / p.shape[d];
    }
    let g = grad[at];
    let a = m1[i] * p.beta1 + g * p.one_minus_beta1;
    let b = m2[i] * p.beta2 + (g * g) * p.one_minus_beta2;
    let delta = (a / p.corr1) / (sqrt(b / p.corr2) + p.eps);
    param_out[i] = param[i] * p.decay - delta * p.lr;
    m1_out[i] = a;
    m2_out[i] = b;
}
