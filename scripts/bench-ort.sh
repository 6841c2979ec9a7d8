#!/usr/bin/env bash
# enas4d's CPU runtime against ONNX Runtime on the same exported net and test images
# (docs/benchmarks.md): exports the net's ONNX graphs, preprocesses the first N test images
# for ONNX Runtime, then runs scripts/bench_ort.py. Needs scripts/setup.sh's onnxruntime
# environment and the built-in Fashion-MNIST test split.
#   scripts/bench-ort.sh [MODEL] [IMAGES] [SECONDS] [ROUNDS]
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

model=${1:-models/tiny-s3/net.safetensors}
images=${2:-256}
cargo build --release --bin enas4d --example network_input
bin="$CARGO_TARGET_DIR/release"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/enas4d" export --net "$model" --onnx "$tmp/net.onnx" 2>/dev/null
# `gallery` with the whole test split writes image i as file i: the images `bench` takes.
"$bin/enas4d" gallery --out "$tmp/png" --count 10000 >/dev/null
mapfile -t files < <(find "$tmp/png" -name '*.png' | sort | head -n "$images")
"$bin/examples/network_input" "$model" "$tmp/input.f32" "${files[@]}" 2>/dev/null
"$ENAS4D_ONNX_VENV/bin/python" scripts/bench_ort.py "$bin/enas4d" "$model" "$tmp/net.onnx" \
  "$tmp/input.f32" "$images" "${3:-2}" "${4:-3}"
