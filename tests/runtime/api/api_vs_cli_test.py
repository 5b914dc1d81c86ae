#!/usr/bin/env python3
"""The same data through pml.h (api_vs_cli.c) and through pmlc, compared bit for bit:
training on caller buffers and a feeder holding the rows `pmlc train` draws gives its
weights and losses; evaluation on caller rows gives its final eval record (the held-out
files' rows, in order); inference gives `pmlc infer`'s outputs, from the session's
weights and from the checkpoint pmlc wrote.

Usage: api_vs_cli_test.py PMLC API_VS_CLI BEHAVIOUR (training | evaluation | inference)"""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from npy_files import write_npy  # noqa: E402
from st_files import read_st  # noqa: E402

pmlc, api, behaviour = sys.argv[1:4]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


# Two stages, 40 training rows (an epoch is 5 steps: 6 steps cross into a reshuffled one).
PROGRAM = """import "nn"
model m(x: f32[B, 6]) -> f32[B, 3] {
    stage 0 { h = gelu(linear(x, 16) as fc1) }
    stage 1 { return linear(layernorm(h) as norm, 3) as head }
}
train m {
    data = "x.npy"
    labels = "y.npy"
    eval_data = "ex.npy"
    eval_labels = "ey.npy"
    loss = cross_entropy
    optimizer = adamw(lr = 1e-2, weight_decay = 0.01)
    batch = 8, microbatches = 2
    steps = 6
}
"""
STEPS, SEED, F, N, NE, NI = 6, 5, 6, 40, 16, 13


def run(args, cwd):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


with tempfile.TemporaryDirectory() as tmp:
    rng = random.Random(3)
    with open(os.path.join(tmp, "m.pml"), "w") as f:
        f.write(PROGRAM)
    data = {}
    for name, rows in (("x", N), ("ex", NE), ("xi", NI)):
        data[name] = [rng.gauss(0, 1) for _ in range(rows * F)]
        write_npy(os.path.join(tmp, name + ".npy"), (rows, F), data[name], "f")
    for name, rows in (("y", N), ("ey", NE)):
        data[name] = [rng.randrange(3) for _ in range(rows)]
        write_npy(os.path.join(tmp, name + ".npy"), (rows,), data[name], "q")
    with open(os.path.join(tmp, "xi.f32"), "wb") as f:
        f.write(struct.pack(f"<{NI * F}f", *data["xi"]))
    with open(os.path.join(tmp, "ex.f32"), "wb") as f:
        f.write(struct.pack(f"<{NE * F}f", *data["ex"]))
    with open(os.path.join(tmp, "ey.i32"), "wb") as f:
        f.write(struct.pack(f"<{NE}i", *data["ey"]))
    r = run([pmlc, "train", "m.pml", "--seed", str(SEED), "--threads", "1", "--out", "ckpt", "--metrics",
             "m.jsonl", "--eval", str(NE // 8), "--quiet"], tmp)
    check(r.returncode == 0, f"pmlc train succeeds: {r.stderr}")
    r = run([pmlc, "infer", "m.pml", "--weights", "ckpt", "--input", "xi.npy", "--output", "yi.npy",
             "--threads", "1", "--quiet"], tmp)
    check(r.returncode == 0, f"pmlc infer succeeds: {r.stderr}")
    os.mkdir(os.path.join(tmp, "api"))
    a = run([api, "m.pml", str(SEED), str(STEPS), "ckpt", "xi.f32", str(NI), "ex.f32", "ey.i32", str(NE), "api"], tmp)
    check(a.returncode == 0, f"the API program succeeds: {a.stderr}")
    if not failures:
        recs = [json.loads(line) for line in open(os.path.join(tmp, "m.jsonl"))]
        lines = a.stdout.splitlines()
        if behaviour == "training":
            cli_losses = [x["loss"] for x in recs if "step" in x]
            api_losses = [float(x.split()[1]) for x in lines if x.startswith("loss ")]
            check(len(cli_losses) == STEPS and api_losses == cli_losses,
                  f"the losses are pmlc's: {api_losses} vs {cli_losses}")
            _, _, tensors = read_st(os.path.join(tmp, "ckpt", "model.safetensors"))
            names = [x.split()[1] for x in lines if x.startswith("param ")]
            with open(os.path.join(tmp, "api", "params.f32"), "rb") as f:
                got = f.read()
            want = b"".join(tensors[n] for n in names)
            check(len(names) == len(tensors) == 6 and got == want,
                  f"the weights are pmlc's bit for bit ({len(got)} vs {len(want)} bytes)")
            # And the test can fail: one more step would differ.
            check(len(set(cli_losses)) == STEPS, "the losses move")
        elif behaviour == "evaluation":
            final = [x for x in recs if "eval_loss" in x and "eval_at_step" not in x]
            got = [x.split()[1:] for x in lines if x.startswith("eval ")]
            check(len(final) == 1 and final[0]["eval_source"] == "held_out" and final[0]["eval_samples"] == NE,
                  f"pmlc evaluated the held-out rows: {final}")
            check(len(got) == 1 and final and float(got[0][0]) == final[0]["eval_loss"]
                  and float(got[0][1]) == final[0]["eval_accuracy"],
                  f"the API's evaluation is pmlc's: {got} vs {final}")
        else:
            with open(os.path.join(tmp, "yi.npy"), "rb") as f:
                raw = f.read()
            hlen = struct.unpack("<H", raw[8:10])[0]
            cli = raw[10 + hlen:]
            for name in ("session_infer.f32", "weights_infer.f32"):
                with open(os.path.join(tmp, "api", name), "rb") as f:
                    got = f.read()
                check(len(cli) == NI * 3 * 4 and got == cli, f"{name} is pmlc infer's output bit for bit")

print(f"api_vs_cli {behaviour}: {len(failures)} failed")
sys.exit(1 if failures else 0)
