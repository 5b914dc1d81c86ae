#!/usr/bin/env bash
# bench/memory/run.sh — the plan's memory figures against what the CPU run holds, as
# the memory.* tests check them (tests/runtime/memory/memory_test.py), with their
# tables printed: every stage's planned arena (`pmlc plan --json`) against the CPU
# backend's count after step 1 (`pmlc train --metrics`) for the GPT and MLP examples
# in f32 and bf16, with and without recompute, on one stage and their own cut; and the
# outside check, what the process's peak RSS grows by from GPT at T = 32 to T = 128
# on one stage against what the count grows by.
#
#   bench/memory/run.sh [PMLC] [WORK]
#
# PMLC defaults to build/tools/pmlc/pmlc, WORK to a temporary folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pmlc=${1:-$root/build/tools/pmlc/pmlc}
work=${2:-$(mktemp -d)}
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for which in planned_within_ten_percent rss_follows_the_count; do
    python3 -B "$root/tests/runtime/memory/memory_test.py" "$pmlc" "$root/examples" "$work/$which" "$which"
done
