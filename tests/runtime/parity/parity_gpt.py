#!/usr/bin/env python3
"""Parity with PyTorch: a small GPT (gpt_small.pml: vocab 65, width 32, 2 heads, 2 layers,
T = 16, two pipeline stages, 2 micro-batches, dropout 0) built in PyTorch from PML's
initial weights and trained on PML's batches with the same AdamW gives the same losses
for 10 steps (relative difference <= 1e-4) and the same final weights (relative norm
difference <= 1e-4). Every layer follows stdlib/nn.pml: linear weight [out, in],
layernorm eps 1e-5 with biased variance, tanh GELU, one qkv projection [3C, C] sliced
q | k | v, scores scaled by 1/sqrt(head width), causal mask, pre-LayerNorm blocks,
cross entropy averaged over all positions.

One slice is compared differently: the k third of each attn.qkv.bias. Adding a constant
vector b to every key adds q.b to every score of a query row, which softmax ignores, so
its gradient is exactly 0 in exact arithmetic; in f32 it is round-off (~1e-9, against
~1e-2 for the q and v thirds). AdamW divides by sqrt(v) + 1e-8, which turns that noise
into steps of up to lr, so both frameworks walk it randomly and it never touches the
loss. The test checks that this gradient is indeed negligible in PyTorch (< 1e-5 of the
q/v bias gradient) and compares the rest of qkv.bias (q and v thirds) at 1e-4. Needs Debian's python3-torch; skips
(exit 77) without it. Usage: parity_gpt.py PMLC DUMP_BATCHES gpt_small.pml"""
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_lib import np, pml_run, run, torch  # noqa: E402  (exits 77 without torch)

pmlc, dump, program = sys.argv[1], sys.argv[2], sys.argv[3]
STEPS = 10
torch.set_num_threads(1)


with tempfile.TemporaryDirectory() as tmp:
    plan = json.loads(run(pmlc, "plan", program, "--json"))
    tr = plan["train"]
    assert tr["optimizer"] == "adamw" and tr["lr_schedule"] == "constant", tr
    heads, layers = 2, 2
    init, final, pml_losses, data = pml_run(pmlc, dump, program, STEPS, tmp)

    # The parameter list of the plan, with its shapes, is exactly what the PyTorch model uses.
    expected = {p["name"]: p["shape"] for p in plan["parameters"]}
    got = {k: list(v.shape) for k, v in init.items()}
    if expected != got:
        sys.exit(f"parameters differ: plan {expected}, checkpoint {got}")
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}
    used = set()

    def P(name):
        used.add(name)
        return params[name]

    F = torch.nn.functional

    def linear(h, n, bias=True):
        y = h @ P(f"{n}.weight").T
        return y + P(f"{n}.bias") if bias else y

    def layernorm(h, n):
        return F.layer_norm(h, (h.shape[-1],), P(f"{n}.weight"), P(f"{n}.bias"), eps=1e-5)

    def attn(x, n):
        B, T, C = x.shape
        hd = C // heads
        qkv = linear(x, f"{n}.qkv")
        q, k, v = (qkv[:, :, i * C:(i + 1) * C].reshape(B, T, heads, hd).permute(0, 2, 1, 3) for i in range(3))
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        y = (w @ v).permute(0, 2, 1, 3).reshape(B, T, C)
        return linear(y, f"{n}.proj")

    def model(idx):
        T = idx.shape[1]
        h = P("wte.weight")[idx] + P("wpe.weight")[torch.arange(T)]
        for i in range(layers):
            n = f"blocks.{i}"
            h = h + attn(layernorm(h, f"{n}.ln_1"), f"{n}.attn")
            h = h + linear(F.gelu(linear(layernorm(h, f"{n}.ln_2"), f"{n}.mlp.fc"), approximate="tanh"), f"{n}.mlp.proj")
        return linear(layernorm(h, "ln_f"), "lm_head", bias=False)

    opt = torch.optim.AdamW(params.values(), lr=tr["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=tr["weight_decay"])
    torch_losses = []
    for s in range(STEPS):
        x = torch.tensor(np.load(f"{data}/x_{s}.npy")).long()
        y = torch.tensor(np.load(f"{data}/y_{s}.npy")).long()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        torch_losses.append(loss.item())
    if used != set(params):
        sys.exit(f"parameters the PyTorch model does not use: {sorted(set(params) - used)}")

failures = 0
if len(pml_losses) != STEPS:
    failures += 1
    print(f"PML wrote {len(pml_losses)} losses, expected {STEPS}")
for s, (a, b) in enumerate(zip(pml_losses, torch_losses)):
    rel = abs(a - b) / abs(b)
    if rel > 1e-4:
        failures += 1
        print(f"step {s + 1}: PML loss {a:.8f}, PyTorch {b:.8f} (relative difference {rel:.2e})")
worst_w, worst_name = 0.0, ""
for name, p in params.items():
    t, f = p.detach().numpy(), final[name]
    if name.endswith(".attn.qkv.bias"):
        C = t.shape[0] // 3
        g = np.abs(p.grad.numpy())
        if not g[C:2 * C].max() < 1e-5 * g[np.r_[0:C, 2 * C:3 * C]].max():
            failures += 1
            print(f"{name}: the k third's gradient {g[C:2 * C].max():.2e} is not negligible")
        t, f = np.delete(t, np.s_[C:2 * C]), np.delete(f, np.s_[C:2 * C])
    rel = float(np.linalg.norm(f - t) / np.linalg.norm(t))
    if rel > worst_w:
        worst_w, worst_name = rel, name
    if rel > 1e-4:
        failures += 1
        print(f"{name}: relative difference {rel:.2e}")
worst_l = max(abs(a - b) / abs(b) for a, b in zip(pml_losses, torch_losses))
print(f"losses: PML {pml_losses[0]:.6f} -> {pml_losses[-1]:.6f}, PyTorch {torch_losses[0]:.6f} -> {torch_losses[-1]:.6f}")
print(f"largest relative difference: losses {worst_l:.2e}, weights {worst_w:.2e} ({worst_name})")
print(f"parity: {failures} failed")
sys.exit(1 if failures else 0)
