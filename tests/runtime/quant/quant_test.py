#!/usr/bin/env python3
"""`pmlc quantize` and reading its int8 files (runtime/src/quant/int8.h), one behaviour
per invocation: quant_test.py PMLC TESTDIR BEHAVIOUR.

  round_trip     every linear weight of the MLP: I8 [out, in] + F32 .scale [out], |w - q s| <= s/2
                 per channel, |q| <= 127 with 127 reached in every nonzero row; the rest byte-equal
  layers         --layers fc1,head quantizes those weights only
  infer_close    `pmlc infer` of the int8 file within 2% of the f32 outputs' largest magnitude
                 (max over 300 rows), and says the weights were int8
  accuracy       held-out accuracy (pmlc train --init W --steps 0 --eval 40: 10240 fresh rows)
                 of the int8 weights within 0.5 points of f32's
  hostile        an int8 file with a wrong dtype, a scale count mismatch, a NaN or zero scale,
                 a missing scale, I8 on a norm, an unknown format or cut short: exit 1, the path
                 and what is wrong in the message, the output not written
  bad_requests   a --layers pattern selecting no linear weight, --calibrate, an already
                 quantized input: refused, nothing written (an old output kept)
Files are read and written by hand (tests/lib), not by PML's own code."""
import math
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from st_files import read_st, write_st  # noqa: E402
from npy_files import write_npy  # noqa: E402

