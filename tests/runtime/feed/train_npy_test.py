#!/usr/bin/env python3
"""pmlc train on a .npy dataset: the files are named relative to the current directory,
the loss falls on a learnable problem, and a file that does not fit the model is an
error (exit 1) naming the file. The .npy files are written by hand (no numpy)."""
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from npy_files import write_npy  # noqa: E402

pmlc = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)



PROGRAM = """import "nn"
model m(x: f32[B, 2]) -> f32[B, 2] {
    return linear(gelu(linear(x, 16) as fc1), 2) as head
}
train m {
    data = "x.npy"
    labels = "y.npy"
    loss = cross_entropy
    optimizer = adamw(lr = 1e-2)
    batch = 16, microbatches = 2
    steps = 40
}
"""

with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "m.pml"), "w") as f:
        f.write(PROGRAM)
    # Two classes: points inside or outside the unit circle, as f64 and i64.
    xs, ys = [], []
    for i in range(64):
        a, r = 2 * math.pi * i / 64 * 7, 0.4 + 1.2 * (i % 2)
        xs += [r * math.cos(a), r * math.sin(a)]
        ys.append(i % 2)
    write_npy(os.path.join(tmp, "x.npy"), (64, 2), xs, "d")
    write_npy(os.path.join(tmp, "y.npy"), (64,), ys, "q")
    metrics = os.path.join(tmp, "m.jsonl")
    r = subprocess.run([pmlc, "train", "m.pml", "--metrics", metrics, "--quiet", "--threads", "2"],
                       cwd=tmp, capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"training on .npy files succeeds: {r.stderr}")
    if r.returncode == 0:
        import json
        recs = [json.loads(line) for line in open(metrics)]
        check(len(recs) == 40, "one record per step")
        first = sum(x["loss"] for x in recs[:4]) / 4
        last = sum(x["loss"] for x in recs[-4:]) / 4
        check(last < first, f"the loss falls ({first:.3f} -> {last:.3f})")

    write_npy(os.path.join(tmp, "x.npy"), (64, 3), [0.0] * 192, "f")
    r = subprocess.run([pmlc, "train", "m.pml", "--quiet"], cwd=tmp, capture_output=True, text=True, timeout=300)
    check(r.returncode == 1 and "x.npy" in r.stderr and "(64, 3)" in r.stderr,
          f"a file of the wrong shape is an error naming it: {r.stderr}")

    # A constant batch dimension: trains when the micro-batch matches it (8 / 2 = 4), and
    # is refused before a step, naming both sizes, when it does not (32 / 2 = 16).
    write_npy(os.path.join(tmp, "x.npy"), (64, 2), xs, "d")
    fixed = PROGRAM.replace("f32[B, 2]", "f32[4, 2]").replace("steps = 40", "steps = 2")
    for batch, ok in (("batch = 8, microbatches = 2", True), ("batch = 32, microbatches = 2", False)):
        with open(os.path.join(tmp, "m.pml"), "w") as f:
            f.write(fixed.replace("batch = 16, microbatches = 2", batch))
        r = subprocess.run([pmlc, "train", "m.pml", "--quiet"], cwd=tmp, capture_output=True, text=True, timeout=300)
        if ok:
            check(r.returncode == 0, f"a constant batch dimension equal to the micro-batch trains: {r.stderr}")
        else:
            check(r.returncode == 1 and "4 rows" in r.stderr and "16 rows" in r.stderr,
                  f"a constant batch dimension the micro-batches contradict is refused naming both sizes "
                  f"(exit {r.returncode}): {r.stderr}")

print(f"train npy: {len(failures)} failed")
sys.exit(1 if failures else 0)
