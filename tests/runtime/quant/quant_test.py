#!/usr/bin/env python3
"""`pmlc quantize` and reading its int8 files (runtime/src/quant/int8.h), one behaviour
per invocation: quant_test.py PMLC TESTDIR BEHAVIOUR.

  round_trip     every linear weight of the MLP: I8 [out, in] + F32 .scale [out], |w - q s| <= s/2
                 per channel, |q| <= 127 with 127 reached in every nonzero row; the rest byte-equal
  layers         --layers fc1,head quantizes those weights only
  infer_close    `pmlc infer` of the int8 file within 3% of the f32 outputs' largest magnitude
                 (max over 300 rows), and says its 3 layers compute with int8 products. Why 3%:
                 each layer now quantizes its input rows too (half a step of max|row| / 127 per
                 element, beside the weights' half a step of max|channel| / 127); measured on
                 these rows (3 seeds, 100 steps): weights alone 0.8-1.0%, int8 products 2.0-2.2%
  linear_exact   one linear layer (tests/runtime/quant/linear.pml, k 100, n 37, with bias): the
                 int8 outputs are the int8 arithmetic done here in emulated f32 (per-row scale
                 max|x| / 127, round half even, int32 sums, acc * s_row * s_col + bias) to 1e-6 of
                 |acc * s_row * s_col| + |bias|; and they are not the f32 product of the
                 dequantized weights to that precision (the test tells int8 products from f32)
  linear_bound   the same layer, int8 file vs the f32 weights it came from: every output within
                 the quantization's bound |x.w - x~.w~| <= ||x||_1 s_col / 2 + s_row / 2 ||w~||_1
                 (w~ = q s_col, x~ its int8 row times s_row; plus f32 rounding), rows of scales
                 from 1e-3 to 1e3 and an all-zero row (its output: the bias)
  same_bits      the MLP (two stages) from its int8 file: the same output bits at --threads 1
                 and 2 and at 2, 8 and 32 micro-batches (rows are quantized one by one)
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
    check(re.search(r"3 int8 weights from .*: int8 products \((oneDNN gemm_s8s8s32|reference loop), int32 sums"
                    r".* for 3 layers$", r.stderr.splitlines()[0] if r.stderr else ""),
          f"infer says the 3 layers compute with int8 products: {r.stderr}")
    check("f32" not in r.stderr.splitlines()[0], f"no weight served in f32: {r.stderr}")
    f, i = read_npy_f32(os.path.join(tmp, "f.npy")), read_npy_f32(os.path.join(tmp, "i.npy"))
    big = max(abs(v) for v in f)
    diff = max(abs(a - b) for a, b in zip(f, i))
    print(f"max |y_int8 - y_f32| = {diff:.5f}, max |y_f32| = {big:.3f} ({100 * diff / big:.3f}%)")
    check(diff <= 0.03 * big, "int8 outputs within 3% of the f32 outputs' largest magnitude")
    check(f != i, "the int8 weights are not the f32 ones (the test can tell them apart)")


LIN = os.path.join(here, "linear.pml")
K, N = 100, 37


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def lin_rows():
    """Rows of many scales (1e-3 .. 1e3), one all zeros, one a single spike; f32 values."""
    rnd = random.Random(11)
    rows = []
    for r in range(40):
        scale = 10 ** (-3 + 6 * r / 39)
        rows.append([f32(rnd.gauss(0, 1) * scale) for _ in range(K)])
    rows.append([0.0] * K)
    rows.append([0.0] * (K - 1) + [f32(-2.5)])
    return rows


def lin_files(tmp):
    """(f32 weights dir, int8 file, rows, int8 outputs, f32 outputs): `pmlc infer` of both."""
    ck = os.path.join(tmp, "ck")
    must("train", LIN, "--out", ck, "--quiet")
    q = os.path.join(tmp, "q.safetensors")
    must("quantize", LIN, "--weights", ck, "-o", q)
    rows = lin_rows()
    x = os.path.join(tmp, "x.npy")
    write_npy(x, [len(rows), K], [v for r in rows for v in r])
    r = must("infer", LIN, "--weights", q, "--input", x, "--output", os.path.join(tmp, "i.npy"))
    check("int8 products" in r.stderr and "for 1 layer\n" in r.stderr, f"the layer is int8: {r.stderr}")
    must("infer", LIN, "--weights", ck, "--input", x, "--output", os.path.join(tmp, "f.npy"))
    return ck, q, rows, read_npy_f32(os.path.join(tmp, "i.npy")), read_npy_f32(os.path.join(tmp, "f.npy"))


def int8_file(q):
    _, _, d = read_st(q)
    return (struct.unpack(f"<{N * K}b", d["fc.weight"]), floats(d["fc.weight.scale"]), floats(d["fc.bias"]))


def quantize_row(x):
    """gemm_int8.h's per-row quantization in emulated f32: (q, s_row)."""
    mx = max(abs(v) for v in x)
    if mx == 0:
        return [0] * len(x), 0.0
    inv = f32(127.0 / mx)  # f32 division, correctly rounded (a double's 53 bits >= 2 * 24 + 2)
    return [max(-127, min(127, round(f32(v * inv)))) for v in x], f32(mx / 127.0)


