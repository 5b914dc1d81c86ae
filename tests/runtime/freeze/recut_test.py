#!/usr/bin/env python3
"""Re-cutting the pipeline at a scheduled freeze keeps every weight and the loss
trajectory. A residual MLP on 3 automatically placed stages, with `freeze stem,
layers.[0-1].* after 3 steps`, trains 7 steps from weights W0 twice:
  A  `pmlc train FILE`: at step 3 the program is planned again for the phase and the
     stages re-cut (runtime/src/run/recut.h);
  B  `pmlc train PLAN` of the plan file: the stages keep the step-0 cut and the
     runtime only stops the frozen work (runtime/src/plan/phase.h).
Checked: A logged a re-cut at step 3 that moved at least one layer to another stage,
and matches `pmlc plan`'s phase ("re-cut", `recut_flops`); A and B have bit-for-bit
the same final weights and the same loss at every step (so the switch loses nothing
and re-initialises nothing); A resumed from its step-5 checkpoint starts in the
re-cut phase and ends with the same weights. With `freeze auto` as well, the re-cut
run still equals the in-place one (the automatic freeze's state moves to the new
pipeline), re-cut at a check's step or between checks. Usage: recut_test.py PMLC WORK"""
import json
import os

import numpy as np
from freeze_lib import check, finish, load_safetensors, model, pmlc, run, work

def train(what, out, *extra):
    metrics = out + ".jsonl"
    log = run(pmlc, "train", what, "--out", out, "--metrics", metrics, *extra, stderr=True)
    records = [json.loads(line) for line in open(metrics)]
    return load_safetensors(os.path.join(out, "model.safetensors")), records, log


src = model("deep", 3, 7, "adamw(lr = 0.01)", "checkpoint_every = 5", "freeze stem, layers.[0-1].* after 3 steps")
plan_file = os.path.join(work, "deep.plan")
run(pmlc, "build", src, "-o", plan_file, "--arch", "none")
run(pmlc, "train", src, "--steps", "0", "--quiet", "--out", os.path.join(work, "w0"))
init = os.path.join(work, "w0", "model.safetensors")

a, rec_a, log_a = train(src, os.path.join(work, "a"), "--init", init)
b, rec_b, _ = train(plan_file, os.path.join(work, "b"), "--init", init, "--quiet")

plan = json.loads(run(pmlc, "plan", "--json", src))
before = {p["name"]: p["stage"] for p in plan["parameters"]}
recuts = [r for r in rec_a if "recut_at_step" in r]
check(len(recuts) == 1 and recuts[0]["recut_at_step"] == 3, f"expected one re-cut at step 3, got {recuts}")
check(not any("recut_at_step" in r for r in rec_b), "a plan file's run re-cut its stages")
if recuts:
    after = recuts[0]["param_stages"]
    moved = sorted({n.rsplit(".", 1)[0] for n in after if after[n] != before[n]})
    print("moved to another stage at step 3:", ", ".join(moved) or "nothing")
    check(bool(moved), "the re-cut moved no layer")
check("stages re-cut" in log_a, "the progress output does not say the stages were re-cut")
phase = [p for p in plan["phases"] if p["from_step"] == 3]
check(len(phase) == 1 and len(phase[0].get("recut_flops", [])) == 3, "the plan shows no re-cut for the phase")
if phase and "recut_flops" in phase[0]:
    old = max(s["fwd_flops"] + s["bwd_flops"] for s in phase[0]["stages"])
    check(max(phase[0]["recut_flops"]) < old, "the re-cut does not lower the slowest stage")

same = [n for n in a if np.array_equal(a[n], b[n])]
print(f"re-cut vs in place: {len(same)}/{len(a)} parameters bit-for-bit equal")
check(len(same) == len(a), "re-cut and in-place runs end with different weights")
loss_a = {r["step"]: r["loss"] for r in rec_a if "step" in r}
loss_b = {r["step"]: r["loss"] for r in rec_b if "step" in r}
check(loss_a == loss_b and len(loss_a) == 7, f"loss trajectories differ:\n{loss_a}\n{loss_b}")

c, rec_c, _ = train(src, os.path.join(work, "c"), "--resume", os.path.join(work, "a", "step-000005"))
check([r.get("recut_at_step") for r in rec_c if "recut_at_step" in r] == [5], "a resume past the freeze did not re-cut")
check(all(np.array_equal(a[n], c[n]) for n in a), "resuming in the re-cut phase changed the result")

# With `freeze auto` too, the re-cut pipeline carries the automatic freeze's state (the
# layers it froze stay frozen), also when a check is due at the re-cut's step (10).
for at in (9, 10):
    mixed = model(f"mixed{at}", 3, 12, "sgd(lr = 0.05, momentum = 0.9)", "freeze auto(every = 2, threshold = 0.2)",
                  f"freeze norm after {at} steps", layers=5)
    mixed_plan = os.path.join(work, f"mixed{at}.plan")
    run(pmlc, "build", mixed, "-o", mixed_plan, "--arch", "none")
    ma, rec_ma, log_ma = train(mixed, os.path.join(work, f"ma{at}"), "--seed", "7")
    mb, _, _ = train(mixed_plan, os.path.join(work, f"mb{at}"), "--seed", "7", "--quiet")
    frozen = json.load(open(os.path.join(work, f"ma{at}", "trainer.json")))["auto_freeze"]["frozen"]
    print(f"freeze auto and a re-cut at step {at}: frozen automatically {frozen}")
    check("stages re-cut" in log_ma and frozen, f"{at}: no re-cut, or nothing frozen automatically to carry")
    check(all(np.array_equal(ma[n], mb[n]) for n in ma), f"{at}: with freeze auto, re-cut and in place differ")

finish("freeze recut")
