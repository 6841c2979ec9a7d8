#!/usr/bin/env python3
"""enas4d's CPU runtime against ONNX Runtime on the same net and the same images.

For batch 1 and 256, one and two threads, every stage and exit 1 only, it alternates
`enas4d bench` (threshold 1: every stage; 0: exit 1 only) with ONNX Runtime running the net's
ONNX graph (`net.onnx`: every exit; `net.exit1.onnx`: exit 1 only) on the same preprocessed
test images, ROUNDS times each, and prints the median images/s of each as a Markdown table.
ONNX Runtime runs in this process (sequential execution, `intra_op_num_threads` = threads,
all graph optimizations); a Python call costs it a few microseconds per batch.

usage: bench_ort.py ENAS4D MODEL ONNX INPUT.f32 IMAGES [SECONDS] [ROUNDS]
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def ort_rate(path, x, batch, threads, seconds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_outputs()[-1].name
    batches = [x[i:i + batch] for i in range(0, len(x) - batch + 1, batch)]
    sess.run([name], {"image": batches[0]})  # warm-up
    done, start, i = 0, time.perf_counter(), 0
    while True:
        sess.run([name], {"image": batches[i % len(batches)]})
        done += batch
        i += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def enas4d_rate(enas4d, model, batch, threads, threshold, images, seconds):
    out = subprocess.run(
        [enas4d, "bench", "--model", model, "--batch", str(batch), "--threads", str(threads),
         "--threshold", str(threshold), "--images", str(images), "--seconds", str(seconds),
         "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    r = json.loads(out)
    return r["images_per_s"], r["macs_per_image"]


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    enas4d, model, onnx, raw, images = sys.argv[1:6]
    seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 2.0
    rounds = int(sys.argv[7]) if len(sys.argv) > 7 else 3
    images = int(images)
    x = np.fromfile(raw, dtype="<f4")
    side = int(round((x.size / (3 * images)) ** 0.5))
    x = x.reshape(images, 3, side, side)
    onnx = Path(onnx)
    graphs = {"all stages": (onnx, 1), "exit 1 only": (onnx.with_name(f"{onnx.stem}.exit1.onnx"), 0)}
    print(f"onnxruntime {ort.__version__}, {images} test images at {side} px, "
          f"median of {rounds} alternating rounds of {seconds:g} s each\n")
    print("| batch | threads | exits | enas4d images/s | ONNX Runtime images/s | enas4d / ORT | enas4d MACs/image |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    results = {}
    for batch in (1, 256):
        for threads in (1, 2):
            for label, (path, threshold) in graphs.items():
                ours, theirs, macs = [], [], 0
                for _ in range(rounds):
                    rate, macs = enas4d_rate(enas4d, model, batch, threads, threshold, images, seconds)
                    ours.append(rate)
                    theirs.append(ort_rate(path, x, batch, threads, seconds))
                a, b = statistics.median(ours), statistics.median(theirs)
                results[(batch, threads, label)] = (a, b, macs)
                print(f"| {batch} | {threads} | {label} | {a:.0f} | {b:.0f} | {a / b:.2f}× | {macs / 1e6:.2f} M |",
                      flush=True)
    print()
    for batch in (1, 256):
        all_rate, _, all_macs = results[(batch, 1, "all stages")]
        one_rate, _, one_macs = results[(batch, 1, "exit 1 only")]
        time_ratio = all_rate / one_rate  # exit-1 time / all-stages time
        mac_ratio = one_macs / all_macs
        print(f"batch {batch}, 1 thread: exit-1 time / all-stages time = {time_ratio:.3f}, "
              f"MAC ratio {mac_ratio:.3f}: {time_ratio / mac_ratio:.2f}× the MAC ratio")
    for batch in (256,):
        one = results[(batch, 1, "all stages")][0]
        two = results[(batch, 2, "all stages")][0]
        print(f"batch {batch}, all stages: two threads {two / one:.2f}× one thread (enas4d)")


if __name__ == "__main__":
    main()
