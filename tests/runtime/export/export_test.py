#!/usr/bin/env python3
"""`pmlc export` (tools/pmlc/export_cmd.c, runtime/src/plan/onnx.c), one behaviour per
invocation: export_test.py PMLC TESTDIR ORT_PYTHON BEHAVIOUR.

  examples      every example (mlp, teacher, student, freeze, gpt), trained a step,
                exported and run by ONNX Runtime, gives `pmlc infer`'s outputs within 1e-5
                (relative to the outputs' largest magnitude, at least 1)
  stdlib        the same for every layer of stdlib/nn.pml in a small sequence model,
                dropout among them (off in both)
  batch         --set batch=1 --set microbatches=1 exports a model of one row a call
  int8          `pmlc quantize`'s int8 weights export as int8 products (MatMulInteger on
                per-row int8 activations): a lone linear layer, 2-D and batched [B, T, C],
                gives `pmlc infer`'s outputs bit for bit (a zero row among the inputs); the
                MLP example within 1e-6 (its f32 GELU and layernorm round differently in
                ONNX Runtime, as in the f32 export); a weight also read otherwise is refused
                naming it, and no file is written
  int8_calibrated  the same three models quantized with --calibrate (static activation
                scales): the ONNX model carries each scale as a constant initializer
                <name>.input_scale (no per-row ReduceMax), and ONNX Runtime gives `pmlc
                infer`'s outputs of the calibrated file, bit for bit on the linear layers
  refusals      no -o or no --weights: exit 2; weights of another model, an -o in a
                missing folder: exit 1 naming the path, and an existing -o left as it was;
                an option the command does not use (export --threads, plan --steps): exit 2

ORT_PYTHON is an interpreter with onnxruntime, onnx and numpy (scripts/test installs
one); without it the ONNX Runtime behaviours skip (exit 77) and say so. The ONNX Runtime
side and the comparison run in that interpreter (ort_run.py); this one needs no numpy."""
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
import tied_gpt  # noqa: E402
from npy_files import write_npy  # noqa: E402

