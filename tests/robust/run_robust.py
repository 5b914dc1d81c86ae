#!/usr/bin/env python3
"""run_robust.py — one hostile input (see gen_inputs.py) must be reported, not crash:
`pmlc check` exits exactly 1 within 10 s, prints `error:`, and no signal or sanitizer
report.

    run_robust.py --pmlc PMLC --work DIR NAME
"""
import argparse
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "lib"))
sys.path.insert(0, here)
import gen_inputs  # noqa: E402
import pmltest  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pmlc", required=True)
    ap.add_argument("--work", required=True)
    # A hang is what this catches: 30 s leaves room for a sanitizer build on a loaded machine
    # (the slowest case takes about 2 s there alone).
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("name", choices=sorted(gen_inputs.CASES))
    args = ap.parse_args()
    # Each case gets its own folder so that imports cannot see the other inputs.
    folder = os.path.join(os.path.abspath(args.work), args.name)
    path = gen_inputs.write(folder, args.name)
    res = pmltest.run([os.path.abspath(args.pmlc), "check", os.path.basename(path), "--color=never"],
                      cwd=folder, timeout=args.timeout)
    fails = pmltest.Failures(f"robust.{args.name}")
    for problem in pmltest.crash_problems(res):
        fails.add(problem)
    fails.check(res.code == 1, f"exit code {res.code}, expected 1")
    fails.check("error:" in res.stderr, "no `error:` on stderr")
    fails.finish(res if fails.items else None)


if __name__ == "__main__":
    main()
