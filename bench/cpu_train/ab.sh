#!/usr/bin/env bash
# bench/cpu_train/ab.sh — pmlc binaries against each other on one model's CPU training
# step, interleaved so that load from other processes hits all of them alike.
#
#   bench/cpu_train/ab.sh PMLC_A PMLC_B [PMLC...]
#
# PML_AB_REPS (default 5), PML_AB_MODEL (default mlp: examples/mlp.pml) and
# PML_AB_THREADS (default 2) set the runs. Each repetition runs every binary (the order
# rotates between repetitions) for 32 steps and for 2 steps. Per binary it prints the
# median over repetitions of
#   - wall: each 32-step run's median step_ms over steps 3-32 (steady state), and
#   - CPU: (user + system time of the 32-step run − that of the 2-step run) / 30, the
#     CPU time of a steady step of the whole process, which moves less than wall time
#     on a shared machine (start-up and the first steps cancel out),
# with every repetition's values and the load average, so a reader sees the spread.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 PMLC_A PMLC_B [PMLC...]" >&2; exit 2; }
exec python3 - "$root" "$@" <<'PY'
import json, os, resource, statistics, subprocess, sys, tempfile
root, bins = sys.argv[1], sys.argv[2:]
reps = int(os.environ.get("PML_AB_REPS", "5"))
model = os.environ.get("PML_AB_MODEL", "mlp")
threads = os.environ.get("PML_AB_THREADS", "2")
src = os.path.join(root, "examples", model + ".pml")
tmp = tempfile.mkdtemp()

def run(pmlc, steps):
    """(CPU seconds of the child, step_ms list)"""
    m = os.path.join(tmp, "m.jsonl")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([pmlc, "train", src, "--set", "place=cpu", "--steps", str(steps), "--threads", threads,
                    "--quiet", "--metrics", m], check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, [json.loads(l)["step_ms"] for l in open(m) if l.strip()]

wall = {b: [] for b in range(len(bins))}
cpu = {b: [] for b in range(len(bins))}
load0 = open("/proc/loadavg").read().split()[:3]
for r in range(reps):
    for k in range(len(bins)):
        b = (k + r) % len(bins)
        cpu32, ms = run(bins[b], 32)
        cpu2, _ = run(bins[b], 2)
        wall[b].append(statistics.median(ms[2:]))
        cpu[b].append((cpu32 - cpu2) / 30 * 1000)
load1 = open("/proc/loadavg").read().split()[:3]
print(f"{model}, {threads} threads, {reps} interleaved reps; load {' '.join(load0)} -> {' '.join(load1)}")
for b, path in enumerate(bins):
    print(f"{path}: wall median {statistics.median(wall[b]):6.2f} ms  CPU/step {statistics.median(cpu[b]):6.2f} ms"
          f"   wall {' '.join(f'{x:.2f}' for x in wall[b])}   cpu {' '.join(f'{x:.2f}' for x in cpu[b])}")
PY
