#!/usr/bin/env python3
"""Distillation against PyTorch (issue 5).

A small teacher is trained with `pmlc train --out`; then, for several temperatures and
alphas, a student half its width is distilled from that checkpoint for a few steps.
PyTorch builds the same student from PML's initial weights and the teacher from its
file, trains on PML's batches with loss
    alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE,
and must give the same losses (relative difference <= 1e-4) and final weights: the KD
loss and its gradient agree. Also: the student's checkpoint holds no teacher tensor; the
teacher's weights are bit for bit those of its file after training (teacher_unchanged);
the plan gives the teacher no backward, gradient or optimizer work; a resumed
distillation equals the uninterrupted one; ZB-H1 (schedule = zero_bubble) distils the
student 1F1B does; `pmlc infer` serves the student's
checkpoint with a program defining the student alone; a missing or mismatched
teacher file is an error naming it, exit 1, nothing written.
Needs Debian's python3-torch; skips (exit 77) without it."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from parity_lib import load_safetensors, np, pml_run, run, torch  # noqa: E402  (exits 77 without torch)
from distill_lib import (STUDENT_TRAIN, TEACHER_TRAIN, F, check_infer, fail, finish, kd_loss,  # noqa: E402
                         torch_train, worst_differences, write)

pmlc, dump, unchanged = sys.argv[1], sys.argv[2], sys.argv[3]
STEPS = 8
torch.set_num_threads(1)

MODELS = """import "nn"
model teacher(x: f32[B, 16]) -> f32[B, 5] {{
    h = gelu(linear(x, {tw}) as fc1)
    return linear(h, 5) as head
}}
model student(x: f32[B, 16]) -> f32[B, 5] {{
    place = auto(stages = 2)
    h = gelu(linear(x, 16) as fc1)
    h = layernorm(h) as norm
    return linear(h, 5) as head
}}
"""
DISTILL = """distill student from teacher("{weights}") {{ temperature = {T}, alpha = {alpha} }}
"""
CASES = [  # temperature, alpha, optimizer (plain SGD makes the weights a sum of gradients)
    (1.0, 0.5, "sgd(lr = 0.5)"),
    (2.0, 0.9, "adamw(lr = 1e-2, weight_decay = 0.0)"),
    (4.0, 1.0, "sgd(lr = 0.5)"),
    (0.5, 0.2, "adamw(lr = 1e-2)"),
]


def torch_student(p, x):
    h = F.gelu(x @ p["fc1.weight"].T + p["fc1.bias"], approximate="tanh")
    h = F.layer_norm(h, (h.shape[-1],), p["norm.weight"], p["norm.bias"], eps=1e-5)
    return h @ p["head.weight"].T + p["head.bias"]


def torch_teacher(t, x):
    h = F.gelu(x @ t["fc1.weight"].T + t["fc1.bias"], approximate="tanh")
    return h @ t["head.weight"].T + t["head.bias"]


with tempfile.TemporaryDirectory() as tmp:
    write(f"{tmp}/teacher.pml", MODELS.format(tw=32) + TEACHER_TRAIN)
    run(pmlc, "train", f"{tmp}/teacher.pml", "--out", f"{tmp}/teacher", "--quiet")
    weights = f"{tmp}/teacher/model.safetensors"
    teacher = {k: torch.tensor(v) for k, v in load_safetensors(weights).items()}

    for i, (T, alpha, opt_spec) in enumerate(CASES):
        prog = f"{tmp}/student{i}.pml"
        write(prog, MODELS.format(tw=32) + STUDENT_TRAIN.format(opt=opt_spec, steps=STEPS) +
              DISTILL.format(weights=weights, T=T, alpha=alpha))
        os.makedirs(f"{tmp}/run{i}")
        init, final, pml_losses, data = pml_run(pmlc, dump, prog, STEPS, f"{tmp}/run{i}")
        if any(k.startswith("teacher") for k in list(init) + list(final)):
            fail(f"case {i}: the student's checkpoint holds teacher tensors: {sorted(final)}")

        def loss_of(params, x, y, T=T, alpha=alpha):
            with torch.no_grad():
                t_logits = torch_teacher(teacher, x)
            return kd_loss(torch_student(params, x), t_logits, y, T, alpha)

        params, torch_losses = torch_train(init, opt_spec, data, STEPS, loss_of)
        worst_l, worst_w = worst_differences(pml_losses, torch_losses, final, params)
        print(f"T={T} alpha={alpha} {opt_spec}: loss {pml_losses[0]:.6f} -> {pml_losses[-1]:.6f}; "
              f"largest relative difference: losses {worst_l:.2e}, weights {worst_w:.2e}")
        if worst_l > 1e-4 or worst_w > 1e-4:
            fail(f"case {i}: PML {pml_losses} vs PyTorch {torch_losses}")

    # Resuming a distillation continues it bit for bit (the teacher comes from its file
    # again); the student's checkpoint serves a program that defines the student alone.
    run(pmlc, "train", f"{tmp}/student0.pml", "--steps", str(STEPS // 2), "--out", f"{tmp}/half", "--quiet")
    run(pmlc, "train", f"{tmp}/student0.pml", "--steps", str(STEPS), "--resume", f"{tmp}/half", "--out",
        f"{tmp}/resumed", "--quiet")
    if open(f"{tmp}/resumed/model.safetensors", "rb").read() != open(f"{tmp}/run0/final/model.safetensors",
                                                                     "rb").read():
        fail("a resumed distillation differs from the uninterrupted one")
    # ZB-H1 (backwards split into input and weight halves, the weight halves late; the
    # teacher only runs forward) distils the student 1F1B does, within 1e-5.
    run(pmlc, "train", f"{tmp}/student0.pml", "--set", "schedule=zero_bubble", "--out", f"{tmp}/zb", "--quiet")
    zb, fb = load_safetensors(f"{tmp}/zb/model.safetensors"), load_safetensors(f"{tmp}/run0/final/model.safetensors")
    worst = max(float(np.linalg.norm(zb[k] - fb[k]) / np.linalg.norm(fb[k])) for k in fb)
    print(f"zero_bubble vs 1f1b distillation: largest relative difference {worst:.2e}")
    if zb.keys() != fb.keys() or worst > 1e-5:
        fail(f"zero_bubble distils another student: {worst:.2e}")
    write(f"{tmp}/alone.pml", MODELS.format(tw=32) + STUDENT_TRAIN.format(opt="sgd(lr = 0.5)", steps=STEPS))
    np.save(f"{tmp}/x.npy", np.load(f"{tmp}/run0/data/x_0.npy"))
    check_infer(pmlc, f"{tmp}/alone.pml", f"{tmp}/run0/final", f"{tmp}/x.npy", f"{tmp}/y.npy", torch_student)

    # The teacher stays as loaded, bit for bit, while the student trains.
    r = subprocess.run([unchanged, f"{tmp}/student0.pml", weights, "5"], capture_output=True, text=True)
    print(r.stdout.strip())
    if r.returncode:
        fail(f"teacher_unchanged: {r.stdout}{r.stderr}")

    # The plan: teacher parameters take no gradient and no optimizer state; its nodes no backward work.
    plan = json.loads(run(pmlc, "plan", "--json", f"{tmp}/student1.pml"))
    tparams = [p for p in plan["parameters"] if p["teacher"]]
    if not tparams or any(not p["name"].startswith("teacher.") for p in tparams):
        fail(f"teacher parameters in the plan: {tparams}")
    for st in plan["stages"]:
        t = st["teacher"]
        if t["bwd_flops"] != 0 or t["grads"] != 0 or t["optimizer_state_bytes"] != 0:
            fail(f"stage {st['index']}: teacher work {t}")
    if sum(st["teacher"]["ops"] for st in plan["stages"]) == 0:
        fail("the plan shows no teacher work")

    # A missing or mismatched teacher file: a clear error, exit 1, nothing written.
    write(f"{tmp}/wide.pml", MODELS.format(tw=48) + TEACHER_TRAIN)
    run(pmlc, "train", f"{tmp}/wide.pml", "--steps", "0", "--out", f"{tmp}/wide", "--quiet")
    bad_files = [
        (f"{tmp}/no_such.safetensors", "No such file"),
        (f"{tmp}/run0/final/model.safetensors", "tensor 'fc1.weight' has shape [16, 16], but the plan's is [32, 16]"),
        (f"{tmp}/wide/model.safetensors", "tensor 'fc1.weight' has shape [48, 16], but the plan's is [32, 16]"),
    ]
    for k, (path, want) in enumerate(bad_files):
        prog = f"{tmp}/bad{k}.pml"
        write(prog, MODELS.format(tw=32) + STUDENT_TRAIN.format(opt="sgd(lr = 0.1)", steps=2) +
              DISTILL.format(weights=path, T=2.0, alpha=0.5))
        r = subprocess.run([pmlc, "train", prog, "--out", f"{tmp}/bad_out{k}"], capture_output=True, text=True)
        msg = r.stderr.strip()
        print(f"{os.path.basename(path)}: exit {r.returncode}: {msg}")
        if r.returncode != 1 or path not in msg or want not in msg or "teacher" not in msg:
            fail(f"teacher file {path}: exit {r.returncode}, {msg!r}")
        if os.path.exists(f"{tmp}/bad_out{k}"):
            fail(f"teacher file {path}: the run wrote {tmp}/bad_out{k}")

finish("distill")
