"""bench/cpu_train/torch_gpt.py — the PyTorch twin of examples/gpt.pml's model (tanh
GELU, causal attention, layernorms, an output head without bias), for torch_step.py's
training steps and bench/infer/int8_static.py's inference. PML's parameter names map
onto it by pml_names(): the MLP's `fc` and `proj` are this twin's mlp.0 and mlp.2.

Attention is PyTorch 2.x's fused `scaled_dot_product_attention` (causal; flash or
memory-efficient kernels on a GPU), as a PyTorch user writes it today and as PML's own
fused attention op is; ATTENTION = "matmul" (PML_BENCH_ATTENTION=matmul), and PyTorch
before 2.0 (Debian's 1.13, which lacks it), write it as two matmuls and a masked softmax,
the earlier tables' baseline."""
import math
import os

import torch
import torch.nn.functional as F
from torch import nn


class Gelu(nn.Module):
    def forward(self, x):
        return F.gelu(x, approximate="tanh")


ATTENTION = os.environ.get("PML_BENCH_ATTENTION", "sdpa")
if ATTENTION not in ("sdpa", "matmul"):
    raise SystemExit(f"PML_BENCH_ATTENTION is '{ATTENTION}': sdpa or matmul")
if not hasattr(F, "scaled_dot_product_attention"):
    ATTENTION = "matmul"


class Attn(nn.Module):
    def __init__(self, c, heads, p):
        super().__init__()
        self.heads, self.qkv, self.proj, self.drop = heads, nn.Linear(c, 3 * c), nn.Linear(c, c), nn.Dropout(p)
        self.p = p

    def forward(self, x):
        B, T, C = x.shape
        hd = C // self.heads
        q, k, v = (t.reshape(B, T, self.heads, hd).permute(0, 2, 1, 3) for t in self.qkv(x).split(C, dim=2))
        if ATTENTION == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0, is_causal=True)
            return self.drop(self.proj(y.permute(0, 2, 1, 3).reshape(B, T, C)))
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=x.device).tril(), float("-inf"))
        y = (self.drop(torch.softmax(s, dim=-1)) @ v).permute(0, 2, 1, 3).reshape(B, T, C)
        return self.drop(self.proj(y))


class Block(nn.Module):
    def __init__(self, c, heads, p):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(c), Attn(c, heads, p), nn.LayerNorm(c)
        self.mlp = nn.Sequential(nn.Linear(c, 4 * c), Gelu(), nn.Linear(4 * c, c), nn.Dropout(p))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab=65, c=128, heads=4, layers=4, context=256, p=0.0, tie=False):
        super().__init__()
        self.wte, self.wpe, self.drop = nn.Embedding(vocab, c), nn.Embedding(context, c), nn.Dropout(p)
        self.blocks = nn.ModuleList(Block(c, heads, p) for _ in range(layers))
        self.ln_f, self.lm_head = nn.LayerNorm(c), nn.Linear(c, vocab, bias=False)
        if tie:  # GPT-2's output projection is its token table (bench/gpu/gpt2.pml)
            self.lm_head.weight = self.wte.weight

    def forward(self, idx):
        h = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device)))
        for b in self.blocks:
            h = b(h)
        return self.lm_head(self.ln_f(h))


def pml_names(state):
    """A state dict under PML's names (`blocks.0.mlp.fc.weight`) renamed to the twin's."""
    return {k.replace(".mlp.fc.", ".mlp.0.").replace(".mlp.proj.", ".mlp.2."): v for k, v in state.items()}
