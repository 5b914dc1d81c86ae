#!/usr/bin/env python3
"""run_diag.py — golden diagnostics: `pmlc check NAME.pml --color=never`, run in the
case's folder so paths in messages are relative, must print exactly NAME.stderr on
stderr and exit with the code in NAME.exit.

An optional NAME.args holds extra command-line arguments, one per line.

    run_diag.py --pmlc PMLC CASE.pml            # compare; unified diff on mismatch
    run_diag.py --pmlc PMLC --update CASE.pml   # rewrite the goldens (review them!)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pmltest  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pmlc", required=True)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("cases", nargs="+")
    args = ap.parse_args()
    pmlc = os.path.abspath(args.pmlc)
    status = 0
    for case in args.cases:
        status |= (update if args.update else compare)(pmlc, os.path.abspath(case))
    sys.exit(status)


def run_case(pmlc, case):
    folder, base = os.path.split(case)
    stem = os.path.splitext(case)[0]
    extra = []
    if os.path.exists(stem + ".args"):
        with open(stem + ".args", encoding="utf-8") as f:
            extra = [line.rstrip("\n") for line in f if line.strip()]
    return pmltest.run([pmlc, "check", base, "--color=never", *extra], cwd=folder)


def update(pmlc, case):
    res = run_case(pmlc, case)
    problems = pmltest.crash_problems(res)
    if problems:
        print(f"{case}: not updated: {', '.join(problems)}")
        return 1
    stem = os.path.splitext(case)[0]
    with open(stem + ".stderr", "w", encoding="utf-8", newline="") as f:
        f.write(res.stderr)
    with open(stem + ".exit", "w", encoding="utf-8") as f:
        f.write(f"{res.code}\n")
    print(f"== {os.path.basename(stem)} (exit {res.code})\n{res.stderr}")
    return 0


def compare(pmlc, case):
    stem = os.path.splitext(case)[0]
    name = os.path.basename(stem)
    fails = pmltest.Failures(f"diag.{name}")
    for golden in (".stderr", ".exit"):
        if not os.path.exists(stem + golden):
            fails.add(f"missing golden {name}{golden} (make it with tests/diag/update.sh and review it)")
    if fails.items:
        fails.finish()
    with open(stem + ".stderr", encoding="utf-8", newline="") as f:
        want_err = f.read()
    with open(stem + ".exit", encoding="utf-8") as f:
        want_code = int(f.read().strip())
    res = run_case(pmlc, case)
    for problem in pmltest.crash_problems(res):
        fails.add(problem)
    fails.check(res.code == want_code, f"exit code {res.code}, expected {want_code}")
    if res.stderr != want_err:
        fails.add("stderr differs from the golden:\n"
                  + pmltest.unified_diff(want_err, res.stderr, f"{name}.stderr (expected)",
                                         f"{name}.stderr (actual)"))
    fails.finish()


if __name__ == "__main__":
    main()
