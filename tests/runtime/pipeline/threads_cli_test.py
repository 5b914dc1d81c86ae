#!/usr/bin/env python3
"""--threads N is the CPU threads a training run uses in all: with fewer threads than
pipeline stages the stages take turns, so the trace never shows more than N stages
computing at once; with a thread per stage they compute side by side."""
import json
import os
import subprocess
import sys
import tempfile

pmlc, examples = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def most_at_once(trace):
    """The largest number of compute spans (forward, backward) open at one instant."""
    t = json.load(open(trace))
    edges = []
    for e in t["traceEvents"]:
        if e["ph"] == "X" and e["cat"] in ("fwd", "bwd"):
            edges += [(e["ts"], 1), (e["ts"] + e["dur"], -1)]
    edges.sort(key=lambda x: (x[0], x[1]))  # an end before a start at the same instant
    now = most = 0
    for _, d in edges:
        now += d
        most = max(most, now)
    return most


with tempfile.TemporaryDirectory() as tmp:
    for model, threads, want in (("mlp.pml", 1, 1), ("gpt.pml", 2, 2), ("gpt.pml", 1, 1)):
        trace = os.path.join(tmp, f"{model}.{threads}.json")
        r = subprocess.run([pmlc, "train", os.path.join(examples, model), "--steps", "2", "--threads", str(threads),
                            "--trace", trace, "--quiet", "--set", "batch=16",
                            *(["--set", "place=cpu"] if model == "gpt.pml" else [])],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, f"{model} --threads {threads} trains: {r.stderr}")
        if r.returncode == 0:
            n = most_at_once(trace)
            check(n == want, f"{model} --threads {threads}: at most {want} stages compute at once (saw {n})")
    # The check sees stages side by side when they may be: a thread per stage.
    trace = os.path.join(tmp, "mlp.2.json")
    r = subprocess.run([pmlc, "train", os.path.join(examples, "mlp.pml"), "--steps", "3", "--threads", "2",
                        "--trace", trace, "--quiet"], capture_output=True, text=True, timeout=300)
    check(r.returncode == 0 and most_at_once(trace) == 2, "mlp.pml --threads 2: its two stages compute side by side")

if failures:
    sys.exit(1)
print("ok")
