#!/usr/bin/env python3
"""recompute_cli_test.py — `pmlc train` with recomputation trains what it trains without:
the model file it writes holds the same bytes.

    recompute_cli_test.py PMLC WORK freeze    a scheduled freeze on automatically placed
        stages (pmlc train cuts them again at the freeze), with recompute = true and
        with attention-only recomputation
    recompute_cli_test.py PMLC WORK distill   a distillation whose student recomputes, and
        one that matches a recomputed hidden state
"""
import os
import shutil
import subprocess
import sys

pmlc, work, which = sys.argv[1:4]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []

# A small transformer with dropout, so a recomputed forward must draw the same masks.
MODEL = """\
model {name}(idx: i32[B, T]) -> f32[B, T, 17] {{
    place = auto(stages = 2)
    h = embedding(idx, 17, {width}) as wte
    h = h + embedding(arange(dim(idx, 1)), 16, {width}) as wpe
    repeat 2 {{ h = block(h, 2, 0.1) as blocks }}
    return linear(layernorm(h) as ln_f, 17, has_bias = false) as lm_head
}}
"""
BODY = 'import "nn"\n' + MODEL
TRAIN = """\
train {name} {{
    data = markov(vocab = 17, order = 2, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-2)
    batch = 8, microbatches = 4, schedule = 1f1b
    steps = 4, seed = 3, T = 8
{extra}}}
"""


def write(name, text):
    path = os.path.join(work, name + ".pml")
    with open(path, "w") as f:
        f.write(text)
    return path


def train(path, out, *flags):
    """Trains PATH into WORK/OUT; returns the bytes of its model file (None on failure)."""
    r = subprocess.run([pmlc, "train", path, "--out", os.path.join(work, out), *flags], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        failures.append(f"pmlc train {os.path.basename(path)} {' '.join(flags)} exited {r.returncode}:\n{r.stderr}")
        return None
    with open(os.path.join(work, out, "model.safetensors"), "rb") as f:
        return f.read()


def same(what, a, b):
    if a is None or b is None:
        return
    if a != b:
        failures.append(f"{what}: the model file differs from the one trained without recomputation")


def freeze():
    extra = "    freeze wte, wpe, blocks.0 after 2 steps\n"
    plain = write("frozen", BODY.format(name="gpt", width=16) + TRAIN.format(name="gpt", extra=extra))
    attn = write("frozen_attn", BODY.format(name="gpt", width=16) +
                 TRAIN.format(name="gpt", extra=extra + "    recompute blocks.*.attn\n"))
    ref = train(plain, "plain")
    same("recompute = true with a scheduled freeze", ref, train(plain, "whole", "--set", "recompute=true"))
    same("recompute blocks.*.attn with a scheduled freeze", ref, train(attn, "attn"))


def distill():
    teacher = write("teacher", BODY.format(name="teacher", width=24) + TRAIN.format(name="teacher", extra=""))
    if train(teacher, "teacher") is None:
        return
    weights = os.path.join(work, "teacher", "model.safetensors")
    student = BODY.format(name="student", width=16) + MODEL.format(name="teacher", width=24) + \
        TRAIN.format(name="student", extra="{extra}")
    kd = f'distill student from teacher("{weights}") {{ temperature = 2.0, alpha = 0.5 {{match}} }}\n'
    for label, match in (("", ""), (" with a hidden-state match", '\n    match("blocks.1.attn", "blocks.1")')):
        text = student + kd.replace("{match}", match)
        plain = write("student", text.replace("{extra}", ""))
        attn = write("student_attn", text.replace("{extra}", "    recompute blocks.*.attn\n"))
        ref = train(plain, "plain")
        same("a distilled student, recompute = true" + label, ref, train(plain, "whole", "--set", "recompute=true"))
        same("a distilled student, recompute blocks.*.attn" + label, ref, train(attn, "attn"))


{"freeze": freeze, "distill": distill}[which]()
for f in failures:
    print("FAIL:", f)
print(f"recompute {which}: {len(failures)} failed")
sys.exit(1 if failures else 0)
