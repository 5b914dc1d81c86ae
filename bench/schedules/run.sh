#!/usr/bin/env bash
# bench/schedules/run.sh — the pipeline schedules side by side on the GPT example with
# 4 stages (examples/gpt.pml with LAYERS blocks; 8 micro-batches of 8, T = 64, f32, on
# the CPU): 1F1B, ZB-H1 (zero_bubble), interleaved 1F1B, ZB-V (zero_bubble_v) and
# DualPipeV (dualpipe_v), the last three as `place = auto(stages = 4, chunks = 2)`. Per
# schedule: the plan's analytic and simulated bubble (`pmlc plan`), then from `pmlc
# train --trace`: the median step (wall ms, steps after the first), the process's CPU
# time (user + system, s) and the measured bubble (the trace's
# otherData.measured_bubble: 1 − busy / (stage devices × step), mean over the traced
# steps).
#
#   bench/schedules/run.sh [PMLC] [LAYERS] [STEPS] [REPS]
#
# PMLC defaults to build/tools/pmlc/pmlc, LAYERS to 8 (the 4-block example cuts into 8
# chunks unevenly), STEPS to 8, REPS to 3. Runs are interleaved (every repetition runs
# every schedule in turn) so the machine's load hits them alike; the table gives medians
# over repetitions and the range. Threads: PML_BENCH_THREADS (default: one per stage
# device, 4, so that the schedule and not the cores decides who waits).
#
# PML_BENCH_RANKS=N runs each training as N MPI ranks (mpirun, or PML_BENCH_MPIRUN),
# each with PML_BENCH_THREADS / N threads, a rank running whole stage devices (with
# chunks, every chunk of each); the measured bubble is then over replica 0's stage
# devices on one clock, the CPU time mpirun's children's. PML_BENCH_STAGES (default 4)
# sets the stage devices and PML_BENCH_SCHEDULES (default all five) which schedules run.
# PML_BENCH_PICTURES=DIR keeps the last repetition's picture of each schedule's median
# step (`pmlc train --timeline`) as DIR/SCHEDULE.svg, beside its simulated timetable
# (`pmlc plan --timeline`) as DIR/SCHEDULE.plan.svg.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
layers=${2:-8}
steps=${3:-8}
reps=${4:-3}
stages=${PML_BENCH_STAGES:-4}
threads=${PML_BENCH_THREADS:-$stages}
ranks=${PML_BENCH_RANKS:-0}
launch=()
if ((ranks > 0)); then
    launch=("${PML_BENCH_MPIRUN:-mpirun}" --oversubscribe -np "$ranks")
    ((EUID == 0)) && launch+=(--allow-run-as-root)
    threads=$((threads / ranks > 0 ? threads / ranks : 1))
fi
py=${PML_BENCH_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

scheds=${PML_BENCH_SCHEDULES:-"1f1b zero_bubble interleaved_1f1b zero_bubble_v dualpipe_v"}
for s in $scheds; do
    place="place = auto(stages = $stages)"
    case $s in interleaved_1f1b | zero_bubble_v | dualpipe_v) place="place = auto(stages = $stages, chunks = 2)" ;; esac
    sed -e "s/^const LAYERS = 4$/const LAYERS = $layers/" -e "s/^    place = auto(stages = 4)$/    $place/" \
        -e "s/^    schedule = 1f1b$/    schedule = $s/" -e 's/^    place = \[cuda.*$/    place = cpu/' \
        -e 's/^    precision = bf16$/    precision = f32/' "$root/examples/gpt.pml" >"$tmp/$s.pml"
    pictures=()
    [ -n "${PML_BENCH_PICTURES:-}" ] && mkdir -p "$PML_BENCH_PICTURES" && pictures=(--timeline "$PML_BENCH_PICTURES/$s.plan.svg")
    "$pmlc" plan "$tmp/$s.pml" "${pictures[@]}" | grep '^  bubble' | sed "s/^/$s: /" >"$tmp/$s.plan"
done

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $stages stage devices; $threads threads$( ((ranks > 0)) && echo " per rank, $ranks ranks"); $layers blocks; $steps steps x $reps reps" >&2
for ((r = 1; r <= reps; r++)); do
    for s in $scheds; do
        /usr/bin/time -f "%U %S" -o "$tmp/$s.$r.cpu" "${launch[@]}" "$pmlc" train "$tmp/$s.pml" --steps "$steps" --threads "$threads" \
            --quiet --metrics "$tmp/$s.$r.jsonl" --trace "$tmp/$s.$r.trace.json" --out "$tmp/out" \
            ${PML_BENCH_PICTURES:+--timeline "$PML_BENCH_PICTURES/$s.svg"} >/dev/null
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$py" - "$tmp" "$reps" "$scheds" <<'PY'
import json, re, statistics, sys
tmp, reps, scheds = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
names = {"1f1b": "1F1B", "zero_bubble": "ZB-H1", "interleaved_1f1b": "interleaved, V = 2", "zero_bubble_v": "ZB-V",
         "dualpipe_v": "DualPipeV"}
print("| schedule | analytic | simulated | step (ms, median; range) | CPU s per run (median) | measured bubble (median; range) |")
print("|---|---:|---:|---:|---:|---:|")
for s in scheds:
    plan = open(f"{tmp}/{s}.plan").read()
    analytic, simulated = re.search(r"([\d.]+)% analytic, ([\d.]+)% simulated", plan).groups()
    steps, cpus, bubbles = [], [], []
    for r in range(1, reps + 1):
        ms = [json.loads(l)["step_ms"] for l in open(f"{tmp}/{s}.{r}.jsonl") if "step_ms" in l]
        steps.append(statistics.median(ms[1:]))
        u, k = open(f"{tmp}/{s}.{r}.cpu").read().split()[-2:]
        cpus.append(float(u) + float(k))
        bubbles.append(100 * json.load(open(f"{tmp}/{s}.{r}.trace.json"))["otherData"]["measured_bubble"])
    print(f"| {names[s]} | {analytic}% | {simulated}% | {statistics.median(steps):.0f} ({min(steps):.0f}-{max(steps):.0f}) "
          f"| {statistics.median(cpus):.2f} | {statistics.median(bubbles):.1f}% ({min(bubbles):.1f}-{max(bubbles):.1f}) |")
PY
