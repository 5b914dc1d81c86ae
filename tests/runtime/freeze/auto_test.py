#!/usr/bin/env python3
"""`freeze auto(every = K, threshold = t)` freezes a growing prefix of layers (the
criterion is in runtime/src/plan/phase.h and docs/design.md). A residual MLP (stem,
layers.0-4, norm, head) trains 12 steps with a checkpoint after every step; a layer's
freeze step is the first step from which its weights never change again. Checked:
  - t = 1e-12 freezes nothing; a huge t freezes every layer but the last (head) at the
    second check, step 2K (the first, at step K, only records gradient norms);
  - with t = 0.2, in between (here the stem at step 8, layers 0-2 at 10, the rest
    trains on): every freeze step is a multiple of K and at least 2K;
    freeze steps never decrease towards the input (a layer is frozen only with every
    layer before it: the frozen set is a prefix); the head trains to the end; 1 and 3
    stages freeze alike;
  - the same run twice gives the same weights (the criterion is deterministic).
Usage: auto_test.py PMLC WORK"""
import os

import numpy as np
from freeze_lib import check, finish, load_safetensors, model, pmlc, run, work

K, N = 2, 12
LAYERS = ["stem"] + [f"layers.{i}" for i in range(5)] + ["norm", "head"]

def layer_of(name):
    return next(l for l in LAYERS if name == l or name.startswith(l + "."))


def freeze_steps(threshold, stages=1, tag=""):
    """Per layer, the first step from which its weights no longer change (N: trained to the end)."""
    name = f"t{threshold}-s{stages}{tag}"
    src = model(name, stages, N, "sgd(lr = 0.05, momentum = 0.9)", "checkpoint_every = 1",
                f"freeze auto(every = {K}, threshold = {threshold})", layers=5)
    out = os.path.join(work, name)
    run(pmlc, "train", src, "--quiet", "--seed", "7", "--out", out)
    ws = [load_safetensors(os.path.join(out, f"step-{s:06d}", "model.safetensors")) for s in range(1, N + 1)]
    last = {}
    for n in ws[0]:
        moved = [s for s in range(1, N) if not np.array_equal(ws[s][n], ws[s - 1][n])]
        step = (moved[-1] + 1) if moved else 0  # weights after step index s differ from before: trained in step s
        l = layer_of(n)
        last[l] = max(last.get(l, 0), step)
    return {l: last[l] for l in LAYERS}, ws[-1]


none, _ = freeze_steps(1e-12)
print("threshold 1e-12:", none)
check(all(s == N for s in none.values()), "threshold 1e-12 froze a layer")

everything, _ = freeze_steps(1e9)
print("threshold 1e9:", everything)
check(all(everything[l] == 2 * K for l in LAYERS[:-1]), "a huge threshold did not freeze every layer at step 2K")
check(everything["head"] == N, "the last layer was frozen")

progressive = {}
for stages in (1, 3):
    some, w1 = freeze_steps(0.2, stages)
    progressive[stages] = some
    print(f"threshold 0.2, {stages} stage(s):", some)
    steps = [some[l] for l in LAYERS]
    check(all(s == N or (s % K == 0 and s >= 2 * K) for s in steps), f"{stages}: a freeze off the K-step grid")
    check(all(a <= b for a, b in zip(steps, steps[1:])), f"{stages}: the frozen layers are not a prefix")
    check(some["head"] == N, f"{stages}: the last layer was frozen")
    _, w2 = freeze_steps(0.2, stages, "-again")
    check(all(np.array_equal(w1[n], w2[n]) for n in w1), f"{stages}: two runs differ")
check(any(s < N for s in progressive[1].values()) and progressive[1]["layers.4"] == N,
      "threshold 0.2 should freeze part of the model, not all or nothing")
check(progressive[1] == progressive[3], "1 and 3 stages freeze differently")

finish("freeze auto")
