#!/usr/bin/env bash
# Builds the browser bundle: the enas4d library for wasm32 (feature "wasm"),
# then wasm-bindgen's ES-module glue into $CARGO_TARGET_DIR/web/pkg.
# No wasm-opt on purpose (Debian's binaryen breaks the output).
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

die() { echo "build-web: ERROR: $*" >&2; exit 1; }

WASM="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/enas4d.wasm"
PKG="$CARGO_TARGET_DIR/web/pkg"

command -v wasm-bindgen >/dev/null || die "wasm-bindgen CLI not found; run scripts/setup.sh"
want="$(enas4d_locked_wasm_bindgen_version)"
have="$(wasm-bindgen --version | awk '{print $2}')"
[ "$have" = "$want" ] || die "wasm-bindgen CLI is $have but Cargo.lock has $want; run scripts/setup.sh"

echo "build-web: cargo build for wasm32-unknown-unknown ($ENAS4D_WASM_TOOLCHAIN toolchain)"
enas4d_wasm_cargo build --lib --release --target wasm32-unknown-unknown \
  --no-default-features --features wasm
[ -f "$WASM" ] || die "cargo finished but $WASM is missing"

echo "build-web: wasm-bindgen --target web -> $PKG"
rm -rf "$PKG"
mkdir -p "$PKG"
wasm-bindgen --target web --out-dir "$PKG" "$WASM"

size_raw=$(stat -c %s "$WASM")
size_bg=$(stat -c %s "$PKG/enas4d_bg.wasm")
echo "build-web: $WASM: $size_raw bytes ($((size_raw / 1024)) KiB)"
echo "build-web: $PKG/enas4d_bg.wasm: $size_bg bytes ($((size_bg / 1024)) KiB)"
