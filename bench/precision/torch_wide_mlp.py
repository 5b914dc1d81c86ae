"""bench/precision/torch_wide_mlp.py — wide_mlp.pml's step in PyTorch (Debian torch 1.13):
the same layers, batch 256 in 4 micro-batches of 64 with gradient accumulation, AdamW,
f32 or torch.autocast('cpu', dtype=torch.bfloat16). Prints one line:
  torch <precision> <steps> cpu_s <CPU seconds of the steps> wall_s <wall seconds>
Usage: torch_wide_mlp.py f32|bf16 STEPS THREADS"""
import sys, time
import torch

prec, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(1)
W, F, C, B, M = 1024, 1024, 16, 256, 4
layers = []
for i in range(4):
    layers += [torch.nn.Linear(F if i == 0 else W, W), torch.nn.GELU()]
model = torch.nn.Sequential(*layers, torch.nn.Linear(W, C))
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
x = torch.randn(B, F)
y = torch.randint(0, C, (B,))


def step():
    opt.zero_grad(set_to_none=True)
    for xm, ym in zip(x.chunk(M), y.chunk(M)):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
            loss = torch.nn.functional.cross_entropy(model(xm), ym) / M
        loss.backward()
    opt.step()


step()  # warm-up: allocations, oneDNN's kernels
c0, w0 = time.process_time(), time.perf_counter()
for _ in range(steps):
    step()
print(f"torch {prec} {steps} cpu_s {time.process_time() - c0:.3f} wall_s {time.perf_counter() - w0:.3f}")
