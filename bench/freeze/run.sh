#!/usr/bin/env bash
# bench/freeze/run.sh — does freezing buy what the cost model says? Median training step
# time of one deep residual MLP (a stem and 8 layers, one stage) with 0, 25, 50 and 75%
# of its layers frozen (the stem and the first 0, 2, 4, 6 layers: a frozen prefix, so no
# input gradient is computed below it), against the cost model's prediction: the plan's
# forward + backward FLOPs per step (`pmlc plan --json`) without the freeze over with it.
# Then one run with the freeze scheduled (`after` 25/50/75% of its steps), to show that
# the runtime removes the work at each boundary: its median step time per phase.
#
#   bench/freeze/run.sh [PMLC] [STEPS] [REPS]
#
# PMLC defaults to build/tools/pmlc/pmlc, STEPS to 10, REPS to 5. Static runs are
# interleaved (every repetition runs all four fractions in turn) so load from other
# processes hits them alike; each run skips its first step and takes the median of the
# rest; the table gives the median over repetitions. Threads: PML_BENCH_THREADS (2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
steps=${2:-10}
reps=${3:-5}
threads=${PML_BENCH_THREADS:-2}
py=${PML_BENCH_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

model() { # $1: freeze line(s)
    cat <<PML
import "nn"
fn residual(x, hidden) { return x + mlp(layernorm(x) as norm, hidden) as mlp }
model deep(x: f32[B, 256]) -> f32[B, 10] {
    h = gelu(linear(x, 512) as stem)
    repeat 8 { h = residual(h, 1024) as layers }
    return linear(layernorm(h) as norm, 10) as head
}
train deep {
    data = classes(features = 256, classes = 10)
    loss = cross_entropy
    optimizer = sgd(lr = 0.01, momentum = 0.9)
    batch = 256, microbatches = 4
    steps = 1000
    $1
}
PML
}

fracs="0 25 50 75"
for f in $fracs; do
    k=$((f * 8 / 100))
    if ((k == 0)); then line=""; else line="freeze stem, layers.[0-$((k - 1))]"; fi
    model "$line" >"$tmp/f$f.pml"
    "$pmlc" plan --json "$tmp/f$f.pml" >"$tmp/f$f.json"
done
model "freeze stem, layers.[0-1] after $steps steps
    freeze layers.[2-3] after $((2 * steps)) steps
    freeze layers.[4-5] after $((3 * steps)) steps" >"$tmp/sched.pml"

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $threads threads; $steps steps x $reps reps" >&2
for ((r = 1; r <= reps; r++)); do
    for f in $fracs; do
        "$pmlc" train "$tmp/f$f.pml" --steps "$steps" --threads "$threads" --quiet --metrics "$tmp/f$f.$r.jsonl" >/dev/null
    done
done
"$pmlc" train "$tmp/sched.pml" --steps $((4 * steps)) --threads "$threads" --quiet --metrics "$tmp/sched.jsonl" >/dev/null
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$py" - "$tmp" "$reps" "$steps" <<'PY'
import json, statistics, sys
tmp, reps, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def flops(f):
    plan = json.load(open(f"{tmp}/f{f}.json"))
    return sum(s["fwd_flops"] + s["bwd_flops"] for s in plan["stages"])
def step_ms(path):
    rows = [json.loads(l) for l in open(path)]
    return [r["step_ms"] for r in rows if "step_ms" in r]
base_flops = flops(0)
med, runs = {}, {}
for f in (0, 25, 50, 75):
    runs[f] = [statistics.median(step_ms(f"{tmp}/f{f}.{r}.jsonl")[1:]) for r in range(1, reps + 1)]
    med[f] = statistics.median(runs[f])
print("| frozen | flops/step (M) | predicted speed-up | step (ms, median; runs' range) | measured speed-up | measured / predicted |")
print("|---:|---:|---:|---:|---:|---:|")
for f in (0, 25, 50, 75):
    pred, meas = base_flops / flops(f), med[0] / med[f]
    print(f"| {f}% | {flops(f) * 4 / 1e6:.0f} | {pred:.2f}x | {med[f]:.1f} ({min(runs[f]):.0f}-{max(runs[f]):.0f}) "
          f"| {meas:.2f}x | {100 * meas / pred:.0f}% |")
ms = step_ms(f"{tmp}/sched.jsonl")
print()
print("| scheduled run, phase | steps | step (ms, median) | static run of that fraction (ms) |")
print("|---|---:|---:|---:|")
for i, f in enumerate((0, 25, 50, 75)):
    part = ms[i * steps + 1:(i + 1) * steps]  # the first step of each phase is left out
    print(f"| {f}% frozen | {i * steps + 1}-{(i + 1) * steps} | {statistics.median(part):.1f} | {med[f]:.1f} |")
PY
