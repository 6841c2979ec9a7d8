#!/usr/bin/env bash
# The main job, on the built-in data (Fashion-MNIST from Debian's package):
#   1. set up the machine (scripts/setup.sh; ENAS4D_SKIP_SETUP=1 skips it) and build;
#   2. check every WGSL kernel against its reference on this machine's GPU (or lavapipe);
#   3. (with --train) train both supernets with the quick schedule, else use the shipped ones;
#   4. search the multi-stage supernet under an average-MACs budget, beside the static one;
#   5. export the chosen net and classify sample test images with early exit;
#   6. print the table: accuracy and average MACs of the searched net vs the static baselines
#      (the best static subnet and the best cascade of two), on the first 2 000 test images.
#
#   scripts/run.sh [--train] [--budget MACS]     (default budget 3M; output in runs/main)
set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENAS4D_ROOT"

train=0
budget=3M
while [ $# -gt 0 ]; do
  case "$1" in
    --train) train=1 ;;
    --budget) budget="$2"; shift ;;
    *) echo "run: unknown argument $1 (expected --train, --budget MACS)" >&2; exit 2 ;;
  esac
  shift
done

if [ "${ENAS4D_SKIP_SETUP:-0}" != 1 ]; then
  "$ENAS4D_ROOT/scripts/setup.sh"
fi
t0=$SECONDS
cargo build --release --bin enas4d
bin="$CARGO_TARGET_DIR/release/enas4d"
out=runs/main
mkdir -p "$out"

echo "== kernels: selftest on this machine's GPU"
"$bin" selftest | tail -n 3

multi=models/tiny-s2/ab22-first-stage/supernet.bin
s1=models/tiny-s1/ab23-longer/supernet.bin
if [ "$train" = 1 ]; then
  echo "== training both supernets (quick schedule)"
  for s in 2 1; do
    "$bin" train --schedule quick --stages "$s" --out "$out/train-s$s" --quiet
  done
  multi="$out/train-s2/supernet.bin"
  s1="$out/train-s1/supernet.bin"
fi

echo "== search under an average budget of $budget MACs"
"$bin" search --model "$multi" --static-model "$s1" --budget "$budget" --out "$out/search" \
  --initial 12 --generations 4 --val-images 1000 --test-images 2000 --quiet

echo "== export the chosen net"
"$bin" export --model "$multi" --search "$out/search/front.json" --out "$out/net.safetensors"

echo "== classify sample test images (stage by stage, early exit)"
"$bin" gallery --out "$out/gallery" --count 8
"$bin" infer --model "$out/net.safetensors" "$out/gallery"/*.png

echo
echo "run: done in $((SECONDS - t0)) s"
echo "  Pareto plot:    $out/search/pareto.svg (front: $out/search/front.json)"
echo "  training curve: $(dirname "$multi")/curve.svg"
echo "  exported model: $out/net.safetensors"
echo "  classify more:  $bin infer --model $out/net.safetensors IMAGE..."
echo "  browser demo:   scripts/build-npm.sh && node tests/browser/serve.mjs, then open http://127.0.0.1:8080/"
