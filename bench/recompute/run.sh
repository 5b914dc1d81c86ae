#!/usr/bin/env bash
# bench/recompute/run.sh — what recomputation buys and costs on the GPT example at
# T = 256 (examples/gpt.pml: 4 blocks, width 128, 4 heads; 4 stages, 8 micro-batches of
# 8, 1F1B) trained on the CPU: without it, with `recompute blocks.*.attn` (attention
# only) and with `recompute = true` (every block). Per variant: the plan's kept bytes
# and memory estimate (`pmlc plan --json`: the stages' activations kept, their arenas),
# the added FLOPs, the process's peak resident memory (/usr/bin/time's maximum RSS,
# which holds the weights, the optimizer state and every stage's arena) and the median
# step time.
#
#   bench/recompute/run.sh [PMLC] [STEPS] [REPS]
#
# PMLC defaults to build/tools/pmlc/pmlc, STEPS to 4, REPS to 3. Runs are interleaved
# (every repetition runs all three variants in turn) so load from other processes hits
# them alike; each run skips its first step and takes the median of the rest; the table
# gives the median over repetitions. Threads: PML_BENCH_THREADS (2). precision = f32:
# the example's bf16 is its GPU setting.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
steps=${2:-4}
reps=${3:-3}
threads=${PML_BENCH_THREADS:-2}
py=${PML_BENCH_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

variants="plain attn whole"
line() {
    case $1 in
    plain) echo "" ;;
    attn) echo "    recompute blocks.*.attn" ;;
    whole) echo "    recompute = true" ;;
    esac
}
for v in $variants; do
    sed -e "s/^    T = 64$/    T = 256\n$(line $v)/" -e 's/^    place = \[cuda.*$/    place = [cpu, cpu, cpu, cpu]/' \
        -e 's/^    precision = bf16$/    precision = f32/' "$root/examples/gpt.pml" >"$tmp/$v.pml"
    "$pmlc" plan --json "$tmp/$v.pml" >"$tmp/$v.json"
done

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $threads threads; $steps steps x $reps reps" >&2
for ((r = 1; r <= reps; r++)); do
    for v in $variants; do
        /usr/bin/time -f "%M" -o "$tmp/$v.$r.rss" "$pmlc" train "$tmp/$v.pml" --steps "$steps" --threads "$threads" \
            --quiet --metrics "$tmp/$v.$r.jsonl" >/dev/null
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$py" - "$tmp" "$reps" <<'PY'
import json, statistics, sys
tmp, reps = sys.argv[1], int(sys.argv[2])
names = {"plain": "none", "attn": "`recompute blocks.*.attn`", "whole": "`recompute = true`"}
print("| recompute | kept per micro-batch, all stages (MiB) | arenas, planned (MiB) | added FLOPs | peak RSS (MiB, median) | step (ms, median; range) |")
print("|---|---:|---:|---:|---:|---:|")
base = None
for v in ("plain", "attn", "whole"):
    plan = json.load(open(f"{tmp}/{v}.json"))
    kept = sum(s["activation_bytes"] for s in plan["stages"]) / 2**20
    arena = sum(s["memory"]["arena_bytes"] for s in plan["stages"]) / 2**20
    work = sum(s["fwd_flops"] + s["bwd_flops"] for s in plan["stages"])
    extra = sum((s["recompute"] or {}).get("flops", 0) for s in plan["stages"])
    rss = statistics.median(int(open(f"{tmp}/{v}.{r}.rss").read().split()[-1]) / 1024 for r in range(1, reps + 1))
    runs = []
    for r in range(1, reps + 1):
        ms = [json.loads(l)["step_ms"] for l in open(f"{tmp}/{v}.{r}.jsonl") if "step_ms" in l]
        runs.append(statistics.median(ms[1:]))
    print(f"| {names[v]} | {kept:.1f} | {arena:.1f} | +{100 * extra / work:.0f}% | {rss:.0f} "
          f"| {statistics.median(runs):.0f} ({min(runs):.0f}-{max(runs):.0f}) |")
PY
