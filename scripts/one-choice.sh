#!/usr/bin/env bash
# What each elastic choice costs a trained supernet: the largest subnet, then the largest with
# one choice set to a smaller value everywhere (resolution, kernel, depth, expand ratio, stage
# cuts), then the smallest, each scored by `enas4d eval` (BN re-estimated per subnet).
#
#   scripts/one-choice.sh [--stages S] [--model SUPERNET] [--split val|test]
#
# Defaults: S = 3, the shipped supernet for S, the validation split. Prints one row per subnet:
# accuracy and cumulative MACs of every exit.
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

stages=3
model=""
split="val"
while [ $# -gt 0 ]; do
  case "$1" in
    --stages) stages="$2"; shift ;;
    --model) model="$2"; shift ;;
    --split) split="$2"; shift ;;
    *) echo "one-choice: unknown argument $1 (expected --stages, --model, --split)" >&2; exit 2 ;;
  esac
  shift
done
case "$stages" in
  1|2|3) ;;
  *) echo "one-choice: --stages must be 1, 2 or 3 (the shipped tiny supernets), got $stages" >&2; exit 2 ;;
esac
model="${model:-models/tiny-s$stages/supernet.bin}"
bin="$CARGO_TARGET_DIR/release/enas4d"
[ -x "$bin" ] || cargo build --release --bin enas4d

# The tiny preset: 16 elastic blocks in 4 units.
repeat() { # repeat VALUE COUNT → "v, v, …"
  local out="$1" i
  for ((i = 1; i < $2; i++)); do out="$out, $1"; done
  echo "$out"
}
per_stage() { # per_stage "ROW" → S copies of [ROW]
  local out="[$1]" s
  for ((s = 1; s < stages; s++)); do out="$out, [$1]"; done
  echo "$out"
}
cuts() { # cuts largest|smallest → the S − 1 cut fractions
  local all=(0.25 0.375 0.5 0.625 0.75) n=$((stages - 1))
  if [ "$n" -eq 0 ]; then echo ""; return; fi
  if [ "$1" = largest ]; then
    (IFS=,; echo "${all[*]:$((5 - n))}")
  else
    (IFS=,; echo "${all[*]:0:$n}")
  fi
}
config() { # config RES P KERNEL DEPTH EXPAND
  printf '{"resolution": %s, "p": [%s], "kernel": [%s], "depth": [%s], "expand": [%s]}\n' \
    "$1" "$2" "$(per_stage "$(repeat "$3" 16)")" "$(per_stage "$(repeat "$4" 4)")" \
    "$(repeat "$5" 16)"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
big=$(cuts largest)
small=$(cuts smallest)
rows=(
  "largest|$(config 32 "$big" 7 4 6)"
  "resolution 28|$(config 28 "$big" 7 4 6)"
  "resolution 24|$(config 24 "$big" 7 4 6)"
  "resolution 20|$(config 20 "$big" 7 4 6)"
  "kernel 5|$(config 32 "$big" 5 4 6)"
  "kernel 3|$(config 32 "$big" 3 4 6)"
  "depth 3|$(config 32 "$big" 7 3 6)"
  "depth 2|$(config 32 "$big" 7 2 6)"
  "expand 4|$(config 32 "$big" 7 4 4)"
  "expand 3|$(config 32 "$big" 7 4 3)"
)
if [ "$stages" -gt 1 ]; then
  rows+=("smallest cuts|$(config 32 "$small" 7 4 6)")
fi
rows+=("smallest|$(config 20 "$small" 3 2 3)")

echo "$model, $split split: accuracy (cumulative MACs) per exit"
for row in "${rows[@]}"; do
  name="${row%%|*}"
  echo "${row#*|}" > "$tmp/subnet.json"
  line=$("$bin" eval --model "$model" --config "$tmp/subnet.json" --split "$split" |
    awk '/^ *[0-9]+ +[0-9.]+%/ { printf "  %s (%s M)", $2, $3 }')
  printf '%-15s%s\n' "$name" "$line"
done
