#!/usr/bin/env bash
# Installs what enas4d's build and tests need on Debian 12. Idempotent: every
# component is checked first and skipped when present.
#
#   apt:   mesa-vulkan-drivers libvulkan1 chromium dataset-fashion-mnist
#   rust:  wasm32-unknown-unknown target (rustup; else Debian's rustc-web with
#          -Zbuild-std), rustfmt, clippy
#   cargo: wasm-bindgen-cli (exactly the version in Cargo.lock), wasm-pack, cargo-fuzz
#   npm:   tests/browser dependencies (playwright-core; no browser download)
#   pip:   onnxruntime and numpy in a virtual environment ($ENAS4D_ONNX_VENV), for the
#          ONNX export's check
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"
mkdir -p "$ENAS4D_CACHE_DIR"

SUMMARY=()
note() { echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }
record() { SUMMARY+=("$(printf '%-22s %s' "$1" "$2")"); }

# One setup at a time per machine (cargo install and apt do not like company).
exec 9>"$ENAS4D_CACHE_DIR/setup.lock"
if ! flock -n 9; then
  note "another setup is running; waiting for it"
  flock 9
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install system packages"
  SUDO=(sudo)
fi

pkg_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

APT_UPDATED=0
apt_install() {
  local missing=()
  local p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$APT_UPDATED" -eq 0 ]; then
    note "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    APT_UPDATED=1
  fi
  note "apt-get install ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------- apt
APT_PKGS=(mesa-vulkan-drivers libvulkan1 chromium dataset-fashion-mnist)
command -v node >/dev/null || APT_PKGS+=(nodejs)
command -v npm >/dev/null || APT_PKGS+=(npm)
t0=$SECONDS
missing=()
for p in "${APT_PKGS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -eq 0 ]; then
  record "apt packages" "already present (${APT_PKGS[*]})"
else
  apt_install "${APT_PKGS[@]}"
  record "apt packages" "installed ${missing[*]} ($((SECONDS - t0)) s)"
fi

# ---------------------------------------------------------------- rust
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first (and open a new shell)"
command -v rustup >/dev/null || die "rustup not found: this project's native build expects a rustup-managed Rust"

t0=$SECONDS
comps=()
cargo fmt --version >/dev/null 2>&1 || comps+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || comps+=(clippy)
if [ "${#comps[@]}" -eq 0 ]; then
  record "rustfmt, clippy" "already present"
else
  rustup component add "${comps[@]}"
  record "rustfmt, clippy" "installed ${comps[*]} ($((SECONDS - t0)) s)"
fi

# wasm32 target: rustup first, Debian's rustc-web + build-std as fallback.
t0=$SECONDS
write_toolchain_env() {
  local tmp="$ENAS4D_TOOLCHAIN_ENV.tmp"
  {
    echo "# written by scripts/setup.sh"
    echo "ENAS4D_WASM_TOOLCHAIN=$1"
    [ -n "${2:-}" ] && echo "ENAS4D_DEBIAN_RUST_BIN=$2"
    [ -n "${3:-}" ] && echo "ENAS4D_WASM_LINKER=$3"
    true
  } >"$tmp"
  mv "$tmp" "$ENAS4D_TOOLCHAIN_ENV"
}
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  write_toolchain_env rustup
  ENAS4D_WASM_TOOLCHAIN=rustup
  record "wasm32 target" "already present (rustup)"
elif rustup target add wasm32-unknown-unknown; then
  write_toolchain_env rustup
  ENAS4D_WASM_TOOLCHAIN=rustup
  record "wasm32 target" "installed (rustup, $((SECONDS - t0)) s)"
else
  note "rustup could not add wasm32-unknown-unknown; falling back to Debian's rustc-web with -Zbuild-std"
  DEB_RUST=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
  was_missing=0
  for p in "${DEB_RUST[@]}"; do pkg_installed "$p" || was_missing=1; done
  apt_install "${DEB_RUST[@]}"
  rustc_path="$(dpkg -L rustc-web | grep -E '/bin/rustc$' | head -n1)"
  cargo_path="$(dpkg -L cargo-web | grep -E '/bin/cargo$' | head -n1)"
  if [ -z "$rustc_path" ] || [ -z "$cargo_path" ]; then
    die "could not find rustc/cargo in the rustc-web/cargo-web packages"
  fi
  [ "$(dirname "$rustc_path")" = "$(dirname "$cargo_path")" ] ||
    die "rustc-web ($rustc_path) and cargo-web ($cargo_path) are in different directories"
  linker="$(dpkg -L lld-22 | grep -E '/wasm-ld$' | head -n1)"
  [ -n "$linker" ] || linker="$(dpkg -L lld-22 | grep -E '/wasm-ld[^/]*$' | head -n1)"
  [ -n "$linker" ] || die "no wasm-ld found in lld-22"
  write_toolchain_env debian "$(dirname "$rustc_path")" "$linker"
  ENAS4D_WASM_TOOLCHAIN=debian
  ENAS4D_DEBIAN_RUST_BIN="$(dirname "$rustc_path")"
  ENAS4D_WASM_LINKER="$linker"
  export ENAS4D_WASM_TOOLCHAIN ENAS4D_DEBIAN_RUST_BIN ENAS4D_WASM_LINKER
  if [ "$was_missing" -eq 1 ]; then
    record "wasm32 target" "installed Debian rustc-web fallback ($((SECONDS - t0)) s)"
  else
    record "wasm32 target" "already present (Debian rustc-web fallback)"
  fi
fi

# ---------------------------------------------------------------- cargo install
# cargo install builds in a temporary dir, not in the project's target dir.
cargo_install() {
  env -u CARGO_TARGET_DIR cargo install "$@"
}

t0=$SECONDS
WB_WANT="$(enas4d_locked_wasm_bindgen_version)"
[ -n "$WB_WANT" ] || die "no wasm-bindgen entry in Cargo.lock"
WB_HAVE="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$WB_HAVE" = "$WB_WANT" ]; then
  record "wasm-bindgen-cli" "already present ($WB_WANT)"
