#!/usr/bin/env bash
# bench/cpu_train/compare.sh — PML against PyTorch eager on the CPU: median training step
# time of the same MLP and GPT (examples/mlp.pml, examples/gpt.pml), same batch shapes,
# same thread count (pmlc --threads N / torch.set_num_threads(N)).
#
#   bench/cpu_train/compare.sh [PMLC] [STEPS] [REPS]
#
# PMLC defaults to build/compiler/pmlc, STEPS to 8, REPS to 3. Each repetition runs, for
# every model and thread count, PML, then PyTorch with the whole batch in one step, then
# PyTorch accumulating over the same micro-batches as PML (8 for both examples); runs are
# interleaved so load from other processes hits all three alike. Each run skips its first
# step and takes the median step time of the rest; the table gives the median of those
# medians over the repetitions, and PML / PyTorch (full batch): below 1 means PML is faster.
# PyTorch runs under /usr/bin/python3 (Debian's python3-torch); PML_BENCH_PYTHON overrides.
# PML_BENCH_MODELS (default "mlp gpt") and PML_BENCH_THREADS (default "1 2") narrow the runs.
# It runs with OMP_WAIT_POLICY=PASSIVE unless OMP_WAIT_POLICY is set: PyTorch's OpenMP
# threads otherwise spin at every barrier, and on a machine shared with other work (more
# runnable threads than cores) that made 2-thread PyTorch steps 10-30x slower here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/compiler/pmlc}
steps=${2:-8}
reps=${3:-3}
py=${PML_BENCH_PYTHON:-/usr/bin/python3}
omp=${OMP_WAIT_POLICY:-PASSIVE}
threads_list=${PML_BENCH_THREADS:-"1 2"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -c 'import torch' 2>/dev/null || { echo "compare.sh: $py has no torch (apt install python3-torch)" >&2; exit 1; }

# name|file|micro-batches
configs=""
for name in ${PML_BENCH_MODELS:-mlp gpt}; do
    configs+="${configs:+;}$name|examples/$name.pml|8"
done
IFS=';' read -ra cfgs <<<"$configs"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); PyTorch OMP_WAIT_POLICY=$omp" >&2
for ((r = 1; r <= reps; r++)); do
    for cfg in "${cfgs[@]}"; do
        IFS='|' read -r name file mbs <<<"$cfg"
        for th in $threads_list; do
            m="$tmp/m.jsonl"
            "$pmlc" train "$root/$file" --set place=cpu --steps "$steps" --threads "$th" --quiet --metrics "$m" >/dev/null
            "$py" - "$m" <<'PY' >>"$tmp/pml-$name-$th"
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rest = recs[1:] if len(recs) > 1 else recs
print(statistics.median(r["step_ms"] for r in rest))
PY
            OMP_WAIT_POLICY=$omp "$py" "$here/torch_step.py" "$name" "$th" "$steps" 1 |
                "$py" -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])' >>"$tmp/torch-$name-$th"
            OMP_WAIT_POLICY=$omp "$py" "$here/torch_step.py" "$name" "$th" "$steps" "$mbs" |
                "$py" -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])' >>"$tmp/torchmb-$name-$th"
            echo "rep $r $name threads $th: pml $(tail -1 "$tmp/pml-$name-$th") ms, torch $(tail -1 "$tmp/torch-$name-$th") ms, torch/mb $(tail -1 "$tmp/torchmb-$name-$th") ms (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        done
    done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$py" - "$tmp" "$reps" "$threads_list" "$configs" <<'PY'
import statistics, sys
tmp, reps, threads, configs = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4]
rd = lambda f: [float(l) for l in open(f"{tmp}/{f}")]
print(f"median over {reps} interleaved runs of each run's median step ms")
print(f"{'model':<6} {'threads':>7} {'PML':>10} {'PyTorch':>10} {'PyTorch/mb':>11} {'PML/PyTorch':>12} {'PML/PyTorch-mb':>15}")
for cfg in configs.split(";"):
    name = cfg.split("|")[0]
    for th in threads:
        p, t, tm = (statistics.median(rd(f"{k}-{name}-{th}")) for k in ("pml", "torch", "torchmb"))
        print(f"{name:<6} {th:>7} {p:>10.1f} {t:>10.1f} {tm:>11.1f} {p / t:>12.2f} {p / tm:>15.2f}")
PY
