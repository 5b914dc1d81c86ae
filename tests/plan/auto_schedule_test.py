#!/usr/bin/env python3
"""schedule = auto and the memory limit on the GPT example (examples/gpt.pml), checked
against the simulator's own numbers: every candidate auto may try (gpipe, 1f1b,
zero_bubble; micro-batch counts dividing the batch up to 4 per stage; recompute off and
on) is planned explicitly with `pmlc plan --json`, which gives its simulated step and its
per-stage memory estimate, and auto's choice must be the fastest of those that fit.

    auto_schedule_test.py --pmlc PMLC --examples DIR --work DIR NAME   (one behaviour)
    auto_schedule_test.py --list
"""
import argparse
import json
import os
import subprocess
import sys

TESTS = [
    "schedule_auto_picks_the_fastest_simulated_plan_of_the_gpt_example",
    "schedule_auto_leaves_out_a_plan_over_the_memory_limit",
    "schedule_auto_refuses_when_nothing_fits_naming_the_smallest_need",
    "an_explicit_schedule_over_the_memory_limit_is_refused",
    "schedule_auto_trains_the_weights_of_the_schedule_it_chose",
]
SCHEDULES = ("gpipe", "1f1b", "zero_bubble")
STAGES, BATCH = 4, 64


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def run(args, *cmd):
    return subprocess.run([args.pmlc, *cmd], capture_output=True, text=True, timeout=300)


def source(args, microbatches, cuda=False):
    """The GPT example with schedule = auto, its microbatches left out unless `microbatches`,
    on the CPU unless `cuda` (the example's own place = [cuda:0, ...])."""
    with open(os.path.join(args.examples, "gpt.pml")) as f:
        text = f.read()
    place = "place = [cuda:0, cuda:1, cuda:2, cuda:3]"
    for old in ("batch = 64, microbatches = 8", "schedule = 1f1b", place):
        check(old in text, f"the GPT example has '{old}'")
    text = text.replace("batch = 64, microbatches = 8", "batch = 64" + (", microbatches = 8" if microbatches else ""))
    text = text.replace("schedule = 1f1b", "schedule = auto")
    if not cuda:
        text = text.replace(place, "place = cpu")
    path = os.path.join(args.work, f"gpt_auto{'_mb' if microbatches else ''}{'_cuda' if cuda else ''}.pml")
    with open(path, "w") as f:
        f.write(text)
    return path


def plan(args, src, *sets):
    cmd = ["plan", src, "--json"]
    for s in sets:
        cmd += ["--set", s]
    r = run(args, *cmd)
    check(r.returncode == 0, f"pmlc {' '.join(cmd)}: exit {r.returncode}: {r.stderr}")
    return json.loads(r.stdout)


def need(p):
    """The most bytes a stage device holds: the arenas of its chunks, summed."""
    dev = {}
    devices = p["stages_count"] // p["chunks"]
    for i, s in enumerate(p["stages"]):
        dev[i % devices] = dev.get(i % devices, 0) + s["memory"]["arena_bytes"]
    return max(dev.values())


def candidates(args, src):
    """Every candidate planned explicitly: (schedule, micro-batches, recompute) -> (step, need)."""
    out = {}
    for sched in SCHEDULES:
        for m in [m for m in range(1, 4 * STAGES + 1) if BATCH % m == 0]:
            for rc in (False, True):
                p = plan(args, src, f"schedule={sched}", f"microbatches={m}", f"recompute={str(rc).lower()}")
                out[(sched, m, rc)] = (p["simulated_step"], need(p))
    return out


def best(cands, limit=None):
    fit = [(v[0], v[1], k) for k, v in cands.items() if limit is None or v[1] <= limit]
    if not fit:
        return None
    step = min(f[0] for f in fit)
    return min((f for f in fit if f[0] <= step * (1 + 1e-9)), key=lambda f: f[1])


def chosen(p):
    check(p["schedule_auto"], "the plan says what schedule = auto chose")
    return p["schedule"], p["microbatches"], "no recompute" not in p["schedule_auto"]


def t_fastest(args):
    src = source(args, False)
    cands = candidates(args, src)
    step, _, key = best(cands)
    p = plan(args, src)
    got = chosen(p)
    print(f"auto: {p['schedule_auto']}")
    check(abs(p["simulated_step"] - step) <= 1e-9 * step, f"auto's step {p['simulated_step']} is the best, {step}")
    check(got == key, f"auto chose {got}, the simulator's fastest is {key}")
    zb = min(v[0] for k, v in cands.items() if k[0] == "zero_bubble")
    fb = min(v[0] for k, v in cands.items() if k[0] == "1f1b")
    print(f"best simulated step: zero_bubble {zb:.4g}, 1f1b {fb:.4g}")
    if zb < fb:
        check(got[0] == "zero_bubble", f"zero_bubble simulates faster than 1f1b, auto chose {got[0]}")
    # microbatches given: auto keeps it
    p = plan(args, source(args, True))
    check(p["microbatches"] == 8, f"a given microbatches = 8 is kept, auto planned {p['microbatches']}")
    # on CUDA devices, whose backend runs whole backward passes only, zero_bubble is no candidate
    p = plan(args, source(args, False, cuda=True))
    want = best({k: v for k, v in cands.items() if k[0] != "zero_bubble"})[2]
    check(chosen(p) == want and "zero_bubble left out" in p["schedule_auto"],
          f"on CUDA auto chose {chosen(p)}, the fastest without zero_bubble is {want}: {p['schedule_auto']}")