else
  note "wasm-bindgen CLI is ${WB_HAVE:-missing}; Cargo.lock wants $WB_WANT: cargo install (takes a while)"
  cargo_install wasm-bindgen-cli --version "$WB_WANT" --force
  WB_HAVE="$(wasm-bindgen --version | awk '{print $2}')"
  [ "$WB_HAVE" = "$WB_WANT" ] || die "installed wasm-bindgen is $WB_HAVE, wanted $WB_WANT (is another one earlier on PATH?)"
  record "wasm-bindgen-cli" "installed $WB_WANT ($((SECONDS - t0)) s)"
fi

t0=$SECONDS
if command -v wasm-pack >/dev/null 2>&1; then
  record "wasm-pack" "already present ($(wasm-pack --version | awk '{print $2}'))"
else
  note "installing wasm-pack (takes a while)"
  cargo_install wasm-pack
  record "wasm-pack" "installed $(wasm-pack --version | awk '{print $2}') ($((SECONDS - t0)) s)"
fi

t0=$SECONDS
if cargo fuzz --version >/dev/null 2>&1; then
  record "cargo-fuzz" "already present ($(cargo fuzz --version | awk '{print $2}'))"
else
  note "installing cargo-fuzz"
  cargo_install cargo-fuzz
  record "cargo-fuzz" "installed $(cargo fuzz --version | awk '{print $2}') ($((SECONDS - t0)) s)"
fi

# ---------------------------------------------------------------- npm
t0=$SECONDS
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old: the browser tests need Node.js >= 20"
BROWSER_DIR="$ENAS4D_ROOT/tests/browser"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm_in_sync() {
  # node_modules matches the lockfile when npm's own record of it does.
  [ -f "$BROWSER_DIR/package-lock.json" ] && [ -f "$BROWSER_DIR/node_modules/.package-lock.json" ] &&
    node -e '
      const fs = require("fs");
      const [lock, inst] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")).packages);
      for (const [k, v] of Object.entries(lock)) {
        if (k === "") continue;
        if (!inst[k] || inst[k].version !== v.version) process.exit(1);
      }
    ' "$BROWSER_DIR/package-lock.json" "$BROWSER_DIR/node_modules/.package-lock.json"
}
if npm_in_sync; then
  record "npm (tests/browser)" "already present (playwright-core $(node -p 'require("'"$BROWSER_DIR"'/node_modules/playwright-core/package.json").version'))"
else
  if [ -f "$BROWSER_DIR/package-lock.json" ]; then
    (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund)
  else
    (cd "$BROWSER_DIR" && npm install --no-audit --no-fund)
  fi
  record "npm (tests/browser)" "installed ($((SECONDS - t0)) s)"
fi
if grep -q '"resolved": *"http' "$BROWSER_DIR/package-lock.json"; then
  die "tests/browser/package-lock.json names registry URLs; keep omit-lockfile-registry-resolved=true in tests/browser/.npmrc"
fi

# ---------------------------------------------------------------- python (ONNX check)
ORT_VERSION=1.30.0
if "$ENAS4D_ONNX_VENV/bin/python" -c "import numpy, onnxruntime as o; assert o.__version__ == '$ORT_VERSION'" 2>/dev/null; then
  record "pip (onnx check)" "already present (onnxruntime $ORT_VERSION)"
else
  t0=$SECONDS
  python3 -m venv "$ENAS4D_ONNX_VENV"
  "$ENAS4D_ONNX_VENV/bin/pip" install --quiet --disable-pip-version-check "onnxruntime==$ORT_VERSION" numpy
  record "pip (onnx check)" "installed onnxruntime $ORT_VERSION ($((SECONDS - t0)) s)"
fi

echo "setup: summary"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo "setup: wasm toolchain: $ENAS4D_WASM_TOOLCHAIN; CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
