#!/usr/bin/env bash
# bench/cpu_train/ab.sh — two pmlc binaries against each other on one model's CPU
# training step, interleaved so that load from other processes hits both alike.
#
#   bench/cpu_train/ab.sh OLD_PMLC NEW_PMLC [REPS] [MODEL] [THREADS]
#
# REPS defaults to 5, MODEL to mlp (examples/MODEL.pml), THREADS to 2. Each repetition
# runs OLD then NEW (the order alternates between repetitions) for 32 steps and for 2
# steps. Per binary it prints the median over repetitions of
#   - wall: each 32-step run's median step_ms over steps 3-32 (steady state), and
#   - CPU: (user + system time of the 32-step run − that of the 2-step run) / 30, the
#     CPU time of a steady step of the whole process, which moves less than wall time
#     on a shared machine (start-up and the first steps cancel out),
# with every repetition's values and the load average, so a reader can see the spread.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 OLD_PMLC NEW_PMLC [REPS] [MODEL] [THREADS]" >&2; exit 2; }
exec python3 - "$root" "$@" <<'PY'
import json, os, resource, statistics, subprocess, sys, tempfile
root, old, new = sys.argv[1:4]
reps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
model = sys.argv[5] if len(sys.argv) > 5 else "mlp"
threads = sys.argv[6] if len(sys.argv) > 6 else "2"
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

res = {"old": ([], []), "new": ([], [])}
load0 = open("/proc/loadavg").read().split()[:3]
for r in range(reps):
    order = [("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]
    for name, pmlc in order:
        cpu32, ms = run(pmlc, 32)
        cpu2, _ = run(pmlc, 2)
        res[name][0].append(statistics.median(ms[2:]))
        res[name][1].append((cpu32 - cpu2) / 30 * 1000)
load1 = open("/proc/loadavg").read().split()[:3]
print(f"{model}, {threads} threads, {reps} interleaved reps; load {' '.join(load0)} -> {' '.join(load1)}")
for name in ("old", "new"):
    wall, cpu = res[name]
    print(f"{name}: wall median {statistics.median(wall):6.2f} ms  CPU/step {statistics.median(cpu):6.2f} ms"
          f"   wall {' '.join(f'{x:.2f}' for x in wall)}   cpu {' '.join(f'{x:.2f}' for x in cpu)}")
PY
