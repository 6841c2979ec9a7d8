#!/usr/bin/env bash
# Times one training step on a GPU through Vulkan against PyTorch CUDA on the same subnets
# (DESIGN §4; docs/training-backend.md), after checking the training ops on that GPU:
#
#   scripts/gpu-train-bench.sh [BIN_DIR]
#
# 1. with cargo: the training ops' tests with their wgpu half on the GPU
#    (ENAS4D_TEST_WGPU=gpu: tests/elastic.rs, tests/optimizer.rs);
# 2. `bench_train --device gpu --batch 512`: the custom-op step, the composed step and
#    PyTorch's (`--torch-device cuda`, the python in $PYTHON, default python3, must import
#    torch), then the same with `--profile` (kernel launches per phase).
# BIN_DIR holds a prebuilt `bench_train` (for machines without a Rust toolchain; step 1 is
# then skipped). Output also goes to $OUT/gpu-train-bench.txt when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/vulkan-env.sh
. scripts/vulkan-env.sh

bin=${1:-}
python=${PYTHON:-python3}
log=${OUT:-${CARGO_TARGET_DIR:-target}}/gpu-train-bench.txt
mkdir -p "$(dirname "$log")"
{
  echo "== $(date -u +%FT%TZ) $(uname -m)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  if [ -z "$bin" ]; then
    echo "== training ops on the GPU"
    ENAS4D_TEST_WGPU=gpu cargo test --release --test elastic --test optimizer
    cargo build --release --example bench_train
    bin=${CARGO_TARGET_DIR:-target}/release/examples
  fi
  echo "== bench_train, batch 512"
  "$bin/bench_train" --device gpu --batch 512 --steps 5 --ops custom,composed,pytorch \
    --torch-device cuda --python "$python"
  echo "== bench_train --profile, batch 512"
  "$bin/bench_train" --device gpu --batch 512 --steps 2 --ops custom --profile
} 2>&1 | tee "$log"
