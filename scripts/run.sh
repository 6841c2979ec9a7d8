#!/usr/bin/env bash
# The main job: set up the machine, then run the kernel selftest natively
# (prints the wgpu adapter and the kernel table). Extra arguments go to
# the selftest command. ENAS4D_SKIP_SETUP=1 skips scripts/setup.sh.
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

if [ "${ENAS4D_SKIP_SETUP:-0}" != 1 ]; then
  "$ENAS4D_ROOT/scripts/setup.sh"
fi

echo "run: cargo run --release -- selftest $*"
t0=$SECONDS
rc=0
cargo run --release -- selftest "$@" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "run: selftest FAILED (exit $rc, $((SECONDS - t0)) s)" >&2
  exit "$rc"
fi
echo "run: selftest passed ($((SECONDS - t0)) s)"
