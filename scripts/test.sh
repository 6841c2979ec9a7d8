#!/usr/bin/env bash
# The project's single test command:
#   setup, cargo fmt --check, cargo clippy, cargo test --release (native, on
#   whatever wgpu adapter is found: lavapipe on GPU-less machines), the ONNX
#   export against onnxruntime, the fuzzer, the wasm
#   bundle and its selftest in headless Chromium (WebGPU), then the npm package
#   in Node and the demo page in Chromium against the native runtime.
# Stops at the first failing step. ENAS4D_SKIP_SETUP=1 skips scripts/setup.sh.
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

STEPS=()
T_START=$SECONDS

summary() {
  echo "test: summary"
  local s
  for s in "${STEPS[@]}"; do echo "  $s"; done
  echo "test: total $((SECONDS - T_START)) s"
}

step() {
  local name="$1"
  shift
  local t0=$SECONDS rc=0
  echo
  echo "==> [$name] $*"
  "$@" || rc=$?
  local dt=$((SECONDS - t0))
  if [ "$rc" -ne 0 ]; then
    STEPS+=("$(printf '%-14s FAILED (exit %d) %5d s' "$name" "$rc" "$dt")")
    echo "==> [$name] FAILED with exit $rc after $dt s" >&2
    summary
    echo "test: FAILED at step '$name'" >&2
    exit "$rc"
  fi
  STEPS+=("$(printf '%-14s ok %19d s' "$name" "$dt")")
  echo "==> [$name] ok ($dt s)"
}

if [ "${ENAS4D_SKIP_SETUP:-0}" = 1 ]; then
  echo "test: ENAS4D_SKIP_SETUP=1, not running scripts/setup.sh"
else
  step setup "$ENAS4D_ROOT/scripts/setup.sh"
  # setup may have chosen the wasm toolchain just now.
  # shellcheck source=/dev/null
  [ -f "$ENAS4D_TOOLCHAIN_ENV" ] && . "$ENAS4D_TOOLCHAIN_ENV"
fi

step fmt cargo fmt --all --check
step clippy cargo clippy --all-targets -- -D warnings
step test cargo test --release
step onnx "$ENAS4D_ROOT/scripts/test-onnx.sh"
step fuzz "$ENAS4D_ROOT/scripts/fuzz.sh"
step build-web "$ENAS4D_ROOT/scripts/build-web.sh"
step browser node "$ENAS4D_ROOT/tests/browser/selftest.mjs" "$CARGO_TARGET_DIR/web/pkg"
step package "$ENAS4D_ROOT/scripts/test-package.sh"

summary
echo "test: all steps passed"
