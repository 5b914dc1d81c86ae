#!/usr/bin/env python3
"""`pmlc infer` (tools/pmlc/infer_cmd.c), one behaviour per invocation:
infer_test.py PMLC TESTDIR BEHAVIOUR.

  shape               N rows in, f32 [N, 10] out; N not a multiple of the micro-batch size
  padding_invisible   a row's output does not depend on the rows batched with it
  deterministic       two runs write the same bytes
  sharded_weights     weights as Hugging Face shards (a folder or its index) give the same bytes
  weights_forms       --weights takes every form --init takes: a folder of a plain model.safetensors
                      or of shards and their index, without trainer.json, gives the same bytes
  dropout_off         a model with dropout gives the same outputs twice (a .plan and a folder)
  bench               --bench prints latency (median, p90, p99; CPU time's median) and throughput
  trace               --trace writes a Chrome trace of the forwards: an "op" span for every unit of
                      every forward, numbered 1..N, with CPU times; "op_thread" spans of the pool's
                      other thread inside them; the outputs the same bits as without it; and
                      bench/cpu_train/ops.py breaks it down
  trace_refused       --trace to a path that cannot be written fails before any work, naming it;
                      --trace on a command that does not trace is a usage error
  run_trains          `pmlc run FILE` trains like `pmlc train FILE`
  wrong_row_shape, missing_weights, other_model
                      exit 1, the path at fault in the message
  missing_input       no --input: exit 2
  signal              SIGINT, SIGTERM or SIGUSR1 mid-run ends it at once with 128 + the signal's
                      number, the old output untouched (or none made) and no temporary file left
.npy files are written and read by hand (no numpy)."""
import ast
import json
import os
import random
import shutil
import struct
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from st_files import shard  # noqa: E402
from npy_files import write_npy  # noqa: E402

pmlc, here, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.path.abspath(os.path.join(here, "..", "..", ".."))
MLP = os.path.join(ROOT, "examples", "mlp.pml")
DROP = os.path.join(ROOT, "tests", "runtime", "checkpoint", "sgd.pml")
# Wide layers on narrow rows: a long run from a small input file.
WIDE = """import "nn"
model wide(x: f32[B, 16]) -> f32[B, 10] {
    h = gelu(linear(x, 2048) as a)
    h = gelu(linear(h, 2048) as b)
    return linear(h, 10) as out
}
train wide {
    data = classes(features = 16, classes = 10, seed = 1)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 64, microbatches = 2
    steps = 1
}
"""
# A transformer block with dropout on its attention weights (attention_qkv's, drawn in
# the kernel) and after its layers; DROPS % p.
DROPS = """import "nn"
model lm(idx: i32[B, T]) -> f32[B, T, 11] {
    h = embedding(idx, 11, 16) as wte
    h = block(h, 2, dropout_p = %s) as blk
    return linear(layernorm(h) as ln_f, 11) as head
}
train lm {
    data = markov(vocab = 11, order = 1, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-2)
    batch = 4
    T = 8
}
"""
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def pmlc_run(*args):
    return subprocess.run([pmlc, *args], capture_output=True, text=True, timeout=300)


def must(*args):
    r = pmlc_run(*args)
    check(r.returncode == 0, f"pmlc {' '.join(args)} succeeds: {r.stderr}")
    return r



def read_npy(path):
    raw = open(path, "rb").read()
    assert raw[:8] == b"\x93NUMPY\x01\x00", path
    n = struct.unpack("<H", raw[8:10])[0]
    h = ast.literal_eval(raw[10:10 + n].decode())
    assert h["descr"] == "<f4", h
    count = 1
    for d in h["shape"]:
        count *= d
    return tuple(h["shape"]), list(struct.unpack(f"<{count}f", raw[10 + n:10 + n + 4 * count])), raw


def rows(n, features, seed=7):
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(n * features)]


def train(tmp, pml, name="D", steps="3"):
    out = os.path.join(tmp, name)
    must("train", pml, "--steps", steps, "--out", out, "--quiet", "--threads", "2")
    return out


def infer(*args):
    return pmlc_run("infer", *args, "--threads", "2", "--quiet")


