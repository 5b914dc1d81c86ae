#!/usr/bin/env python3
"""interop.py — PML's safetensors and .npy files against numpy, through formats_tool.

    interop.py --tool BIN --work DIR CASE

Cases: st_pml_file_reads_in_python, st_python_file_reads_in_pml,
npy_numpy_files_read_in_pml, npy_pml_files_read_in_numpy. Safetensors files are parsed
and written by hand here (header JSON + numpy bytes), as the format's spec describes,
so no safetensors package is needed. Exits 77 (a skip) when numpy is missing."""
import argparse
import io
import json
import os
import shutil
import struct
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print(f"SKIP: numpy is not installed for {sys.executable}")
    sys.exit(77)

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "F64": np.float64,
             "I64": np.int64, "U8": np.uint8}
NPY_DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "|u1"}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def values(st_dtype, shape, seed):
    """Deterministic, exactly representable values of a dtype (bf16 as its uint16 bits)."""
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.int64) + seed
    if st_dtype == "BF16":
        f = ((i % 17) - 8 + 0.25 * (i % 4)).astype(np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16).reshape(shape)
    if st_dtype in ("F32", "F16", "F64"):
        return ((i % 17) - 8 + 0.25 * (i % 4)).astype(ST_DTYPES[st_dtype]).reshape(shape)
    if st_dtype == "U8":
        return (i * 37 % 256).astype(np.uint8).reshape(shape)
    return (i * 1000003 - 5000).astype(ST_DTYPES[st_dtype]).reshape(shape)


def tool(args, *argv, ok=True):
    p = subprocess.run([args.tool, *argv], capture_output=True, text=True, cwd=args.work)
    if ok and p.returncode != 0:
        raise SystemExit(f"FAIL: formats_tool {' '.join(argv)} exited {p.returncode}: {p.stderr}")
    return p


def dims(shape):
    return ",".join(str(d) for d in shape) if shape else "-"


