#!/usr/bin/env python3
"""A run with `freeze auto` resumed from a checkpoint equals the uninterrupted run bit
for bit: the checkpoint's trainer.json holds the automatic freeze's state (the layers
it froze, the norms of its last check, the step checked last; runtime/src/ckpt/
freeze.h). The residual MLP of auto_test.py (K = 2, threshold 0.2: the stem
freezes at step 8 and layers 0-2 at step 10) trains 12 steps with a checkpoint after
every step (the same weights as without those checkpoints); resumed from steps 5 (norms recorded, nothing frozen), 8 (a check due
before the next step: the checkpoint ran it first) and 9 (the stem frozen), it must
end with the same weights and optimizer state and log the same losses. Also: a
version-1 checkpoint (no state) still resumes, with a note that the checks start
afresh; a state that does not fit the model is refused, naming trainer.json, exit 1.
Usage: auto_resume_test.py PMLC WORK"""
import json
import os
import shutil
import subprocess

from freeze_lib import check, finish, load_safetensors, model, pmlc, run, work

K, N = 2, 12
src = model("auto_resume", 3, N, "sgd(lr = 0.05, momentum = 0.9)", "checkpoint_every = 1",
            f"freeze auto(every = {K}, threshold = 0.2)", layers=5)
straight = os.path.join(work, "straight")
run(pmlc, "train", src, "--quiet", "--seed", "7", "--out", straight, "--metrics", straight + ".jsonl")


def losses(path):
    return [json.loads(line)["loss"] for line in open(path)]


def same_files(a, b, what):
    for f in ("model.safetensors", "optimizer.safetensors"):
        with open(os.path.join(a, f), "rb") as fa, open(os.path.join(b, f), "rb") as fb:
            check(fa.read() == fb.read(), f"{what}: {f} differs from the uninterrupted run's")


# Checkpoints run a due check early; without them it runs at the next step's start, alike.
plain_src = model("auto_plain", 3, N, "sgd(lr = 0.05, momentum = 0.9)", f"freeze auto(every = {K}, threshold = 0.2)",
                  layers=5)
plain = os.path.join(work, "plain")
run(pmlc, "train", plain_src, "--quiet", "--seed", "7", "--out", plain)
same_files(straight, plain, "without checkpoints during the run")

state = json.load(open(os.path.join(straight, "step-000012", "trainer.json")))["auto_freeze"]
print("state at step 12:", state)
check(state["frozen"] and state["frozen"][0] == "stem", f"the run froze nothing to resume across: {state}")
check(json.load(open(os.path.join(straight, "step-000008", "trainer.json")))["auto_freeze"]["checked"] == 8,
      "a checkpoint where a check is due did not run it")

for k in (5, 8, 9):
    out = os.path.join(work, f"resumed{k}")
    run(pmlc, "train", src, "--quiet", "--resume", os.path.join(straight, f"step-{k:06d}"), "--out", out,
        "--metrics", out + ".jsonl")
    same_files(straight, out, f"resumed at step {k}")
    check(losses(out + ".jsonl") == losses(straight + ".jsonl")[k:], f"resumed at step {k}: the losses differ")
    w = load_safetensors(os.path.join(out, "model.safetensors"))
    print(f"resumed at step {k}: {len(w)} tensors equal to the uninterrupted run's")

# A version-1 checkpoint has no state: it resumes, its checks start afresh, and says so.
old = os.path.join(work, "old")
shutil.copytree(os.path.join(straight, "step-000009"), old)
t = json.load(open(os.path.join(old, "trainer.json")))
del t["auto_freeze"]
t["version"] = 1
json.dump(t, open(os.path.join(old, "trainer.json"), "w"))
note = run(pmlc, "train", src, "--resume", old, "--out", os.path.join(work, "from_old"), stderr=True)
check("checks start afresh" in note, f"no note about the version-1 checkpoint: {note[-400:]}")

# A state of another model (a layer list that is not this model's) is refused.
bad = os.path.join(work, "bad")
shutil.copytree(os.path.join(straight, "step-000009"), bad)
t = json.load(open(os.path.join(bad, "trainer.json")))
t["auto_freeze"]["layers"] = t["auto_freeze"]["layers"][1:]
json.dump(t, open(os.path.join(bad, "trainer.json"), "w"))
r = subprocess.run([pmlc, "train", src, "--resume", bad, "--out", os.path.join(work, "never")], capture_output=True,
                   text=True)
print("a misfit state:", r.stderr.strip())
check(r.returncode == 1 and os.path.join(bad, "trainer.json") in r.stderr and "auto_freeze" in r.stderr,
      f"a misfit state: exit {r.returncode}: {r.stderr}")
check(not os.path.exists(os.path.join(work, "never")), "a refused resume wrote its output")

finish("freeze auto resume")
