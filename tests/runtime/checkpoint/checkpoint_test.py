#!/usr/bin/env python3
"""Checkpoints of `pmlc train` (runtime/src/train/checkpoint.h), one behaviour per
invocation: checkpoint_test.py PMLC TESTDIR BEHAVIOUR.

  resume_sgd, resume_adamw  3 steps, then --resume to 6, equals 6 straight, bit for bit
  init                      --init from a --steps 0 output trains exactly as without it
  periodic                  checkpoint_every = 2 writes OUT/step-000002 ... and each resumes
  refuse_*                  a hostile or mismatched checkpoint: exit 1, the path named
  failed_write              an unwritable --out: exit 1, no partial files"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

pmlc, here, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
SGD, ADAMW, OTHER = (os.path.join(here, f) for f in ("sgd.pml", "adamw.pml", "other.pml"))
failures = []


def run(*args):
    return subprocess.run([pmlc, "train", *args, "--quiet", "--threads", "2"], capture_output=True, text=True,
                          timeout=300)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def must_train(*args):
    r = run(*args)
    check(r.returncode == 0, f"pmlc train {' '.join(args)} succeeds: {r.stderr}")
    return r


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


def same_tensors(a, b, what):
    ha, _, da = read_st(a)
    hb, _, db = read_st(b)
    check({k: v["shape"] for k, v in ha.items()} == {k: v["shape"] for k, v in hb.items()}, f"{what}: same tensors")
    check(da == db, f"{what}: tensor data equal bit for bit")


def resume_equals_straight(tmp, pml):
    must_train(pml, "--steps", "6", "--out", os.path.join(tmp, "straight"))
    must_train(pml, "--steps", "3", "--out", os.path.join(tmp, "A"))
    must_train(pml, "--steps", "6", "--resume", os.path.join(tmp, "A"), "--out", os.path.join(tmp, "B"))
    for f in ("model.safetensors", "optimizer.safetensors"):
        same_tensors(os.path.join(tmp, "straight", f), os.path.join(tmp, "B", f), f"{os.path.basename(pml)} {f}")
    t = json.load(open(os.path.join(tmp, "B", "trainer.json")))
    check(t["step"] == 6 and t["version"] == 1, "the resumed run's trainer.json says step 6")


def behaviour_init(tmp):
    must_train(ADAMW, "--steps", "0", "--out", os.path.join(tmp, "w0"))
    must_train(ADAMW, "--steps", "4", "--out", os.path.join(tmp, "plain"))
    must_train(ADAMW, "--steps", "4", "--init", os.path.join(tmp, "w0", "model.safetensors"), "--out",
               os.path.join(tmp, "init"))
    same_tensors(os.path.join(tmp, "plain", "model.safetensors"), os.path.join(tmp, "init", "model.safetensors"),
                 "--init from the initial weights")
    # Other weights do change the result: --init is really used.
    must_train(ADAMW, "--steps", "0", "--seed", "5", "--out", os.path.join(tmp, "w5"))
    must_train(ADAMW, "--steps", "4", "--init", os.path.join(tmp, "w5", "model.safetensors"), "--out",
               os.path.join(tmp, "init5"))
    check(read_st(os.path.join(tmp, "init5", "model.safetensors"))[2] != read_st(
        os.path.join(tmp, "plain", "model.safetensors"))[2], "--init with other weights trains differently")


def behaviour_periodic(tmp):
    out = os.path.join(tmp, "out")
    must_train(ADAMW, "--out", out)  # steps = 6, checkpoint_every = 2
    for s in (2, 4, 6):
        d = os.path.join(out, f"step-{s:06d}")
        check(all(os.path.isfile(os.path.join(d, f)) for f in ("model.safetensors", "optimizer.safetensors",
                                                                 "trainer.json")), f"{d} is a whole checkpoint")
        check(json.load(open(os.path.join(d, "trainer.json")))["step"] == s, f"{d} is at step {s}")
    must_train(ADAMW, "--resume", os.path.join(out, "step-000004"), "--out", os.path.join(tmp, "again"))
    same_tensors(os.path.join(out, "model.safetensors"), os.path.join(tmp, "again", "model.safetensors"),
                 "resuming from step-000004")
    check(not [f for f in os.listdir(out) if ".tmp" in f], "no temporary files are left")


def refused(tmp, ckpt, expect, named=None, pml=SGD):
    """--resume ckpt fails; the message names `named` (default: the folder) and says `expect`."""
    r = run(pml, "--steps", "6", "--resume", ckpt, "--out", os.path.join(tmp, "never"))
    check(r.returncode == 1, f"exit status 1 (got {r.returncode}: {r.stderr})")
    check((named or ckpt) in r.stderr, f"the message names the path: {r.stderr}")
    check(expect in r.stderr, f"the message says '{expect}': {r.stderr}")
    check("Traceback" not in r.stderr and "Sanitizer" not in r.stderr, "no crash")
    check(not os.path.exists(os.path.join(tmp, "never")), "nothing is written")


def hostile(tmp):
    ckpt = os.path.join(tmp, "ckpt")
    must_train(SGD, "--steps", "3", "--out", ckpt)
    return ckpt, os.path.join(ckpt, "model.safetensors")


def behaviour_refuse_incomplete(tmp):
    ckpt, _ = hostile(tmp)
    os.remove(os.path.join(ckpt, "trainer.json"))
    refused(tmp, ckpt, "incomplete checkpoint (no trainer.json)")


def behaviour_refuse_wrong_shape(tmp):
    ckpt, model = hostile(tmp)
    header, meta, data = read_st(model)
    header["fc1.weight"]["shape"] = list(reversed(header["fc1.weight"]["shape"]))
    write_st(model, header, meta, data)
    refused(tmp, ckpt, "tensor 'fc1.weight' has shape [16, 32], but the plan's is [32, 16]", model)


def behaviour_refuse_missing_parameter(tmp):
    ckpt, model = hostile(tmp)
    header, meta, data = read_st(model)
    del header["head.bias"]
    write_st(model, header, meta, data)
    refused(tmp, ckpt, "tensor 'head.bias' is missing", model)


def behaviour_refuse_unknown_tensor(tmp):
    ckpt, model = hostile(tmp)
    header, meta, data = read_st(model)
    header["extra.weight"] = {"dtype": "F32", "shape": [2]}
    data["extra.weight"] = b"\0" * 8
    write_st(model, header, meta, data)
    refused(tmp, ckpt, "unknown tensor 'extra.weight'", model)
    # The same for --init.
    r = run(SGD, "--init", model)
    check(r.returncode == 1 and model in r.stderr and "unknown tensor 'extra.weight'" in r.stderr,
          f"--init refuses it too: {r.stderr}")


def behaviour_refuse_other_model(tmp):
    ckpt = os.path.join(tmp, "ckpt")
    must_train(OTHER, "--steps", "3", "--out", ckpt)
    refused(tmp, ckpt, "a checkpoint of another model", pml=ADAMW)
    r = run(ADAMW, "--init", os.path.join(ckpt, "model.safetensors"))
    check(r.returncode == 1 and "has shape" in r.stderr, f"--init refuses another model's weights: {r.stderr}")


def behaviour_refuse_other_optimizer(tmp):
    ckpt, _ = hostile(tmp)  # SGD with momentum
    refused(tmp, ckpt, "the checkpoint's optimizer is \"sgd_momentum\"", pml=ADAMW)


def behaviour_refuse_truncated(tmp):
    ckpt, model = hostile(tmp)
    raw = open(model, "rb").read()
    with open(model, "wb") as f:
        f.write(raw[:len(raw) // 2])
    refused(tmp, ckpt, "", model)


def behaviour_refuse_step_mismatch(tmp):
    ckpt, _ = hostile(tmp)
    opt = os.path.join(ckpt, "optimizer.safetensors")
    header, meta, data = read_st(opt)
    meta["pml_step"] = "2"
    write_st(opt, header, meta, data)
    refused(tmp, ckpt, "pml_step is '2' but trainer.json says 3", opt)


def behaviour_failed_write(tmp):
    r = run(SGD, "--steps", "1", "--out", "/proc/pml-checkpoint-test")
    check(r.returncode == 1 and "/proc/pml-checkpoint-test" in r.stderr, f"exit 1 naming the path: {r.stderr}")
    check(not os.path.exists("/proc/pml-checkpoint-test"), "nothing is created")
    # trainer.json cannot be replaced (a folder is in the way): no checkpoint is
    # committed and no temporary file is left behind.
    out = os.path.join(tmp, "out")
    os.makedirs(os.path.join(out, "trainer.json", "blocker"))
    r = run(SGD, "--steps", "1", "--out", out)
    check(r.returncode == 1 and "trainer.json" in r.stderr, f"exit 1 naming trainer.json: {r.stderr}")
    check(not [f for f in os.listdir(out) if ".tmp" in f], f"no temporary files: {os.listdir(out)}")
    check(os.path.isdir(os.path.join(out, "trainer.json")), "no trainer.json was committed")


with tempfile.TemporaryDirectory() as tmp:
    if behaviour == "resume_sgd":
        resume_equals_straight(tmp, SGD)
    elif behaviour == "resume_adamw":
        resume_equals_straight(tmp, ADAMW)
    else:
        globals()["behaviour_" + behaviour](tmp)

print(f"checkpoint {behaviour}: {len(failures)} failed")
sys.exit(1 if failures else 0)
