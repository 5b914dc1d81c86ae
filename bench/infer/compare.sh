#!/usr/bin/env bash
# bench/infer/compare.sh — PML's inference latency against ONNX Runtime's on the CPU, on
# exactly the same model: each model is trained a step, exported with `pmlc export`, and
# both run it on the same rows.
#
#   bench/infer/compare.sh [PMLC] [REPS]
#
# PMLC defaults to build/tools/pmlc/pmlc, REPS (interleaved repetitions) to 3.
# ONNX Runtime comes from PyPI into a virtual environment made once (PML_ONNX_VENV,
# default ~/.cache/pml/onnx: the one scripts/test makes for the export tests).
#
# Models: `wide` (an MLP 256 -> 1024 -> 1024 -> 16, the shape of issue 19's table), the
# MLP example (784 -> 512 -> 512 -> 10) and the GPT example's forward (T = 64), each as
# one stage on the CPU. Rows per call: 1, 8, 32, 256 (PML_BENCH_ROWS), each an export
# of its own (`--set batch=R --set microbatches=1`: one micro-batch of R rows, the
# batch size ONNX gets). Threads: 1 and 2 (PML_BENCH_THREADS). For each cell, per
# repetition: `pmlc infer --bench --threads T` (one micro-batch a call, at least 1 s)
# and ort_bench.py (intra-op threads T); median latency per call, the median over the
# repetitions, and PML / ORT (below 1: PML is faster; the goal is <= 1.0).
# Both run with OMP_WAIT_POLICY=PASSIVE unless it is set (oneDNN's OpenMP threads
# otherwise spin at every barrier, which on a shared machine costs more than it saves).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
reps=${2:-3}
venv=${PML_ONNX_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pml/onnx}
rows_list=${PML_BENCH_ROWS:-"1 8 32 256"}
threads_list=${PML_BENCH_THREADS:-"1 2"}
models=${PML_BENCH_MODELS:-"wide mlp gpt"}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

py=$venv/bin/python
if ! "$py" -c 'import onnxruntime, numpy' 2>/dev/null; then
    echo "compare.sh: installing onnxruntime from PyPI into $venv (once)" >&2
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet onnxruntime onnx numpy ||
        { echo "compare.sh: cannot install onnxruntime into $venv" >&2; exit 1; }
fi

cat > "$tmp/wide.pml" <<'PML'
import "nn"
model wide(x: f32[B, 256]) -> f32[B, 16] {
    h = gelu(linear(x, 1024) as fc1)
    h = gelu(linear(h, 1024) as fc2)
    return linear(h, 16) as head
}
train wide {
    data = classes(features = 256, classes = 16, seed = 1)
    loss = cross_entropy
    optimizer = adamw(lr = 3e-4)
    batch = 32, microbatches = 1
    steps = 1
}
PML
file_of() { case $1 in wide) echo "$tmp/wide.pml" ;; *) echo "$root/examples/$1.pml" ;; esac; }
rows_file() { # MODEL ROWS OUT: random rows the model takes
    "$py" - "$1" "$2" "$3" <<'PY'
import sys, numpy as np
m, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = np.random.default_rng(1)
x = r.integers(0, 65, (n, 64)).astype(np.int32) if m == "gpt" else r.standard_normal((n, {"wide": 256}.get(m, 784))).astype(np.float32)
np.save(out, x)
PY
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; $(date -u +%F); onnxruntime $("$py" -c 'import onnxruntime; print(onnxruntime.__version__)')"
printf '%-6s %5s %3s %10s %10s %8s\n' model rows thr "PML ms" "ORT ms" PML/ORT
for m in $models; do
    f=$(file_of "$m")
    "$pmlc" train "$f" --set place=cpu --steps 1 --quiet --out "$tmp/$m.w" >/dev/null
    for r in $rows_list; do
        set_rows=(--set place=cpu --set "batch=$r" --set microbatches=1)
        "$pmlc" export "$f" "${set_rows[@]}" --weights "$tmp/$m.w" -o "$tmp/$m.$r.onnx" --quiet
        rows_file "$m" "$r" "$tmp/$m.$r.npy"
        for th in $threads_list; do
            : > "$tmp/pml"; : > "$tmp/ort"
            for _ in $(seq "$reps"); do
                "$pmlc" infer "$f" "${set_rows[@]}" --weights "$tmp/$m.w" --input "$tmp/$m.$r.npy" --bench \
                    --threads "$th" --backend cpu --quiet | awk '/^latency/ {print $5}' >> "$tmp/pml"
                "$py" "$here/ort_bench.py" "$tmp/$m.$r.onnx" "$tmp/$m.$r.npy" "$th" | awk '{print $1}' >> "$tmp/ort"
            done
            p=$(median < "$tmp/pml"); o=$(median < "$tmp/ort")
            printf '%-6s %5s %3s %10.3f %10.3f %8.2f\n' "$m" "$r" "$th" "$p" "$o" "$(echo "$p / $o" | bc -l)"
        done
    done
done
