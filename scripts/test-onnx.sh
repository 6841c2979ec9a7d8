#!/usr/bin/env bash
# The ONNX export against the runtime (tests/onnx/check_onnx.py) on the gallery's real
# images: every shipped multi-stage net, and random subnets with random weights (per-stage
# depths, kernels and resolution). Needs scripts/setup.sh's onnxruntime environment.
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

cargo build --release --bin enas4d --example network_input --example sample_model
bin="$CARGO_TARGET_DIR/release"
check() {
  "$ENAS4D_ONNX_VENV/bin/python" tests/onnx/check_onnx.py "$bin/enas4d" \
    "$bin/examples/network_input" "$1" web/gallery/*.png
}
for net in models/tiny-s3/net*.safetensors; do
  echo "onnx: $net"
  check "$net"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for seed in $((RANDOM)) $((RANDOM)); do
  echo "onnx: random subnet, seed $seed"
  "$bin/examples/sample_model" "$tmp/random.safetensors" 3 "$seed" >/dev/null
  check "$tmp/random.safetensors"
done
