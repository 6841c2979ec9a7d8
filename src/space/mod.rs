//! The search space: stage cut points (and, later, presets, subnet configs and the MACs counter).

mod cuts;

pub use cuts::{stage_cuts, StageCuts, CUT_FRACTIONS, MAX_STAGES};
