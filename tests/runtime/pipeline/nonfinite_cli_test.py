#!/usr/bin/env python3
"""Non-finite values through `pmlc train` and `pmlc infer` (pipeline.h, checkpoint.h,
feed.h), one behaviour per invocation: nonfinite_cli_test.py PMLC EXAMPLES BEHAVIOUR.

  diverging_run          an SGD run at lr 1000 with checkpoint_every = 1: exit 1 naming the
                         step, stage and tensor; every committed step-* folder holds finite
                         tensors only and resumes
  check_numerics_forward   --check-numerics names sqrt, its node, stage, micro-batch, step
                           and .pml line:col; without it, the loss of micro-batch 0
  check_numerics_backward  --check-numerics names the backward op of sqrt(h - h)
  check_numerics_cuda      --check-numerics with --backend cuda is refused, not ignored
  init, resume, teacher  a NaN in --init weights, in --resume optimizer state, in a
                         distillation teacher's file: refused at load naming file and tensor
  npy_data, infer_input  a NaN (or inf) row in the training .npy data or infer's --input:
                         refused at load naming the file and the row
Every refusal exits 1 with no crash and writes nothing. The .npy files are written by
hand (no numpy)."""
import math
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from st_files import read_st, write_st  # noqa: E402
from npy_files import write_npy  # noqa: E402

pmlc, examples, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []

MODEL = """import "nn"
model m(x: f32[B, 8]) -> f32[B, 4] {
    stage 0 { h = linear(x, 16) as fc1 }
    stage 1 {
        h = %s
        return linear(h, 4) as head
    }
}
train m {
    data = %s
    loss = cross_entropy
    optimizer = %s
    batch = 16, microbatches = 4
    schedule = 1f1b
    place = [cpu, cpu]
    steps = 6
    checkpoint_every = 1
}
"""
CLASSES = "classes(features = 8, classes = 4, seed = 1)"


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def pmlc_run(*args, cwd=None):
    r = subprocess.run([pmlc, *args, "--threads", "2"], capture_output=True, text=True, timeout=300, cwd=cwd)
    check("Sanitizer" not in r.stderr and "Traceback" not in r.stderr, f"no crash: {r.stderr}")
    return r


