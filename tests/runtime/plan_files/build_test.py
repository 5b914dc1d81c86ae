#!/usr/bin/env python3
"""pmlc build: every example builds to a plan file that libpml loads, with the stage
count and parameter count `pmlc plan --json` reports; -o into a missing folder fails
with exit 1 and leaves nothing; build without -o is a usage error (exit 2).
Usage: build_test.py PMLC PLAN_INFO EXAMPLE.pml..."""
import json
import os
import subprocess
import sys
import tempfile

pmlc, plan_info, examples = sys.argv[1], sys.argv[2], sys.argv[3:]
failures = []


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as tmp:
    for ex in examples:
        name = os.path.splitext(os.path.basename(ex))[0]
        out = os.path.join(tmp, name + ".plan")
        r = run(pmlc, "build", ex, "-o", out)
        check(r.returncode == 0 and os.path.isfile(out), f"{name}: builds: {r.stderr}")
        check(sorted(os.listdir(tmp)) == sorted(f for f in os.listdir(tmp) if f.endswith(".plan")),
              f"{name}: no temporary file is left beside the plan")
        info = run(plan_info, out)
        check(info.returncode == 0, f"{name}: the plan file loads: {info.stderr}")
        plan = json.loads(run(pmlc, "plan", "--json", ex).stdout)
        want = f"stages {plan['stages_count']} params {plan['total_params']}"
        got = info.stdout.splitlines()[0] if info.stdout else ""
        check(got == want, f"{name}: '{got}' matches plan --json's '{want}'")
        # Building again replaces the file with the same bytes.
        first = open(out, "rb").read()
        r = run(pmlc, "build", ex, f"-o{out}")
        check(r.returncode == 0 and open(out, "rb").read() == first, f"{name}: a rebuild writes the same bytes")

    ex = examples[0]
    missing = os.path.join(tmp, "no", "such", "folder")
    r = run(pmlc, "build", ex, "-o", os.path.join(missing, "x.plan"))
    check(r.returncode == 1 and "error" in r.stderr, f"-o into a missing folder fails with exit 1: {r.stderr}")
    check(not os.path.exists(os.path.join(tmp, "no")), "and leaves nothing")

    r = run(pmlc, "build", ex)
    check(r.returncode == 2 and "-o" in r.stderr, f"build without -o is a usage error: {r.stderr}")
    r = run(pmlc, "build", ex, "-o")
    check(r.returncode == 2, "-o without a file is a usage error")

    bad = os.path.join(tmp, "bad.pml")
    with open(bad, "w") as f:
        f.write("model m(x: f32[B, 4]) -> f32[B, 4] { return nope(x) }\n")
    out = os.path.join(tmp, "bad.plan")
    r = run(pmlc, "build", bad, "-o", out)
    check(r.returncode == 1 and not os.path.exists(out), "a program with errors builds nothing (exit 1)")

print(f"build: {len(failures)} failed")
sys.exit(1 if failures else 0)
