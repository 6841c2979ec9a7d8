// Activations shared by the kernels (DESIGN §1): 0 none, 1 relu, 2 hswish, 3 hsigmoid.
// hswish(x) = x·relu6(x + 3)/6, hsigmoid(x) = relu6(x + 3)/6.
fn activate(x: f32, kind: u32) -> f32 {
    switch kind {
        case 1u: { return max(x, 0.0); }
        case 2u: { return x * clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        case 3u: { return clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        default: { return x; }
    }
}
