#!/usr/bin/env python3
"""pmlc train --trace times each unit of the CPU backend's work (an op, a fused kernel,
a deferred weight gradient, a stage's update) for steps 2 to 5 of the run: every such
span lies inside its stage's forward, backward or update span of the same step (and
micro-batch), each micro-batch of a step has the same units, a fused kernel names its
ops ("ops": "add:f32 gelu_tanh:f32"), and
bench/cpu_train/ops.py turns the spans into a breakdown by op."""
import collections
import json
import os
import subprocess
import sys
import tempfile

pmlc, examples, ops_py = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as tmp:
    trace = os.path.join(tmp, "t.json")
    r = subprocess.run([pmlc, "train", os.path.join(examples, "mlp.pml"), "--steps", "7", "--trace", trace, "--quiet",
                        "--set", "batch=64"], capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"training with --trace succeeds: {r.stderr}")
    events = json.load(open(trace))["traceEvents"]
    ops = [e for e in events if e.get("cat") == "op"]
    check(sorted({e["args"]["step"] for e in ops}) == [2, 3, 4, 5], "op spans cover steps 2 to 5, no others")
    outer = collections.defaultdict(list)
    for e in events:
        if e.get("cat") in ("fwd", "bwd", "step"):
            outer[(e["tid"], e["args"]["step"])].append(e)

    def holder(e):
        for o in outer[(e["tid"], e["args"]["step"])]:
            if o["ts"] - 1e-3 <= e["ts"] and e["ts"] + e["dur"] <= o["ts"] + o["dur"] + 1e-3:
                return o
        return None

    alone = [e for e in ops if holder(e) is None]
    check(not alone, f"every op span lies inside a forward, backward or update span of its stage: {alone[:2]}")
    wrong_mb = [e for e in ops if e["args"]["pass"] == "forward" and holder(e) and
                (holder(e)["cat"] != "fwd" or holder(e)["args"]["microbatch"] != e["args"]["microbatch"])]
    check(not wrong_mb, f"a forward op lies in its own micro-batch's forward span: {wrong_mb[:2]}")
    per_mb = collections.Counter((e["tid"], e["args"]["step"], e["args"]["microbatch"]) for e in ops
                                 if e["args"]["pass"] == "forward")
    check(len(set(per_mb.values())) == 2, f"each micro-batch runs the same forward units on its stage: {per_mb}")
    updates = collections.Counter((e["tid"], e["args"]["step"]) for e in ops if e["name"] == "update")
    check(len(updates) == 2 * 4 and set(updates.values()) == {1}, f"one update span per stage and step: {updates}")
    check(all(0 <= e["args"]["cpu_us"] <= e["dur"] + 50 for e in ops),
          "each op span gives the CPU time its stage thread spent in it, at most its wall time")
    names = {e["name"].split(" ")[0] for e in ops}
    check({"matmul", "fused", "update"} <= names, f"matmuls, fused kernels and updates are named: {names}")
    fused = [e for e in ops if e["name"].startswith("fused ")]
    check(fused and all(len(e["args"].get("ops", "").split()) == int(e["name"].split()[1]) and
                        all(":" in o for o in e["args"]["ops"].split()) for e in fused),
          f"a fused kernel's span lists its ops, each with its stored dtype: {fused[:1]}")
    wg = [e for e in ops if e["args"]["pass"] == "weight gradient"]
    check(any(e["name"] == "matmul" for e in wg) and not any(e["name"] == "permute" for e in wg),
          "a weight gradient is named by the matmul it runs as, not by its transpose in the plan")
    r = subprocess.run([sys.executable, ops_py, trace], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "matmul" in r.stdout and "%" in r.stdout, f"ops.py breaks the step down: {r.stdout}{r.stderr}")

    # a name as long as the language allows (256 bytes) reaches the trace whole; its
    # events once passed the writer's 256-byte line and the trace was lost after training
    name = "v" + "x" * 255
    src = os.path.join(tmp, "long.pml")
    with open(src, "w") as f:
        f.write(f"""import "nn"
model m(x: f32[B, 16]) -> f32[B, 4] {{
    {name} = relu(linear(x, 32))
    return linear({name}, 4)
}}
train m {{
    data = classes(features = 16, classes = 4, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-4)
    batch = 8, microbatches = 2
    steps = 6
    place = cpu
}}
""")
    r = subprocess.run([pmlc, "train", src, "--quiet", "--trace", trace],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and any(name in e["name"] for e in json.load(open(trace))["traceEvents"]),
          f"a 256-byte name is traced whole: {r.returncode} {r.stderr}")

if failures:
    sys.exit(1)
print("ok")
