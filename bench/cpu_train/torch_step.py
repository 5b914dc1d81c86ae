#!/usr/bin/env python3
"""bench/cpu_train/torch_step.py — PyTorch eager CPU baseline for run.sh / compare.sh.

    /usr/bin/python3 torch_step.py MODEL THREADS STEPS [MICROBATCHES]

MODEL is mlp (examples/mlp.pml: 784 -> 512 -> 512 -> layernorm -> 10, tanh GELU,
batch 256, AdamW lr 3e-4 wd 0.01) or gpt (examples/gpt.pml: vocab 65, width 128,
4 heads, 4 layers, T 64, no dropout, batch 64, AdamW lr 5e-3 wd 0.1, warmup-cosine,
grad clip 1.0), in f32 like PML's CPU runtime. torch.set_num_threads(THREADS).
gpt2s is bench/gpu/gpt2s.pml (GPT-2 small's body on characters, T 1024, batch 8);
gpt2 is bench/gpu/gpt2.pml (GPT-2 small: vocabulary 50,257 tied to the output, batch 16);
PML_BENCH_DEVICE=cuda runs on the GPU, PML_BENCH_COMPILE=1 under torch.compile,
PML_BENCH_BF16=1 the forward pass and loss under bf16 autocast (as PML's precision = bf16),
PML_BENCH_ATTENTION=matmul the GPTs' attention as matmuls and a masked softmax instead of
scaled_dot_product_attention (torch_gpt.py; PyTorch 1.13 has only that).
MICROBATCHES (default 1) splits each step's batch and accumulates gradients, as PML's
pipeline does; 1 is PyTorch's natural full-batch step. Random data of the same shapes
(time only). Prints one JSON line: model, threads, steps timed, median step_ms
(the first step, warm-up, is skipped, as in run.sh)."""
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from torch_gpt import ATTENTION, GPT, Gelu  # the models, beside this file

name, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# PML_BENCH_DEVICE=cuda runs the same step on the GPU (bench/gpu/run.sh), in f32 without
# TF32 (PML_BENCH_TF32=1: with, as PML_CUDA_TF32=1), as PML's CUDA backend; each step
# ends with the device idle, as PML's.
device = os.environ.get("PML_BENCH_DEVICE", "cpu")
torch.backends.cuda.matmul.allow_tf32 = os.environ.get("PML_BENCH_TF32") == "1"
bf16 = os.environ.get("PML_BENCH_BF16") == "1"
mbs = int(sys.argv[4]) if len(sys.argv) > 4 else 1
torch.set_num_threads(threads)
torch.manual_seed(0)


if name == "mlp":
    model = nn.Sequential(nn.Linear(784, 512), Gelu(), nn.Linear(512, 512), Gelu(), nn.LayerNorm(512), nn.Linear(512, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    x, y = torch.randn(256, 784), torch.randint(0, 10, (256,))
    sched, clip = None, None
elif name in ("gpt", "gpt256"):  # gpt256: the same at T = 256 (bench/gpu)
    T = 256 if name == "gpt256" else 64
    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.1)
    x, y = torch.randint(0, 65, (64, T)), torch.randint(0, 65, (64, T))
    # warmup_cosine(warmup = 30, min_lr = 1e-4) over 300 steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / 30 if s < 30 else
                                              (1e-4 + 0.5 * (3e-3 - 1e-4) * (1 + math.cos(math.pi * (s - 30) / 270))) / 3e-3)
    clip = 1.0
elif name == "gpt2s":  # bench/gpu/gpt2s.pml: 12 layers, 768 wide, T 1024, batch 8
    model = GPT(c=768, heads=12, layers=12, context=1024)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    x, y = torch.randint(0, 65, (8, 1024)), torch.randint(0, 65, (8, 1024))
    sched, clip = None, 1.0
elif name == "gpt2":  # bench/gpu/gpt2.pml: GPT-2 small, vocabulary 50,257 tied to the output, T 1024, batch 16
    model = GPT(vocab=50257, c=768, heads=12, layers=12, context=1024, tie=True)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.1)
    x, y = torch.randint(0, 50257, (16, 1024)), torch.randint(0, 50257, (16, 1024))
    sched, clip = None, 1.0
else:
    sys.exit(f"unknown model {name}")
if os.environ.get("PML_BENCH_COMPILE") == "1":  # torch.compile (bench/gpu)
    model = torch.compile(model)
model = model.to(device)
x, y = x.to(device), y.to(device)
model.train()

times = []
for s in range(steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for xm, ym in zip(x.chunk(mbs), y.chunk(mbs)):
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            out = model(xm)
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), ym.reshape(-1)) / mbs
        loss.backward()
        total += loss.item()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    if sched:
        sched.step()
    if device != "cpu":
        torch.cuda.synchronize()
    times.append((time.perf_counter() - t0) * 1e3)
rest = times[1:] if len(times) > 1 else times
print(json.dumps({"model": name, "device": device, "threads": threads, "microbatches": mbs, "steps": len(rest),
                  "attention": ATTENTION if name != "mlp" else None, "step_ms": round(statistics.median(rest), 2), "loss": round(total, 4)}))
