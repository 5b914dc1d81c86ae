#!/usr/bin/env bash
# bench/attention/ab.sh — the GPT example with the fused attention primitive against a
# pmlc without it (or any two pmlc binaries), on the CPU at one thread, interleaved:
#
#   bench/attention/ab.sh PMLC_A PMLC_B [REPS]
#
# Per repetition, A then B:
#   train  `pmlc train examples/gpt.pml --set place=cpu --steps 20 --threads 1`: the
#          median step_ms of its metrics (steps 3..20: the first two warm up), and the
#          user CPU seconds of the whole run (/usr/bin/time);
#   infer  `pmlc infer --bench --threads 1` of the GPT example's forward at 1, 8 and 32
#          rows (one micro-batch of R rows a call, weights trained a step): its median
#          latency per call.
# Prints each binary's median over the repetitions and B / A. REPS defaults to 3. Each
# binary reads its own stdlib (the one its build was configured from).
set -euo pipefail
a=$1 b=$2 reps=${3:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
gpt=$root/examples/gpt.pml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
python3 - "$tmp" "$root/tests/lib" <<'PY'
import random, sys
sys.path.insert(0, sys.argv[2])
from npy_files import write_npy
r = random.Random(1)
for n in (1, 8, 32):
    write_npy(f"{sys.argv[1]}/x{n}.npy", (n, 64), [r.randrange(65) for _ in range(n * 64)], "i")
PY
for side in a b; do
    exe=${!side}
    "$exe" train "$gpt" --set place=cpu --steps 1 --quiet --out "$tmp/$side.w" > /dev/null
done
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; $(date -u '+%F %H:%M'); load $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$reps"); do
    for side in a b; do
        exe=${!side}
        /usr/bin/time -f %U -o "$tmp/user" "$exe" train "$gpt" --set place=cpu --steps 20 --threads 1 --quiet \
            --metrics "$tmp/m.jsonl" > /dev/null
        cat "$tmp/user" >> "$tmp/$side.user"
        python3 -c "
import json, statistics, sys
r = [json.loads(l) for l in open(sys.argv[1]) if 'step_ms' in l][2:]
print(statistics.median(x['step_ms'] for x in r))" "$tmp/m.jsonl" >> "$tmp/$side.step"
        for n in 1 8 32; do
            "$exe" infer "$gpt" --set place=cpu --set "batch=$n" --set microbatches=1 --weights "$tmp/$side.w" \
                --input "$tmp/x$n.npy" --bench --threads 1 --backend cpu --quiet | awk '/^latency/ {print $5}' \
                >> "$tmp/$side.infer$n"
        done
    done
done
printf '%-24s %10s %10s %8s\n' measure A B B/A
row() { local x y; x=$(median < "$tmp/a.$1"); y=$(median < "$tmp/b.$1"); printf '%-24s %10.3f %10.3f %8.3f\n' "$2" "$x" "$y" "$(echo "$y / $x" | bc -l)"; }
row step "train step_ms (median)"
row user "train 20 steps, user s"
for n in 1 8 32; do row "infer$n" "infer ms/call, $n rows"; done
