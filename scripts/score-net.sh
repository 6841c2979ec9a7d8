#!/usr/bin/env bash
# Test-split accuracy, average MACs and exit shares of exported nets, measured the way a user
# runs them: the test images written once as PNG files (`enas4d gallery`), classified by
# `enas4d infer --json` with each file's own thresholds (extra flags, e.g. --threshold 0.9,
# go to infer), compared with the labels in the gallery's index.json.
#
#   scripts/score-net.sh ENAS4D_BIN GALLERY_DIR MODEL... [-- INFER_FLAGS...]
set -euo pipefail
[ "$#" -ge 3 ] || { echo "usage: $0 ENAS4D_BIN GALLERY_DIR MODEL... [-- INFER_FLAGS...]" >&2; exit 2; }
bin="$1" gallery="$2"
shift 2
models=()
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do models+=("$1"); shift; done
[ "${1:-}" = -- ] && shift
if [ ! -f "$gallery/index.json" ]; then
  "$bin" gallery --out "$gallery" --count 10000
fi
for model in "${models[@]}"; do
  abs=$(realpath "$model")
  (cd "$gallery" && "$bin" infer --json --model "$abs" "$@" -- *.png) |
    python3 -c '
import json, sys
index = {e["file"]: e["label"] for e in json.load(open(sys.argv[1]))}
rows = [json.loads(l) for l in sys.stdin]
n = len(rows)
right = sum(r["label"] == index[r["file"]] for r in rows)
macs = sum(r["macs"] for r in rows) / n
exits = [sum(r["exit"] == s + 1 for r in rows) / n for s in range(max(r["exit"] for r in rows))]
print(f"{sys.argv[2]}: {n} test images, accuracy {100 * right / n:.2f} %, average MACs "
      f"{macs / 1e6:.3f} M, exit shares " + " / ".join(f"{100 * e:.0f} %" for e in exits))
' "$gallery/index.json" "$model"
done
