# shellcheck shell=bash
# Shared settings for the enas4d scripts. Source it; do not run it.
#
#   ENAS4D_ROOT        the repository root
#   ENAS4D_CACHE_DIR   per-machine state (default ~/.cache/enas4d)
#   CARGO_TARGET_DIR   persistent build dir shared by fresh clones
#                      (default $ENAS4D_CACHE_DIR/target; an existing value wins)
#   ENAS4D_ONNX_VENV   Python virtual environment with onnxruntime, for the ONNX
#                      check (default $ENAS4D_CACHE_DIR/venv-onnx)
#   ENAS4D_WASM_TOOLCHAIN  "rustup" (rustup's wasm32-unknown-unknown target) or
#                      "debian" (Debian's rustc-web + -Zbuild-std); chosen by
#                      scripts/setup.sh and remembered in $ENAS4D_CACHE_DIR/toolchain.env
#
# Defines enas4d_wasm_cargo, which runs cargo for the wasm32 target with the
# chosen toolchain.

ENAS4D_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ENAS4D_ROOT

: "${ENAS4D_CACHE_DIR:=$HOME/.cache/enas4d}"
export ENAS4D_CACHE_DIR

: "${CARGO_TARGET_DIR:=$ENAS4D_CACHE_DIR/target}"
export CARGO_TARGET_DIR

: "${ENAS4D_ONNX_VENV:=$ENAS4D_CACHE_DIR/venv-onnx}"
export ENAS4D_ONNX_VENV

# Binaries installed by `cargo install` (wasm-bindgen, wasm-pack).
: "${CARGO_HOME:=$HOME/.cargo}"
case ":$PATH:" in
  *":$CARGO_HOME/bin:"*) ;;
  *) PATH="$CARGO_HOME/bin:$PATH" ;;
esac
export PATH

ENAS4D_TOOLCHAIN_ENV="$ENAS4D_CACHE_DIR/toolchain.env"
if [ -z "${ENAS4D_WASM_TOOLCHAIN:-}" ] && [ -f "$ENAS4D_TOOLCHAIN_ENV" ]; then
  # shellcheck source=/dev/null
  . "$ENAS4D_TOOLCHAIN_ENV"
fi
: "${ENAS4D_WASM_TOOLCHAIN:=rustup}"
export ENAS4D_WASM_TOOLCHAIN

# The wasm-bindgen version pinned by Cargo.lock (empty if not found).
enas4d_locked_wasm_bindgen_version() {
  awk '
    /^\[\[package\]\]/ { want = 0; next }
    /^name = "wasm-bindgen"$/ { want = 1; next }
    want && /^version = / { gsub(/"/, "", $3); print $3; exit }
  ' "$ENAS4D_ROOT/Cargo.lock" 2>/dev/null
}

# cargo for the wasm32-unknown-unknown target, with the chosen toolchain.
enas4d_wasm_cargo() {
  if [ "$ENAS4D_WASM_TOOLCHAIN" = debian ]; then
    local bin="${ENAS4D_DEBIAN_RUST_BIN:?ENAS4D_DEBIAN_RUST_BIN is not set; run scripts/setup.sh}"
    local -a vars=(PATH="$bin:$PATH" RUSTC="$bin/rustc" RUSTDOC="$bin/rustdoc" RUSTC_BOOTSTRAP=1)
    if [ -n "${ENAS4D_WASM_LINKER:-}" ]; then
      vars+=(CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$ENAS4D_WASM_LINKER")
    fi
    env "${vars[@]}" "$bin/cargo" "$@" -Zbuild-std=std,panic_abort
  else
    cargo "$@"
  fi
}

