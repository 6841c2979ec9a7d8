#!/usr/bin/env python3
"""The ONNX export against the runtime on real images (DESIGN §6).

Exports MODEL's ONNX graphs with `enas4d export --net MODEL --onnx`, runs every prefix graph
(exits 1..k) in ONNX Runtime on the images, and compares each exit with `enas4d infer`
(threshold 1: every exit runs): the class must be identical and the confidence (softmax
maximum) within 1e-5.

usage: check_onnx.py ENAS4D NETWORK_INPUT MODEL IMAGE...
  ENAS4D         the enas4d binary
  NETWORK_INPUT  the network_input example binary (writes the runtime's preprocessed input)
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

BOUND = 1e-5


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    enas4d, network_input, model, images = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    with tempfile.TemporaryDirectory() as tmp:
        onnx = Path(tmp) / "net.onnx"
        subprocess.run([enas4d, "export", "--net", model, "--onnx", str(onnx)], check=True)
        raw = Path(tmp) / "input.f32"
        subprocess.run([network_input, model, str(raw), *images], check=True)
        x = np.fromfile(raw, dtype="<f4")
        side = int(round((x.size / (3 * len(images))) ** 0.5))
        x = x.reshape(len(images), 3, side, side)
        out = subprocess.run(
            [enas4d, "infer", "--model", model, "--threshold", "1", "--json", *images],
            check=True, capture_output=True, text=True,
        ).stdout
        runtime = [json.loads(line) for line in out.splitlines() if line.strip()]
        stages = len(runtime[0]["perExit"])
        worst, checked = 0.0, 0
        for k in range(1, stages + 1):
            path = onnx if k == stages else Path(tmp) / f"net.exit{k}.onnx"
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [o.name for o in sess.get_outputs()]
            assert names == [f"logits{t}" for t in range(1, k + 1)], names
            logits = sess.run(names, {"image": x})
            for t, z in enumerate(logits):
                p = softmax(z.astype(np.float64))
                for i, r in enumerate(runtime):
                    want = r["perExit"][t]
                    cls, conf = int(p[i].argmax()), float(p[i].max())
                    if cls != want["classIndex"]:
                        sys.exit(f"{images[i]} graph 1..{k} exit {t + 1}: class {cls}, runtime {want['classIndex']}")
                    err = abs(conf - want["confidence"])
                    worst = max(worst, err)
                    if err > BOUND:
                        sys.exit(f"{images[i]} graph 1..{k} exit {t + 1}: confidence {conf} vs {want['confidence']}")
                    checked += 1
        print(f"onnx: {checked} exit outputs of {len(images)} images over {stages} prefix graphs "
              f"match the runtime (classes identical, confidence error {worst:.2e} <= {BOUND:g}; "
              f"onnxruntime {ort.__version__})")


if __name__ == "__main__":
    main()