def t_limit(args):
    src = source(args, False)
    cands = candidates(args, src)
    _, top, key = best(cands)
    smaller = sorted({v[1] for v in cands.values() if v[1] < top})
    check(smaller, "some candidate needs less than the fastest")
    limit = (smaller[-1] + top) // 2  # between the fastest's need and the next below it
    want = best(cands, limit)
    p = plan(args, src, f"memory={limit}")
    got = chosen(p)
    print(f"memory = {limit} bytes: {p['schedule_auto']}")
    check(got != key, f"the fastest plan {key} needs {top} bytes, over {limit}, and was still chosen")
    check(got == want[2], f"under {limit} bytes auto chose {got}, the fastest that fits is {want[2]}")
    check(need(p) <= limit, f"the chosen plan needs {need(p)} bytes, over {limit}")
    for size in ("64MiB", '"0.0625GiB"'):  # 64 MiB, as an identifier and as a string
        mib = plan(args, src, f"memory={size}")
        check(need(mib) <= 64 << 20 and chosen(mib) == best(cands, 64 << 20)[2],
              f"memory = {size} limits to 64 MiB: {mib['schedule_auto']}")


def t_nothing_fits(args):
    src = source(args, False)
    cands = candidates(args, src)
    least = min(cands.items(), key=lambda kv: kv[1][1])
    limit = least[1][1] - 1
    out = os.path.join(args.work, "refused.plan")
    r = run(args, "build", src, "-o", out, "--set", f"memory={limit}")
    print(r.stderr.strip())
    check(r.returncode != 0, "an impossible limit is refused with a non-zero exit")
    check("nothing fits in" in r.stderr and "per stage device: the smallest plan" in r.stderr, r.stderr)
    sched, m, rc = least[0]
    check(f"{sched} with {m} micro-batch" in r.stderr and ("and recompute" in r.stderr) == rc,
          f"the message names the smallest plan {least[0]}: {r.stderr}")
    check(not os.path.exists(out), "no plan file is written")


def t_explicit(args):
    gpt = os.path.join(args.examples, "gpt.pml")
    p = plan(args, gpt)
    n = need(p)
    plan(args, gpt, f"memory={n}")  # exactly enough fits
    out = os.path.join(args.work, "over.plan")
    r = run(args, "build", gpt, "-o", out, "--set", f"memory={n - 1}")
    print(r.stderr.strip())
    check(r.returncode != 0, "a schedule over the limit is refused with a non-zero exit")
    check("needs" in r.stderr and f"over memory = " in r.stderr and "per stage device" in r.stderr, r.stderr)
    check(r.stderr.startswith("--set:1:1: error: stage "), f"the error names the stage and where: {r.stderr}")
    check(not os.path.exists(out), "no plan file is written")


def t_trains(args):
    src = source(args, True)
    common = ["--steps", "3", "--quiet", "--set", "batch=16", "--set", "T=16"]
    p = plan(args, src, "batch=16", "T=16")
    sched = p["schedule"]
    check(p["schedule_auto"] and sched in SCHEDULES, f"auto chose {sched}")

    def train(name, *sets):
        out = os.path.join(args.work, name)
        r = run(args, "train", src, "--out", out, *common, *sets)
        check(r.returncode == 0, f"{name}: exit {r.returncode}: {r.stderr}")
        with open(os.path.join(out, "model.safetensors"), "rb") as f:
            return f.read()

    auto = train("auto")
    explicit = train("explicit", "--set", f"schedule={sched}")
    check(auto == explicit, f"schedule = auto trains other weights than schedule = {sched}, which it chose")
    print(f"auto chose {sched}: the same weights, bit for bit, after 3 steps")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pmlc")
    ap.add_argument("--examples")
    ap.add_argument("--work")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("name", nargs="?")
    args = ap.parse_args()
    if args.list:
        print("\n".join(TESTS))
        return 0
    os.makedirs(args.work, exist_ok=True)
    fn = [t_fastest, t_limit, t_nothing_fits, t_explicit, t_trains][TESTS.index(args.name)]
    try:
        fn(args)
    except Fail as e:
        print("FAIL:", e)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
