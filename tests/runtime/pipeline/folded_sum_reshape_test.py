#!/usr/bin/env python3
"""A linear layer straight after a linear layer, on [B, T, C] values: the first one's
bias add folds into its product (cpu/lower.h), and the reshape that feeds the second
one's deferred weight gradient aliased the sum before the sum became an alias itself,
so the weight gradient read no buffer ("matmul: input 1 has no data"). Training must
run, 1 and 2 micro-batches, and give the losses of the unfused run (--check-numerics
runs every node on its own, folding nothing) to 1e-6."""
import json
import os
import subprocess
import sys
import tempfile

pmlc = sys.argv[1]
failures = []

MODEL = """import "nn"
model m(idx: i32[B, T]) -> f32[B, T, 8] {
    h = embedding(idx, 16, 24) as emb
    h = linear(h, 24) as fc1
    h = linear(h, 24) as fc2
    return linear(h, 8) as head
}
train m {
    data = markov(vocab = 8, order = 1, seed = 1)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 4, microbatches = 2
    steps = 3
    T = 8
}
"""


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def losses(tmp, *extra):
    src, metrics = os.path.join(tmp, "m.pml"), os.path.join(tmp, "metrics.jsonl")
    open(src, "w").write(MODEL)
    r = subprocess.run([pmlc, "train", src, "--quiet", "--metrics", metrics, *extra], capture_output=True, text=True,
                       timeout=300)
    check(r.returncode == 0, f"pmlc train {' '.join(extra)}: rc {r.returncode} {r.stderr.strip()}")
    if r.returncode:
        return []
    return [json.loads(line)["loss"] for line in open(metrics) if '"loss"' in line and '"step"' in line]


with tempfile.TemporaryDirectory() as tmp:
    for mbs in ("1", "2"):
        folded = losses(tmp, "--set", f"microbatches={mbs}")
        unfused = losses(tmp, "--set", f"microbatches={mbs}", "--check-numerics")
        check(len(folded) == 3 and len(unfused) == 3, f"{mbs} micro-batches: 3 losses each: {folded} {unfused}")
        worst = max((abs(a - b) / max(abs(b), 1e-30) for a, b in zip(folded, unfused)), default=0)
        print(f"{mbs} micro-batch(es): losses {folded}, unfused {unfused}, largest relative difference {worst:.3g}")
        check(worst <= 1e-6, f"{mbs} micro-batches: folded and unfused losses differ by {worst:.3g}")
if failures:
    sys.exit(1)
print("ok")
