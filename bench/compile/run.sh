#!/usr/bin/env bash
# bench/compile/run.sh — how long `pmlc check` and `pmlc plan` take on models of 100,
# 1,000 and 10,000 layers: written out statement by statement, and as one `repeat`
# loop. Prints a table of the median of 5 runs (hyperfine when installed, else a
# Python timer). Not part of the test suite.
#
#   bench/compile/run.sh [BUILD_DIR]      (default: build)
#   PML_BENCH_SIZES="100 1000" PML_BENCH_RUNS=3 bench/compile/run.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-build}"
pmlc="$(cd "$build" 2>/dev/null && pwd)/tools/pmlc/pmlc" || true
if [ ! -x "$pmlc" ]; then
    echo "run.sh: no compiler at $build/tools/pmlc/pmlc; build first (scripts/quickstart)" >&2
    exit 2
fi
sizes="${PML_BENCH_SIZES:-100 1000 10000}"
runs="${PML_BENCH_RUNS:-5}"
kinds="${PML_BENCH_KINDS:-mlp transformer}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# median_ms CMD... — median wall time of $runs runs of CMD, in milliseconds. The
# command must succeed; its output is discarded.
median_ms() {
    if command -v hyperfine >/dev/null 2>&1; then
        hyperfine --style none --warmup 1 --runs "$runs" --export-json "$work/h.json" \
            "$(printf '%q ' "$@")" >/dev/null
        python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$work/h.json"
    else
        python3 - "$runs" "$@" <<'PY'
import statistics, subprocess, sys, time
runs, argv = int(sys.argv[1]), sys.argv[2:]
subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)  # warm-up
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    times.append(time.perf_counter() - t0)
print("%.1f" % (statistics.median(times) * 1000))
PY
    fi
}

timer="python timer"
command -v hyperfine >/dev/null 2>&1 && timer="hyperfine"
echo "pmlc: $pmlc ($("$pmlc" --version | head -1)); median of $runs runs, $timer"
echo
printf '%-12s %-10s %8s %10s %12s %12s\n' model form layers lines "check (ms)" "plan (ms)"
printf '%-12s %-10s %8s %10s %12s %12s\n' ------------ ---------- -------- ---------- ------------ ------------
for kind in $kinds; do
    for form in statements repeat; do
        for n in $sizes; do
            file="$work/${kind}_${form}_${n}.pml"
            flag=""
            [ "$form" = repeat ] && flag="--repeat"
            python3 "$root/bench/compile/gen_model.py" "$n" --kind "$kind" $flag -o "$file"
            check="$(median_ms "$pmlc" check "$file")"
            plan="$(median_ms "$pmlc" plan "$file")"
            printf '%-12s %-10s %8s %10s %12s %12s\n' "$kind" "$form" "$n" "$(wc -l < "$file")" "$check" "$plan"
        done
    done
done
