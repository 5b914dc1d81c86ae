"""parity_lib.py — what the PyTorch parity tests share: the PML side of a run (initial
weights, losses, final weights, and the exact batches trained on) and reading
safetensors files. Importing it without Debian's torch exits 77 (ctest: skipped)."""
import json
import os
import struct
import subprocess
import sys

try:
    import numpy as np
    import torch  # noqa: F401  (the tests that import this module need it)
except ImportError:
    print("parity: SKIP (python3-torch is not installed)")
    sys.exit(77)


def load_safetensors(path):
    """{name: float32 array} of a safetensors file PML wrote."""
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
    """Runs a command; exits with its stderr when it fails; returns its stdout."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if r.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{r.stderr}")
    return r.stdout


def pml_run(pmlc, dump, program, steps, tmp):
    """Trains `program` with PML for `steps` steps. Returns (initial weights, final
    weights, per-step losses, the folder holding x_S.npy / y_S.npy of each step)."""
    run(pmlc, "train", program, "--steps", "0", "--out", f"{tmp}/init", "--quiet")
    run(pmlc, "train", program, "--steps", str(steps), "--out", f"{tmp}/final", "--metrics", f"{tmp}/m.jsonl", "--quiet")
    os.makedirs(f"{tmp}/data")
    run(dump, program, str(steps), f"{tmp}/data")
    losses = [json.loads(line)["loss"] for line in open(f"{tmp}/m.jsonl")]
    return (load_safetensors(f"{tmp}/init/model.safetensors"), load_safetensors(f"{tmp}/final/model.safetensors"),
            losses, f"{tmp}/data")
