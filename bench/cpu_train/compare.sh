#!/usr/bin/env bash
# bench/cpu_train/compare.sh — PML against PyTorch on the CPU: median training step time
# of the same MLP and GPT (examples/mlp.pml, examples/gpt.pml), same batch shapes, same
# thread count (pmlc --threads N / torch.set_num_threads(N)).
#
#   bench/cpu_train/compare.sh [PMLC] [STEPS] [REPS]
#
# PMLC defaults to build/tools/pmlc/pmlc, STEPS to 8, REPS to 3.
#
# The anchor is today's PyTorch: a 2.x release from PyPI (MKL and oneDNN 3.x inside),
# installed once into a virtual environment this script creates (about 5 GB with its
# dependencies; PML_BENCH_VENV, default ~/.cache/pml/torch2, made with python3 -m venv;
# PML_BENCH_VENV_PYTHON picks the interpreter that makes it). Debian's python3-torch
# (1.13), when /usr/bin/python3 has it, is a second column; PML_BENCH_OLD_PYTHON
# overrides, PML_BENCH_OLD_PYTHON=none drops it.
#
# Columns, each a median step (first step skipped) per run, median over REPS runs:
#   PML           pmlc train --set place=cpu
#   2.x           PyTorch 2.x eager, the whole batch in one step (its natural step)
#   2.x/mb        PyTorch 2.x eager accumulating PML's 8 micro-batches
#   2.x-comp      PyTorch 2.x under torch.compile (inductor), whole batch; "-" if it fails
#   1.13          Debian's PyTorch eager, whole batch
# and PML / 2.x (below 1 means PML is faster; the goal is <= 1.0), PML / 2.x-comp, PML / 1.13.
# PyTorch 2.x's GPT runs its attention through scaled_dot_product_attention (fused, as
# PML's), 1.13's as matmuls and a masked softmax (it has no SDPA); PML_BENCH_ATTENTION=
# matmul makes 2.x do the same (bench/cpu_train/torch_gpt.py).
# Runs are interleaved (every column once per repetition) so load from other processes
# hits all alike. PML_BENCH_MODELS (default "mlp gpt") and PML_BENCH_THREADS (default
# "1 2") narrow the runs; PML_BENCH_COMPILE=0 skips torch.compile (its first step compiles
# for tens of seconds).
# PyTorch runs with OMP_WAIT_POLICY=PASSIVE unless OMP_WAIT_POLICY is set: its OpenMP
# threads otherwise spin at every barrier, and on a machine shared with other work (more
# runnable threads than cores) that made 2-thread PyTorch steps 10-30x slower here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
steps=${2:-8}
reps=${3:-3}
venv=${PML_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pml/torch2}
old=${PML_BENCH_OLD_PYTHON:-/usr/bin/python3}
omp=${OMP_WAIT_POLICY:-PASSIVE}
threads_list=${PML_BENCH_THREADS:-"1 2"}
compile=${PML_BENCH_COMPILE:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The anchor, installed once: a venv with PyTorch 2.x from PyPI.
py=$venv/bin/python
if ! "$py" -c 'import torch, sys; sys.exit(int(torch.__version__.split(".")[0]) < 2)' 2>/dev/null; then
    echo "compare.sh: installing PyTorch 2.x from PyPI into $venv (once; about 5 GB)" >&2
    "${PML_BENCH_VENV_PYTHON:-python3}" -m venv "$venv" ||
        { echo "compare.sh: cannot make a virtual environment in $venv (apt install python3-venv)" >&2; exit 1; }
    "$venv/bin/pip" install --quiet torch numpy ||
        { echo "compare.sh: pip could not install torch into $venv" >&2; exit 1; }
fi
[ "$old" != none ] && ! "$old" -c 'import torch' 2>/dev/null && old=none
echo "PyTorch $("$py" -c 'import torch; print(torch.__version__, "capability", torch.backends.cpu.get_cpu_capability())')" \
     "; second column: $([ "$old" = none ] && echo none || "$old" -c 'import torch; print("PyTorch", torch.__version__)')" >&2
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')), $(nproc) cores" >&2

# One PyTorch run: appends its median step (or "-" if it failed) to FILE.
torch_run() { # FILE PYTHON MODEL THREADS MICROBATCHES [COMPILE]
    local file=$1 p=$2 out
    if out=$(OMP_WAIT_POLICY=$omp PML_BENCH_COMPILE=${6:-0} "$p" "$here/torch_step.py" "$3" "$4" "$steps" "$5" 2>"$tmp/err"); then
        "$p" -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["step_ms"])' <<<"$out" >>"$file"
    else
        echo "-" >>"$file"
        echo "compare.sh: $p torch_step.py $3 failed: $(tail -1 "$tmp/err")" >&2
    fi
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); PyTorch OMP_WAIT_POLICY=$omp" >&2
models=${PML_BENCH_MODELS:-mlp gpt}
for ((r = 1; r <= reps; r++)); do
    for name in $models; do
        for th in $threads_list; do
            k="$name-$th"
            "$pmlc" train "$root/examples/$name.pml" --set place=cpu --steps "$steps" --threads "$th" --quiet \
                --metrics "$tmp/m.jsonl" >/dev/null
            "$py" -c 'import json,statistics,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(statistics.median(x["step_ms"] for x in (r[1:] or r)))' "$tmp/m.jsonl" >>"$tmp/pml-$k"
            torch_run "$tmp/t2-$k" "$py" "$name" "$th" 1
            torch_run "$tmp/t2mb-$k" "$py" "$name" "$th" 8
            if [ "$compile" = 1 ]; then torch_run "$tmp/t2c-$k" "$py" "$name" "$th" 1 1; else echo - >>"$tmp/t2c-$k"; fi
            if [ "$old" != none ]; then torch_run "$tmp/t1-$k" "$old" "$name" "$th" 1; else echo - >>"$tmp/t1-$k"; fi
            echo "rep $r $name threads $th: pml $(tail -1 "$tmp/pml-$k"), 2.x $(tail -1 "$tmp/t2-$k")," \
                 "2.x/mb $(tail -1 "$tmp/t2mb-$k"), 2.x-comp $(tail -1 "$tmp/t2c-$k"), 1.13 $(tail -1 "$tmp/t1-$k") ms" \
                 "(load $(cut -d' ' -f1 /proc/loadavg))" >&2
        done
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$py" - "$tmp" "$reps" "$threads_list" "$models" <<'PY'
import statistics, sys
tmp, reps, threads, models = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
def med(f):
    v = [float(l) for l in open(f"{tmp}/{f}") if l.strip() != "-"]
    return statistics.median(v) if v else float("nan")
def ratio(a, b):
    return f"{a / b:.2f}" if b == b else "-"
def ms(v):
    return f"{v:.1f}" if v == v else "-"
print(f"median over {reps} interleaved runs of each run's median step ms")
print(f"{'model':<6} {'threads':>7} {'PML':>8} {'2.x':>8} {'2.x/mb':>8} {'2.x-comp':>9} {'1.13':>8}"
      f" {'PML/2.x':>8} {'PML/comp':>9} {'PML/1.13':>9}")
for name in models:
    for th in threads:
        k = f"{name}-{th}"
        p, t2, mb, c, t1 = (med(f"{c}-{k}") for c in ("pml", "t2", "t2mb", "t2c", "t1"))
        print(f"{name:<6} {th:>7} {ms(p):>8} {ms(t2):>8} {ms(mb):>8} {ms(c):>9} {ms(t1):>8}"
              f" {ratio(p, t2):>8} {ratio(p, c):>9} {ratio(p, t1):>9}")
PY
