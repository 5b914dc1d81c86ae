#!/usr/bin/env python3
"""gpu_train_test — on a GPU, the CUDA backend trains, evaluates and serves a model as
the CPU backend does (the CPU is the oracle): the same seed gives the same loss at
every step, the same final weights, the same held-out loss and the same inference
output, within what f32 arithmetic in another summation order allows.

usage: gpu_train_test.py PMLC MODEL.pml WORK STEPS INPUT [--rtol R] [--wrtol R] [--gpus LIST] [--say TEXT]
                         [--ranks N MPIRUN] [--replicas R] [--set k=v ...]

INPUT describes rows for the inference check: f32:ROWSxCOLS or i32:ROWSxCOLS:VOCAB.
--rtol sets the loss tolerance (training and held-out) for a model whose training is
chaotic enough to amplify rounding, or whose storage rounds (bf16); --wrtol the weights'
(the whole model's; each tensor's 20 times it) and the inference output's. --gpus LIST is the CUDA runs' --devices (a model
placed on cuda:0..3 on a one-GPU machine: 0,0,0,0; or local). --say TEXT: the CUDA training's
first line must say TEXT (where its stages run, how they hand over). --ranks N MPIRUN:
the CUDA training runs as N ranks under MPIRUN (sharing the GPUs --gpus names, their
tensors crossing through host copies), with --replicas R data-parallel pipelines; the
CPU oracle is one process, whose weights ranks reproduce. Without MPIRUN ("none" or
not found) it prints "SKIP: ..." and exits 77.

Without a GPU it prints "SKIP: ..." and exits 77 (CTest: skipped); PML_REQUIRE_GPU=1
makes that a failure. Needs nothing beyond Python's standard library.
"""
import json
import math
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pmltest  # noqa: E402
from npy_files import write_npy  # noqa: E402

# f32 on both sides, in different summation orders (cuBLAS vs BLAS, warp reductions vs
# row loops): losses agree to ~1e-6 (measured on an H100: 6e-7 over 10 GPT steps).
# Weights agree less per tensor: AdamW moves every element by about lr whatever the
# size of its gradient, so an element whose gradient is rounding noise (a bias whose
# gradient nearly cancels) moves differently; measured up to 4e-3 on small bias
# tensors. The model as a whole (all weights together) is held to 1e-3.
LOSS_RTOL = 2e-4
TENSOR_RTOL = 2e-2
MODEL_RTOL = 1e-3
OUTPUT_RTOL = 1e-3


def read_safetensors(path):
    """name -> list of floats (f32 tensors only, as PML writes them)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        out[name] = struct.unpack(f"<{(hi - lo) // 4}f", data[lo:hi])
    return out


def read_weights(folder):
    """A training's saved weights: model.safetensors, or the shards ranks write (named
    by model.safetensors.index.json's weight_map)."""
    one = os.path.join(folder, "model.safetensors")
    if os.path.exists(one):
        return read_safetensors(one)
    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    out = {}
    for shard in shards:
        out.update(read_safetensors(os.path.join(folder, shard)))
    return out


def read_npy_f32(path):
    with open(path, "rb") as f:
        blob = f.read()
    hlen = struct.unpack_from("<H", blob, 8)[0]
    body = blob[10 + hlen:]
    return struct.unpack(f"<{len(body) // 4}f", body)



def infer_input(work, spec):
    """Rows for `pmlc infer` from SPEC: f32:ROWSxCOLS (normal values) or
    i32:ROWSxCOLS:V (token ids below V)."""
    import random
    rng = random.Random(7)
    kind, shape, *rest = spec.split(":")
    rows, cols = (int(d) for d in shape.split("x"))
    path = os.path.join(work, "x.npy")
    if kind == "i32":
        write_npy(path, (rows, cols), [rng.randrange(int(rest[0])) for _ in range(rows * cols)], "i")
    else:
        write_npy(path, (rows, cols), [rng.gauss(0, 1) for _ in range(rows * cols)])
    return path


def rel(a, b):
    num = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    den = math.sqrt(sum(y * y for y in b)) or 1.0
    return num / den


