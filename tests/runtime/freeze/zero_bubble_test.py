#!/usr/bin/env python3
"""A scheduled freeze under ZB-H1 (schedule = zero_bubble: backwards split into input and
weight halves, the weight halves late): the residual MLP on 3 automatically placed
stages with `freeze stem, layers.[0-1].* after 3 steps` trains 7 steps from weights W0
with zero_bubble and with 1f1b. The zero_bubble run re-cuts its stages at step 3 (the
phase is planned again, with its own ZB-H1 timetable) and ends within 1e-5 of the 1f1b
run's weights, every tensor; the frozen tensors are bit-for-bit those of step 3 in
both (the weight halves skip frozen work as whole backwards do). The plan file's run
(no re-cut) equals the re-cut one bit for bit.

With `zbv`, the same under ZB-V (schedule = zero_bubble_v): 2 stages of 2 chunks in a
V against 1f1b on 4 stages (as many as it has chunks), the re-cut cutting the chunks
again and planning the phase's own ZB-V timetable. Usage: zero_bubble_test.py PMLC WORK
[zbv]"""
import os
import sys

import numpy as np
from freeze_lib import check, finish, load_safetensors, model, pmlc, run, work

vee = sys.argv[3:] == ["zbv"]
name = "zero_bubble_v" if vee else "zero_bubble"


def train(what, out, *extra):
    log = run(pmlc, "train", what, "--out", out, "--init", init, *extra, stderr=True)
    return load_safetensors(os.path.join(out, "model.safetensors")), log


freeze = "freeze stem, layers.[0-1].* after 3 steps"
src = model("deep", "2, chunks = 2" if vee else 3, 7, "adamw(lr = 0.01)", freeze)
ref = model("flat", 4, 7, "adamw(lr = 0.01)", freeze) if vee else src
run(pmlc, "train", ref, "--steps", "0", "--quiet", "--out", os.path.join(work, "w0"))
init = os.path.join(work, "w0", "model.safetensors")
zb, log_zb = train(src, os.path.join(work, "zb"), "--set", f"schedule={name}")
fb, _ = train(ref, os.path.join(work, "fb"), "--set", "schedule=1f1b", "--quiet")
at3, _ = train(src, os.path.join(work, "at3"), "--set", f"schedule={name}", "--steps", "3", "--quiet")

check("stages re-cut" in log_zb, f"the {name} run did not re-cut its stages at the freeze:\n{log_zb}")
worst = 0.0
for n in fb:
    d = float(np.linalg.norm(zb[n] - fb[n]) / max(np.linalg.norm(fb[n]), 1e-30))
    worst = max(worst, d)
    check(d <= 1e-5, f"{n}: {name} differs from 1f1b by {d:.3g}")
print(f"{name} vs 1f1b with a scheduled freeze and a re-cut: largest relative difference {worst:.3g}")
frozen = [n for n in zb if n.startswith("stem.") or n.startswith("layers.0.") or n.startswith("layers.1.")]
check(frozen and all(np.array_equal(zb[n], at3[n]) for n in frozen), "frozen tensors changed after step 3")

plan_file = os.path.join(work, "deep.plan")
run(pmlc, "build", src, "-o", plan_file, "--arch", "none", "--set", f"schedule={name}")
inplace, _ = train(plan_file, os.path.join(work, "inplace"), "--quiet")
check(all(np.array_equal(zb[n], inplace[n]) for n in zb), f"the re-cut and in-place {name} runs differ")
finish(f"{name} with a scheduled freeze")
