#!/usr/bin/env python3
"""pml.h's checkpoints give what `pmlc train` gives, file for file and bit for bit:
checkpoint_api_test.py PMLC CHECKPOINT_API TESTDIR BEHAVIOUR (TESTDIR: the checkpoint
tests' models; adamw.pml has two stages, dropout, steps = 6, checkpoint_every = 2).

  cadence_and_resume  6 steps through the API with a save every 2 equal `pmlc train --out`
                      (OUT and OUT/step-000002..6); resumed through the API from the CLI's
                      step-000002 they equal it again, and the CLI resumes the API's
  init                --init W and pml_session_load_weights(W) (trained weights, a fresh
                      optimizer) train to the same folder
  refuse              the error paths (checkpoint_api.c's refusals): another model's
                      checkpoint, another seed, a missing folder, missing arguments"""
import os
import subprocess
import sys
import tempfile

pmlc, api, here, behaviour = sys.argv[1:5]
ADAMW, OTHER = os.path.join(here, "adamw.pml"), os.path.join(here, "other.pml")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"{' '.join(cmd)} succeeds: {r.stderr}")
    return r


def cli(*args):
    return run([pmlc, "train", ADAMW, "--quiet", "--threads", "2", *args])


def files(folder):
    """Every file under `folder`, relative path -> bytes."""
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


def same_folders(a, b, what):
    fa, fb = files(a), files(b)
    check(sorted(fa) == sorted(fb), f"{what}: the same files ({sorted(fa)} vs {sorted(fb)})")
    for name in sorted(set(fa) & set(fb)):
        check(fa[name] == fb[name], f"{what}: {name} equal bit for bit")


with tempfile.TemporaryDirectory() as tmp:
    at = lambda *p: os.path.join(tmp, *p)  # noqa: E731
    if behaviour == "cadence_and_resume":
        cli("--out", at("cli"))
        check(os.path.isdir(at("cli", "step-000002")), "the CLI wrote periodic checkpoints")
        run([api, ADAMW, "train", "6", "2", at("api")])
        same_folders(at("cli"), at("api"), "trained through the API")
        run([api, ADAMW, "resume", "6", "2", at("api_resumed"), at("cli", "step-000002")])
        expected = files(at("cli"))
        got = files(at("api_resumed"))
        for name in ("model.safetensors", "optimizer.safetensors", "trainer.json", "step-000004/model.safetensors",
                     "step-000006/optimizer.safetensors"):
            check(got.get(name) == expected[name], f"resumed through the API: {name} equal bit for bit")
        check(not os.path.exists(at("api_resumed", "step-000002")), "a resume saves only the steps it takes")
        cli("--resume", at("api", "step-000004"), "--out", at("cli_resumed"))
        check(files(at("cli_resumed"))["model.safetensors"] == expected["model.safetensors"],
              "the CLI resumes the API's checkpoint bit for bit")
    elif behaviour == "init":
        # Trained weights, so that a load that did nothing would show.
        cli("--steps", "2", "--out", at("w2"))
        cli("--steps", "3", "--init", at("w2", "model.safetensors"), "--out", at("cli"))
        run([api, ADAMW, "init", "3", "2", at("api"), at("w2", "model.safetensors")])
        same_folders(at("cli"), at("api"), "started from --init weights")
    elif behaviour == "refuse":
        cli("--steps", "2", "--out", at("ckpt"))
        run([pmlc, "train", OTHER, "--quiet", "--steps", "1", "--out", at("other")])
        r = subprocess.run([api, ADAMW, "refuse", at("other"), at("ckpt")], capture_output=True, text=True,
                           timeout=300)
        check(r.returncode == 0, f"every refusal as expected: {r.stderr}")
    else:
        sys.exit(f"unknown behaviour {behaviour}")

print(f"checkpoint_api {behaviour}: {len(failures)} failed")
sys.exit(1 if failures else 0)
