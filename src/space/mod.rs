//! The search space (DESIGN §1–2): presets, subnet configs with sampling, mutation and
//! crossover, stage cut points, the layer plan of a subnet and its layer list, and the MACs / parameter counter. Plain data (serde only).

mod activation;
mod cuts;
mod layers;
pub mod macs;
mod plan;
mod preset;
mod subnet;

pub use activation::Activation;
pub use cuts::{stage_cuts, FixedCuts, StageCuts, CUT_FRACTIONS, MAX_STAGES};
pub use layers::{Layer, LayerKind, Piece, DW_STRIDE, STEM_TAPS};
pub use macs::{count, parse_macs, Cost};
pub use plan::{BlockPlan, Plan, MAX_ACTIVATION_FLOATS};
pub use preset::{make_divisible, se_reduced, Preset, Unit};
pub use subnet::SubnetConfig;
