#!/usr/bin/env python3
"""examples/embed_serve serves examples/mlp.pml from C: trained in process on its own rows
(through a feeder) it predicts them well; with a checkpoint pmlc wrote it serves those
weights; weights it cannot load are an error naming the path, exit 1.

Usage: serve_test.py EMBED_SERVE PMLC MLP.pml BEHAVIOUR"""
import os
import re
import subprocess
import sys
import tempfile

serve, pmlc, mlp, behaviour = sys.argv[1:5]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def predictions(out):
    return re.findall(r"^row (\d+): predicted class (\d+) \(made as class (\d+)\)$", out, re.M)


with tempfile.TemporaryDirectory() as tmp:
    if behaviour == "trains_on_its_own_rows_and_serves_them":
        r = subprocess.run([serve, mlp], capture_output=True, text=True, timeout=300)
        rows = predictions(r.stdout)
        hits = sum(p == m for _, p, m in rows)
        check(r.returncode == 0 and len(rows) == 25, f"serves 25 rows: {r.stdout} {r.stderr}")
        check(hits >= 20, f"its rows are learnt ({hits} of 25 predicted as made): {r.stdout}")
        losses = [float(x) for x in re.findall(r"^step \d+ loss ([0-9.]+)$", r.stdout, re.M)]
        check(len(losses) == 4 and losses[-1] < losses[0], f"the loss falls: {losses}")
    elif behaviour == "serves_a_checkpoint_pmlc_wrote":
        ckpt = os.path.join(tmp, "ckpt")
        r = subprocess.run([pmlc, "train", mlp, "--steps", "2", "--out", ckpt, "--quiet"], capture_output=True,
                           text=True, timeout=300)
        check(r.returncode == 0, f"pmlc train succeeds: {r.stderr}")
        r = subprocess.run([serve, mlp, ckpt], capture_output=True, text=True, timeout=300)
        check(r.returncode == 0 and len(predictions(r.stdout)) == 25 and ckpt in r.stdout,
              f"serves pmlc's checkpoint: {r.stdout} {r.stderr}")
    else:
        missing = os.path.join(tmp, "nothing-here")
        r = subprocess.run([serve, mlp, missing], capture_output=True, text=True, timeout=300)
        check(r.returncode == 1 and missing in r.stderr and not predictions(r.stdout),
              f"exit 1 naming the path: {r.returncode} {r.stderr}")

print(f"embed_serve {behaviour}: {len(failures)} failed")
sys.exit(1 if failures else 0)
