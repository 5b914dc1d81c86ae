#!/usr/bin/env bash
# bench/gpu/run.sh — PML's CUDA backend against PyTorch on the same GPU: median training
# step time of examples/mlp.pml, examples/gpt.pml (also at T = 256), bench/gpu/gpt2s.pml
# (GPT-2 small's body, T = 1024) and bench/gpu/gpt2.pml (GPT-2 small itself: vocabulary
# 50,257 tied to the output projection, on random tokens), same shapes, f32 without TF32 on both sides; then the
# fused kernels' bandwidth against a device-to-device copy (gpu_kernels --bench); gpt2s with
# attention written out (PML_CUDA_ATTENTION=expand) instead of the fused attention kernels;
# those kernels' TFLOP/s at T 1024/4096, d 64 and 128 (gpu_attention --bench), f32, bf16 and f16, beside PyTorch's SDPA
# on the same shapes (attention_torch.py); GPT-2 small in bf16 against PyTorch's bf16
# autocast; the measured bubble of four stages on one GPU from device time.
#
#   bench/gpu/run.sh [BUILD_DIR] [STEPS]
#
# PML runs with its CUDA graphs (the default) and without (PML_CUDA_GRAPHS=0); each run
# trains STEPS steps (default 30) and takes the median step_ms after the first 5 (module
# load, cuBLAS start-up and graph capture stay out). PyTorch (bench/cpu_train/torch_step.py
# with PML_BENCH_DEVICE=cuda) runs the whole batch in one step, eagerly and (gpt2s) under
# torch.compile, and for the small models also accumulating over PML's micro-batches.
# PML / torch below 1 means PML is faster. Needs a GPU and python3 with torch.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
pmlc=$build/tools/pmlc/pmlc
all_steps=${2:-30}
steps=$all_steps
py=${PML_BENCH_PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median_ms() { # metrics.jsonl -> median step_ms after the first 5 steps
  "$py" - "$1" <<'PY'
import json, statistics, sys
ms = [json.loads(l)["step_ms"] for l in open(sys.argv[1]) if '"step_ms"' in l][5:]
print(f"{statistics.median(ms):.2f}")
PY
}
torch_ms() { # MODEL MICROBATCHES [COMPILE] -> median step ms of PyTorch on the GPU
  PML_BENCH_DEVICE=cuda PML_BENCH_COMPILE=${3:-0} "$py" "$root/bench/cpu_train/torch_step.py" "$1" 1 "$steps" "$2" |
    "$py" -c 'import json, sys; print(json.load(sys.stdin)["step_ms"])'
}

# GPT-2 small's data: random ids below its vocabulary, as a flat uint16 token file.
"$py" -c 'import array, random, sys; random.seed(1)
array.array("H", (random.randrange(50257) for _ in range(1 << 22))).tofile(open(sys.argv[1], "wb"))' "$tmp/tokens.bin"
printf "%-9s %9s %10s %9s %9s %9s %9s\n" model "PML ms" "no graphs" "torch" "compile" "torch+mb" "PML/best"
# examples/gpt.pml is placed on cuda:0..3: --devices puts its four stages on GPU 0.
for spec in "mlp:examples/mlp.pml::mlp:8" "gpt:examples/gpt.pml:--devices 0,0,0,0:gpt:8" \
            "gpt_T256:examples/gpt.pml:--set T=256 --devices 0,0,0,0:gpt256:8" "gpt2s:bench/gpu/gpt2s.pml::gpt2s:0" \
            "gpt2:bench/gpu/gpt2.pml:--devices 0,0,0,0 --set data=tokens(\"$tmp/tokens.bin\"):gpt2:0:12"; do
  IFS=: read -r label model set tmodel mbs n <<< "$spec"
  n=${n:-$all_steps} # GPT-2 small: fewer steps, to stay inside scripts/gpu-check's time
  steps=$n
  # shellcheck disable=SC2086
  "$pmlc" train "$root/$model" --backend cuda --steps "$steps" --quiet --out "$tmp/out" --metrics "$tmp/m.jsonl" $set
  pml=$(median_ms "$tmp/m.jsonl")
  # shellcheck disable=SC2086
  PML_CUDA_GRAPHS=0 "$pmlc" train "$root/$model" --backend cuda --steps "$steps" --quiet --out "$tmp/out" \
    --metrics "$tmp/m.jsonl" $set
  nog=$(median_ms "$tmp/m.jsonl")
  eager=$(torch_ms "$tmodel" 1)
  compiled=-; permb=-
  if [ "$mbs" = 0 ]; then compiled=$(torch_ms "$tmodel" 1 1); else permb=$(torch_ms "$tmodel" "$mbs"); fi
  best=$("$py" -c "print(min(x for x in ($eager, ${compiled/-/1e9}) ))")
  printf "%-9s %9s %10s %9s %9s %9s %9.2f\n" "$label" "$pml" "$nog" "$eager" "$compiled" "$permb" \
    "$("$py" -c "print($pml / $best)")"
done
steps=$all_steps
# GPT-2 small in bf16, the issue's benchmark: PML's precision = bf16 (16-bit storage, bf16
# products with f32 sums) against PyTorch's bf16 autocast, eager and compiled, 12 steps;
# tokens/s at 16 x 1024 tokens a step.
steps=12
if "$pmlc" train "$root/bench/gpu/gpt2.pml" --backend cuda --steps "$steps" --quiet --out "$tmp/out" \
  --metrics "$tmp/bf16.jsonl" --devices 0,0,0,0 --set precision=bf16 --set "data=tokens(\"$tmp/tokens.bin\")"; then
  pml=$(median_ms "$tmp/bf16.jsonl")
  eager=$(PML_BENCH_BF16=1 torch_ms gpt2 1)
  compiled=$(PML_BENCH_BF16=1 torch_ms gpt2 1 1)
  "$py" -c "import sys; p, e, c = map(float, sys.argv[1:]); t = 16 * 1024
print(f'gpt2 bf16: PML {p:.1f} ms ({t / p * 1e3:,.0f} tokens/s), torch eager {e:.1f} ms ({t / e * 1e3:,.0f}), '
      f'compiled {c:.1f} ms ({t / c * 1e3:,.0f}); PML/compiled {p / c:.2f}')" "$pml" "$eager" "$compiled"
else
  echo "gpt2 bf16: PML failed"
fi
steps=$all_steps
# The bubble of several stages on one GPU, from device time (the trace's forward and
# backward spans are the CUDA events around each pass): examples/gpt.pml's four stages
# on GPU 0 under 1F1B, ZB-H1 and GPipe, beside each schedule's analytic bubble.
for sched in 1f1b zero_bubble gpipe; do
  if "$pmlc" train "$root/examples/gpt.pml" --backend cuda --steps 8 --devices 0,0,0,0 --set "schedule=$sched" \
    --out "$tmp/out" --trace "$tmp/trace.json" 2> "$tmp/bubble.txt" > /dev/null; then
    echo "gpt, 4 stages on one GPU, $sched: $(grep -o 'bubble: .*analytic' "$tmp/bubble.txt")"
  else
    echo "gpt, 4 stages on one GPU, $sched: failed: $(tail -n 1 "$tmp/bubble.txt")"
  fi
done
# GPT-2 small with attention written out as matmuls and a softmax (PML_CUDA_ATTENTION=expand),
# against the fused attention kernels of the table's gpt2s line.
if PML_CUDA_ATTENTION=expand "$pmlc" train "$root/bench/gpu/gpt2s.pml" --backend cuda --steps "$steps" --quiet \
  --out "$tmp/out" --metrics "$tmp/expand.jsonl"; then
  echo "gpt2s with PML_CUDA_ATTENTION=expand: $(median_ms "$tmp/expand.jsonl") ms a step"
else
  echo "gpt2s with PML_CUDA_ATTENTION=expand: failed"
fi
echo
"$build/tests/cuda/gpu_kernels" --bench "$root/bench/gpu/gpt2s.pml"
# The fused attention kernels' TFLOP/s, and PyTorch's SDPA on the same shapes.
echo
"$build/tests/cuda/gpu_attention" --bench "$root/bench/gpu/attention.pml" || echo "gpu_attention --bench failed"
echo "in bf16 (on the tensor cores):"
"$build/tests/cuda/gpu_attention" --bench --set precision=bf16 "$root/bench/gpu/attention.pml" ||
  echo "gpu_attention --bench (bf16) failed"
echo "in f16 (the forward's products in f16, the backward's in bf16):"
"$build/tests/cuda/gpu_attention" --bench --set precision=f16 "$root/bench/gpu/attention.pml" ||
  echo "gpu_attention --bench (f16) failed"
"$py" "$here/attention_torch.py" || echo "attention_torch.py failed (no torch with CUDA?)"
