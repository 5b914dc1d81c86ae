#!/usr/bin/env python3
"""bench/cpu_train/ops.py — where a training step's time goes, op by op, from a
`pmlc train --trace` timeline (its op spans cover steps 2-5 of the run).

    bench/cpu_train/ops.py TRACE.json [TOP]

Prints, per step (the mean over the steps with op spans), the stages' work (forward
and backward spans, and the units run outside them: deferred weight gradients and the
optimizer updates; not the waits at the step's barrier), then the time of each kind of
op (the op the backend ran, "fused kernel" for a fused kernel of the plan, "update"
for the optimizer) and the TOP (default 15) costliest units by op, pass and shape,
each with its wall-clock time, its CPU time (the stage thread's) and its share of the
ops' CPU time, and where the stage had a pool, its other threads' CPU time in the same
units ("op_thread" spans): beside the stage thread's, how well an op split. On a machine
shared with other work the wall-clock spans include time the stage thread was not
running; the CPU times do not. It reads `pmlc infer --trace` timelines too (a step is
then a traced forward)."""
import bisect
import collections
import json
import sys

path = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
events = json.load(open(path))["traceEvents"]
ops = [e for e in events if e.get("cat") == "op"]
if not ops:
    sys.exit(f"{path}: no op spans (a trace of a run of 2 steps or more, on a backend that times its ops)")
steps = sorted({e["args"]["step"] for e in ops})
# The stages' work: their forward and backward spans, and the units that run outside
# them (weight gradients deferred to the step's end, updates), but not the waits at the
# step's barrier that a step span also holds.
spans = collections.defaultdict(list)
for e in events:
    if e.get("cat") in ("fwd", "bwd") and e["args"]["step"] in steps:
        spans[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
for v in spans.values():
    v.sort()


def inside(e):
    v = spans[(e["pid"], e["tid"])]
    i = bisect.bisect_right(v, (e["ts"], float("inf"))) - 1
    return i >= 0 and e["ts"] + e["dur"] <= v[i][1] + 1e-3


work = (sum(b - a for v in spans.values() for a, b in v) + sum(e["dur"] for e in ops if not inside(e))) / len(steps)
has_cpu = all("cpu_us" in e["args"] for e in ops)
wall_by, cpu_by = collections.defaultdict(collections.Counter), collections.defaultdict(collections.Counter)
helper_by = collections.defaultdict(collections.Counter)
helpers = [e for e in events if e.get("cat") == "op_thread"]
for e in ops + helpers:
    kind = "fused kernel" if e["name"].startswith("fused") else e["name"].split(" ")[0]
    shape = "x".join(str(d) for d in e["args"].get("shape", []))
    for key, table in (("kind", kind), ("unit", (e["name"], e["args"]["pass"], shape))):
        if e["cat"] == "op_thread":
            helper_by[key][table] += e["args"].get("cpu_us", 0) / len(steps)
            continue
        wall_by[key][table] += e["dur"] / len(steps)
        cpu_by[key][table] += e["args"].get("cpu_us", 0) / len(steps)
in_ops = sum(wall_by["kind"].values())
cpu_total = sum(cpu_by["kind"].values())
print(f"{path}: steps {steps[0]}-{steps[-1]}; the stages' work per step {work / 1e3:.2f} ms wall "
      f"({100 * in_ops / work:.1f}% of it in ops; the rest is loss reads, gradient sums, the executor)"
      + (f"; the ops' CPU time {cpu_total / 1e3:.2f} ms" if has_cpu else ""))
# Shares are of the ops' CPU time when the trace has it (robust on a shared machine),
# else of the stages' wall-clock work.
by = cpu_by if has_cpu else wall_by
total = cpu_total if has_cpu else work
share = "CPU share" if has_cpu else "share"


def table(key, title, n):
    extra = f" {'helpers CPU ms':>15}" if helpers else ""
    print(f"\n{title:<58} {'wall ms':>9} {'CPU ms':>9} {share:>10}{extra}")
    for k, us in by[key].most_common(n):
        label = k if isinstance(k, str) else f"{k[0]}, {k[1]}, {k[2]}"
        cpu = f"{cpu_by[key][k] / 1e3:9.2f}" if has_cpu else f"{'-':>9}"
        more = f" {helper_by[key][k] / 1e3:15.2f}" if helpers else ""
        print(f"{label[:58]:<58} {wall_by[key][k] / 1e3:9.2f} {cpu} {100 * us / total:9.1f}%{more}")


table("kind", "op kind (per step)", None)
table("unit", "unit: op, pass, shape (per step)", top)
