#!/usr/bin/env python3
"""Hidden-state matching in a distillation against PyTorch (issue 5).

A teacher 16 -> 32 -> 16 -> 5 is trained with `pmlc train --out`; then students
16 -> 16 -> 5 are distilled from it with match(...) terms: MSE and cosine, between
states of equal width and of different widths (where PML adds a learned projection
distill.matchI.proj, no bias). PyTorch builds the same student and projections from
PML's initial weights (model.safetensors and distill.safetensors of a 0-step run),
trains on PML's batches with loss
    KD + sum_i weight_i * (mse or mean(1 - cosine_similarity)),
and must give the same losses and final weights, projections included (relative
difference <= 1e-4). Also: the student's model file holds no projection; a resumed
run equals the uninterrupted one bit for bit (projection included); the plan shows the
match terms and gives the teacher no backward, gradient or optimizer work; `pmlc
infer` serves the student's checkpoint with a program defining the student alone.
Needs Debian's python3-torch; skips (exit 77) without it."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from parity_lib import load_safetensors, np, pml_run, run, torch  # noqa: E402  (exits 77 without torch)
from distill_programs import STUDENT_MODEL  # noqa: E402
from distill_lib import (STUDENT_TRAIN, TEACHER_TRAIN, F, check_infer, fail, finish, kd_loss,  # noqa: E402
                         torch_train, worst_differences, write)

pmlc, dump = sys.argv[1], sys.argv[2]
STEPS = 8
torch.set_num_threads(1)

MODELS = """import "nn"
model teacher(x: f32[B, 16]) -> f32[B, 5] {
    h = gelu(linear(x, 32) as fc1)
    h = gelu(linear(h, 16) as mid)
    return linear(h, 5) as head
}
""" + STUDENT_MODEL
DISTILL = """distill student from teacher("{weights}") {{ temperature = 2.0, alpha = 0.5
{matches}
}}
"""
# Each case: the optimizer and its matches (student state, teacher state, loss, weight).
CASES = [
    ("sgd(lr = 0.5)", [("fc1", "fc1", "mse", 0.5)]),                      # projection 16 -> 32
    ("sgd(lr = 0.5)", [("norm", "mid", "cosine", 0.3)]),                  # equal widths
    ("adamw(lr = 1e-2, weight_decay = 0.0)", [("fc1", "fc1", "cosine", 1.0), ("norm", "mid", "mse", 0.25)]),
    ("adamw(lr = 1e-2)", [("fc1", "mid", "mse", 2.0)]),                   # equal widths
]
WIDTH = {"fc1": 32, "mid": 16}


def torch_student(p, x):
    """The student's output and its named states."""
    fc1 = x @ p["fc1.weight"].T + p["fc1.bias"]
    norm = F.layer_norm(F.gelu(fc1, approximate="tanh"), (16,), p["norm.weight"], p["norm.bias"], eps=1e-5)
    return norm @ p["head.weight"].T + p["head.bias"], {"fc1": fc1, "norm": norm}


def torch_teacher(t, x):
    fc1 = x @ t["fc1.weight"].T + t["fc1.bias"]
    mid = F.gelu(fc1, approximate="tanh") @ t["mid.weight"].T + t["mid.bias"]
    out = F.gelu(mid, approximate="tanh") @ t["head.weight"].T + t["head.bias"]
    return out, {"fc1": fc1, "mid": mid}


def loss_of(p, t, x, y, matches):
    s_out, s_states = torch_student(p, x)
    with torch.no_grad():
        t_out, t_states = torch_teacher(t, x)
    loss = kd_loss(s_out, t_out, y, 2.0, 0.5)
    for i, (sn, tn, kind, w) in enumerate(matches):
        h = s_states[sn]
        if f"distill.match{i}.proj.weight" in p:
            h = h @ p[f"distill.match{i}.proj.weight"].T
        target = t_states[tn]
        d = F.mse_loss(h, target) if kind == "mse" else (1 - F.cosine_similarity(h, target, dim=-1)).mean()
        loss = loss + w * d
    return loss


def match_text(matches):
    return "\n".join(f'    match(student = "{s}", teacher = "{t}", loss = {k}, weight = {w})' for s, t, k, w in matches)


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


