#!/usr/bin/env bash
# tests/plan/update.sh — rewrites the golden plans (NAME.txt, and NAME.json where one
# exists) from the current compiler and prints each. Review every diff before keeping
# it: a golden pins the planner's output for good.
#
#   tests/plan/update.sh [BUILD_DIR] [CASE.pml...]   (default: build, every case)
#   PML_PLAN_JSON=1 tests/plan/update.sh ...          # also create NAME.json
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:-build}"
shift || true
pmlc="$build/tools/pmlc/pmlc"
if [ ! -x "$pmlc" ]; then
    echo "update.sh: no compiler at $pmlc; build first or pass the build folder" >&2
    exit 2
fi
if [ "$#" -eq 0 ]; then
    set -- "$here"/*.pml
fi
json=()
[ "${PML_PLAN_JSON:-0}" = 1 ] && json=(--json)
for case in "$@"; do
    echo "== $(basename "$case")"
    python3 -B "$here/run_plan.py" --pmlc "$pmlc" --update "${json[@]}" "$case"
done
