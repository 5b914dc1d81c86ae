#!/usr/bin/env python3
"""pmlc train from the command line: weights land in DIR/model.safetensors under the
plan's parameter names and shapes (--steps 0: the initial ones), --metrics writes one
record per step, --trace a Chrome-trace timeline with one track per stage and the
measured bubble, two runs with one seed write identical bytes, and mistakes are errors
with a message and exit status 1 or 2, never a crash."""
import json
import os
import struct
import subprocess
import sys
import tempfile

pmlc, examples = sys.argv[1], sys.argv[2]
mlp = os.path.join(examples, "mlp.pml")
failures = []


def run(*args):
    return subprocess.run([pmlc, *args], capture_output=True, text=True, timeout=300)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


with tempfile.TemporaryDirectory() as tmp:
    plan = json.loads(run("plan", "--json", mlp).stdout)
    want = {p["name"]: p["shape"] for p in plan["parameters"]}

    r = run("train", mlp, "--steps", "0", "--out", os.path.join(tmp, "init"), "--quiet")
    check(r.returncode == 0, f"--steps 0 succeeds: {r.stderr}")
    h = header(os.path.join(tmp, "init", "model.safetensors"))
    got = {k: v["shape"] for k, v in h.items() if k != "__metadata__"}
    check(got == want, "the weights file holds exactly the plan's parameters and shapes")
    check(all(v["dtype"] == "F32" for k, v in h.items() if k != "__metadata__"), "weights are F32")

    metrics = os.path.join(tmp, "m.jsonl")
    r = run("train", mlp, "--steps", "6", "--metrics", metrics, "--out", os.path.join(tmp, "a"), "--seed", "7")
    check(r.returncode == 0, f"training 6 steps succeeds: {r.stderr}")
    check("step 6/6" in r.stderr and "loss" in r.stderr, "the progress lines name the step and the loss")
    recs = [json.loads(line) for line in open(metrics)]
    check([x["step"] for x in recs] == [1, 2, 3, 4, 5, 6], "one metrics record per step")
    check(all(set(x) >= {"step", "loss", "lr", "grad_norm", "samples_per_s", "step_ms"} for x in recs),
          "each record has step, loss, lr, grad_norm, samples_per_s and step_ms")
    check(recs[-1]["loss"] < recs[0]["loss"], "the loss falls")

    r = run("train", mlp, "--steps", "6", "--out", os.path.join(tmp, "b"), "--seed", "7", "--quiet")
    a = open(os.path.join(tmp, "a", "model.safetensors"), "rb").read()
    b = open(os.path.join(tmp, "b", "model.safetensors"), "rb").read()
    check(a == b, "two runs with one seed write identical weights")

    trace = os.path.join(tmp, "t.json")
    r = run("train", mlp, "--steps", "3", "--trace", trace)
    check(r.returncode == 0 and "bubble:" in r.stderr and "analytic" in r.stderr,
          f"--trace reports the measured and analytic bubble: {r.stderr}")
    t = json.load(open(trace))
    spans = [e for e in t["traceEvents"] if e["ph"] == "X"]
    tracks = {e["tid"] for e in t["traceEvents"] if e["ph"] == "M"}
    stages, mbs = plan["stages_count"], plan["microbatches"]
    check(tracks == set(range(stages)), "the timeline has one track per stage")
    check(sum(e["cat"] == "fwd" for e in spans) == 3 * stages * mbs and
          sum(e["cat"] == "bwd" for e in spans) == 3 * stages * mbs,
          "one forward and one backward span per stage, micro-batch and step")
    check(all(e["dur"] >= 0 for e in spans) and 0 <= t["otherData"]["measured_bubble"] < 1,
          "spans have durations and the measured bubble is a fraction")

    r = run("train", mlp, "--steps", "40", "--eval", "2", "--quiet", "--metrics", os.path.join(tmp, "e.jsonl"))
    last = [json.loads(line) for line in open(os.path.join(tmp, "e.jsonl"))][-1]
    check(r.returncode == 0 and "eval_accuracy" in last and last["eval_accuracy"] > 0.5,
          f"--eval reports held-out accuracy well above chance (10%) after 40 steps: {last}")

    r = run("train", mlp, "--steps", "many")
    check(r.returncode == 2 and "--steps" in r.stderr, "a bad --steps is a usage error")
    nomodel = os.path.join(tmp, "untrained.pml")
    with open(nomodel, "w") as f:
        f.write('import "nn"\nmodel m(x: f32[B, 4]) -> f32[B, 4] {\n    return linear(x, 4)\n}\n')
    r = run("train", nomodel)
    check(r.returncode == 1 and "error" in r.stderr, "a program without a train block cannot train")
    r = run("train", mlp, "--steps", "1", "--out", "/proc/version/x", "--quiet")
    check(r.returncode == 1 and "error" in r.stderr, "an unwritable --out is an error")

print(f"train cli: {len(failures)} failed")
sys.exit(1 if failures else 0)
