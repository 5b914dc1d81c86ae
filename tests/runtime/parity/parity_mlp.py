#!/usr/bin/env python3
"""Parity with PyTorch: the MLP example built in PyTorch from PML's initial weights and
trained on PML's batches with the same AdamW gives the same losses for 20 steps
(relative difference <= 1e-4) and the same final weights (relative norm difference
<= 1e-4). Needs Debian's python3-torch; skips (exit 77) without it."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_lib import np, pml_run, torch  # noqa: E402  (exits 77 without torch)

pmlc, dump, example = sys.argv[1], sys.argv[2], sys.argv[3]
STEPS = 20
torch.set_num_threads(1)


with tempfile.TemporaryDirectory() as tmp:
    init, final, pml_losses, data = pml_run(pmlc, dump, example, STEPS, tmp)

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
        x = torch.tensor(np.load(f"{data}/x_{s}.npy"))
        y = torch.tensor(np.load(f"{data}/y_{s}.npy")).long()
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
