#!/usr/bin/env bash
# bench/infer/int8.sh — `pmlc infer --bench` of the same model with its f32 weights and
# with their `pmlc quantize` file (int8 products), side by side.
#
#   bench/infer/int8.sh [PMLC] [REPS]
#
# PMLC defaults to build/tools/pmlc/pmlc, REPS (interleaved repetitions) to 5. Models:
# the MLP example (784 -> 512 -> 512 -> 10, two stages), the wide MLP of
# bench/precision (1024 -> 4 x 1024 -> 16, one stage) and the GPT example's forward
# (PML_BENCH_MODELS, default all three), each trained 20 steps (the values
# of the weights do not change the time) and quantized. Rows per call: 1 and 32
# (PML_BENCH_ROWS; `--set batch=R --set microbatches=1`: one micro-batch of R rows a
# call), threads: 1 (PML_BENCH_THREADS). Per cell and repetition, f32 then int8, each
# `pmlc infer --bench` (at least 1 s of calls): the median wall and CPU time per call;
# printed: the medians over the repetitions and f32 / int8 (above 1: int8 is faster).
# OMP_WAIT_POLICY=PASSIVE unless set (oneDNN's OpenMP threads otherwise spin).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
reps=${2:-5}
rows_list=${PML_BENCH_ROWS:-"1 32"}
threads_list=${PML_BENCH_THREADS:-"1"}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A src=([mlp]=$root/examples/mlp.pml [wide]=$root/bench/precision/wide_mlp.pml [gpt]=$root/examples/gpt.pml)
declare -A feat=([mlp]=784 [wide]=1024 [gpt]=64) # gpt: 64 tokens a row

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
printf '%-5s %5s %7s  %12s %12s %7s  %12s %12s %7s\n' model rows threads "f32 wall ms" "int8 wall ms" ratio \
       "f32 cpu ms" "int8 cpu ms" ratio
for m in ${PML_BENCH_MODELS:-mlp wide gpt}; do
    "$pmlc" train "${src[$m]}" --set place=cpu --steps 20 --set lr_schedule=constant --out "$tmp/$m" --quiet
    "$pmlc" quantize "${src[$m]}" --weights "$tmp/$m" -o "$tmp/$m.q.safetensors" >/dev/null 2>&1
    for rows in $rows_list; do
        python3 -c "
import random, sys
sys.path.insert(0, '$root/tests/lib')
from npy_files import write_npy
r, f = $rows, ${feat[$m]}
rnd = random.Random(1)
if '$m' == 'gpt':
    write_npy('$tmp/x.npy', [r, f], [rnd.randrange(65) for _ in range(r * f)], 'i')
else:
    write_npy('$tmp/x.npy', [r, f], [rnd.gauss(0, 1) for _ in range(r * f)])"
        for threads in $threads_list; do
            : >"$tmp/f32.wall" ; : >"$tmp/f32.cpu" ; : >"$tmp/int8.wall" ; : >"$tmp/int8.cpu"
            for _ in $(seq "$reps"); do
                for kind in f32 int8; do
                    w=$tmp/$m
                    [ "$kind" = int8 ] && w=$tmp/$m.q.safetensors
                    out=$("$pmlc" infer "${src[$m]}" --weights "$w" --input "$tmp/x.npy" --bench --quiet \
                          --threads "$threads" --set place=cpu --set batch="$rows" --set microbatches=1)
                    line=$(grep 'latency per micro-batch' <<<"$out")
                    sed -E 's/.*median ([0-9.]+) ms, p90.*/\1/' <<<"$line" >>"$tmp/$kind.wall"
                    sed -E 's/.*cpu median ([0-9.]+) ms.*/\1/' <<<"$line" >>"$tmp/$kind.cpu"
                done
            done
            fw=$(median <"$tmp/f32.wall"); iw=$(median <"$tmp/int8.wall")
            fc=$(median <"$tmp/f32.cpu"); ic=$(median <"$tmp/int8.cpu")
            printf '%-5s %5s %7s  %12.3f %12.3f %7.2f  %12.3f %12.3f %7.2f\n' "$m" "$rows" "$threads" "$fw" "$iw" \
                   "$(awk "BEGIN {print $fw / $iw}")" "$fc" "$ic" "$(awk "BEGIN {print $fc / $ic}")"
        done
    done
done
