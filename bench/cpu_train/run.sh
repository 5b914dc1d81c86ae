#!/usr/bin/env bash
# bench/cpu_train/run.sh — median CPU training step time of examples/mlp.pml and
# examples/gpt.pml under a few --threads settings.
#
#   bench/cpu_train/run.sh [PMLC] [STEPS]
#
# PMLC defaults to build/tools/pmlc/pmlc, STEPS to 10. Each run is
# `pmlc train --set place=cpu --steps STEPS --threads N --quiet --metrics M.jsonl`;
# the first step is warm-up and skipped; the table gives the median step_ms of the rest
# and the samples/s that implies (batch / median step). Extra configurations can be
# given as PML_BENCH_CONFIGS="name|file|--set k=v ...;..." .
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
steps=${2:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

configs=${PML_BENCH_CONFIGS:-"mlp|examples/mlp.pml|;gpt|examples/gpt.pml|"}
threads_list=${PML_BENCH_THREADS:-"1 2"}

printf '%-6s %-8s %8s %12s %12s\n' model threads steps median_ms samples/s
IFS=';' read -ra cfgs <<<"$configs"
for cfg in "${cfgs[@]}"; do
    IFS='|' read -r name file extra <<<"$cfg"
    for th in $threads_list; do
        m="$tmp/$name-$th.jsonl"
        # shellcheck disable=SC2086
        "$pmlc" train "$root/$file" --set place=cpu $extra --steps "$steps" --threads "$th" --quiet --metrics "$m" >/dev/null
        python3 - "$m" "$name" "$th" <<'PY'
import json, statistics, sys
path, name, th = sys.argv[1:4]
recs = [json.loads(l) for l in open(path) if l.strip()]
rest = recs[1:] if len(recs) > 1 else recs
med = statistics.median(r["step_ms"] for r in rest)
# samples/s as the runtime reports it, median over the same steps
sps = statistics.median(r["samples_per_s"] for r in rest)
print(f"{name:<6} {th:<8} {len(rest):>8} {med:>12.1f} {sps:>12.1f}")
PY
    done
done