with tempfile.TemporaryDirectory() as tmp:
    X, Y = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    if behaviour == "shape":
        D = train(tmp, MLP)
        for n in (70, 32, 1):  # micro-batches of 32: partial, whole, one row
            write_npy(X, (n, 784), rows(n, 784))
            r = infer(MLP, "--weights", D, "--input", X, "--output", Y)
            check(r.returncode == 0, f"infer {n} rows succeeds: {r.stderr}")
            if r.returncode == 0:
                shape, y, _ = read_npy(Y)
                check(shape == (n, 10), f"{n} rows give shape (N, 10): {shape}")
                check(all(v == v and abs(v) < 1e6 for v in y), f"{n} rows: finite outputs")
    elif behaviour == "padding_invisible":
        D = train(tmp, MLP)
        x = rows(70, 784)
        write_npy(X, (70, 784), x)
        must("infer", MLP, "--weights", os.path.join(D, "model.safetensors"), "--input", X, "--output", Y, "--quiet")
        _, y, _ = read_npy(Y)
        X2, Y2 = os.path.join(tmp, "x2.npy"), os.path.join(tmp, "y2.npy")
        write_npy(X2, (6, 784), x[64 * 784:])  # the last 6 rows, batched with other padding
        must("infer", MLP, "--weights", D, "--input", X2, "--output", Y2, "--quiet")
        _, y2, _ = read_npy(Y2)
        check(y[64 * 10:] == y2, "the last rows' outputs are the same alone")
    elif behaviour == "sharded_weights":
        D = train(tmp, MLP)
        write_npy(X, (50, 784), rows(50, 784))
        must("infer", MLP, "--weights", D, "--input", X, "--output", Y, "--quiet")
        shard(D, "fc1.")  # as ranks write a checkpoint: model-0000k-of-00002.safetensors and an index
        for i, w in enumerate((D, os.path.join(D, "model.safetensors.index.json"))):
            Yi = os.path.join(tmp, f"y{i}.npy")
            must("infer", MLP, "--weights", w, "--input", X, "--output", Yi, "--quiet")
            check(read_npy(Y)[2] == read_npy(Yi)[2], f"--weights {os.path.basename(w)}: the same outputs")
    elif behaviour == "weights_forms":
        D = train(tmp, MLP)
        write_npy(X, (50, 784), rows(50, 784))
        must("infer", MLP, "--weights", D, "--input", X, "--output", Y, "--quiet")
        plain, hf = os.path.join(tmp, "plain"), os.path.join(tmp, "hf")
        os.makedirs(plain)
        shutil.copy(os.path.join(D, "model.safetensors"), plain)  # weights alone: no trainer.json
        shutil.copytree(D, hf)
        shard(hf, "fc1.")
        for f in ("trainer.json", "optimizer.safetensors.index.json"):
            os.remove(os.path.join(hf, f))
        for w in (plain, hf):
            Yw = os.path.join(tmp, os.path.basename(w) + ".npy")
            must("infer", MLP, "--weights", w, "--input", X, "--output", Yw, "--quiet")
            check(os.path.exists(Yw) and read_npy(Y)[2] == read_npy(Yw)[2],
                  f"--weights {os.path.basename(w)}/: the same outputs as the checkpoint")
            must("train", MLP, "--steps", "1", "--init", w, "--quiet", "--threads", "2")  # and --init takes it too
    elif behaviour == "deterministic":
        D = train(tmp, MLP)
        write_npy(X, (50, 784), rows(50, 784))
        must("infer", MLP, "--weights", D, "--input", X, "--output", Y, "--quiet")
        Y2 = os.path.join(tmp, "y2.npy")
        must("infer", MLP, "--weights", D, "--input", X, "--output", Y2, "--quiet")
        check(read_npy(Y)[2] == read_npy(Y2)[2], "two runs write the same bytes")
    elif behaviour == "dropout_off":
        D = train(tmp, DROP)
        plan = os.path.join(tmp, "net.plan")
        must("build", DROP, "-o", plan)
        write_npy(X, (19, 16), rows(19, 16), "d")  # f64 converts like training data
        must("infer", plan, "--weights", D, "--input", X, "--output", Y, "--quiet")
        Y2 = os.path.join(tmp, "y2.npy")
        must("infer", DROP, "--weights", D, "--input", X, "--output", Y2, "--quiet")
        shape, y, raw = read_npy(Y)
        check(shape == (19, 4), f"shape (19, 4): {shape}")
        check(raw == read_npy(Y2)[2], "dropout is off: the same outputs twice")
    elif behaviour == "attention_dropout_off":
        # served with dropout 0.3 in its block: the outputs of the same weights with none
        models = []
        for p in ("0.3", "0.0"):
            models.append(os.path.join(tmp, f"lm{p}.pml"))
            with open(models[-1], "w") as f:
                f.write(DROPS % p)
        D = train(tmp, models[0], steps="2")
        write_npy(X, (5, 8), [(7 * i) % 11 for i in range(40)], "i")
        outs = []
        for i, m in enumerate(models):
            outs.append(os.path.join(tmp, f"y{i}.npy"))
            must("infer", m, "--weights", D, "--input", X, "--output", outs[-1], "--quiet")
        check(read_npy(outs[0])[2] == read_npy(outs[1])[2],
              "dropout in the attention is off in serving: the outputs of dropout_p = 0")
    elif behaviour == "bench":
        D = train(tmp, DROP)
        write_npy(X, (40, 16), rows(40, 16))
        r = pmlc_run("infer", DROP, "--weights", D, "--input", X, "--bench", "--threads", "2")
        check(r.returncode == 0, f"--bench succeeds: {r.stderr}")
        check(all(w in r.stdout for w in ("median", "p90", "p99", "cpu median", "rows/s")), f"--bench reports: {r.stdout}")
        check(not os.path.exists(Y), "--bench without --output writes nothing")
    elif behaviour == "trace":
        D = train(tmp, MLP)
        write_npy(X, (70, 784), rows(70, 784))  # micro-batches of 32: three forwards
        must("infer", MLP, "--weights", D, "--input", X, "--output", Y, "--threads", "2", "--quiet")
        _, _, plain = read_npy(Y)
        T = os.path.join(tmp, "t.json")
        r = must("infer", MLP, "--weights", D, "--input", X, "--output", Y, "--threads", "2", "--trace", T)
        check(f"timeline of 3 forwards in {T}" in r.stderr, f"says where the trace is: {r.stderr}")
        check(read_npy(Y)[2] == plain, "the outputs are the same bits with --trace")
        events = json.load(open(T))["traceEvents"]
        ops = [e for e in events if e.get("cat") == "op"]
        units = {}
        for e in ops:
            units.setdefault(e["args"]["step"], []).append(e["name"])
        check(sorted(units) == [1, 2, 3], f"op spans for forwards 1 to 3: {sorted(units)}")
        check(len({tuple(v) for v in units.values()}) == 1, f"every forward runs the same units: {units}")
        names = " ".join(units.get(1, []))
        check("matmul" in names and "fused" in names, f"matmuls and fused kernels are named: {names}")
        check(all(0 <= e["args"]["cpu_us"] <= e["dur"] + 50 for e in ops), "each op span has its CPU time")
        check(all(e["args"]["pass"] == "forward" for e in ops), "every span is of a forward")
        # --bench traces its timed forwards; with 2 threads the pool's worker takes part
        # in the products, each of its spans inside its op's span on the stage's thread.
        r = must("infer", MLP, "--weights", D, "--input", X, "--bench", "--threads", "2", "--trace", T)
        events = json.load(open(T))["traceEvents"]
        ops = [e for e in events if e.get("cat") == "op"]
        helpers = [e for e in events if e.get("cat") == "op_thread"]
        steps = {e["args"]["step"] for e in ops}
        check(1 <= len(steps) <= 200 and steps == set(range(1, len(steps) + 1)), f"forwards 1..N, N <= 200: {len(steps)}")
        check(helpers, "the pool's other thread has spans of its own")
        by = {(e["args"]["step"], e["args"].get("node"), e["args"].get("kernel"), e["pid"], e["tid"] % 1000): e for e in ops}
        outside = [h for h in helpers
                   if not (lambda o: o and o["ts"] - 1e-3 <= h["ts"] and h["ts"] + h["dur"] <= o["ts"] + o["dur"] + 1e-3)(
                       by.get((h["args"]["step"], h["args"].get("node"), h["args"].get("kernel"), h["pid"], h["tid"] % 1000)))]
        check(not outside, f"a helper's span lies inside its op's span: {outside[:2]}")
        check(any(e.get("ph") == "M" and e["args"]["name"].endswith("thread 1") for e in events), "helper tracks are named")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "cpu_train", "ops.py"), T], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 0 and "matmul" in r.stdout and "helpers CPU ms" in r.stdout,
              f"ops.py breaks the forward down, with the helpers' CPU: {r.stdout}{r.stderr}")
    elif behaviour == "trace_refused":
        D = train(tmp, MLP)
        write_npy(X, (40, 784), rows(40, 784))
        bad = os.path.join(tmp, "no", "such", "t.json")
        r = infer(MLP, "--weights", D, "--input", X, "--output", Y, "--trace", bad)
        check(r.returncode == 1 and bad in r.stderr and "--trace" in r.stderr, f"exit 1 naming the path: {r.stderr}")
        check(not os.path.exists(Y), "no output written: it failed before the work")
        r = pmlc_run("export", MLP, "--weights", D, "-o", os.path.join(tmp, "m.onnx"), "--trace", bad)
        check(r.returncode == 2 and "--trace" in r.stderr, f"export takes no --trace: {r.returncode} {r.stderr}")
    elif behaviour == "run_trains":
        a = train(tmp, DROP, "A")
        r = pmlc_run("run", DROP, "--steps", "3", "--out", os.path.join(tmp, "B"), "--quiet", "--threads", "2")
        check(r.returncode == 0, f"pmlc run succeeds: {r.stderr}")
        ma = open(os.path.join(a, "model.safetensors"), "rb").read()
        mb = open(os.path.join(tmp, "B", "model.safetensors"), "rb").read()
        check(ma == mb, "pmlc run trains exactly as pmlc train")
    elif behaviour == "wrong_row_shape":
        D = train(tmp, DROP)
        write_npy(X, (5, 15), rows(5, 15))
        r = infer(DROP, "--weights", D, "--input", X, "--output", Y)
        check(r.returncode == 1, f"exit 1: {r.returncode}")
        check(X in r.stderr and "(5, 15)" in r.stderr and "(N, 16)" in r.stderr, f"names path and shapes: {r.stderr}")
        check(not os.path.exists(Y), "no output written")
    elif behaviour == "missing_weights":
        write_npy(X, (5, 16), rows(5, 16))
        W = os.path.join(tmp, "nowhere", "model.safetensors")
        r = infer(DROP, "--weights", W, "--input", X, "--output", Y)
        check(r.returncode == 1, f"exit 1: {r.returncode}")
        check(W in r.stderr, f"names the path: {r.stderr}")
        check(not os.path.exists(Y), "no output written")
    elif behaviour == "other_model":
        D = train(tmp, MLP, steps="0")
        write_npy(X, (5, 16), rows(5, 16))
        for w in (D, os.path.join(D, "model.safetensors")):
            r = infer(DROP, "--weights", w, "--input", X, "--output", Y)
            check(r.returncode == 1, f"{w}: exit 1: {r.returncode}")
            check(D in r.stderr, f"{w}: names the path: {r.stderr}")
        check(not os.path.exists(Y), "no output written")
    elif behaviour == "signal":
        wide = os.path.join(tmp, "wide.pml")
        open(wide, "w").write(WIDE)
        D = train(tmp, wide, steps="0")
        write_npy(X, (60000, 16), rows(60000, 16))  # about 20 s of work on one thread of a 2020 laptop
        old = b"the output of an earlier run"
        for sig, had_output in ((signal.SIGINT, True), (signal.SIGINT, False), (signal.SIGTERM, True),
                                (signal.SIGUSR1, True)):
            if had_output:
                open(Y, "wb").write(old)
            elif os.path.exists(Y):
                os.remove(Y)
            p = subprocess.Popen([pmlc, "infer", wide, "--weights", D, "--input", X, "--output", Y,
                                  "--threads", "1", "--quiet"], stderr=subprocess.PIPE)
            time.sleep(1.0)  # past the start: loading weights, reading rows, inferring
            running = p.poll() is None
            check(running, f"{sig.name}: the run is still going after 1 s (make the input bigger)")
            start = time.monotonic()
            p.send_signal(sig)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            took = time.monotonic() - start
            what = f"{sig.name}, {'an' if had_output else 'no'} earlier output"
            said = p.stderr.read().decode(errors="replace")
            check(p.returncode == 128 + sig, f"{what}: exit {128 + sig}, not {p.returncode}: {said}")
            check(took < 5, f"{what}: ends within 5 s, not {took:.1f} s")
            left = [f for f in os.listdir(tmp) if f.startswith("y.npy.tmp.")]
            check(not left, f"{what}: no temporary file left: {left}")
            if had_output:
                check(open(Y, "rb").read() == old, f"{what}: the earlier output is untouched")
            else:
                check(not os.path.exists(Y), f"{what}: no output made")
    elif behaviour == "missing_input":
        r = pmlc_run("infer", DROP, "--weights", "w.safetensors", "--output", Y)
        check(r.returncode == 2, f"exit 2: {r.returncode}")
        check("--input" in r.stderr, f"says what is missing: {r.stderr}")
    else:
        sys.exit(f"unknown behaviour {behaviour}")

sys.exit(1 if failures else 0)
