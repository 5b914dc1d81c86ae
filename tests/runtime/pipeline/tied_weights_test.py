#!/usr/bin/env python3
"""Weights tied across stages train as one weight: the GPT example with its output
projection tied to its token table (tests/lib/tied_gpt.py; `wte` read on the first and
last stage, each holding a copy whose gradients are summed before every step).

- `pmlc plan` shows the copy on the last stage and counts the weight once;
- on 4 stages under 1F1B, GPipe and ZB-H1, and on 2 stage devices of 2 chunks under
  interleaved 1F1B and ZB-V, 3 steps of SGD with a gradient clip that binds (so a norm
  counting the copy twice would show) give the weights of 1 stage within 1e-5 (relative,
  per tensor); the checkpoint holds `wte` once;
- with AdamW, 3 steps and a resume to 6 are the bits of 6 steps in one go (the copy's
  weights and optimizer state come back from the root's tensors), and with SGD a
  4-stage checkpoint resumes on 1 stage to the weights of 4 within 1e-5;
- a scheduled freeze of the tied weight (re-cutting the stages) leaves it as it was at
  the freeze, on every stage: the weights of 1 stage within 1e-5.
Usage: tied_weights_test.py PMLC EXAMPLES"""
import array
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
import tied_gpt  # noqa: E402
from st_files import read_st  # noqa: E402

pmlc, examples = sys.argv[1], sys.argv[2]
failures = []
SMALL = ["--quiet", "--set", "batch=16", "--set", "T=16", "--set", "microbatches=4", "--set", "place=cpu"]
SGD = ["--set", "optimizer=sgd(lr = 0.1)", "--set", "grad_clip=0.01"]


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def weights(folder):
    header, _, data = read_st(os.path.join(folder, "model.safetensors"))
    return {k: array.array("f", v) for k, v in data.items()}


def worst(a_dir, b_dir):
    """The largest relative difference of a tensor (max |a - b| / max |b|)."""
    a, b = weights(a_dir), weights(b_dir)
    if sorted(a) != sorted(b):
        return float("inf")
    return max(max(abs(x - y) for x, y in zip(a[k], b[k])) / (max(abs(y) for y in b[k]) or 1) for k in a)


with open(os.path.join(examples, "gpt.pml")) as f:
    example = f.read()

with tempfile.TemporaryDirectory() as tmp:
    def program(name, place, extra=""):
        path = os.path.join(tmp, name + ".pml")
        with open(path, "w") as f:
            f.write(tied_gpt.tie(example, place).replace("    T = 64\n", "    T = 64\n" + extra))
        return path

    def train(src, out, *args):
        r = subprocess.run([pmlc, "train", src, *SMALL, *args, "--out", os.path.join(tmp, out)],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, f"{out}: trains ({r.stderr[-1500:]})")
        return os.path.join(tmp, out)

    four, one = program("four", "stages = 4"), program("one", "stages = 1")
    r = subprocess.run([pmlc, "plan", four, "--set", "place=cpu"], capture_output=True, text=True)
    check(r.returncode == 0 and "tied: wte (stage 0's)" in r.stdout, f"the plan shows the copy ({r.stderr[-500:]})")
    r1 = subprocess.run([pmlc, "plan", one, "--set", "place=cpu"], capture_output=True, text=True)
    total = [l for l in r.stdout.splitlines() if l.strip().startswith("parameters ")][:1]
    check(total and total == [l for l in r1.stdout.splitlines() if l.strip().startswith("parameters ")][:1],
          f"the weight counts once in the model's parameters: {total}")

    ref = train(one, "ref", *SGD, "--steps", "3")
    check(sorted(weights(ref)).count("wte") == 1 and "lm_head.weight" not in weights(ref), "one wte, no lm_head")
    for name, place, schedule in (("1f1b", "stages = 4", "1f1b"), ("gpipe", "stages = 4", "gpipe"),
                                  ("zb_h1", "stages = 4", "zero_bubble"),
                                  ("interleaved", "stages = 2, chunks = 2", "interleaved_1f1b"),
                                  ("zbv", "stages = 2, chunks = 2", "zero_bubble_v")):
        out = train(program(name, place), name, *SGD, "--steps", "3", "--set", f"schedule={schedule}")
        if not failures:
            d = worst(out, ref)
            print(f"{name}: {d:.2e}")
            check(d <= 1e-5, f"{name}: the weights of 1 stage within 1e-5 (worst {d:.2e})")
            check(sorted(weights(out)) == sorted(weights(ref)), f"{name}: the checkpoint holds wte once")

    six = train(four, "six", "--steps", "6")
    half = train(four, "half", "--steps", "3")
    train(four, "half", "--steps", "6", "--resume", half)
    check(not failures and weights(half) == weights(six), "AdamW: 3 steps and a resume to 6 are the bits of 6 steps")
    six_sgd = train(four, "six_sgd", *SGD, "--steps", "6")
    moved = train(one, "moved", *SGD, "--steps", "6", "--resume", train(four, "moved", *SGD, "--steps", "3"))
    check(not failures and worst(moved, six_sgd) <= 1e-5, "a 4-stage checkpoint resumes on 1 stage")

    freeze = "    freeze wte, wpe, blocks.0 after 2 steps\n"
    at_freeze = train(program("four_fz", "stages = 4", freeze), "at_freeze", *SGD, "--steps", "2")
    frozen = train(program("four_fz", "stages = 4", freeze), "frozen", *SGD, "--steps", "5")
    frozen_one = train(program("one_fz", "stages = 1", freeze), "frozen_one", *SGD, "--steps", "5")
    if not failures:
        check(weights(frozen)["wte"] == weights(at_freeze)["wte"], "the frozen tied weight stays as at its freeze")
        d = worst(frozen, frozen_one)
        check(d <= 1e-5, f"a scheduled freeze re-cuts to the weights of 1 stage within 1e-5 (worst {d:.2e})")

print(f"tied weights: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
