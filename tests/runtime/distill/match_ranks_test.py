#!/usr/bin/env python3
"""A distillation with a match projection on two ranks (mpirun): the sharded
checkpoints keep the projection whole in distill.safetensors (written by the rank that
holds the loss's stage), and one process resuming them, mid-run or at the end, ends with
the one-process run's student and projection, bit for bit.

usage: match_ranks_test.py PMLC MPIRUN|none WORK; exits 77 (skipped) without mpirun or
a pmlc built with MPI."""
import os
import shutil
import subprocess
import sys

from distill_programs import STUDENT_MODEL

pmlc, mpirun, work = sys.argv[1:4]
if mpirun == "none" or not shutil.which(mpirun):
    print("SKIP: no mpirun (install openmpi-bin and libopenmpi-dev and rebuild with MPI)")
    sys.exit(77)
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)

MODELS = """import "nn"
model teacher(x: f32[B, 16]) -> f32[B, 5] {
    h = gelu(linear(x, 32) as fc1)
    return linear(h, 5) as head
}
""" + STUDENT_MODEL
TRAIN = """train {model} {{
    data = classes(features = 16, classes = 5, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-2)
    batch = 32, microbatches = 4
    steps = {steps}
    {extra}
}}
"""
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, mpi=0):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"  # Open MPI's own allocations
    cmd = [pmlc, *args]
    if mpi:
        cmd = [mpirun, "--oversubscribe", "-np", str(mpi)] + (["--allow-run-as-root"] if os.geteuid() == 0 else []) + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")


def same(a, b, what):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        check(fa.read() == fb.read(), f"{what}: {os.path.basename(a)} differs")


def path(*p):
    return os.path.join(work, *p)


with open(path("teacher.pml"), "w") as f:
    f.write(MODELS + TRAIN.format(model="teacher", steps=20, extra=""))
run("train", path("teacher.pml"), "--quiet", "--out", path("teacher"))
with open(path("student.pml"), "w") as f:
    f.write(MODELS + TRAIN.format(model="student", steps=8, extra="checkpoint_every = 4") +
            f'distill student from teacher("{path("teacher", "model.safetensors")}") {{\n'
            '    match(student = "fc1", teacher = "fc1", loss = cosine, weight = 0.5)\n}\n')
run("train", path("student.pml"), "--quiet", "--out", path("one"))
run("train", path("student.pml"), "--quiet", "--out", path("two"), mpi=2)
files = sorted(os.listdir(path("two", "step-000004")))
print("a two-rank checkpoint:", " ".join(files))
check("distill.safetensors" in files and "model.safetensors.index.json" in files, "not a sharded checkpoint with "
      "distill.safetensors")
for at, out in (("step-000004", "mid"), ("", "end")):
    run("train", path("student.pml"), "--quiet", "--resume", path("two", at), "--out", path(out))
    for f in ("model.safetensors", "distill.safetensors"):
        same(path(out, f), path("one", f), f"resumed from the two ranks' {at or 'final'} checkpoint")
print(f"distill match ranks: {len(failures)} failed")
sys.exit(1 if failures else 0)
