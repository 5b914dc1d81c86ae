#!/usr/bin/env python3
"""A scheduled freeze under ZB-V (schedule = zero_bubble_v: 2 chunks per stage in a V,
backwards split into input and weight halves): the residual MLP on 2 automatically
placed stages of 2 chunks each with `freeze stem, layers.[0-1].* after 3 steps` trains
7 steps from weights W0, and ends within 1e-5 of 1f1b on 4 stages (as many as it has
chunks), every tensor; the frozen tensors are bit-for-bit those of step 3 (the weight
halves skip frozen work as whole backwards do); the run re-cuts its chunks at step 3
(the phase is planned again, with its own ZB-V timetable), and the plan file's run (no
re-cut) equals it bit for bit. Usage: zero_bubble_v_test.py PMLC WORK"""
import os

import numpy as np
from freeze_lib import check, finish, load_safetensors, model, pmlc, run, work


def train(what, out, *extra):
    log = run(pmlc, "train", what, "--out", out, "--init", init, *extra, stderr=True)
    return load_safetensors(os.path.join(out, "model.safetensors")), log


freeze = "freeze stem, layers.[0-1].* after 3 steps"
src = model("vee", "2, chunks = 2", 7, "adamw(lr = 0.01)", "schedule = zero_bubble_v", freeze)
flat = model("flat", 4, 7, "adamw(lr = 0.01)", "schedule = 1f1b", freeze)
run(pmlc, "train", flat, "--steps", "0", "--quiet", "--out", os.path.join(work, "w0"))
init = os.path.join(work, "w0", "model.safetensors")
zbv, log_zbv = train(src, os.path.join(work, "zbv"))
fb, _ = train(flat, os.path.join(work, "fb"), "--quiet")
at3, _ = train(src, os.path.join(work, "at3"), "--steps", "3", "--quiet")

check("stages re-cut" in log_zbv, f"the zero_bubble_v run did not re-cut its stages at the freeze:\n{log_zbv}")
worst = 0.0
for n in fb:
    d = float(np.linalg.norm(zbv[n] - fb[n]) / max(np.linalg.norm(fb[n]), 1e-30))
    worst = max(worst, d)
    check(d <= 1e-5, f"{n}: zero_bubble_v differs from 1f1b by {d:.3g}")
print(f"zero_bubble_v vs 1f1b on 4 stages with a scheduled freeze and a re-cut: largest relative difference {worst:.3g}")
frozen = [n for n in zbv if n.startswith("stem.") or n.startswith("layers.0.") or n.startswith("layers.1.")]
check(frozen and all(np.array_equal(zbv[n], at3[n]) for n in frozen), "frozen tensors changed after step 3")

plan_file = os.path.join(work, "vee.plan")
run(pmlc, "build", src, "-o", plan_file, "--arch", "none")
inplace, _ = train(plan_file, os.path.join(work, "inplace"), "--quiet")
check(all(np.array_equal(zbv[n], inplace[n]) for n in zbv), "the re-cut and in-place zero_bubble_v runs differ")
finish("zero_bubble_v with a scheduled freeze")
