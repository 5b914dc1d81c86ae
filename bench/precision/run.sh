#!/bin/sh
# bench/precision/run.sh — bf16 vs f32 training steps, interleaved (README.md).
# Usage: bench/precision/run.sh [PMLC] [ROUNDS]   (from the repository root)
# Per model and precision, each round trains S1 and S2 steps; per-step CPU time (user +
# sys) and wall time are (t(S2) - t(S1)) / (S2 - S1), so compiling, start-up and the
# first step's allocations cancel. Prints every round, then medians and max RSS.
set -eu
PMLC=${1:-build/tools/pmlc/pmlc}
ROUNDS=${2:-3}
PY=/usr/bin/python3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
one() { # name file precision steps -> "cpu wall rss" of one run
    /usr/bin/time -f "%U %S %e %M" -o "$out/t" "$PMLC" train "$2" --set precision="$3" --set steps="$4" \
        --set place=cpu >/dev/null 2>"$out/log" || { cat "$out/log" >&2; exit 1; }
    awk '{printf "%.3f %.3f %d\n", $1 + $2, $3, $4}' "$out/t"
}
for r in $(seq "$ROUNDS"); do
    for m in "wide bench/precision/wide_mlp.pml 10 30" "gpt examples/gpt.pml 30 50"; do
        set -- $m
        for p in f32 bf16; do
            a=$(one "$1" "$2" "$p" "$3"); b=$(one "$1" "$2" "$p" "$4")
            echo "$a $b" | awk -v n="$1" -v p="$p" -v d=$(($4 - $3)) -v r="$r" \
                '{printf "round %d %-4s %-4s cpu_ms/step %.1f wall_ms/step %.1f maxrss_MiB %.0f\n", r, n, p, 1000*($4-$1)/d, 1000*($5-$2)/d, $6/1024}'
        done
    done
    if $PY -c 'import torch' 2>/dev/null; then
        for p in f32 bf16; do
            $PY bench/precision/torch_wide_mlp.py "$p" 20 "${PML_THREADS:-2}" |
                awk -v r="$r" '{printf "round %d wide torch-%s cpu_ms/step %.1f wall_ms/step %.1f\n", r, $2, 1000*$5/$3, 1000*$7/$3}'
        done
    fi
done | tee "$out/all"
echo "medians over $ROUNDS rounds:"
awk '{k=$3" "$4; c[k]=c[k]" "$6; w[k]=w[k]" "$8; if ($10) m[k]=$10} END {for (k in c) print k, c[k], "|", w[k], "|", m[k]}' "$out/all" |
    sort | while read -r model prec rest; do
        cpu=$(echo "$rest" | cut -d'|' -f1 | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        wall=$(echo "$rest" | cut -d'|' -f2 | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        rss=$(echo "$rest" | cut -d'|' -f3 | tr -d ' ')
        echo "$model $prec cpu_ms/step $cpu wall_ms/step $wall maxrss_MiB ${rss:--}"
    done
