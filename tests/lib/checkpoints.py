"""checkpoints — what the rank tests read from checkpoint folders PML writes: tensors
of a safetensors file or of a sharded set (Hugging Face index), whether a folder is a
committed checkpoint of N shards, and how far two checkpoints' tensors are apart."""
import array
import json
import os
import struct


def tensors(path):
    """name -> array of f32 values of a safetensors file (F32 only, as PML writes)."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a = array.array("f")
        start, end = t["data_offsets"]
        a.frombytes(blob[8 + n + start:8 + n + end])
        out[name] = a
    return out


def checkpoint_tensors(folder, base):
    """name -> values of a checkpoint's `base` ("model", "optimizer"): one file, or the
    Hugging Face shards its index names (each tensor in exactly one)."""
    index = os.path.join(folder, base + ".safetensors.index.json")
    if not os.path.exists(index):
        return tensors(os.path.join(folder, base + ".safetensors"))
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(weight_map.values())):
        for name, a in tensors(os.path.join(folder, shard)).items():
            if name in out or weight_map.get(name) != shard:
                raise ValueError(f"{index}: '{name}' is not listed in {shard} alone")
            out[name] = a
    if sorted(out) != sorted(weight_map):
        raise ValueError(f"{index}: the shards do not hold what the index lists")
    return out


def sharded(folder, shards):
    """Whether `folder` is a committed checkpoint of `shards` shards (0: one file each)."""
    files = set(os.listdir(folder))
    if not shards:
        return {"model.safetensors", "optimizer.safetensors", "trainer.json"} <= files and not any(
            f.endswith(".index.json") for f in files)
    want = {f"{b}-{k:05d}-of-{shards:05d}.safetensors" for b in ("model", "optimizer") for k in range(1, shards + 1)}
    return want | {"model.safetensors.index.json", "optimizer.safetensors.index.json", "trainer.json"} <= files and \
        "model.safetensors" not in files


def rel_diff(a_dir, b_dir, base, norm="max"):
    """The largest relative difference of a tensor between two checkpoints, which must
    name the same tensors: max |a - b| / max |a| ("max"), or ||a - b|| / ||a|| ("l2")."""
    a, b = checkpoint_tensors(a_dir, base), checkpoint_tensors(b_dir, base)
    if sorted(a) != sorted(b):
        return float("inf")
    worst = 0.0
    for k in a:
        if norm == "max":
            scale = max((abs(x) for x in a[k]), default=0.0) or 1.0
            d = max((abs(x - y) for x, y in zip(a[k], b[k])), default=0.0)
        else:
            scale = sum(x * x for x in a[k]) ** 0.5 or 1.0
            d = sum((x - y) ** 2 for x, y in zip(a[k], b[k])) ** 0.5
        worst = max(worst, d / scale)
    return worst


def bit_identical(a_dir, b_dir):
    for base in ("model", "optimizer"):
        a, b = checkpoint_tensors(a_dir, base), checkpoint_tensors(b_dir, base)
        if sorted(a) != sorted(b) or any(a[k].tobytes() != b[k].tobytes() for k in a):
            return False
    return True
