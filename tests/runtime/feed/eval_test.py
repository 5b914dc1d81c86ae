#!/usr/bin/env python3
"""Honest evaluation with pmlc train, end to end: held-out data is never trained on and
evaluation without it says "training rows"; eval_every writes K-spaced records into
--metrics without changing training; token files (nanoGPT's flat uint16 and llm.c's
headered .bin) train and evaluate the GPT example, and a resume on them is bit-exact.

Usage: eval_test.py PMLC EXAMPLES_DIR BEHAVIOUR. Files are written with the standard
library (struct, array): the token files exactly as numpy's
np.array(ids, dtype=np.uint16).tofile(path) writes them."""
import array
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from npy_files import write_npy  # noqa: E402

pmlc, examples, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)



def train(cwd, *args):
    return subprocess.run([pmlc, "train", *args, "--threads", "2"], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


MLP = """import "nn"
model m(x: f32[B, 16]) -> f32[B, 4] {
    return linear(gelu(linear(x, 128)), 4)
}
train m {
    data = "x.npy"
    labels = "y.npy"
    loss = cross_entropy
    optimizer = adamw(lr = 1e-2, weight_decay = 0)
    batch = 32
    steps = 200
}
"""


def random_dataset(tmp, rng, x, y, rows):
    """Inputs and labels drawn independently: nothing to learn but the rows by heart."""
    write_npy(os.path.join(tmp, x), (rows, 16), [rng.gauss(0, 1) for _ in range(rows * 16)])
    write_npy(os.path.join(tmp, y), (rows,), [rng.randrange(4) for _ in range(rows)], "q")


def eval_line(stderr):
    return next((line for line in stderr.splitlines() if line.startswith("eval")), "")


def held_out_evaluation_never_sees_training_rows(tmp):
    rng = random.Random(0)
    with open(os.path.join(tmp, "m.pml"), "w") as f:
        f.write(MLP)
    random_dataset(tmp, rng, "x.npy", "y.npy", 128)
    random_dataset(tmp, rng, "xv.npy", "yv.npy", 128)
    # No held-out source: the model learns the random labels by heart, and the
    # evaluation says it drew training rows instead of calling them held-out.
    r = train(tmp, "m.pml", "--eval", "4", "--quiet")
    line = eval_line(r.stderr)
    check(r.returncode == 0, f"training succeeds: {r.stderr}")
    check("training rows" in line and "held-out" not in line, f"training rows are called so: {line}")
    # A held-out set: accuracy on random labels is chance (1/4), not the memorised 100%.
    metrics = os.path.join(tmp, "m.jsonl")
    r = train(tmp, "m.pml", "--eval", "4", "--quiet", "--set", 'eval_data="xv.npy"', "--set",
              'eval_labels="yv.npy"', "--metrics", metrics)
    line = eval_line(r.stderr)
    check(r.returncode == 0 and "held-out" in line and "xv.npy" in line, f"held-out files are named: {line}")
    final = [x for x in records(metrics) if "eval_loss" in x] if r.returncode == 0 else []
    check(len(final) == 1 and final[0]["eval_source"] == "held_out" and final[0]["eval_accuracy"] < 0.45,
          f"held-out accuracy on random labels is near chance: {final}")
    # holdout = 0.25 of the training file: the same, from one file.
    r = train(tmp, "m.pml", "--eval", "1", "--quiet", "--set", "holdout=0.25", "--metrics", metrics)
    final = [x for x in records(metrics) if "eval_loss" in x] if r.returncode == 0 else []
    check(len(final) == 1 and final[0]["eval_source"] == "held_out" and final[0]["eval_accuracy"] < 0.5,
          f"holdout accuracy on random labels is near chance: {r.stderr} {final}")


def eval_every_writes_k_spaced_records(tmp):
    rng = random.Random(1)
    with open(os.path.join(tmp, "m.pml"), "w") as f:
        f.write(MLP.replace("steps = 200", "steps = 20"))
    random_dataset(tmp, rng, "x.npy", "y.npy", 100)
    metrics = os.path.join(tmp, "m.jsonl")
    r = train(tmp, "m.pml", "--quiet", "--set", "eval_every=5", "--set", "holdout=0.2", "--metrics", metrics,
              "--out", "with")
    check(r.returncode == 0, f"training with eval_every succeeds: {r.stderr}")
    recs = records(metrics) if r.returncode == 0 else []
    evals = [x for x in recs if "eval_at_step" in x]
    check([x["eval_at_step"] for x in evals] == [5, 10, 15, 20], f"one record every 5 steps: {evals}")
    # 20 held-out rows, batch 32: one batch covers them.
    check(all(x["eval_samples"] == 32 and x["eval_source"] == "held_out" for x in evals), f"the records: {evals}")
    steps = [x["step"] for x in recs if "step" in x]
    check(steps == list(range(1, 21)), "the step records are all there")
    # Evaluating does not change training: the weights equal a run without it.
    r = train(tmp, "m.pml", "--quiet", "--set", "holdout=0.2", "--out", "without")
    same = False
    if r.returncode == 0:
        with open(os.path.join(tmp, "with", "model.safetensors"), "rb") as a, \
             open(os.path.join(tmp, "without", "model.safetensors"), "rb") as b:
            same = a.read() == b.read()
    check(same, "the weights do not depend on eval_every")


VOCAB = 65


def corpus(rng, n):
    """Text with structure: words of a small lexicon, so a model can beat log(65)."""
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    ids = []
    while len(ids) < n:
        for ch in rng.choice(words) + " ":
            ids.append(ord(ch) % VOCAB)
    return ids[:n]


def write_flat(path, ids):
    with open(path, "wb") as f:
        array.array("H", ids).tofile(f)


def write_llmc(path, ids):
    header = [0] * 256
    header[0], header[1], header[2] = 20240520, 1, len(ids)
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *header))
        array.array("H", ids).tofile(f)