def st_pml_file_reads_in_python(args):
    cases = [("z.scalar", "F64", ()), ("emb.weight", "BF16", (4, 3)), ("a.empty", "F32", (3, 0)),
             ("h", "F16", (5,)), ("ids", "I64", (2, 2, 2)), ("mask", "U8", (7,)), ("n", "I32", (1,)),
             ("w\u00e9\U0001F600", "F32", (2, 3))]
    argv = ["st-write", "pml.safetensors", "-m", "format=pt", "-m", "note=caf\u00e9 \"q\""]
    arrays = {}
    for k, (name, dt, shape) in enumerate(cases):
        arrays[name] = values(dt, shape, k)
        raw = os.path.join(args.work, f"raw{k}.bin")
        arrays[name].tofile(raw)
        argv += [name, dt, dims(shape), raw]
    tool(args, *argv)
    blob = open(os.path.join(args.work, "pml.safetensors"), "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    check(n % 8 == 0, f"header length {n} is a multiple of 8")
    text = blob[8:8 + n].decode("utf-8")
    check(text.rstrip(" ") == text.strip() and text.startswith("{"), "header is JSON padded with spaces")
    header = json.loads(text)
    check(header.pop("__metadata__") == {"format": "pt", "note": "caf\u00e9 \"q\""}, "metadata round-trips")
    check(list(header) == sorted(header, key=lambda s: s.encode()), "tensors in name order")
    data = blob[8 + n:]
    cursor = 0
    for name in header:
        e = header[name]
        check(sorted(e) == ["data_offsets", "dtype", "shape"], f"{name}: exactly three keys")
        begin, end = e["data_offsets"]
        check(begin == cursor, f"{name}: data laid out in header order")
        cursor = end
        dt = e["dtype"]
        got = np.frombuffer(data[begin:end], dtype=ST_DTYPES[dt]).reshape(e["shape"])
        want = arrays[name]
        check(dt == dict((c[0], c[1]) for c in cases)[name], f"{name}: dtype {dt}")
        check(got.shape == want.shape and np.array_equal(got, want), f"{name}: values equal")
    check(cursor == len(data), "data section fully used")
    check(set(header) == set(arrays), "every tensor present")


def st_python_file_reads_in_pml(args):
    rng = np.random.default_rng(7)
    arrays = {"model.w\U0001F600": ("F32", rng.standard_normal((3, 4)).astype(np.float32)),
              "b": ("F16", rng.standard_normal(5).astype(np.float16)),
              "scalar": ("I64", np.array(-(2 ** 62), dtype=np.int64)),
              "empty": ("F64", np.zeros((0, 2))),
              "u": ("U8", np.arange(9, dtype=np.uint8)),
              "bf": ("BF16", values("BF16", (2, 2), 3)),
              "i": ("I32", np.array([-1, 2 ** 31 - 1], dtype=np.int32))}
    header, chunks, offset = {"__metadata__": {"framework": "numpy", "\u00e9": "\u20ac"}}, [], 0
    for name in ["u", "model.w\U0001F600", "scalar", "b", "empty", "bf", "i"]:  # not name order
        dt, a = arrays[name]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()  # ensure_ascii: \u escapes, surrogates
    text += b" " * (-len(text) % 8)
    with open(os.path.join(args.work, "py.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    got = json.loads(tool(args, "st-dump", "py.safetensors").stdout)
    check(got["metadata"] == header["__metadata__"], "metadata read by PML")
    check([t["name"] for t in got["tensors"]] == list(header)[1:], "tensors listed in data order")
    for t in got["tensors"]:
        dt, a = arrays[t["name"]]
        check(t["dtype"] == dt and tuple(t["shape"]) == a.shape, f"{t['name']}: dtype and shape")
        check(bytes.fromhex(t["hex"]) == a.tobytes(), f"{t['name']}: bytes identical")


def npy_numpy_files_read_in_pml(args):
    k = 0
    for dt, descr in NPY_DTYPES.items():
        for shape in [(), (0,), (5,), (3, 4), (2, 0, 3), (2, 1, 2, 1, 2)]:
            for version in [(1, 0), (2, 0), (3, 0)]:
                a = values(dt, shape, k)
                path = os.path.join(args.work, f"np{k}.npy")
                with open(path, "wb") as f:
                    np.lib.format.write_array(f, a, version=version)
                got = json.loads(tool(args, "npy-dump", path).stdout)
                what = f"{descr} {shape} v{version[0]}"
                check(got["dtype"] == dt and tuple(got["shape"]) == shape, f"{what}: dtype and shape")
                check(bytes.fromhex(got["hex"]) == a.tobytes(), f"{what}: bytes identical")
                k += 1
    refusals = [("fortran.npy", np.asfortranarray(np.ones((3, 2), np.float32)), "Fortran-order arrays are not supported"),
                ("big.npy", np.ones(3, ">f4"), "big-endian arrays ('>f4') are not supported"),
                ("c8.npy", np.ones(3, np.complex64), "dtype '<c8' is not supported"),
                ("f2.npy", np.ones(3, np.float16), "dtype '<f2' is not supported"),
                ("b1.npy", np.ones(3, bool), "dtype '|b1' is not supported")]
    for name, a, msg in refusals:
        np.save(os.path.join(args.work, name), a)
        p = tool(args, "npy-dump", name, ok=False)
        check(p.returncode == 1 and f"unsupported: {name}: {msg}" in p.stderr, f"{name} refused: {p.stderr.strip()}")


def npy_pml_files_read_in_numpy(args):
    k = 0
    for dt in NPY_DTYPES:
        for shape in [(), (0,), (7,), (3, 4), (2, 0, 3), (1, 2, 3, 4, 1, 2, 1, 2)]:
            a = values(dt, shape, k)
            raw = os.path.join(args.work, f"raw{k}.bin")
            a.tofile(raw)
            out = os.path.join(args.work, f"pml{k}.npy")
            tool(args, "npy-write", out, dt, dims(shape), raw)
            got = np.load(out)
            what = f"{dt} {shape}"
            check(got.dtype == a.dtype and got.shape == a.shape and np.array_equal(got, a), f"{what}: values equal")
            ref = io.BytesIO()
            np.save(ref, a)
            check(open(out, "rb").read() == ref.getvalue(), f"{what}: file identical to np.save's")
            k += 1


CASES = {f.__name__: f for f in [st_pml_file_reads_in_python, st_python_file_reads_in_pml,
                                 npy_numpy_files_read_in_pml, npy_pml_files_read_in_numpy]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    args.tool = os.path.abspath(args.tool)
    args.work = os.path.abspath(args.work)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    CASES[args.case](args)
    if failures:
        sys.exit(f"FAIL: {args.case}: {len(failures)} checks failed")
    print(f"ok: {args.case} (numpy {np.__version__})")


if __name__ == "__main__":
    main()
