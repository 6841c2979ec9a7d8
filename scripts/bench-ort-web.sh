#!/usr/bin/env bash
# The wasm CPU runtime against onnxruntime-web in headless Chromium on the same exported net
# and test images (docs/benchmarks.md), the wasm package built from this tree first. Needs
# scripts/setup.sh.
#   scripts/bench-ort-web.sh [MODEL] [SECONDS] [ROUNDS]
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

model=${1:-models/tiny-s3/net.safetensors}
images=64
scripts/build-web.sh >/dev/null
cargo build --release --bin enas4d --example network_input
bin="$CARGO_TARGET_DIR/release"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$model" "$tmp/net.safetensors"
"$bin/enas4d" export --net "$model" --onnx "$tmp/net.onnx" 2>/dev/null
"$bin/enas4d" gallery --out "$tmp/png" --count 10000 >/dev/null
mapfile -t files < <(find "$tmp/png" -name '*.png' | sort | head -n "$images")
"$bin/examples/network_input" "$model" "$tmp/input.f32" "${files[@]}" 2>/dev/null
node tests/browser/bench-ort.mjs "$CARGO_TARGET_DIR/web/pkg" "$tmp" "${2:-2}" "${3:-3}" "$images"
