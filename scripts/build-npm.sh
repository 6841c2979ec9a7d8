#!/usr/bin/env bash
# Builds the npm package with wasm-pack (--target web) into $CARGO_TARGET_DIR/web/npm and packs
# it to $CARGO_TARGET_DIR/web/enas4d-<version>.tgz. Needs rustup's wasm32 target.
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

if [ "$ENAS4D_WASM_TOOLCHAIN" != rustup ]; then
  echo "build-npm: wasm-pack needs rustup's wasm32-unknown-unknown target" >&2
  exit 1
fi
pkg="$CARGO_TARGET_DIR/web/npm"
rm -rf "$pkg"
wasm-pack build --target web --release --out-dir "$pkg" --out-name enas4d . \
  -- --no-default-features --features wasm
cp web/npm/README.md "$pkg/README.md"
(cd "$pkg" && npm pack --pack-destination "$CARGO_TARGET_DIR/web" >/dev/null)
tgz=$(ls "$CARGO_TARGET_DIR"/web/enas4d-*.tgz)
wasm_gz=$(gzip -9 -c "$pkg/enas4d_bg.wasm" | wc -c)
echo "build-npm: $tgz ($(stat -c %s "$tgz") bytes); enas4d_bg.wasm $(stat -c %s "$pkg/enas4d_bg.wasm") bytes, $wasm_gz gzipped"