def linear_exact(tmp):
    _, q, rows, y8, _ = lin_files(tmp)
    wq, ws, b = int8_file(q)
    worst, apart = 0.0, 0.0
    for i, x in enumerate(rows):
        xq, s = quantize_row(x)
        for j in range(N):
            acc = sum(xq[p] * wq[j * K + p] for p in range(K))
            t = f32(f32(f32(float(acc)) * s) * ws[j])
            want = f32(t + b[j])
            tol = 1e-6 * (abs(t) + abs(b[j])) + 1e-30
            worst = max(worst, abs(y8[i * N + j] - want) / tol)
            deq = sum(x[p] * wq[j * K + p] * ws[j] for p in range(K)) + b[j]  # f32 on dequantized weights
            apart = max(apart, abs(y8[i * N + j] - deq) / tol)
    print(f"int8 outputs vs the int8 arithmetic: worst {worst:.3f} of the 1e-6 tolerance; "
          f"vs f32 products of the dequantized weights: {apart:.1f} of it")
    check(worst <= 1, "int8 outputs are the int8 arithmetic to 1e-6")
    check(apart > 100, "the int8 outputs are not f32 products of the dequantized weights")


def linear_bound(tmp):
    _, q, rows, y8, y32 = lin_files(tmp)
    wq, ws, b = int8_file(q)
    worst, zero_ok = 0.0, True
    for i, x in enumerate(rows):
        _, s = quantize_row(x)
        l1x = sum(abs(v) for v in x)
        for j in range(N):
            l1w = sum(abs(wq[j * K + p]) for p in range(K)) * ws[j]
            bound = l1x * ws[j] / 2 + s / 2 * l1w
            slack = 1e-5 * (l1x * 128 * ws[j] + abs(b[j]) + abs(y32[i * N + j]))  # f32 rounding of both sums
            err = abs(y8[i * N + j] - y32[i * N + j])
            worst = max(worst, err / (bound + slack))
            if not any(x):
                zero_ok &= y8[i * N + j] == f32(b[j])
    print(f"|y_int8 - y_f32| / bound: worst {worst:.3f}")
    check(worst <= 1, "every int8 output within the quantization bound of the f32 one")
    check(zero_ok, "an all-zero row gives the bias exactly")
    check(y8 != y32, "int8 outputs differ from f32 (the test can tell them apart)")


def same_bits(tmp):
    q = quantized(tmp, trained(tmp, 20))
    rnd = random.Random(3)
    x = os.path.join(tmp, "x.npy")
    write_npy(x, [300, 784], [rnd.gauss(0, 1) for _ in range(300 * 784)])
    runs = [("--threads", "1"), ("--threads", "2"), ("--threads", "1", "--set", "microbatches=2"),
            ("--threads", "2", "--set", "microbatches=32")]
    outs = []
    for k, extra in enumerate(runs):
        y = os.path.join(tmp, f"y{k}.npy")
        r = must("infer", MLP, "--weights", q, "--input", x, "--output", y, *extra)
        check("int8 products" in r.stderr, f"{extra}: int8 products: {r.stderr}")
        outs.append(read_npy_f32(y))
    for k in range(1, len(runs)):
        check(outs[k] == outs[0], f"{' '.join(runs[k])}: the same bits as {' '.join(runs[0])}")


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