with tempfile.TemporaryDirectory() as tmp:
    write(f"{tmp}/teacher.pml", MODELS + TEACHER_TRAIN)
    run(pmlc, "train", f"{tmp}/teacher.pml", "--out", f"{tmp}/teacher", "--quiet")
    weights = f"{tmp}/teacher/model.safetensors"
    teacher = {k: torch.tensor(v) for k, v in load_safetensors(weights).items()}

    for i, (opt_spec, matches) in enumerate(CASES):
        prog = f"{tmp}/student{i}.pml"
        write(prog, MODELS + STUDENT_TRAIN.format(opt=opt_spec, steps=STEPS) +
              DISTILL.format(weights=weights, matches=match_text(matches)))
        os.makedirs(f"{tmp}/run{i}")
        init, final, pml_losses, data = pml_run(pmlc, dump, prog, STEPS, f"{tmp}/run{i}")
        projected = [k for k, (s, t, _, _) in enumerate(matches) if WIDTH[t] != 16]
        if any(k.startswith("distill") or k.startswith("teacher") for k in list(init) + list(final)):
            fail(f"case {i}: the student's model file holds more than the student: {sorted(final)}")
        apart = f"{tmp}/run{i}/final/distill.safetensors"
        if projected:
            init.update(load_safetensors(f"{tmp}/run{i}/init/distill.safetensors"))
            final.update(load_safetensors(apart))
            want = sorted(f"distill.match{k}.proj.weight" for k in projected)
            if sorted(k for k in final if k.startswith("distill")) != want:
                fail(f"case {i}: distill.safetensors holds {sorted(final)}, expected {want}")
        elif os.path.exists(apart):
            fail(f"case {i}: a distillation without projections wrote {apart}")
        params, torch_losses = torch_train(init, opt_spec, data, STEPS,
                                           lambda p, x, y, m=matches: loss_of(p, teacher, x, y, m))
        worst_l, worst_w = worst_differences(pml_losses, torch_losses, final, params)
        moved = max(float(np.abs(final[n] - init[n]).max()) for n in init if n.startswith("distill")) \
            if projected else 1.0
        print(f"{opt_spec} {matches}: loss {pml_losses[0]:.6f} -> {pml_losses[-1]:.6f}; "
              f"largest relative difference: losses {worst_l:.2e}, weights {worst_w:.2e}")
        if worst_l > 1e-4 or worst_w > 1e-4:
            fail(f"case {i}: PML {pml_losses} vs PyTorch {torch_losses}")
        if moved == 0:
            fail(f"case {i}: the projection did not train")

    # Resuming continues bit for bit, the projection and its optimizer state included.
    run(pmlc, "train", f"{tmp}/student2.pml", "--steps", str(STEPS // 2), "--out", f"{tmp}/half", "--quiet")
    run(pmlc, "train", f"{tmp}/student2.pml", "--steps", str(STEPS), "--resume", f"{tmp}/half", "--out",
        f"{tmp}/resumed", "--quiet")
    for f in ("model.safetensors", "distill.safetensors"):
        if not same_bytes(f"{tmp}/resumed/{f}", f"{tmp}/run2/final/{f}"):
            fail(f"a resumed distillation's {f} differs from the uninterrupted one's")

    # The student's checkpoint serves a program that defines the student alone.
    write(f"{tmp}/alone.pml", MODELS + STUDENT_TRAIN.format(opt="sgd(lr = 0.5)", steps=STEPS))
    np.save(f"{tmp}/x.npy", np.load(f"{tmp}/run0/data/x_0.npy"))
    check_infer(pmlc, f"{tmp}/alone.pml", f"{tmp}/run0/final", f"{tmp}/x.npy", f"{tmp}/y.npy",
                lambda w, x: torch_student(w, x)[0])

    # The plan: the match terms, their projections; still no teacher backward or optimizer work.
    plan = json.loads(run(pmlc, "plan", "--json", f"{tmp}/student2.pml"))
    got = [(m["student"], m["teacher"], m["loss"], m["weight"], m["projection"]) for m in plan["distill"]["matches"]]
    want = [("fc1", "fc1", "cosine", 1.0, "distill.match0.proj.weight"), ("norm", "mid", "mse", 0.25, None)]
    if got != want:
        fail(f"plan matches {got}, expected {want}")
    for st in plan["stages"]:
        t = st["teacher"]
        if t["bwd_flops"] != 0 or t["grads"] != 0 or t["optimizer_state_bytes"] != 0:
            fail(f"stage {st['index']}: teacher work {t}")
    proj = [p for p in plan["parameters"] if p["name"].startswith("distill.")]
    if [p["name"] for p in proj] != ["distill.match0.proj.weight"] or proj[0]["shape"] != [32, 16]:
        fail(f"plan parameters of the projection: {proj}")
    text = run(pmlc, "plan", f"{tmp}/student2.pml")
    for line in ("+ 1 * cosine_distance(proj(fc1), teacher.fc1), proj = distill.match0.proj.weight [32, 16]",
                 "+ 0.25 * mse(norm, teacher.mid)"):
        if line not in text:
            fail(f"pmlc plan does not show {line!r}:\n{text}")

finish("distill match")
