#!/usr/bin/env python3
"""bench/cpu_train/ops.py — where a training step's time goes, op by op, from a
`pmlc train --trace` timeline (its op spans cover steps 2-5 of the run).

    bench/cpu_train/ops.py TRACE.json [TOP]

Prints, per step (the mean over the steps with op spans), the stages' work (forward
and backward spans, and the units run outside them: deferred weight gradients and the
optimizer updates; not the waits at the step's barrier), then the time of each kind of
op (the op the backend ran, "fused kernel" for a fused kernel of the plan, "update"
for the optimizer) and the TOP (default 15) costliest units by op, pass and shape,
each with its share of the stages' work. Times are wall-clock spans: on a machine
shared with other work they include time the stage thread was not running."""
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
by_kind, by_unit = collections.Counter(), collections.Counter()
for e in ops:
    kind = "fused kernel" if e["name"].startswith("fused") else e["name"].split(" ")[0]
    by_kind[kind] += e["dur"] / len(steps)
    shape = "x".join(str(d) for d in e["args"].get("shape", []))
    by_unit[(e["name"], e["args"]["pass"], shape)] += e["dur"] / len(steps)
in_ops = sum(by_kind.values())
print(f"{path}: steps {steps[0]}-{steps[-1]}; the stages' work per step {work / 1e3:.2f} ms "
      f"(in ops {in_ops / 1e3:.2f} ms; the rest, {100 * (1 - in_ops / work):.1f}%, is bookkeeping: loss reads, "
      f"accumulating gradients into their sums, the executor)")
print(f"{'op kind':<28} {'ms/step':>9} {'share':>7}")
for kind, us in by_kind.most_common():
    print(f"{kind:<28} {us / 1e3:9.2f} {100 * us / work:6.1f}%")
print(f"\n{'unit (op, pass, shape)':<58} {'ms/step':>9} {'share':>7}")
for (name, pss, shape), us in by_unit.most_common(top):
    print(f"{(name + ', ' + pss + ', ' + shape)[:58]:<58} {us / 1e3:9.2f} {100 * us / work:6.1f}%")