def main():
    args = sys.argv[1:]
    pmlc, model, work, steps, spec = args[:5]
    extra = args[5:]
    global LOSS_RTOL, MODEL_RTOL, TENSOR_RTOL, OUTPUT_RTOL
    gpus, say, launch, ranks = [], None, [], []
    while extra[:1] in (["--rtol"], ["--wrtol"], ["--gpus"], ["--say"], ["--ranks"], ["--replicas"]):
        if extra[0] == "--rtol":
            LOSS_RTOL = float(extra[1])
        elif extra[0] == "--wrtol":
            MODEL_RTOL = OUTPUT_RTOL = float(extra[1])
            TENSOR_RTOL = 20 * MODEL_RTOL
        elif extra[0] == "--gpus":
            gpus = ["--devices", extra[1]]
        elif extra[0] == "--ranks":
            mpirun = extra[2]  # as configured, else the one on PATH (the device's, scripts/gpu-check)
            for name in (mpirun, "mpirun", "mpirun.openmpi", "orterun"):  # a Debian package's, unpacked
                if shutil.which(name):
                    mpirun = shutil.which(name)
                    break
            else:
                mpirun = "none"
            if mpirun == "none":
                print("SKIP: no mpirun (install openmpi-bin and libopenmpi-dev and rebuild with MPI)")
                return 77
            launch = [mpirun, "--oversubscribe", "-np", extra[1]] + (
                ["--allow-run-as-root"] if os.geteuid() == 0 else [])
            extra = extra[1:]
        elif extra[0] == "--replicas":
            ranks = ["--replicas", extra[1]]
        else:
            say = extra[1]
        extra = extra[2:]
    os.makedirs(work, exist_ok=True)
    t = pmltest.Failures(f"gpu_train {os.path.basename(model)} {' '.join(extra)}")
    runs = {}
    for backend in ("cuda", "cpu"):  # cuda first: without a GPU, skip at once
        out = os.path.join(work, backend)
        metrics = os.path.join(work, f"{backend}.jsonl")
        quiet = [] if backend == "cuda" and say else ["--quiet"]
        r = pmltest.run((launch if backend == "cuda" else []) +
                        [pmlc, "train", model, "--backend", backend, "--steps", steps, "--out", out, "--metrics",
                         metrics, "--eval", "2"] + quiet + (gpus + ranks if backend == "cuda" else []) + extra, timeout=600)
        if backend == "cuda" and r.code != 0 and "no GPU" in r.stderr:
            print(f"SKIP: {r.stderr.strip()}")
            req = os.environ.get("PML_REQUIRE_GPU", "0")
            return 1 if req not in ("", "0") else 77
        t.check(r.code == 0, f"{backend} training succeeds:\n{r.describe()}\n{pmltest.tail(r.stderr)}")
        if r.code != 0:
            return t.finish()
        if backend == "cuda" and say:
            first = r.stderr.splitlines()[0] if r.stderr else ""
            t.check(say in first, f"the first line says '{say}': {first}")
        losses = [json.loads(line) for line in open(metrics) if '"step"' in line]
        evals = [json.loads(line) for line in open(metrics) if '"eval_loss"' in line]
        runs[backend] = (losses, evals, read_weights(out), r.stderr)
    (lc, ec, wc, _), (lg, eg, wg, _) = runs["cpu"], runs["cuda"]
    t.check(len(lc) == len(lg) == int(steps), f"{steps} metric records each ({len(lc)}, {len(lg)})")
    worst = 0.0
    for a, b in zip(lc, lg):
        d = abs(a["loss"] - b["loss"]) / max(abs(a["loss"]), 1e-12)
        worst = max(worst, d)
        t.check(d <= LOSS_RTOL, f"step {a['step']}: loss cpu {a['loss']:.8g} vs cuda {b['loss']:.8g} (rel {d:.2e})")
    print(f"losses: {len(lc)} steps, worst relative difference {worst:.2e}")
    t.check(set(wc) == set(wg), "the same parameters are saved")
    wworst, flat_c, flat_g = 0.0, [], []
    for name in sorted(set(wc) & set(wg)):
        d = rel(wg[name], wc[name])
        wworst = max(wworst, d)
        flat_c += wc[name]
        flat_g += wg[name]
        t.check(d <= TENSOR_RTOL, f"{name}: weights differ by {d:.2e} (relative L2)")
    whole = rel(flat_g, flat_c)
    print(f"weights: {len(wc)} tensors, worst relative L2 difference {wworst:.2e}, all together {whole:.2e}")
    t.check(whole <= MODEL_RTOL, f"the model's weights differ by {whole:.2e} (relative L2)")
    if ec and eg:
        d = abs(ec[0]["eval_loss"] - eg[0]["eval_loss"]) / abs(ec[0]["eval_loss"])
        print(f"held-out loss: cpu {ec[0]['eval_loss']:.6f} cuda {eg[0]['eval_loss']:.6f} (rel {d:.2e})")
        t.check(d <= LOSS_RTOL, "held-out losses agree")
    x = infer_input(work, spec)
    ys = {}
    for backend in ("cpu", "cuda"):
        y = os.path.join(work, f"y_{backend}.npy")
        r = pmltest.run([pmlc, "infer", model, "--backend", backend, "--weights",
                         os.path.join(work, "cpu", "model.safetensors"), "--input", x, "--output", y] +
                        (gpus if backend == "cuda" else []) + extra, timeout=600)
        t.check(r.code == 0, f"{backend} inference succeeds:\n{r.describe()}\n{pmltest.tail(r.stderr)}")
        ys[backend] = read_npy_f32(y) if r.code == 0 else None
    if ys["cpu"] and ys["cuda"]:
        d = rel(ys["cuda"], ys["cpu"])
        print(f"inference: {len(ys['cpu'])} outputs, relative L2 difference {d:.2e}")
        t.check(d <= OUTPUT_RTOL, f"inference outputs differ by {d:.2e}")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
