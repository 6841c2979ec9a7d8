#!/usr/bin/env bash
# Fuzzes the model loader for a bounded time: cargo fuzz (libFuzzer, AddressSanitizer) on
# fuzz/fuzz_targets/load_model.rs, seeded with valid model files. Any crash fails.
#
#   scripts/fuzz.sh [SECONDS]     (default: $ENAS4D_FUZZ_SECONDS or 60)
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

seconds=${1:-${ENAS4D_FUZZ_SECONDS:-60}}
corpus="$CARGO_TARGET_DIR/fuzz-corpus/load_model"
mkdir -p "$corpus"
for stages in 1 3; do
  cargo run --release --quiet --example sample_model -- "$corpus/seed-s$stages.safetensors" "$stages"
done
# cargo-fuzz passes nightly-only flags (-Zsanitizer); the stable compiler accepts them with
# RUSTC_BOOTSTRAP=1.
echo "fuzz: load_model for $seconds s"
RUSTC_BOOTSTRAP=1 cargo fuzz run load_model "$corpus" -- \
  -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 -print_funcs=0