GPT_SETS = ["--set", "place=cpu", "--set", "T=16", "--set", "batch=8", "--set", "microbatches=2", "--set",
            "steps=40", "--set", "lr_schedule=constant", "--set", "precision=f32"]


def token_files_train_and_evaluate(tmp):
    rng = random.Random(2)
    write_flat(os.path.join(tmp, "train.bin"), corpus(rng, 20000))
    write_llmc(os.path.join(tmp, "val.bin"), corpus(rng, 2000))
    gpt = os.path.join(examples, "gpt.pml")
    metrics = os.path.join(tmp, "m.jsonl")
    r = train(tmp, gpt, *GPT_SETS, "--set", 'data=tokens("train.bin")', "--set", 'eval_data=tokens("val.bin")',
              "--set", "eval_every=20", "--eval", "2", "--quiet", "--metrics", metrics, "--backend", "cpu")
    check(r.returncode == 0, f"the GPT example trains on a token file: {r.stderr}")
    recs = records(metrics) if r.returncode == 0 else []
    evals = [x for x in recs if "eval_loss" in x]
    check([x.get("eval_at_step") for x in evals] == [20, 40, None], f"evaluations at 20, 40 and the end: {evals}")
    check(all(x["eval_source"] == "held_out" for x in evals), "they are held out")
    check(bool(evals) and evals[-1]["eval_loss"] < 3.5, f"held-out loss falls well below log(65) = 4.17: {evals}")
    # The flat file, held out by a fraction, and llm.c's layout as the training file.
    write_llmc(os.path.join(tmp, "train_llmc.bin"), corpus(rng, 5000))
    r = train(tmp, gpt, *GPT_SETS, "--set", 'data=tokens("train_llmc.bin")', "--set", "holdout=0.1", "--set",
              "steps=4", "--eval", "1", "--quiet", "--backend", "cpu")
    line = eval_line(r.stderr)
    check(r.returncode == 0 and "held out of train_llmc.bin" in line, f"holdout of a headered file: {r.stderr}")
    # A token outside the vocabulary is named with its file and offset.
    bad = corpus(rng, 100)
    bad[57] = VOCAB
    write_flat(os.path.join(tmp, "bad.bin"), bad)
    r = train(tmp, gpt, *GPT_SETS, "--set", 'data=tokens("bad.bin")', "--quiet", "--backend", "cpu")
    check(r.returncode == 1 and "bad.bin: token 57 (at byte offset 114) is 65" in r.stderr,
          f"a bad token is named: {r.stderr}")


def resume_with_a_token_source_is_bit_exact(tmp):
    rng = random.Random(3)
    write_flat(os.path.join(tmp, "train.bin"), corpus(rng, 5000))
    gpt = os.path.join(examples, "gpt.pml")
    sets = [*GPT_SETS, "--set", 'data=tokens("train.bin")', "--set", "steps=6", "--set", "checkpoint_every=3",
            "--quiet", "--backend", "cpu"]
    r = train(tmp, gpt, *sets, "--out", "whole")
    check(r.returncode == 0, f"the uninterrupted run: {r.stderr}")
    r = train(tmp, gpt, *sets, "--resume", os.path.join("whole", "step-000003"), "--out", "resumed")
    check(r.returncode == 0, f"the resumed run: {r.stderr}")
    same = False
    if r.returncode == 0:
        with open(os.path.join(tmp, "whole", "model.safetensors"), "rb") as a, \
             open(os.path.join(tmp, "resumed", "model.safetensors"), "rb") as b:
            same = a.read() == b.read()
    check(same, "resuming from step 3 gives the uninterrupted run's weights, bit for bit")


BEHAVIOURS = {f.__name__: f for f in (held_out_evaluation_never_sees_training_rows, eval_every_writes_k_spaced_records,
                                      token_files_train_and_evaluate, resume_with_a_token_source_is_bit_exact)}

with tempfile.TemporaryDirectory() as work:
    BEHAVIOURS[behaviour](work)
print(f"{behaviour}: {len(failures)} failed")
sys.exit(1 if failures else 0)
