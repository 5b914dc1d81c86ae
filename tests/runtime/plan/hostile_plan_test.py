#!/usr/bin/env python3
"""hostile_plan_test.py — plan files a user edited or planted, given to `pmlc train`:
each is refused (exit 1, the path and what is wrong on stderr), never a crash, a hang
or a long read.

    hostile_plan_test.py PMLC edited_config   # a config that contradicts the graph
    hostile_plan_test.py PMLC huge_sparse     # a 3 GB sparse file with a plan's magic
    hostile_plan_test.py PMLC bad_device      # a device map entry of no known kind
"""
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time

pmlc, case = os.path.abspath(sys.argv[1]), sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, cwd):
    """pmlc with a timeout (a hang fails); returns (exit code, stderr, seconds)."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([pmlc, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None, "timed out", time.monotonic() - t0
    return r.returncode, r.stderr, time.monotonic() - t0


def not_a_crash(code, err, what):
    check(code == 1, f"{what}: exit {code}, expected 1: {err}")
    check("Sanitizer" not in err and "runtime error:" not in err, f"{what}: a sanitizer report: {err}")


PROGRAM = """import "nn"
model m(x: f32[B, 8]) -> f32[B, 2] {
    return linear(x, 2) as head
}
train m {
    data = DATA
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 8, microbatches = 2
    steps = 1
}
"""


def conf_offset(plan):
    """Where the configuration section's values start: after the header (magic,
    version, section count) and the strings section (tag, flags, size, bytes)."""
    at = 16
    size = struct.unpack_from("<q", plan, at + 8)[0]
    at += 16 + size  # the configuration's tag, flags and size follow
    return at + 16


def npy(path, descr, fmt, shape, values):
    dims = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<" + fmt * len(values), *values))


with tempfile.TemporaryDirectory() as tmp:
    if case == "edited_config":
        npy(os.path.join(tmp, "x.npy"), "<f4", "f", (64, 8), [0.5] * 512)
        npy(os.path.join(tmp, "y.npy"), "<i8", "q", (64,), [i % 2 for i in range(64)])
        sources = {"file": '"x.npy"\n    labels = "y.npy"', "classes": "classes(features = 8, classes = 2)"}
        for name, data in sources.items():
            with open(os.path.join(tmp, name + ".pml"), "w") as f:
                f.write(PROGRAM.replace("DATA", data))
            code, err, _ = run("build", name + ".pml", "-o", name + ".plan", "--arch", "none", cwd=tmp)
            check(code == 0, f"{name}: builds: {err}")
            plan = bytearray(open(os.path.join(tmp, name + ".plan"), "rb").read())
            code, err, _ = run("train", name + ".plan", "--quiet", cwd=tmp)
            check(code == 0, f"{name}: the unedited plan trains: {err}")
            at = conf_offset(plan)
            stages, batch, microbatches, microbatch = struct.unpack_from("<4q", plan, at)
            check((batch, microbatches, microbatch) == (8, 2, 4), f"{name}: the config is where it is looked for")
            # batch 32 in 2 micro-batches of 16, consistent with itself, against an input of 4 rows.
            edited = bytearray(plan)
            struct.pack_into("<3q", edited, at + 8, 32, 2, 16)
            with open(os.path.join(tmp, "edited.plan"), "wb") as f:
                f.write(edited)
            code, err, _ = run("train", "edited.plan", "--quiet", cwd=tmp)
            not_a_crash(code, err, f"{name}: an edited micro-batch size")
            check("edited.plan" in err and "16 rows" in err and "4 rows" in err,
                  f"{name}: the message names the file and both sizes: {err}")
            code, err, _ = run("infer", "edited.plan", "--weights", "none", "--input", "x.npy", "--output", "y.npy", cwd=tmp)
            not_a_crash(code, err, f"{name}: infer of an edited plan")
        # classes: the generator's width (features = 16) against an input row of 8.
        plan = bytearray(open(os.path.join(tmp, "classes.plan"), "rb").read())
        names = ["stages", "batch", "microbatches", "microbatch", "schedule", "precision", "optimizer", "lr",
                 "momentum", "nesterov", "beta1", "beta2", "eps", "weight_decay", "lr_schedule", "warmup", "min_lr",
                 "grad_clip", "steps", "epochs", "seed", "checkpoint_every", "recompute", "data", "data_path",
                 "labels_path", "features"]  # pml/plan_format.h's PML_PLAN_CONF_FIELDS, in order
        struct.pack_into("<q", plan, conf_offset(plan) + 8 * names.index("features"), 16)
        with open(os.path.join(tmp, "edited.plan"), "wb") as f:
            f.write(plan)
        code, err, _ = run("train", "edited.plan", "--quiet", cwd=tmp)
        not_a_crash(code, err, "classes: an edited generator width")
        check("16 values" in err and "rows of 8" in err, f"classes: the message names both widths: {err}")
    elif case == "huge_sparse":
        with open(os.path.join(tmp, "s.pml"), "w") as f:
            f.write(PROGRAM.replace("DATA", "classes(features = 8, classes = 2)"))
        code, err, _ = run("build", "s.pml", "-o", "s.plan", "--arch", "none", cwd=tmp)
        check(code == 0, f"builds: {err}")
        head = open(os.path.join(tmp, "s.plan"), "rb").read()
        for size, name in ((3 << 30, "3 GB"), (900 << 20, "900 MB")):
            path = os.path.join(tmp, "huge.plan")
            with open(path, "wb") as f:  # the real plan's first bytes, then a hole
                f.write(head[:64])
            os.truncate(path, size)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            code, err, secs = run("train", "huge.plan", "--quiet", cwd=tmp)
            peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            not_a_crash(code, err, f"a {name} sparse plan")
            check("huge.plan" in err, f"{name}: the message names the file: {err}")
            check(secs < 5, f"{name}: refused in {secs:.1f} s, expected well under 5 s (it is not read)")
            # ru_maxrss is the largest child so far, in KiB: pmlc itself is a few MB.
            check(peak_kb < 200 * 1024 or peak_kb == before,
                  f"{name}: peak memory {peak_kb / 1024:.0f} MiB, expected far below the file's size")
    elif case == "bad_device":
        with open(os.path.join(tmp, "d.pml"), "w") as f:
            f.write(PROGRAM.replace("DATA", "classes(features = 8, classes = 2)"))
        code, err, _ = run("build", "d.pml", "-o", "d.plan", "--arch", "none", cwd=tmp)
        check(code == 0, f"builds: {err}")
        plan = bytearray(open(os.path.join(tmp, "d.plan"), "rb").read())
        at, devs = 16, None  # the sections: tag, flags, size, payload
        while at + 16 <= len(plan):
            tag, _, size = struct.unpack_from("<4sIq", plan, at)
            if tag == b"DEVS":
                devs = at + 16
            at += 16 + size
        check(devs is not None and struct.unpack_from("<I", plan, devs)[0] == 1, "one stage device in the map")
        if devs is not None:
            code, err, _ = run("train", "d.plan", "--quiet", cwd=tmp)
            check(code == 0, f"the unedited plan trains on the CPU its map names: {err}")
            plan[devs + 4] = 7  # the kind of the one entry: neither cpu (0) nor cuda (1)
            with open(os.path.join(tmp, "edited.plan"), "wb") as f:
                f.write(plan)
            for cmd in (["train", "edited.plan", "--quiet"], ["train", "edited.plan", "--backend", "cpu"],
                        ["infer", "edited.plan", "--weights", "w", "--input", "x.npy", "--output", "y.npy"]):
                code, err, _ = run(*cmd, cwd=tmp)
                not_a_crash(code, err, f"{cmd[0]}: a device of kind 7")
                check("edited.plan" in err and "devices" in err and "unknown kind" in err,
                      f"{cmd[0]}: the message names the file and the device: {err}")
    else:
        sys.exit(f"unknown case {case}")

print(f"hostile plans ({case}): {len(failures)} failed")
sys.exit(1 if failures else 0)
