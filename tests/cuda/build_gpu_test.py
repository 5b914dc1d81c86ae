#!/usr/bin/env python3
"""pmlc build puts the model's GPU code in the plan file: by default CUBINs for sm_80 and
sm_90 and PTX for compute_90, with one launch per kernel that has code; --arch chooses
the targets, --arch none leaves GPU code out, a bad target is an error that writes
nothing; the second build takes every target from the kernel cache and writes the same
bytes. Usage: build_gpu_test.py PMLC PLAN_INFO WORK MODEL.pml"""
import os
import shutil
import subprocess
import sys

pmlc, plan_info, work, model = sys.argv[1:5]
failures = []
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
env = dict(os.environ, PML_CACHE_DIR=os.path.join(work, "cache"))


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, env=env)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def gpu_line(plan):
    info = run(plan_info, plan)
    check(info.returncode == 0, f"{plan} loads: {info.stderr}")
    lines = info.stdout.splitlines()
    return lines[1].split() if len(lines) > 1 else []


out = os.path.join(work, "m.plan")
r = run(pmlc, "build", model, "-o", out)
check(r.returncode == 0, f"default build: {r.stderr}")
check("sm_80 (" in r.stderr and "cache)" not in r.stderr, f"the first build compiles: {r.stderr}")
g = gpu_line(out)
check(g[:2] == ["gpu", "sm_80,sm_90,compute_90"], f"default targets: {g}")
check(len(g) == 6 and int(g[3]) > 0 and int(g[5]) > 0, f"functions and launches: {g}")
first = open(out, "rb").read()

r = run(pmlc, "build", model, "-o", out)
check(r.returncode == 0 and r.stderr.count("(cache)") == 3, f"the second build hits the cache: {r.stderr}")
check(open(out, "rb").read() == first, "and writes the same bytes")

one = os.path.join(work, "one.plan")
r = run(pmlc, "build", model, "--arch", "sm_90", "-o", one)
check(r.returncode == 0 and gpu_line(one)[:2] == ["gpu", "sm_90"], f"--arch sm_90: {r.stderr}")

none = os.path.join(work, "none.plan")
r = run(pmlc, "build", model, "--arch=none", "-o", none)
check(r.returncode == 0 and gpu_line(none)[:2] == ["gpu", "none"], f"--arch none: {r.stderr}")
check(len(open(none, "rb").read()) < len(first), "a plan without GPU code is smaller")

bad = os.path.join(work, "bad.plan")
r = run(pmlc, "build", model, "--arch", "sm_8x", "-o", bad)
check(r.returncode == 1 and "sm_8x" in r.stderr and not os.path.exists(bad), f"a bad target: {r.stderr}")

print(f"build_gpu: {len(failures)} failed")
sys.exit(1 if failures else 0)
