#!/usr/bin/env python3
"""Parity with PyTorch: the MLP example built in PyTorch from PML's initial weights and
trained on PML's batches with the same AdamW gives the same losses for 20 steps
(relative difference <= 1e-4) and the same final weights (relative norm difference
<= 1e-4). Needs Debian's python3-torch; skips (exit 77) without it."""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    print("parity: SKIP (python3-torch is not installed)")
    sys.exit(77)

pmlc, dump, example = sys.argv[1], sys.argv[2], sys.argv[3]
STEPS = 20
torch.set_num_threads(1)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=np.float32).reshape(v["shape"]).copy()
    return out


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if r.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{r.stderr}")


with tempfile.TemporaryDirectory() as tmp:
    run(pmlc, "train", example, "--steps", "0", "--out", f"{tmp}/init", "--quiet")
    run(pmlc, "train", example, "--steps", str(STEPS), "--out", f"{tmp}/final", "--metrics", f"{tmp}/m.jsonl", "--quiet")
    os.makedirs(f"{tmp}/data")
    run(dump, example, str(STEPS), f"{tmp}/data")
    pml_losses = [json.loads(line)["loss"] for line in open(f"{tmp}/m.jsonl")]
    init, final = load_safetensors(f"{tmp}/init/model.safetensors"), load_safetensors(f"{tmp}/final/model.safetensors")

    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}

    def model(x):
        lin = lambda h, n: h @ params[f"{n}.weight"].T + params[f"{n}.bias"]
        gelu = lambda h: torch.nn.functional.gelu(h, approximate="tanh")
        h = gelu(lin(x, "fc1"))
        h = gelu(lin(h, "fc2"))
        h = torch.nn.functional.layer_norm(h, (h.shape[-1],), params["norm.weight"], params["norm.bias"], eps=1e-5)
        return lin(h, "head")

    opt = torch.optim.AdamW(params.values(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    torch_losses = []
    for s in range(STEPS):
        x = torch.tensor(np.load(f"{tmp}/data/x_{s}.npy"))
        y = torch.tensor(np.load(f"{tmp}/data/y_{s}.npy")).long()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch_losses.append(loss.item())

failures = 0
for s, (a, b) in enumerate(zip(pml_losses, torch_losses)):
    rel = abs(a - b) / abs(b)
    if rel > 1e-4:
        failures += 1
        print(f"step {s + 1}: PML loss {a:.8f}, PyTorch {b:.8f} (relative difference {rel:.2e})")
worst_w = 0.0
for name, p in params.items():
    t = p.detach().numpy()
    rel = float(np.linalg.norm(final[name] - t) / np.linalg.norm(t))
    worst_w = max(worst_w, rel)
    if rel > 1e-4:
        failures += 1
        print(f"{name}: relative difference {rel:.2e}")
worst_l = max(abs(a - b) / abs(b) for a, b in zip(pml_losses, torch_losses))
print(f"losses: PML {pml_losses[0]:.6f} -> {pml_losses[-1]:.6f}, PyTorch {torch_losses[0]:.6f} -> {torch_losses[-1]:.6f}")
print(f"largest relative difference: losses {worst_l:.2e}, weights {worst_w:.2e}")
print(f"parity: {failures} failed")
sys.exit(1 if failures else 0)
