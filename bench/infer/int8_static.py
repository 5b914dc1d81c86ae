#!/usr/bin/env python3
"""bench/infer/int8_static.py — int8 inference with static (calibrated) against dynamic
(per-row) activation scales, and both against PyTorch's own int8 of the same model
(torch.ao.quantization.quantize_dynamic) and f32, side by side.

  PY bench/infer/int8_static.py [PMLC] [REPS]

PY: a Python with torch 2.x and numpy (~/.cache/pml/torch2/bin/python here). PMLC
defaults to build/tools/pmlc/pmlc, REPS (interleaved rounds) to 5. Models: the MLP
example (784 -> 512 -> 512 -> 10, gelu, layernorm; two stages), the wide MLP of
bench/precision (1024 -> 4 x 1024 -> 16, one stage) and the GPT example's forward (rows
of 64 tokens, its 4 stages on the CPU; PyTorch's twin is bench/cpu_train/torch_gpt.py;
PML_BENCH_MODELS narrows the list), trained 20 steps, quantized by
`pmlc quantize` without and with --calibrate (256 Gaussian rows), and the same f32
weights loaded into a torch.nn model (checked: its f32 outputs are pmlc's within 1e-4)
and given to quantize_dynamic ({nn.Linear}, qint8; its default engine). Rows per call: 1
and 32 (`--set batch=R --set microbatches=1`), one thread everywhere (pmlc --threads 1,
torch.set_num_threads(1), OMP_WAIT_POLICY=PASSIVE). Per round, each variant in turn:
pmlc's `infer --bench` (at least 1 s of calls: the median per call) and, in this
process, torch calls for at least 1 s (the median per call). Printed: per cell, the
median over the rounds of each variant's median per call, in CPU time (pmlc: the
process's; torch: this thread's) and wall time."""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", ".."))
sys.path.insert(0, os.path.join(root, "tests", "lib"))
sys.path.insert(0, os.path.join(root, "bench", "cpu_train"))
from st_files import read_st  # noqa: E402
from torch_gpt import GPT, pml_names  # noqa: E402

pmlc = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build", "tools", "pmlc", "pmlc")
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)
warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.ao's move to torchao
warnings.filterwarnings("ignore", category=UserWarning)  # the quantized dtypes' deprecation
# name: (source, features a row: f32 values, or for gpt the tokens of a sequence)
MODELS = {"mlp": (os.path.join(root, "examples", "mlp.pml"), 784),
          "wide": (os.path.join(root, "bench", "precision", "wide_mlp.pml"), 1024),
          "gpt": (os.path.join(root, "examples", "gpt.pml"), 64)}
MODELS = {k: v for k, v in MODELS.items() if k in os.environ.get("PML_BENCH_MODELS", " ".join(MODELS)).split()}
ON_CPU = ["--set", "place=cpu"]  # the GPT example is placed on GPUs


def rows_of(name, feat, rows, seed):
    """Random rows the model takes: tokens for gpt, Gaussian features otherwise."""
    r = np.random.default_rng(seed)
    if name == "gpt":
        return r.integers(0, 65, (rows, feat)).astype(np.int32)
    return r.standard_normal((rows, feat)).astype(np.float32)


def pml(*args):
    return subprocess.run([pmlc, *args], check=True, capture_output=True, text=True).stdout


def torch_model(name, ck):
    """The plan's model in torch.nn with the weights of checkpoint ck."""
    _, _, d = read_st(os.path.join(ck, "model.safetensors"))

    def t(key, *shape):
        return torch.from_numpy(np.frombuffer(d[key], dtype="<f4").reshape(shape).copy())

    def linear(key, n_in, n_out):
        m = torch.nn.Linear(n_in, n_out)
        m.weight.data, m.bias.data = t(key + ".weight", n_out, n_in), t(key + ".bias", n_out)
        return m

    if name == "gpt":
        model = GPT()
        shapes = {k: v.shape for k, v in model.state_dict().items()}
        state = {k: torch.from_numpy(np.frombuffer(v, dtype="<f4").reshape(shapes[k]).copy())
                 for k, v in pml_names(d).items()}
        model.load_state_dict(state)
        return model.eval()
    gelu = torch.nn.GELU(approximate="tanh")
    if name == "mlp":
        norm = torch.nn.LayerNorm(512, eps=1e-5)
        norm.weight.data, norm.bias.data = t("norm.weight", 512), t("norm.bias", 512)
        layers = [linear("fc1", 784, 512), gelu, linear("fc2", 512, 512), gelu, norm, linear("head", 512, 10)]
    else:
        layers = [linear("fc1", 1024, 1024), gelu]
        for k in (2, 3, 4):
            layers += [linear(f"fc{k}", 1024, 1024), gelu]
        layers.append(linear("head", 1024, 16))
    return torch.nn.Sequential(*layers).eval()


