#!/usr/bin/env bash
# bench/ranks/run.sh — training throughput of one model as 1, 2 and 4 processes
# (pipeline only: each rank runs a contiguous share of the stages; and 2 replicas of
# 2-rank pipelines), against the single-process run, and the share of each rank's
# step time spent waiting in transport.
#
#   bench/ranks/run.sh [PMLC] [STEPS]
#
# PMLC defaults to build/tools/pmlc/pmlc (built with MPI), STEPS to 12. The model is
# examples/gpt.pml (4 stages) unless PML_BENCH_MODEL names another; PML_BENCH_SET adds
# --set options (e.g. "--set batch=32"); PML_BENCH_RANKS lists the runs (default
# "1 2 4 4x2"): N ranks of one pipeline, or NxR for N ranks as R data-parallel
# replicas. Each run is `pmlc train --steps STEPS --quiet --metrics M --trace T`, under
# `mpirun --oversubscribe -np N` for N > 1 — or, with PML_BENCH_LAUNCH=tcp, as N
# processes started as torchrun starts them (RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
# MASTER_ADDR=127.0.0.1, a free MASTER_PORT), meeting over TCP — with the machine's
# CPUs shared among the ranks (pmlc's default; PML_BENCH_THREADS gives each rank
# --threads). The first two steps are warm-up and skipped; the table
# gives the median step time, the samples/s it implies, and each rank's transport
# wait as the trace's otherData reports it (time its stages spent blocked in receives
# over stages × step time, the mean of every step but the first; rank 0 first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
steps=${2:-12}
model=${PML_BENCH_MODEL:-$root/examples/gpt.pml}
read -ra extra <<<"${PML_BENCH_SET:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

printf '%-6s %8s %12s %12s  %s\n' ranks steps median_ms samples/s 'wait% per rank'
for run in ${PML_BENCH_RANKS:-1 2 4 4x2}; do
    n=${run%x*} r=1
    [ "$run" != "$n" ] && r=${run#*x}
    m="$tmp/m$run.jsonl" t="$tmp/t$run.json"
    cmd=("$pmlc" train "$model" "${extra[@]}" --set place=cpu --steps "$steps" --quiet --metrics "$m" --trace "$t"
        --replicas "$r")
    [ -n "${PML_BENCH_THREADS:-}" ] && cmd+=(--threads "$PML_BENCH_THREADS")
    if [ "$n" -eq 1 ]; then
        "${cmd[@]}" >/dev/null
    elif [ "${PML_BENCH_LAUNCH:-mpi}" = tcp ]; then
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        pids=()
        for ((k = 0; k < n; k++)); do
            RANK=$k WORLD_SIZE=$n LOCAL_RANK=$k LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
                "${cmd[@]}" >/dev/null &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid"; done
    else
        "${mpirun[@]}" -np "$n" "${cmd[@]}" >/dev/null
    fi
    python3 - "$m" "$t" "$run" <<'PY'
import json, statistics, sys
metrics, trace, n = sys.argv[1:4]
recs = [json.loads(l) for l in open(metrics) if l.strip()]
rest = recs[2:] if len(recs) > 2 else recs
med = statistics.median(r["step_ms"] for r in rest)
sps = statistics.median(r["samples_per_s"] for r in rest)
wait = "/".join(f"{100 * r['transport_wait']:.0f}" for r in json.load(open(trace))["otherData"]["ranks"])
print(f"{n:<6} {len(rest):>8} {med:>12.1f} {sps:>12.1f}  {wait}")
PY
done
