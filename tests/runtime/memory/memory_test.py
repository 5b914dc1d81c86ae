#!/usr/bin/env python3
"""memory_test.py — the plan's memory figures are what the CPU run uses.

    memory_test.py PMLC EXAMPLES WORK planned_within_ten_percent
        For the GPT and MLP examples, in f32 and bf16, with and without recompute =
        true, on one stage and on the examples' own cut (4 and 2 stages), and GPT under
        GPipe, ZB-H1 and interleaved 1F1B (2 stage devices of 2 chunks, the chunks'
        arenas summed per device, as `memory` sums them): every stage device's
        planned arena (`pmlc plan --json`, memory.arena_bytes: the compiler's estimate,
        which `memory = SIZE` limits) is within 10% of what the run's stage holds after
        step 1 (the "memory" of `pmlc train --metrics`'s first record: the CPU backend's count of its
        allocations, arena, gradients, optimizer state, packed weights, scratch and
        thread temporaries).
    memory_test.py PMLC EXAMPLES WORK rss_follows_the_count
        The outside check of that count, on one stage: what the process's peak RSS
        grows by from the GPT example at T = 32 to T = 128 is within 10% of what the
        stage's counted bytes grow by (the difference cancels what every run holds
        besides its stages: libraries, thread stacks, the compiled plan), f32 and bf16.
    memory_test.py PMLC EXAMPLES WORK limit
        memory = SIZE: a plan that fits the limit on the estimate with the 10% the
        estimate is held to runs within it (every stage's measured bytes at most the
        limit, the limit in the record); a plan file
        whose limit is below what a stage allocates (its CONF's last entry lowered, as a
        plan whose estimate missed a buffer would be) is refused before step 1, naming the
        stage, what it holds and the limit, and nothing is written to --out.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys

pmlc, examples, work, which = sys.argv[1:5]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def run(args, check=True):
    r = subprocess.run([pmlc, *args], capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        failures.append(f"pmlc {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r


def variant(name, text, subs):
    """The example `name` with each (pattern, replacement) applied once; the file."""
    for pat, rep in subs:
        text, n = re.subn(pat, rep, text, count=1, flags=re.S)
        if n != 1:
            sys.exit(f"{name}: the example no longer has {pat!r}; update memory_test.py")
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def programs():
    """(label, file, extra --set args) for every example and cut."""
    with open(os.path.join(examples, "gpt.pml")) as f:
        gpt = f.read()
    with open(os.path.join(examples, "mlp.pml")) as f:
        mlp = f.read()
    cpu = [(r"place = \[cuda:0[^\]]*\]", "place = cpu")]
    gpt4 = variant("gpt4.pml", gpt, cpu)
    gpt1 = variant("gpt1.pml", gpt, cpu + [(r"\n    place = auto\(stages = 4\)", "\n    place = auto(stages = 1)")])
    mlp2 = os.path.join(examples, "mlp.pml")
    mlp1 = variant("mlp1.pml", mlp, [(r"stage 0 \{ (h = gelu\(linear\(x, 512\) as fc1\)) \}", r"\1"),
                                     (r"stage 1 \{\n(.*?)\n    \}\n\}", r"\1\n}"),
                                     (r"place = \[cpu, cpu\]", "place = cpu")])
    # the examples' own files are read, never written: a test of an example's variant
    # writes into WORK (the MLP's own file already trains on the CPU)
    return [("gpt, 1 stage", gpt1), ("gpt, 4 stages", gpt4), ("mlp, 1 stage", mlp1), ("mlp, 2 stages", mlp2)]


def schedules():
    """(label, file, --set args): GPT on 4 stages under the other schedules, and on 2
    stage devices of 2 chunks each (interleaved 1F1B), in f32."""
    with open(os.path.join(examples, "gpt.pml")) as f:
        gpt = f.read()
    cpu = [(r"place = \[cuda:0[^\]]*\]", "place = cpu")]
    gpt4 = variant("gpt4.pml", gpt, cpu)
    chunks = variant("gpt2x2.pml", gpt, cpu + [(r"\n    place = auto\(stages = 4\)", "\n    place = auto(stages = 2, chunks = 2)")])
    return [("gpt, gpipe", gpt4, ["--set", "schedule=gpipe"]), ("gpt, zero_bubble", gpt4, ["--set", "schedule=zero_bubble"]),
            ("gpt, 2x2 chunks", chunks, ["--set", "schedule=interleaved_1f1b"])]


def planned(path, sets, devices=0):
    """Every stage device's planned arena: its chunks' summed (chunk c on device c mod
    devices; devices 0: one chunk each)."""
    r = run(["plan", path, "--json", *sets])
    if r.returncode != 0:
        return None
    arenas = [s["memory"]["arena_bytes"] for s in json.loads(r.stdout)["stages"]]
    devices = devices or len(arenas)
    if len(arenas) % devices:
        failures.append(f"{path}: {len(arenas)} planned stages on {devices} stage devices")
        return None
    return [sum(arenas[c] for c in range(d, len(arenas), devices)) for d in range(devices)]


def measured(path, sets, tag, extra=()):
    """The memory record of a one-step run (None on failure)."""
    metrics = os.path.join(work, tag + ".jsonl")
    r = run(["train", path, "--steps", "1", "--quiet", "--metrics", metrics, *sets, *extra])
    if r.returncode != 0:
        return None
    with open(metrics) as f:
        recs = [json.loads(line)["memory"] for line in f if '"memory"' in line]
    if len(recs) != 1:
        failures.append(f"{tag}: expected one memory record in {metrics}, found {len(recs)}")
        return None
    return recs[0]


def planned_within_ten_percent():
    rows = []
    runs = [(label, path, precision, recompute, ["--set", f"precision={precision}", "--set", f"recompute={recompute}"])
            for label, path in programs() for precision in ("f32", "bf16") for recompute in ("false", "true")]
    runs += [(label, path, "f32", "false", sets) for label, path, sets in schedules()]
    for label, path, precision, recompute, sets in runs:
        tag = re.sub(r"\W+", "_", f"{label}_{precision}_{recompute}")
        rec = measured(path, sets, tag)
        plan = planned(path, sets, len(rec["stages"])) if rec else None
        if plan is None:
            continue
        for s, (p, m) in enumerate(zip(plan, rec["stages"])):
            got = m["bytes"]
            rows.append(f"{label:16} {precision:4} recompute={recompute:5} stage {s}: planned "
                        f"{p / 2**20:8.2f} MiB, measured {got / 2**20:8.2f} MiB ({(p - got) / got:+.1%})")
            if abs(p - got) > 0.10 * got:
                failures.append(rows[-1] + f": off by more than 10% (measured {m})")
    print("\n".join(rows))
    if not rows:
        failures.append("nothing was compared")


def peak_rss(path, sets, tag):
    """Peak RSS of a one-step run in bytes, and its memory record."""
    metrics = os.path.join(work, tag + ".jsonl")
    args = [pmlc, "train", path, "--steps", "1", "--quiet", "--metrics", metrics, *sets]
    # the child's own peak: a fresh python process per run, so RUSAGE_CHILDREN is its
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
             "sys.stderr.buffer.write(r.stderr); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        failures.append(f"{' '.join(args)} exited {r.returncode}:\n{r.stderr}")
        return None, None
    with open(metrics) as f:
        rec = [json.loads(line)["memory"] for line in f if '"memory"' in line]
    return int(r.stdout.split()[-1]), rec[0]["stages"][0]["bytes"] if rec else None


def rss_follows_the_count():
    gpt1 = programs()[0][1]
    for precision in ("f32", "bf16"):
        small = peak_rss(gpt1, ["--set", f"precision={precision}", "--set", "T=32"], f"rss_{precision}_32")
        big = peak_rss(gpt1, ["--set", f"precision={precision}", "--set", "T=128"], f"rss_{precision}_128")
        if None in small + big:
            continue
        rss, counted = big[0] - small[0], big[1] - small[1]
        line = (f"{precision}: peak RSS grew {rss / 2**20:.1f} MiB from T = 32 to T = 128, the counted stage "
                f"{counted / 2**20:.1f} MiB ({(rss - counted) / counted:+.1%}); at T = 128 the run's peak RSS is "
                f"{big[0] / 2**20:.1f} MiB, its stage {big[1] / 2**20:.1f} MiB")
        print(line)
        if counted <= 0 or abs(rss - counted) > 0.10 * counted:
            failures.append(line + ": off by more than 10%")


def conf_memory_offset(data):
    """Where a plan file's memory limit lies: the last 8 bytes of its CONF section."""
    at = 16
    while at + 16 <= len(data):
        tag, _, size = struct.unpack_from("<IIq", data, at)
        if tag == struct.unpack("<I", b"CONF")[0]:
            return at + 16 + size - 8
        at += 16 + size
    return None


