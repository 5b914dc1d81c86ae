"""st_files.py — safetensors files for tests, written and read without PML: one file
(read_st, write_st) and the Hugging Face sharded layout (shard), so the tests check
PML's readers against the format rather than against PML's own writer."""
import json
import os
import struct


def read_st(path):
    """(header without metadata, metadata, {name: data bytes})."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = {k: raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in header.items()}
    return header, meta, data


def write_st(path, header, meta, data):
    """A safetensors file from a header (dtype, shape) and data bytes per name."""
    h, off, blob = {}, 0, b""
    for name in sorted(header):
        h[name] = {"dtype": header[name]["dtype"], "shape": header[name]["shape"],
                   "data_offsets": [off, off + len(data[name])]}
        off += len(data[name])
        blob += data[name]
    if meta:
        h["__metadata__"] = meta
    text = json.dumps(h).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)


def shard(ckpt, first):
    """Rewrites the one-file checkpoint `ckpt` as two shards of each kind, the tensors
    named in `first` (by prefix) in shard 1 and the rest in shard 2, with the indexes;
    returns {base: {name: shard file}}."""
    maps = {}
    for base in ("model", "optimizer"):
        header, meta, data = read_st(os.path.join(ckpt, base + ".safetensors"))
        os.remove(os.path.join(ckpt, base + ".safetensors"))
        wmap, size = {}, 0
        for k in (1, 2):
            part = {n: h for n, h in header.items() if n.startswith(first) == (k == 1)}
            name = f"{base}-{k:05d}-of-00002.safetensors"
            write_st(os.path.join(ckpt, name), part, meta, {n: data[n] for n in part})
            wmap.update({n: name for n in part})
            size += sum(len(data[n]) for n in part)
        with open(os.path.join(ckpt, base + ".safetensors.index.json"), "w") as f:
            json.dump({"metadata": dict(meta, total_size=size), "weight_map": wmap}, f)
        maps[base] = wmap
    return maps