def program(tmp, expr="tanh(h)", data=CLASSES, optimizer="sgd(lr = 0.1, momentum = 0.9)", name="m.pml"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(MODEL % (expr, data, optimizer))
    return path


def refused(r, *says):
    check(r.returncode == 1, f"exit status 1 (got {r.returncode}): {r.stderr}")
    for s in says:
        check(s in r.stderr, f"the message says '{s}': {r.stderr}")


def finite_tensors(path):
    """None when every tensor of `path` is finite, else the first one's name."""
    _, _, data = read_st(path)
    for name, raw in data.items():
        if not all(math.isfinite(v) for v in struct.unpack(f"<{len(raw) // 4}f", raw)):
            return name
    return None



def poison(path, tensor, element, value=float("nan")):
    header, meta, data = read_st(path)
    raw = data[tensor]
    data[tensor] = raw[:4 * element] + struct.pack("<f", value) + raw[4 * element + 4:]
    write_st(path, header, meta, data)


def behaviour_diverging_run(tmp):
    out = os.path.join(tmp, "out")
    r = pmlc_run("train", program(tmp, expr="h * h * h", optimizer="sgd(lr = 1000)"), "--out", out)
    refused(r, "training failed: step ", "stage ", "the step was not applied and no checkpoint of it was written")
    check("gradient of parameter '" in r.stderr or "the loss of micro-batch" in r.stderr,
          f"the tensor or micro-batch is named: {r.stderr}")
    check(not os.path.exists(os.path.join(out, "trainer.json")), "no final checkpoint of a diverged run")
    steps = sorted(d for d in os.listdir(out) if d.startswith("step-")) if os.path.isdir(out) else []
    for d in steps:
        for f in ("model.safetensors", "optimizer.safetensors"):
            bad = finite_tensors(os.path.join(out, d, f))
            check(bad is None, f"{d}/{f} holds only finite values (not {bad})")
    check(steps, "the steps before the divergence were checkpointed")
    if steps:  # the last committed checkpoint loads (resumed at its own step: nothing left to train)
        last = os.path.join(out, steps[-1])
        r = pmlc_run("train", program(tmp, expr="h * h * h", optimizer="sgd(lr = 1000)", name="resume.pml"), "--resume",
                     last, "--steps", str(int(steps[-1][5:])), "--out", os.path.join(tmp, "resumed"), "--quiet")
        check(r.returncode == 0, f"{last} loads: {r.stderr}")


def behaviour_check_numerics_forward(tmp):
    pml = program(tmp, expr="sqrt(h - 100.0)")
    r = pmlc_run("train", pml, "--check-numerics", "--quiet")
    refused(r, "--check-numerics: op 'sqrt' (node ", "'h') made NaN", "step 1, stage 1, micro-batch 0, forward pass",
            f"made at {pml}:5:13")
    r = pmlc_run("train", pml)
    refused(r, "step 1: the loss of micro-batch 0 is NaN (stage 1", "--check-numerics names the op")


def behaviour_check_numerics_backward(tmp):
    pml = program(tmp, expr="h + sqrt(h - h)")
    r = pmlc_run("train", pml, "--check-numerics", "--quiet")
    refused(r, "made inf", "stage 1, micro-batch 0, backward (input gradient) pass", f"made at {pml}:5:17")


def behaviour_check_numerics_cuda(tmp):
    r = pmlc_run("train", program(tmp), "--check-numerics", "--backend", "cuda", "--quiet")
    refused(r, "--check-numerics checks each op's output on the CPU backend only")


def behaviour_init(tmp):
    pml = program(tmp)
    check(pmlc_run("train", pml, "--steps", "0", "--out", os.path.join(tmp, "w")).returncode == 0, "weights written")
    model = os.path.join(tmp, "w", "model.safetensors")
    poison(model, "head.weight", 5, float("inf"))
    r = pmlc_run("train", pml, "--init", model, "--out", os.path.join(tmp, "never"), "--quiet")
    refused(r, f"{model}: tensor 'head.weight' is inf at element 5 (parameters must be finite)")
    check(not os.path.exists(os.path.join(tmp, "never")), "nothing is written")
    r = pmlc_run("infer", pml, "--weights", model, "--input", os.path.join(tmp, "x.npy"), "--output",
                 os.path.join(tmp, "y.npy"))
    refused(r, f"{model}: tensor 'head.weight' is inf")


def behaviour_resume(tmp):
    pml = program(tmp)
    ckpt = os.path.join(tmp, "ckpt")
    check(pmlc_run("train", pml, "--steps", "2", "--out", ckpt).returncode == 0, "checkpoint written")
    opt = os.path.join(ckpt, "optimizer.safetensors")
    poison(opt, "fc1.weight.momentum_buffer", 3)
    r = pmlc_run("train", pml, "--resume", ckpt, "--out", os.path.join(tmp, "never"), "--quiet")
    refused(r, f"{opt}: tensor 'fc1.weight.momentum_buffer' is NaN at element 3 (optimizer state must be finite)")


def behaviour_teacher(tmp):
    os.mkdir(os.path.join(tmp, "runs"))
    r = pmlc_run("train", os.path.join(examples, "teacher.pml"), "--steps", "0", "--out",
                 os.path.join(tmp, "runs", "teacher"))
    check(r.returncode == 0, f"teacher weights written: {r.stderr}")
    model = os.path.join(tmp, "runs", "teacher", "model.safetensors")
    header, _, _ = read_st(model)
    name = sorted(header)[0]
    poison(model, name, 0)
    r = pmlc_run("train", os.path.join(examples, "distill.pml"), "--steps", "1", "--quiet", cwd=tmp)
    refused(r, "the distillation teacher's weights: runs/teacher/model.safetensors: tensor "
               f"'{name}' is NaN at element 0 (teacher's parameters must be finite)")


def behaviour_npy_data(tmp):
    xs = [math.sin(i) for i in range(64 * 8)]
    xs[37 * 8 + 2] = float("nan")
    write_npy(os.path.join(tmp, "x.npy"), (64, 8), xs)
    write_npy(os.path.join(tmp, "y.npy"), (64,), [i % 4 for i in range(64)], "i")
    r = pmlc_run("train", program(tmp, data='"x.npy"\n    labels = "y.npy"'), "--quiet", cwd=tmp)
    refused(r, "x.npy: row 37 (element 298) is NaN: the data must be finite")
    xs[37 * 8 + 2] = 1e300  # f64 beyond f32's range would become inf
    write_npy(os.path.join(tmp, "x.npy"), (64, 8), xs, "d")
    r = pmlc_run("train", program(tmp, data='"x.npy"\n    labels = "y.npy"'), "--quiet", cwd=tmp)
    refused(r, "x.npy: row 37 (element 298) is beyond f32's range")


def behaviour_infer_input(tmp):
    pml = program(tmp)
    check(pmlc_run("train", pml, "--steps", "0", "--out", os.path.join(tmp, "w")).returncode == 0, "weights written")
    xs = [0.5] * (20 * 8)
    xs[19 * 8] = float("-inf")
    x = os.path.join(tmp, "x.npy")
    write_npy(x, (20, 8), xs)
    y = os.path.join(tmp, "y.npy")
    r = pmlc_run("infer", pml, "--weights", os.path.join(tmp, "w"), "--input", x, "--output", y)
    refused(r, f"{x}: row 19 (element 152) is -inf: the data must be finite")
    check(not os.path.exists(y), "no output is written")


with tempfile.TemporaryDirectory() as tmp:
    globals()["behaviour_" + behaviour](tmp)
print("FAILED" if failures else "ok", behaviour)
sys.exit(1 if failures else 0)