pmlc, here, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
ROOT = os.path.abspath(os.path.join(here, "..", "..", ".."))
MLP = os.path.join(ROOT, "examples", "mlp.pml")
LINEAR = ["fc1.weight", "fc2.weight", "head.weight"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    return subprocess.run([pmlc, *args], capture_output=True, text=True, timeout=600)


def must(*args):
    r = run(*args)
    check(r.returncode == 0, f"pmlc {' '.join(args)} succeeds: {r.stderr}")
    return r


def floats(b):
    return struct.unpack(f"<{len(b) // 4}f", b)


def read_npy_f32(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<H", raw[8:10])[0]
    return floats(raw[10 + n:])


def trained(tmp, steps):
    ck = os.path.join(tmp, "ck")
    must("train", MLP, "--steps", str(steps), "--out", ck, "--quiet")
    return ck


def quantized(tmp, ck, *extra):
    q = os.path.join(tmp, "q.safetensors")
    must("quantize", MLP, "--weights", ck, "-o", q, *extra)
    return q


def round_trip(tmp):
    ck = trained(tmp, 20)
    _, _, f32 = read_st(os.path.join(ck, "model.safetensors"))
    q = quantized(tmp, ck)
    header, meta, data = read_st(q)
    check(meta.get("pml_quantization") == "int8-symmetric-per-output-channel", f"format metadata: {meta}")
    for name in f32:
        if name not in LINEAR:
            check(header[name]["dtype"] == "F32" and data[name] == f32[name], f"{name} copied as is")
            continue
        rows, cols = header[name]["shape"]
        check(header[name]["dtype"] == "I8", f"{name} is I8")
        check(header[name + ".scale"] == {"dtype": "F32", "shape": [rows],
                                          "data_offsets": header[name + ".scale"]["data_offsets"]}, f"{name}.scale")
        w, qs, s = floats(f32[name]), struct.unpack(f"<{rows * cols}b", data[name]), floats(data[name + ".scale"])
        worst = 0.0
        for r in range(rows):
            row_q = qs[r * cols:(r + 1) * cols]
            check(s[r] > 0 and math.isfinite(s[r]), f"{name} scale {r} positive")
            check(max(abs(v) for v in row_q) == 127 and min(row_q) >= -127, f"{name} row {r} spans [-127, 127]")
            for i in range(cols):
                err = abs(w[r * cols + i] - row_q[i] * s[r]) / (s[r] / 2)
                worst = max(worst, err)
        check(worst <= 1 + 1e-5, f"{name}: |w - q s| <= s/2 (worst {worst:.6f} of s/2)")
        print(f"{name}: worst |w - q s| = {worst:.4f} s/2")


def layers(tmp):
    ck = trained(tmp, 5)
    header, _, _ = read_st(quantized(tmp, ck, "--layers", "fc1,head"))
    got = {n for n, v in header.items() if v["dtype"] == "I8"}
    check(got == {"fc1.weight", "head.weight"}, f"--layers fc1,head quantizes those: {got}")
    check("fc2.weight.scale" not in header and header["fc2.weight"]["dtype"] == "F32", "fc2 stays F32")


def infer_close(tmp):
    ck = trained(tmp, 100)
    q = quantized(tmp, ck)
    rnd = random.Random(5)
    x = os.path.join(tmp, "x.npy")
    write_npy(x, [300, 784], [rnd.gauss(0, 1) for _ in range(300 * 784)])
    must("infer", MLP, "--weights", ck, "--input", x, "--output", os.path.join(tmp, "f.npy"))
    r = must("infer", MLP, "--weights", q, "--input", x, "--output", os.path.join(tmp, "i.npy"))
    check("3 int8 weights" in r.stderr, f"infer says the weights were int8: {r.stderr}")
    f, i = read_npy_f32(os.path.join(tmp, "f.npy")), read_npy_f32(os.path.join(tmp, "i.npy"))
    big = max(abs(v) for v in f)
    diff = max(abs(a - b) for a, b in zip(f, i))
    print(f"max |y_int8 - y_f32| = {diff:.5f}, max |y_f32| = {big:.3f} ({100 * diff / big:.3f}%)")
    check(diff <= 0.02 * big, "int8 outputs within 2% of the f32 outputs' largest magnitude")
    check(f != i, "the int8 weights are not the f32 ones (the test can tell them apart)")


def accuracy_of(w):
    r = must("train", MLP, "--init", w, "--steps", "0", "--eval", "40")
    m = re.search(r"held-out.*accuracy ([0-9.]+)%", r.stderr + r.stdout)
    check(m is not None, f"an accuracy line: {r.stderr}")
    return float(m.group(1)) if m else float("nan")


def accuracy(tmp):
    ck = trained(tmp, 200)
    a32, a8 = accuracy_of(ck), accuracy_of(quantized(tmp, ck))
    print(f"held-out accuracy: f32 {a32:.2f}%, int8 {a8:.2f}%")
    check(a32 > 80, f"the MLP learned something ({a32}%)")
    check(abs(a32 - a8) <= 0.5, f"int8 accuracy {a8}% within 0.5 points of f32 {a32}%")


def refused(tmp, path, why):
    y = os.path.join(tmp, "y.npy")
    x = os.path.join(tmp, "x.npy")
    write_npy(x, [2, 784], [0.5] * (2 * 784))
    r = run("infer", MLP, "--weights", path, "--input", x, "--output", y)
    check(r.returncode == 1 and path in r.stderr and re.search(why, r.stderr),
          f"{os.path.basename(path)} refused with path and /{why}/: rc {r.returncode} {r.stderr.strip()}")
    check(not os.path.exists(y), f"{os.path.basename(path)}: no output written")


def hostile(tmp):
    good = quantized(tmp, trained(tmp, 2))
    header, meta, data = read_st(good)

    def variant(name, edit):
        h = {k: dict(v) for k, v in header.items()}
        d, m = dict(data), dict(meta)
        edit(h, d, m)
        path = os.path.join(tmp, name + ".safetensors")
        write_st(path, h, m, d)
        return path

    def as_i32(h, d, m):  # the int8 weight given as I32 of another size
        h["fc1.weight"]["dtype"] = "I32"
        d["fc1.weight"] = d["fc1.weight"] * 4

    def short_scale(h, d, m):
        h["fc2.weight.scale"]["shape"] = [511]
        d["fc2.weight.scale"] = d["fc2.weight.scale"][:-4]

    def scale_value(v):
        def edit(h, d, m):
            d["head.weight.scale"] = d["head.weight.scale"][:12] + struct.pack("<f", v) + d["head.weight.scale"][16:]
        return edit

    def no_scale(h, d, m):
        del h["fc1.weight.scale"], d["fc1.weight.scale"]

    def norm_i8(h, d, m):
        h["norm.weight"]["dtype"] = "I8"
        d["norm.weight"] = bytes(512)

    def other_format(h, d, m):
        m["pml_quantization"] = "int4-groupwise"

    refused(tmp, variant("i32", as_i32), "fc1.weight' is I32")
    refused(tmp, variant("short_scale", short_scale), "fc2.weight.scale' must be F32 \\[512\\]")
    refused(tmp, variant("nan_scale", scale_value(float("nan"))), "head.weight.scale' element 3 is nan")
    refused(tmp, variant("zero_scale", scale_value(0.0)), "head.weight.scale' element 3 is 0")
    refused(tmp, variant("neg_scale", scale_value(-1.0)), "finite and > 0")
    refused(tmp, variant("no_scale", no_scale), "fc1.weight.scale' is missing")
    refused(tmp, variant("norm_i8", norm_i8), "norm.weight' is I8, but it is not a linear layer's weight")
    refused(tmp, variant("format", other_format), "expected 'int8-symmetric-per-output-channel'")
    cut = os.path.join(tmp, "cut.safetensors")
    open(cut, "wb").write(open(good, "rb").read()[:-100])
    refused(tmp, cut, "cut|short|end|past|tile|size")


def bad_requests(tmp):
    ck = trained(tmp, 2)
    out = os.path.join(tmp, "q.safetensors")
    open(out, "w").write("old")
    for args, rc, why in [(("--layers", "nosuch.*"), 1, "'nosuch.\\*' selects no linear layer's weight"),
                          (("--layers", "norm"), 1, "'norm' selects no linear layer's weight"),
                          (("--calibrate", "d.npy"), 2, "not supported yet")]:
        r = run("quantize", MLP, "--weights", ck, "-o", out, *args)
        check(r.returncode == rc and re.search(why, r.stderr), f"quantize {args}: rc {r.returncode} {r.stderr}")
        check(open(out).read() == "old", f"quantize {args}: the old output is kept")
    q2 = os.path.join(tmp, "q2.safetensors")
    must("quantize", MLP, "--weights", ck, "-o", q2)
    r = run("quantize", MLP, "--weights", q2, "-o", out)
    check(r.returncode == 1 and "already quantized" in r.stderr, f"a quantized input is refused: {r.stderr}")
    check(open(out).read() == "old", "the old output is kept")
    check(not [f for f in os.listdir(tmp) if f.startswith(".") or "tmp" in f], f"no temporary left: {os.listdir(tmp)}")


with tempfile.TemporaryDirectory() as tmp:
    globals()[behaviour](tmp)
if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok")
