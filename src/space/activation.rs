//! Activation functions (DESIGN §1), part of a preset's data; the kernels mirror them in
//! `shaders/activation.wgsl`.

use serde::{Deserialize, Serialize};

/// The activation fused after a conv or linear layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// x · relu6(x + 3) / 6.
    Hswish,
    /// relu6(x + 3) / 6.
    Hsigmoid,
}

impl Activation {
    /// The code the shaders switch on.
    pub fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::Hswish => 2,
            Activation::Hsigmoid => 3,
        }
    }

    /// Applies the activation in f64 (the reference).
    pub fn apply(self, x: f64) -> f64 {
        let relu6 = |v: f64| v.clamp(0.0, 6.0);
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Hswish => x * relu6(x + 3.0) / 6.0,
            Activation::Hsigmoid => relu6(x + 3.0) / 6.0,
        }
    }

    /// Applies the activation in f32 (the runtime's epilogues).
    #[inline]
    pub fn apply_f32(self, x: f32) -> f32 {
        let relu6 = |v: f32| v.clamp(0.0, 6.0);
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Hswish => x * relu6(x + 3.0) * (1.0 / 6.0),
            Activation::Hsigmoid => relu6(x + 3.0) * (1.0 / 6.0),
        }
    }

    /// The derivative in f32 (training's backward); at a kink, the value of the flat side
    /// (relu at 0: 0; hswish and hsigmoid at ±3: the outer piece).
    #[inline]
    pub fn slope_f32(self, x: f32) -> f32 {
        match self {
            Activation::None => 1.0,
            Activation::Relu => f32::from(u8::from(x > 0.0)),
            Activation::Hswish if x <= -3.0 => 0.0,
            Activation::Hswish if x >= 3.0 => 1.0,
            Activation::Hswish => x * (1.0 / 3.0) + 0.5,
            Activation::Hsigmoid if x > -3.0 && x < 3.0 => 1.0 / 6.0,
            Activation::Hsigmoid => 0.0,
        }
    }

    /// All activations.
    pub const ALL: [Activation; 4] = [
        Activation::None,
        Activation::Relu,
        Activation::Hswish,
        Activation::Hsigmoid,
    ];
}
