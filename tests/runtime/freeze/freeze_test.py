#!/usr/bin/env python3
"""A static freeze only removes work. The same residual MLP is trained from the same
initial weights with and without `freeze stem, layers.[0-1].*`, with plain SGD (no
momentum, no weight decay), on 1 and 3 stages:
  - after 5 steps the frozen parameters are bit-for-bit the initial ones;
  - after 1 step every trainable parameter moved exactly as it does without the
    freeze (same gradient: w1 - w0 agree to float rounding), while the plan of the
    frozen run does less backward work than the unfrozen one.
Usage: freeze_test.py PMLC WORK"""
import json
import os

import numpy as np
from freeze_lib import check, finish, load_safetensors, model, pmlc, run, work

FROZEN = ("stem.", "layers.0.", "layers.1.")

def train(stages, freeze, steps, init):
    name = f"s{stages}-{'frozen' if freeze else 'all'}-{steps}"
    src = model(name, stages, 5, "sgd(lr = 0.1)", "freeze stem, layers.[0-1].*" if freeze else "")
    out = os.path.join(work, name)
    args = [pmlc, "train", src, "--steps", str(steps), "--quiet", "--out", out]
    if init:
        args += ["--init", init]
    run(*args)
    plan = json.loads(run(pmlc, "plan", "--json", src))
    return load_safetensors(os.path.join(out, "model.safetensors")), plan


for stages in (1, 3):
    w0, _ = train(stages, False, 0, None)
    init = os.path.join(work, f"s{stages}-all-0", "model.safetensors")
    frozen5, _ = train(stages, True, 5, init)
    for n, v in w0.items():
        if n.startswith(FROZEN):
            check(np.array_equal(frozen5[n], v), f"{stages} stages: frozen {n} changed in 5 steps")
        else:
            check(not np.array_equal(frozen5[n], v), f"{stages} stages: trainable {n} did not train")
    all1, plan_all = train(stages, False, 1, init)
    frozen1, plan_frozen = train(stages, True, 1, init)
    worst = 0.0
    for n, v in w0.items():
        if n.startswith(FROZEN):
            continue
        d_all, d_frozen = all1[n] - v, frozen1[n] - v
        scale = max(float(np.abs(d_all).max()), 1e-12)
        worst = max(worst, float(np.abs(d_all - d_frozen).max()) / scale)
    print(f"{stages} stages: largest difference of a trainable step, frozen vs not: {worst:.2e} (relative)")
    check(worst <= 1e-5, f"{stages} stages: trainable updates differ with the freeze ({worst:.2e})")

    b_all = sum(s["bwd_flops"] for s in plan_all["stages"])
    b_frozen = sum(s["bwd_flops"] for s in plan_frozen["stages"])
    check(b_frozen < b_all, f"{stages} stages: backward work {b_frozen} is not below {b_all}")

finish("freeze")
