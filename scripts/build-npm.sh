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
cp web/npm/README.md web/npm/index.js web/npm/node.js web/npm/index.d.ts "$pkg/"
# Entries: the browser / bundler one loads the wasm on first use, the Node one at import.
node -e '
const fs = require("fs");
const file = process.argv[1];
const p = JSON.parse(fs.readFileSync(file, "utf8"));
p.files = [...new Set([...(p.files || []), "index.js", "node.js", "index.d.ts"])];
p.main = "./node.js";
p.module = "./index.js";
p.types = "./index.d.ts";
delete p.typings;
p.exports = {
  ".": { types: "./index.d.ts", node: "./node.js", default: "./index.js" },
  "./enas4d_bg.wasm": "./enas4d_bg.wasm",
  "./package.json": "./package.json",
};
p.sideEffects = ["./index.js", "./node.js", "./snippets/*"];
p.engines = { node: ">=20" };
fs.writeFileSync(file, JSON.stringify(p, null, 2) + "\n");
' "$pkg/package.json"
(cd "$pkg" && npm pack --pack-destination "$CARGO_TARGET_DIR/web" >/dev/null)
tgz=$(ls "$CARGO_TARGET_DIR"/web/enas4d-*.tgz)
wasm_gz=$(gzip -9 -c "$pkg/enas4d_bg.wasm" | wc -c)
echo "build-npm: $tgz ($(stat -c %s "$tgz") bytes); enas4d_bg.wasm $(stat -c %s "$pkg/enas4d_bg.wasm") bytes, $wasm_gz gzipped"
