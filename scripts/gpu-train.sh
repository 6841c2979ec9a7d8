#!/usr/bin/env bash
# Trains the shipped tiny supernets — multi-stage (S = 3) and static baseline (S = 1), same
# recipe and budget — on a GPU through Vulkan, both at once on the one device.
#
#   scripts/gpu-train.sh [BIN_DIR] [DATA_DIR] [SECONDS]
#
# BATCH (default 512) is the batch size. WARM=1 continues the shipped supernets instead of
# starting fresh: each run warm-starts from models/tiny-sS/supernet.bin with that folder's
# config.json (the recipe of its last training step), scaled to SECONDS.
# BIN_DIR holds a prebuilt `enas4d` (default: build it); DATA_DIR the Fashion-MNIST IDX files
# (default: Debian's copy). SECONDS (default 480) is each run's time budget: `--time-budget`
# scales the full schedule to it after a short probe. Runs resume from $OUT/tiny-s{3,1} when a
# checkpoint is there. Output goes to $OUT (default runs/).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/vulkan-env.sh
. scripts/vulkan-env.sh

bin=${1:-}
data=${2:-/usr/share/datasets/fashion-mnist}
secs=${3:-480}
out=${OUT:-runs}
if [ -z "$bin" ]; then
  cargo build --release --bin enas4d
  bin=${CARGO_TARGET_DIR:-target}/release
fi
mkdir -p "$out"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
pids=()
for s in 3 1; do
  run="$out/tiny-s$s"
  recipe=(--schedule full --stages "$s")
  [ "${WARM:-0}" = 1 ] && recipe=(--config "models/tiny-s$s/config.json" --init "models/tiny-s$s/supernet.bin")
  extra=("${recipe[@]}" --time-budget "$secs")
  [ -f "$run/checkpoint.bin" ] && extra=("${recipe[@]}" --resume)
  mkdir -p "$run"
  "$bin/enas4d" train --batch "${BATCH:-512}" --device gpu --quiet \
    --data "idx:$data" --out "$run" "${extra[@]}" >"$run/train.out" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
for s in 3 1; do echo "== tiny-s$s"; tail -n 5 "$out/tiny-s$s/train.out"; tail -n 2 "$out/tiny-s$s/log.csv"; done
# One archive of everything but the checkpoints (few files travel back best).
tar czf "$out/runs.tgz" -C "$out" --exclude=checkpoint.bin gpu.txt tiny-s3 tiny-s1
exit "$rc"
