#!/usr/bin/env python3
"""A scheduled freeze under ZB-H1 (schedule = zero_bubble: backwards split into input and
weight halves, the weight halves late): the residual MLP on 3 automatically placed
stages with `freeze stem, layers.[0-1].* after 3 steps` trains 7 steps from weights W0
with zero_bubble and with 1f1b. The zero_bubble run re-cuts its stages at step 3 (the
phase is planned again, with its own ZB-H1 timetable) and ends within 1e-5 of the 1f1b
run's weights, every tensor; the frozen tensors are bit-for-bit those of step 3 in
both (the weight halves skip frozen work as whole backwards do). The plan file's run
(no re-cut) equals the re-cut one bit for bit. Usage: zero_bubble_test.py PMLC WORK"""
import os

import numpy as np
from freeze_lib import check, finish, load_safetensors, model, pmlc, run, work


def train(what, out, *extra):
    log = run(pmlc, "train", what, "--out", out, "--init", init, *extra, stderr=True)
    return load_safetensors(os.path.join(out, "model.safetensors")), log


src = model("deep", 3, 7, "adamw(lr = 0.01)", "freeze stem, layers.[0-1].* after 3 steps")
run(pmlc, "train", src, "--steps", "0", "--quiet", "--out", os.path.join(work, "w0"))
init = os.path.join(work, "w0", "model.safetensors")
zb, log_zb = train(src, os.path.join(work, "zb"), "--set", "schedule=zero_bubble")
fb, _ = train(src, os.path.join(work, "fb"), "--set", "schedule=1f1b", "--quiet")
at3, _ = train(src, os.path.join(work, "at3"), "--set", "schedule=zero_bubble", "--steps", "3", "--quiet")

check("stages re-cut" in log_zb, f"the zero_bubble run did not re-cut its stages at the freeze:\n{log_zb}")
worst = 0.0
for n in fb:
    d = float(np.linalg.norm(zb[n] - fb[n]) / max(np.linalg.norm(fb[n]), 1e-30))
    worst = max(worst, d)
    check(d <= 1e-5, f"{n}: zero_bubble differs from 1f1b by {d:.3g}")
print(f"zero_bubble vs 1f1b with a scheduled freeze and a re-cut: largest relative difference {worst:.3g}")
frozen = [n for n in zb if n.startswith("stem.") or n.startswith("layers.0.") or n.startswith("layers.1.")]
check(frozen and all(np.array_equal(zb[n], at3[n]) for n in frozen), "frozen tensors changed after step 3")

plan_file = os.path.join(work, "deep.plan")
run(pmlc, "build", src, "-o", plan_file, "--arch", "none", "--set", "schedule=zero_bubble")
inplace, _ = train(plan_file, os.path.join(work, "inplace"), "--quiet")
check(all(np.array_equal(zb[n], inplace[n]) for n in zb), "the re-cut and in-place zero_bubble runs differ")
finish("zero_bubble with a scheduled freeze")
