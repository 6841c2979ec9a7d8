#!/usr/bin/env bash
# Builds (or takes prebuilt), checks and times the WGSL kernels on a GPU machine through Vulkan:
# `enas4d selftest` (every kernel against its reference), then the kernel benchmark table.
#
#   scripts/gpu-bench.sh [BIN_DIR]
#
# BIN_DIR holds prebuilt `enas4d` and `bench_kernels` (for machines without a Rust toolchain);
# without it they are built with cargo. Output also goes to $OUT/gpu-bench.txt when OUT is set.
# Without OUT the log goes to $CARGO_TARGET_DIR (or target/). VULKAN_DEBS may name a folder of Debian packages (libvulkan1, …) to unpack when the machine
# has no Vulkan loader.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/vulkan-env.sh
. scripts/vulkan-env.sh

bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --release --bin enas4d --example bench_kernels
  bin=${CARGO_TARGET_DIR:-target}/release
  cp "$bin/examples/bench_kernels" "$bin/bench_kernels"
fi

log=${OUT:-${CARGO_TARGET_DIR:-target}}/gpu-bench.txt
mkdir -p "$(dirname "$log")"
{
  echo "== $(date -u +%FT%TZ) $(uname -m)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "== enas4d selftest"
  "$bin/enas4d" selftest
  echo "== bench_kernels"
  "$bin/bench_kernels" --batches 1,32 --min-time 0.5
} 2>&1 | tee "$log"
