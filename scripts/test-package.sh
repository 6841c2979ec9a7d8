#!/usr/bin/env bash
# The npm package and the demo, as users get them: builds the package (scripts/build-npm.sh),
# classifies the gallery natively (`enas4d infer --json`), then checks the packed tarball in
# Node (CPU path), in an app bundled by Vite with a Web Worker (type-checked by tsc, run in
# headless Chromium) and the demo page in headless Chromium (WebGPU and CPU) against it.
#   scripts/test-package.sh [THRESHOLD]   (default 0.5)
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

tau=${1:-0.5}
model=models/tiny-s3/net.safetensors
"$ENAS4D_ROOT/scripts/build-npm.sh"
tgz=$(ls "$CARGO_TARGET_DIR"/web/enas4d-*.tgz)
native="$CARGO_TARGET_DIR/web/native.jsonl"
cargo run --release --quiet -- infer --json --threshold "$tau" --model "$model" web/gallery/*.png >"$native"
node tests/npm/node-package.mjs "$tgz" "$model" "$native" "$tau"
node tests/browser/bundler.mjs "$tgz" "$model" "$native" "$tau"
node tests/browser/demo.mjs "$native" "$tau" "$CARGO_TARGET_DIR/web/npm"