def time_torch(model, x):
    """Median thread-CPU and wall seconds per call over at least 1 s of calls."""
    cpu, wall = [], []
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        while time.perf_counter() - start < 1.0 or len(cpu) < 5:
            c0, w0 = time.thread_time(), time.perf_counter()
            model(x)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def time_pml(src, weights, x, rows):
    out = pml("infer", src, "--weights", weights, "--input", x, "--bench", "--quiet", "--threads", "1",
              "--set", f"batch={rows}", "--set", "microbatches=1", *ON_CPU)
    m = re.search(r"median ([0-9.]+) ms, p90.*cpu median ([0-9.]+) ms", out)
    return float(m.group(2)) / 1e3, float(m.group(1)) / 1e3


load = open("/proc/loadavg").read().split()[:3]
cpu_name = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_name}, {os.cpu_count()} CPUs, load "
      f"{' '.join(load)}, torch {torch.__version__} (engine {torch.backends.quantized.engine}), one thread, "
      f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, {reps} rounds")
VARIANTS = ["pml f32", "pml int8 dynamic", "pml int8 static", "torch f32", "torch int8 dynamic"]
print(f"{'model':5} {'rows':>4}  " + "  ".join(f"{v:>18}" for v in VARIANTS) + "   (ms per call: cpu / wall)")
with tempfile.TemporaryDirectory() as tmp:
    for name, (src, feat) in MODELS.items():
        ck = os.path.join(tmp, name)
        pml("train", src, "--steps", "20", "--out", ck, "--quiet", *ON_CPU)
        dyn, st, cal = (os.path.join(tmp, f"{name}.{s}") for s in ("dyn.safetensors", "st.safetensors", "cal.npy"))
        np.save(cal, rows_of(name, feat, 256, 1))
        pml("quantize", src, "--weights", ck, "-o", dyn, *ON_CPU)
        pml("quantize", src, "--weights", ck, "--calibrate", cal, "-o", st, *ON_CPU)
        tm = torch_model(name, ck)
        tq = torch.ao.quantization.quantize_dynamic(tm, {torch.nn.Linear}, dtype=torch.qint8)
        for rows in (1, 32):
            x = os.path.join(tmp, "x.npy")
            xs = rows_of(name, feat, rows, 2)
            np.save(x, xs)
            y = os.path.join(tmp, "y.npy")
            pml("infer", src, "--weights", ck, "--input", x, "--output", y, "--set", f"batch={rows}",
                "--set", "microbatches=1", *ON_CPU)
            xt = torch.from_numpy(xs.astype(np.int64) if name == "gpt" else xs)  # torch's token ids are int64
            with torch.inference_mode():
                want = np.load(y)
                diff = float(np.abs(tm(xt).numpy().reshape(want.shape) - want).max())
            assert diff < 1e-4, f"{name}: torch f32 is not the same model ({diff})"
            runs = {v: [] for v in VARIANTS}
            for _ in range(reps):
                runs["pml f32"].append(time_pml(src, ck, x, rows))
                runs["pml int8 dynamic"].append(time_pml(src, dyn, x, rows))
                runs["pml int8 static"].append(time_pml(src, st, x, rows))
                runs["torch f32"].append(time_torch(tm, xt))
                runs["torch int8 dynamic"].append(time_torch(tq, xt))
            cells = []
            for v in VARIANTS:
                c = statistics.median(r[0] for r in runs[v]) * 1e3
                w = statistics.median(r[1] for r in runs[v]) * 1e3
                cells.append(f"{c:8.3f} / {w:7.3f}")
            print(f"{name:5} {rows:>4}  " + "  ".join(f"{c:>18}" for c in cells), flush=True)
print(f"# load after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
