#!/usr/bin/env python3
"""bench/gpu/attention_torch.py — PyTorch's scaled_dot_product_attention (causal) at
bench/gpu/attention.pml's shapes, for bench/gpu/run.sh: forward and forward+backward
TFLOP/s (CUDA events, median of 11), counted as gpu_attention --bench counts them
(4 T² d per matrix forward, halved by the mask; backward 2.5 times that). f32 (which
PyTorch runs on its memory-efficient kernel, as PML's kernels are f32) and bf16 (its
flash kernel: what PML's bf16 kernels will be held to), and f16 (flash too)."""
import statistics

import torch
import torch.nn.functional as F


def median_ms(fn):
    fn()
    times = []
    for _ in range(11):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


for dtype in (torch.float32, torch.bfloat16, torch.float16):
    for batch, heads, T, d in ((8, 12, 1024, 64), (2, 12, 4096, 64), (4, 16, 1024, 128)):
        q, k, v = (torch.randn(batch, heads, T, d, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
        do = torch.randn(batch, heads, T, d, device="cuda", dtype=dtype)
        flops = 4.0 * batch * heads * T * T * d * 0.5
        fwd = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))

        def both():
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            o.backward(do)

        total = median_ms(both)
        name = str(dtype).replace("torch.", "")
        print(f"torch sdpa {name} M={batch * heads} T={T} d={d} causal: forward {fwd:.3f} ms, "
              f"{flops / fwd / 1e9:.2f} TFLOP/s; forward+backward {total:.3f} ms, {3.5 * flops / total / 1e9:.2f} TFLOP/s")
