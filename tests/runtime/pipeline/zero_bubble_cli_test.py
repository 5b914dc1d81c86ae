#!/usr/bin/env python3
"""ZB-H1 on the GPT example (schedule = zero_bubble): `pmlc plan` simulates a smaller
bubble than 1F1B's with the example's own stage costs, at the same peak of micro-batches
in flight, and shows the weight halves (W) in each stage's order; `pmlc train --trace`
runs it and its timeline has the input (B) and weight (W) halves of every micro-batch on
every stage, with ZB-H1's analytic bubble beside the measured one. Usage:
zero_bubble_cli_test.py PMLC EXAMPLES"""
import json
import os
import subprocess
import sys
import tempfile

pmlc, examples = sys.argv[1], sys.argv[2]
gpt = os.path.join(examples, "gpt.pml")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def plan(schedule):
    r = subprocess.run([pmlc, "plan", gpt, "--json", "--set", f"schedule={schedule}"], capture_output=True, text=True,
                       timeout=120)
    check(r.returncode == 0, f"pmlc plan --set schedule={schedule}: {r.stderr}")
    return json.loads(r.stdout) if r.returncode == 0 else None


fb, zb = plan("1f1b"), plan("zero_bubble")
if fb and zb:
    a, b = fb["simulated_bubble_fraction"], zb["simulated_bubble_fraction"]
    print(f"GPT example, 4 stages, 8 micro-batches: simulated bubble 1f1b {a:.4f}, zero_bubble {b:.4f}; "
          f"analytic {fb['bubble_fraction']:.4f}, {zb['bubble_fraction']:.4f}")
    check(zb["schedule_runnable"], "zero_bubble is runnable")
    check(b < a, f"zero_bubble's simulated bubble {b} is not below 1f1b's {a}")
    peak = lambda p: max(s["in_flight"] for s in p["stages"])
    check(peak(zb) == peak(fb), f"peak micro-batches in flight: zero_bubble {peak(zb)}, 1f1b {peak(fb)}")
    kinds = {k for s in zb["stages"] for k, _ in s["timetable"]}
    check({"bwd_input", "bwd_weight"} <= kinds and "bwd" not in kinds, f"zero_bubble's instructions: {kinds}")

with tempfile.TemporaryDirectory() as tmp:
    trace = os.path.join(tmp, "zb.json")
    r = subprocess.run([pmlc, "train", gpt, "--steps", "2", "--trace", trace, "--set", "batch=16", "--set", "T=16",
                        "--set", "schedule=zero_bubble", "--set", "place=cpu"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"pmlc train --set schedule=zero_bubble: {r.stderr}")
    if r.returncode == 0:
        t = json.load(open(trace))
        spans = {(e["cat"], e["tid"], e["args"]["microbatch"]) for e in t["traceEvents"]
                 if e["ph"] == "X" and e["cat"] in ("bwd_input", "bwd_weight")}
        check(len(spans) == 2 * 4 * 8, f"a B and a W span per stage and micro-batch: {len(spans)}")
        check(abs(t["otherData"]["analytic_bubble"] - 3 / (3 * 8 + 3)) < 1e-6,
              f"the trace's analytic bubble is ZB-H1's: {t['otherData']['analytic_bubble']}")
        print(r.stderr.strip().splitlines()[-1])

if failures:
    sys.exit(1)
print("ok")