pmlc, here, ort_python, behaviour = sys.argv[1:5]
ROOT = os.path.abspath(os.path.join(here, "..", "..", ".."))
EXAMPLES = {"mlp": 784, "teacher": 784, "student": 784, "freeze": 256, "gpt": None}
LAYERS = {
    "linear": "linear(h, 24, has_bias = false) as l",
    "layernorm": "layernorm(h) as n",
    "rmsnorm": "rmsnorm(h) as n",
    "gelu": "gelu(h)",
    "gelu_erf": "gelu_erf(h)",
    "silu": "silu(h)",
    "softmax": "softmax(h)",
    "log_softmax": "log_softmax(h)",
    "mlp_with_dropout": "mlp(h, 48, dropout_p = 0.3) as m",
    "attention_with_dropout": "causal_self_attention(h, 4, dropout_p = 0.2) as a",
    "attention": "causal_self_attention(h, 4) as a",
    "attention_not_causal": "attention(h, h * 0.5, h, causal = false, scale = 0.3)",
    "block": "block(h, 4, dropout_p = 0.1) as b",
}
SEQ_MODEL = """import "nn"
model seq(idx: i32[B, T]) -> f32[B, T, 16] {{
    h = embedding(idx, 16, 24) as emb
    h = {layer}
    return linear(h, 16) as head
}}
train seq {{
    data = markov(vocab = 16, order = 1, seed = 1)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 4, microbatches = 2
    steps = 1
    T = 8
}}
"""
LONE_LINEAR = """import "nn"
model lone(x: f32[B, 784]) -> f32[B, 10] {
    return linear(x, 10) as head
}
train lone {
    data = classes(features = 784, classes = 10, seed = 1)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8, microbatches = 2
}
"""
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, timeout=300):
    p = subprocess.run([pmlc, *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode not in (0, 1, 2) or "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
        print(p.stderr)
        sys.exit(f"FAIL: pmlc {' '.join(args)} crashed or reported a sanitizer finding")
    return p


def need_ort():
    if not (os.path.isfile(ort_python) and os.access(ort_python, os.X_OK)):
        print(f"SKIP: no ONNX Runtime interpreter at '{ort_python}' (scripts/test installs one: "
              "scripts/lib/deps.sh, pml_test_python)")
        sys.exit(77)


def rows(path, n, features):
    """n random rows: f32 [n, features], or i32 tokens [n, 64] below 65 (features None)."""
    rng = random.Random(7)
    if features is None:
        write_npy(path, [n, 64], [rng.randrange(65) for _ in range(n * 64)], "i")
    else:
        write_npy(path, [n, features], [rng.gauss(0, 1) for _ in range(n * features)])


def compare(work, cases, steps=1, quantize=False, tolerance=None, calibrate=None):
    """cases: name -> (program, extra pmlc args, input .npy). Trains each `steps` steps
    (and quantizes the weights to int8, with calibrate[name]'s rows when given), exports,
    infers with pmlc and with ONNX Runtime, and compares: within tolerance[name] (default
    1e-5) of the outputs' scale."""
    jobs = []
    for name, (program, extra, x) in cases.items():
        w, model, y = (os.path.join(work, f"{name}.{s}") for s in ("weights", "onnx", "pmlc.npy"))
        p = run("train", program, *extra, "--steps", str(steps), "--backend", "cpu", "--quiet", "--out", w)
        check(p.returncode == 0, f"{name}: train exits 0 ({p.stderr.strip()})")
        if quantize:
            cal = ("--calibrate", calibrate[name]) if calibrate and name in calibrate else ()
            p = run("quantize", program, *extra, *cal, "--weights", w, "-o", w + ".int8")
            check(p.returncode == 0, f"{name}: quantize exits 0 ({p.stderr.strip()})")
            w += ".int8"
        p = run("export", program, *extra, "--weights", w, "-o", model)
        check(p.returncode == 0 and os.path.getsize(model) > 0, f"{name}: export exits 0 ({p.stderr.strip()})")
        if calibrate and name in calibrate and not p.returncode:
            raw = open(model, "rb").read()
            check(b".input_scale" in raw and b"ReduceMax" not in raw,
                  f"{name}: the export carries the static scales as constants and computes no row maxima")
        p = run("infer", program, *extra, "--weights", w, "--input", x, "--output", y, "--backend", "cpu")
        check(p.returncode == 0, f"{name}: infer exits 0 ({p.stderr.strip()})")
        jobs.append({"name": name, "model": model, "input": x, "want": y})
    if failures:
        return
    with open(os.path.join(work, "jobs.json"), "w") as f:
        json.dump(jobs, f)
    out = os.path.join(work, "results.json")
    p = subprocess.run([ort_python, os.path.join(here, "ort_run.py"), os.path.join(work, "jobs.json"), out],
                       capture_output=True, text=True, timeout=600)
    print(p.stdout, p.stderr[-3000:])
    check(p.returncode == 0, "ONNX Runtime checks and runs every exported model")
    if p.returncode:
        return
    results = json.load(open(out))
    for job in jobs:
        r = results[job["name"]]
        tol = (tolerance or {}).get(job["name"], 1e-5)
        print(f"{job['name']}: largest difference {r['error']:.2e} of the outputs' scale")
        check(r["shape_ok"] and r["error"] <= tol, f"{job['name']}: ONNX Runtime equals pmlc infer within {tol}")


with tempfile.TemporaryDirectory() as work:
    if behaviour == "examples":
        need_ort()
        cases = {}
        for name, features in EXAMPLES.items():
            x = os.path.join(work, f"{name}.x.npy")
            rows(x, 37 if features else 11, features)
            cases[name] = (os.path.join(ROOT, "examples", f"{name}.pml"), [], x)
        # The GPT example with its output projection tied to the token table across its
        # four stages: one initializer serves both reads.
        tied = os.path.join(work, "tied_gpt.pml")
        with open(os.path.join(ROOT, "examples", "gpt.pml")) as f:
            src = f.read()
        with open(tied, "w") as f:
            f.write(tied_gpt.tie(src))
        cases["tied_gpt"] = (tied, [], cases["gpt"][2])
        compare(work, cases)
    elif behaviour == "stdlib":
        need_ort()
        x = os.path.join(work, "tokens.npy")
        rng = random.Random(3)
        write_npy(x, [7, 8], [rng.randrange(16) for _ in range(56)], "i")
        cases = {}
        for name, layer in LAYERS.items():
            program = os.path.join(work, f"{name}.pml")
            with open(program, "w") as f:
                f.write(SEQ_MODEL.format(layer=layer))
            cases[name] = (program, [], x)
        compare(work, cases)
    elif behaviour == "batch":
        need_ort()
        x = os.path.join(work, "one.npy")
        rows(x, 3, 784)
        compare(work, {"mlp_one_row": (os.path.join(ROOT, "examples", "mlp.pml"),
                                       ["--set", "batch=1", "--set", "microbatches=1"], x)})
    elif behaviour in ("int8", "int8_calibrated"):
        need_ort()
        calibrated = behaviour == "int8_calibrated"
        x, tokens = os.path.join(work, "x.npy"), os.path.join(work, "tokens.npy")
        cal_x, cal_tokens = os.path.join(work, "cal_x.npy"), os.path.join(work, "cal_tokens.npy")
        rng = random.Random(5)
        sd = 1.5 if calibrated else 1  # beyond the calibration rows' range: some inputs clamp
        write_npy(x, [37, 784], [0.0 if r == 3 else rng.gauss(0, sd) for r in range(37) for _ in range(784)])
        write_npy(tokens, [7, 8], [rng.randrange(16) for _ in range(56)], "i")
        write_npy(cal_x, [11, 784], [rng.gauss(0, 1) for _ in range(11 * 784)])
        write_npy(cal_tokens, [9, 8], [rng.randrange(16) for _ in range(72)], "i")
        lone = os.path.join(work, "lone.pml")
        with open(lone, "w") as f:
            f.write(LONE_LINEAR)
        program = os.path.join(work, "seq.pml")
        with open(program, "w") as f:
            f.write(SEQ_MODEL.format(layer="h"))
        compare(work, {"lone_linear": (lone, [], x), "batched_linear": (program, [], tokens),
                       "mlp": (os.path.join(ROOT, "examples", "mlp.pml"), [], x)},
                steps=2, quantize=True, tolerance={"lone_linear": 0.0, "batched_linear": 0.0, "mlp": 1e-6},
                calibrate={"lone_linear": cal_x, "batched_linear": cal_tokens, "mlp": cal_x} if calibrated else None)
        if not calibrated:  # an int8 weight read otherwise: refused
            tied = os.path.join(work, "tied.pml")
            with open(tied, "w") as f:
                f.write(LONE_LINEAR.replace("return linear(x, 10) as head",
                                            "param w: [10, 784] = kaiming_uniform\n"
                                            "    return x @ transpose(w) + mean(w)"))
            w, model = os.path.join(work, "tied.weights"), os.path.join(work, "tied.onnx")
            check(run("train", tied, "--steps", "1", "--quiet", "--out", w).returncode == 0, "tied weights made")
            check(run("quantize", tied, "--weights", w, "-o", w + ".int8").returncode == 0, "tied weights quantized")
            p = run("export", tied, "--weights", w + ".int8", "-o", model)
            check(p.returncode == 1 and "int8 weight 'w'" in p.stderr and "mean" in p.stderr,
                  f"an int8 weight read other than as x @ transpose(W) is refused naming it ({p.stderr.strip()})")
            check(not os.path.exists(model), "and no ONNX file is written")
    elif behaviour == "refusals":
        mlp, gpt = (os.path.join(ROOT, "examples", f"{n}.pml") for n in ("mlp", "gpt"))
        w = os.path.join(work, "w")
        check(run("train", mlp, "--steps", "0", "--quiet", "--out", w).returncode == 0, "mlp weights made")
        p = run("export", mlp, "--weights", w)
        check(p.returncode == 2 and "-o" in p.stderr, f"no -o: exit 2 ({p.returncode}: {p.stderr.strip()})")
        p = run("export", mlp, "-o", os.path.join(work, "m.onnx"))
        check(p.returncode == 2 and "--weights" in p.stderr, f"no --weights: exit 2 ({p.stderr.strip()})")
        keep = os.path.join(work, "keep.onnx")
        with open(keep, "wb") as f:
            f.write(b"old bytes")
        p = run("export", gpt, "--weights", w, "-o", keep)
        check(p.returncode == 1 and w in p.stderr, f"weights of another model: exit 1 naming them ({p.stderr.strip()})")
        check(open(keep, "rb").read() == b"old bytes", "a failed export leaves the old file as it was")
        check(not [n for n in os.listdir(work) if n.startswith("keep.onnx.")], "and no temporary file")
        missing = os.path.join(work, "no", "such", "m.onnx")
        p = run("export", mlp, "--weights", w, "-o", missing)
        check(p.returncode == 1 and missing in p.stderr, f"-o in a missing folder: exit 1 naming it ({p.stderr.strip()})")
        p = run("export", mlp, "--weights", w, "-o", os.path.join(work, "m.onnx"), "--threads", "2")
        check(p.returncode == 2 and "--threads" in p.stderr,
              f"an option export does not take is refused ({p.returncode}: {p.stderr.strip()})")
        p = run("plan", mlp, "--steps", "3")
        check(p.returncode == 2 and "--steps" in p.stderr, f"and one plan does not take ({p.stderr.strip()})")
    else:
        sys.exit(f"unknown behaviour {behaviour}")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("ok")