def limit():
    mlp = os.path.join(examples, "mlp.pml")
    plan = planned(mlp, [])
    if plan is None:
        return
    fits = int(max(plan) * 1.10)  # the margin the estimate is held to (planned_within_ten_percent)
    rec = measured(mlp, ["--set", f"memory={fits}"], "fits")
    if rec is not None:
        if rec["limit_bytes"] != fits:
            failures.append(f"the memory record gives the limit {rec['limit_bytes']}, not {fits}")
        for s in rec["stages"]:
            print(f"memory = {fits}: stage {s['stage']} holds {s['bytes']} bytes when run")
            if s["bytes"] > fits:
                failures.append(f"stage {s['stage']} fits memory = {fits} on the estimate but holds {s['bytes']} "
                                f"bytes when run")
    # A plan file whose limit is below what stage 0 allocates: refused before step 1.
    built = os.path.join(work, "mlp.plan")
    if run(["build", mlp, "--set", "memory=1GiB", "-o", built]).returncode != 0:
        return
    with open(built, "rb") as f:
        data = bytearray(f.read())
    at = conf_memory_offset(data)
    if at is None or struct.unpack_from("<q", data, at)[0] != 1 << 30:
        failures.append("the plan file's CONF does not end with the memory limit")
        return
    struct.pack_into("<q", data, at, 1 << 20)
    small = os.path.join(work, "mlp_1MiB.plan")
    with open(small, "wb") as f:
        f.write(data)
    out = os.path.join(work, "refused_out")
    r = run(["train", small, "--steps", "2", "--out", out], check=False)
    print(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "(no message)")
    if r.returncode == 0:
        failures.append("a run whose stage holds more than its plan's memory limit was not refused")
    elif not re.search(r"stage 0 holds [\d.]+ MiB before step 1 .*over memory = 1\.0 MiB per stage device", r.stderr):
        failures.append(f"the refusal does not name the stage, what it holds and the limit:\n{r.stderr}")
    if os.path.exists(out) and os.listdir(out):
        failures.append(f"a refused run wrote into --out: {os.listdir(out)}")


{"planned_within_ten_percent": planned_within_ten_percent, "rss_follows_the_count": rss_follows_the_count,
 "limit": limit}[which]()
for f in failures:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if failures else 0)
