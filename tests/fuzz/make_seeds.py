#!/usr/bin/env python3
"""make_seeds.py — seed inputs for the file readers' fuzz targets, made from real files
written by the pmlc under test, so the seeds follow the formats as they change:

    plan        plan files: `pmlc build --arch none` of each --source (.pml), and each
                with regressions found by fuzzing made again in its current format (a
                reshape without its input)
    checkpoint  checkpoint folders of `pmlc train --out` of --model, packed in
                fuzz_files.h's format: the final one, a periodic one (step-NNNNNN), a
                version-1 trainer.json, and the same tensors as Hugging Face shards;
                regressions: the final one at step 2^63 - 1
    shards      tensor sets for st_shards.h: one model.safetensors, and two shards with
                their index, packed likewise

    make_seeds.py KIND OUT --pmlc PMLC [--source F.pml ...] [--model F.pml]

run_fuzz.py calls write() with the same arguments before each run.
"""
import argparse
import glob
import json
import os
import shutil
import struct
import subprocess
import tempfile


def pack(files):
    """fuzz_files.h's container: per file u8 name length, name, u32 size, bytes."""
    out = bytearray()
    for name, data in files:
        raw = name.encode()
        out += bytes([len(raw)]) + raw + struct.pack("<I", len(data)) + data
    return bytes(out)


def read_folder(folder):
    return [(name, open(os.path.join(folder, name), "rb").read())
            for name in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, name))]


def read_st(data):
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {k: (v, body[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
    return tensors, meta


def write_st(tensors, meta):
    header, body = {}, bytearray()
    for name, (info, data) in sorted(tensors.items()):
        header[name] = {"dtype": info["dtype"], "shape": info["shape"],
                        "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    header["__metadata__"] = meta
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(body)


def shard(files, base):
    """BASE.safetensors split in two shards (the first tensor alone, then the rest) and an index."""
    tensors, meta = read_st(dict(files)[base + ".safetensors"])
    names = sorted(tensors)
    parts = [names[:1], names[1:]]
    out, weight_map = [], {}
    for k, part in enumerate(parts):
        fname = f"{base}-{k + 1:05d}-of-{len(parts):05d}.safetensors"
        out.append((fname, write_st({n: tensors[n] for n in part}, meta)))
        weight_map.update({n: fname for n in part})
    index = {"metadata": dict(meta, total_size=str(sum(len(d) for _, d in tensors.values()))),
             "weight_map": weight_map}
    out.append((base + ".safetensors.index.json", json.dumps(index, indent=2).encode()))
    return out


def train(pmlc, model, tmp):
    out = os.path.join(tmp, "ckpt")
    subprocess.run([pmlc, "train", model, "--steps", "4", "--threads", "1", "--out", out],
                   check=True, capture_output=True)
    return out


PLAN_OP_RESHAPE = 35  # include/pml/ops.def order


def plan_sections(data):
    """A plan file's header and its [tag, payload] sections (pml/plan_format.h)."""
    at, sections = 16, []
    while at < len(data):
        tag, _, size = struct.unpack_from("<IIQ", data, at)
        sections.append([tag, data[at + 16:at + 16 + size]])
        at += 16 + size
    return data[:16], sections


def plan_join(header, sections):
    return header + b"".join(struct.pack("<IIQ", tag, 0, len(p)) + p for tag, p in sections)


def without_inputs(data, op):
    """The plan with the first node of `op` stripped of its inputs, or None when it has none."""
    header, sections = plan_sections(data)
    nodes = sections[2][1]  # NODE: u32 count, then the records
    at, out, done = 4, bytearray(nodes[:4]), False
    for _ in range(struct.unpack_from("<I", nodes)[0]):
        node_op, _, rank, _, _, n_in, _, _, n_attr, _ = struct.unpack_from("<HBBBBHiiHH", nodes, at)
        size = 20 + 8 * rank + 4 * n_in + 8 * n_attr + 8
        rec = bytearray(nodes[at:at + size])
        if node_op == op and n_in and not done:
            struct.pack_into("<H", rec, 6, 0)
            del rec[20 + 8 * rank:20 + 8 * rank + 4 * n_in]
            done = True
        out += rec
        at += size
    sections[2][1] = bytes(out)
    return plan_join(header, sections) if done else None


def seeds_plan(pmlc, sources, tmp):
    for src in sources:
        name = os.path.basename(src) + ".plan"
        path = os.path.join(tmp, name)
        subprocess.run([pmlc, "build", "--arch", "none", src, "-o", path], check=True, capture_output=True)
        data = open(path, "rb").read()
        yield name, data
        # Found by fuzz.plan: the reader took a reshape's memory from its input 0 unchecked.
        hostile = without_inputs(data, PLAN_OP_RESHAPE)
        if hostile:
            yield "reshape_without_input_" + name, hostile


def with_step(files, step):
    """A checkpoint's files saying `step` everywhere (trainer.json and each pml_step)."""
    out = []
    for name, data in files:
        if name == "trainer.json":
            trainer = json.loads(data)
            trainer["step"] = step
            data = json.dumps(trainer).encode()
        elif name.endswith(".safetensors"):
            tensors, meta = read_st(data)
            data = write_st(tensors, dict(meta, pml_step=str(step)))
        out.append((name, data))
    return out


def seeds_checkpoint(pmlc, model, tmp):
    ckpt = train(pmlc, model, tmp)
    final = read_folder(ckpt)
    yield "final", pack(final)
    for step in sorted(glob.glob(os.path.join(ckpt, "step-*"))):
        yield os.path.basename(step), pack(read_folder(step))
    trainer = json.loads(dict(final)["trainer.json"])
    trainer.pop("auto_freeze", None)
    trainer["version"] = 1
    yield "version1", pack([(n, d) for n, d in final if n != "trainer.json"] +
                           [("trainer.json", json.dumps(trainer).encode())])
    # Found by fuzz.checkpoint: a step this large was restored, and the next step's row
    # index overflowed in the feed.
    yield "huge_step", pack(with_step(final, 2**63 - 1))
    sharded = [(n, d) for n, d in final if not n.endswith(".safetensors")]
    for base in ("model", "optimizer"):
        sharded += shard(final, base)
    yield "sharded", pack(sharded)


def seeds_shards(pmlc, model, tmp):
    final = read_folder(train(pmlc, model, tmp))
    yield "single", pack([(n, d) for n, d in final if n == "model.safetensors"])
    yield "sharded", pack(shard(final, "model"))


def write(kind, out, pmlc, sources=(), model=None):
    """Writes the seeds of `kind` into folder `out`; returns how many."""
    tmp = tempfile.mkdtemp(prefix="pml_seeds_")
    try:
        gen = {"plan": lambda: seeds_plan(pmlc, sources, tmp),
               "checkpoint": lambda: seeds_checkpoint(pmlc, model, tmp),
               "shards": lambda: seeds_shards(pmlc, model, tmp)}[kind]()
        n = 0
        for name, data in gen:
            with open(os.path.join(out, f"made_{name}"), "wb") as f:
                f.write(data)
            n += 1
        return n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["plan", "checkpoint", "shards"])
    ap.add_argument("out")
    ap.add_argument("--pmlc", required=True)
    ap.add_argument("--source", action="append", default=[])
    ap.add_argument("--model")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(f"{write(args.kind, args.out, args.pmlc, args.source, args.model)} seeds in {args.out}")


if __name__ == "__main__":
    main()
