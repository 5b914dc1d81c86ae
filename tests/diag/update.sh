#!/usr/bin/env bash
# tests/diag/update.sh — rewrites the golden .stderr/.exit of diagnostic cases from the
# current compiler and prints each one. Read every one before keeping it: a golden pins
# a message for good, so an unclear or wrong message belongs in a compiler bug report,
# not in a golden.
#
#   tests/diag/update.sh [BUILD_DIR] [CASE.pml...]   (default: build, every case)
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
exec python3 -B "$here/run_diag.py" --pmlc "$pmlc" --update "$@"
