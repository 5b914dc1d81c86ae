#!/usr/bin/env python3
"""A scheduled freeze is a static freeze from its step on. For a residual MLP trained
with SGD + momentum (so optimizer state crosses the boundary), on 1 and 3 stages:

  A  `freeze stem, layers.[0-1].* after K steps`, trained N steps from weights W0;
  B  the same model trained K steps from W0 (--out: a checkpoint), then the model with
     the freeze made static (`freeze stem, layers.[0-1].*`) resumed from that
     checkpoint (--resume) to step N.

What is compared: every parameter of A and B after N steps (bit-for-bit, or at most
1e-6 of the tensor's largest magnitude), the frozen ones bit-for-bit equal to their
values at step K, and the losses of steps K+1..N from both runs' metrics (1e-6
relative). Data, dropout, learning rate and the optimizer's step count are functions
of (seed, step), so B continues what A does; the resumed run ignores the frozen
parameters' momentum (checkpoint.h). Usage: schedule_test.py PMLC WORK"""
import json
import os

import numpy as np
from freeze_lib import check, finish, load_safetensors, model, pmlc, run, work

K, N = 3, 7
FROZEN = ("stem.", "layers.0.", "layers.1.")


def source(name, stages, freeze):
    return model(name, stages, N, "sgd(lr = 0.05, momentum = 0.9)", freeze)

def losses(path):
    with open(path) as f:
        return {r["step"]: r["loss"] for r in map(json.loads, f) if "step" in r}


def train(src, out, *extra):
    metrics = out + ".metrics.jsonl"
    run(pmlc, "train", src, "--quiet", "--out", out, "--metrics", metrics, *extra)
    return load_safetensors(os.path.join(out, "model.safetensors")), losses(metrics)


for stages in (1, 3):
    tag = f"s{stages}"
    sched = source(tag + "-scheduled", stages, f"freeze stem, layers.[0-1].* after {K} steps")
    static = source(tag + "-static", stages, "freeze stem, layers.[0-1].*")
    w0, _ = train(sched, os.path.join(work, tag + "-w0"), "--steps", "0")
    init = os.path.join(work, tag + "-w0", "model.safetensors")
    a, loss_a = train(sched, os.path.join(work, tag + "-a"), "--init", init)
    wk, _ = train(sched, os.path.join(work, tag + "-k"), "--init", init, "--steps", str(K))
    b, loss_b = train(static, os.path.join(work, tag + "-b"), "--resume", os.path.join(work, tag + "-k"))

    worst, exact = 0.0, 0
    for n, v in a.items():
        scale = max(float(np.abs(v).max()), 1e-12)
        worst = max(worst, float(np.abs(v - b[n]).max()) / scale)
        exact += bool(np.array_equal(v, b[n]))
        if n.startswith(FROZEN):
            check(np.array_equal(v, wk[n]), f"{tag}: frozen {n} changed after step {K} in the scheduled run")
            check(not np.array_equal(v, w0[n]), f"{tag}: {n} did not train before step {K}")
        else:
            check(not np.array_equal(v, wk[n]), f"{tag}: trainable {n} did not train after step {K}")
    print(f"{tag}: {exact}/{len(a)} parameters bit-for-bit equal, largest difference {worst:.2e} (relative)")
    check(worst <= 1e-6, f"{tag}: scheduled and resumed-static weights differ by {worst:.2e}")

    steps = list(range(K + 1, N + 1))
    check(sorted(loss_b) == steps, f"{tag}: the resumed run logged steps {sorted(loss_b)}, not {steps}")
    gap = max(abs(loss_a[s] - loss_b[s]) / abs(loss_a[s]) for s in steps if s in loss_b) if loss_b else 1.0
    print(f"{tag}: losses of steps {K + 1}..{N}: largest difference {gap:.2e} (relative)")
    check(gap <= 1e-6, f"{tag}: losses after the freeze differ by {gap:.2e}")

finish("freeze schedule")
