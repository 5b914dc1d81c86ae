#!/usr/bin/env python3
"""Interleaved 1F1B is only a schedule, on the GPT example: cut into 2 or 4 stages of 2
chunks each (place = auto(stages = S, chunks = 2), schedule = interleaved_1f1b) with 4
or 8 micro-batches, 3 steps of SGD train every tensor to within 1e-5 (relative, per
tensor) of 1 stage and 1 micro-batch on the same batches; with the example's AdamW,
to the bits of 1 stage with as many micro-batches (ZB-V: of ZB-H1 on 8 stages, whose
split backwards sum in the same order). (AdamW against 1 micro-batch is no
test of the schedule: the key half of each attention's qkv bias has a true gradient of
zero, which AdamW divides by its own rounding noise, so splitting the batch into
micro-batches moves it by ~3e-3 on 1 stage as on any pipeline.) `pmlc train --trace`
runs it and the timeline's spans name every chunk. With SCHEDULE zero_bubble_v the same
holds for ZB-V (2 chunks per stage in a V: stage s runs chunks s and 2S - 1 - s). Usage:
interleaved_gpt_test.py PMLC EXAMPLES [SCHEDULE]"""
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from checkpoints import tensors  # noqa: E402

pmlc, examples = sys.argv[1], sys.argv[2]
schedule = sys.argv[3] if len(sys.argv) > 3 else "interleaved_1f1b"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


with open(os.path.join(examples, "gpt.pml")) as f:
    text = f.read()
check("place = auto(stages = 4)" in text, "the GPT example places itself with auto(stages = 4)")
common = ["--steps", "3", "--quiet", "--set", "batch=16", "--set", "T=16", "--set", "place=cpu"]

with tempfile.TemporaryDirectory() as tmp:
    def train(name, place, mbs, schedule, *extra):
        src = os.path.join(tmp, name + ".pml")
        with open(src, "w") as f:
            f.write(text.replace("place = auto(stages = 4)", f"place = auto({place})"))
        out = os.path.join(tmp, name)
        r = subprocess.run([pmlc, "train", src, "--out", out, *common, "--set", f"microbatches={mbs}", "--set",
                            f"schedule={schedule}", *extra], capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, f"{name}: exit {r.returncode}: {r.stderr}")
        return tensors(os.path.join(out, "model.safetensors")) if r.returncode == 0 else None

    sgd = ("--set", "optimizer=sgd(lr = 0.1)")
    ref = train("ref", "stages = 1", 1, "gpipe", *sgd)
    worst = 0.0
    for S in (2, 4):
        for M in (4, 8):
            w = train(f"il_{S}_{M}", f"stages = {S}, chunks = 2", M, schedule, *sgd)
            if not (ref and w):
                continue
            check(set(w) == set(ref), f"S {S}, M {M}: the same tensors")
            for n in ref:
                d = math.sqrt(sum((x - y) ** 2 for x, y in zip(w[n], ref[n])))
                norm = math.sqrt(sum(y * y for y in ref[n])) or 1e-30
                worst = max(worst, d / norm)
                check(d / norm <= 1e-5, f"S {S}, M {M}, {n}: relative difference {d / norm:.3g}")
    print(f"GPT example, SGD, {schedule} (2 chunks) vs 1 stage x 1 micro-batch: largest relative difference "
          f"{worst:.3g}")
    for M in (4, 8):
        # ZB-V's split backwards sum in ZB-H1's order: its bits are ZB-H1's on as many stages.
        one = train(f"adamw_1_{M}", *(("stages = 8", M, "zero_bubble") if schedule == "zero_bubble_v" else
                                      ("stages = 1", M, "gpipe")))
        il = train(f"adamw_il_{M}", "stages = 4, chunks = 2", M, schedule)
        check(one and il and all(one[n].tobytes() == il[n].tobytes() for n in one),
              f"AdamW, {M} micro-batches: {schedule} on 4 stages of 2 chunks is not bit-identical to its reference")

    trace = os.path.join(tmp, "il.json")
    train("traced", "stages = 2, chunks = 2", 4, schedule, "--trace", trace)
    if os.path.exists(trace):
        with open(trace) as f:
            events = json.load(f)
        events = events["traceEvents"] if isinstance(events, dict) else events
        chunks = {(e["tid"], e["args"].get("chunk")) for e in events if e.get("cat") == "fwd"}
        # Interleaved: stage s runs chunks s and s + 2; ZB-V's V: s and 3 - s.
        want = {(0, 0), (0, 3), (1, 1), (1, 2)} if schedule == "zero_bubble_v" else {(0, 0), (0, 2), (1, 1), (1, 3)}
        check(chunks == want, f"each stage's forward spans name its chunks: {chunks}")

if failures:
    sys.exit(f"{len(failures)} failure(s)")
print("ok")
