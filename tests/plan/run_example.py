#!/usr/bin/env python3
"""run_example.py — every example in examples/ is a valid program that plans.

Modes (one ctest each):
  check      `pmlc check FILE` exits 0 and prints no diagnostics
  plan       `pmlc plan FILE` exits 0 and prints a plan
  plan_json  `pmlc plan --json FILE` exits 0 and prints JSON with "pml_plan_version"
  plan_dot   `pmlc plan --dot FILE` exits 0 and prints a graph that `dot -Tsvg` accepts
             (without graphviz: that it starts with `digraph`)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pmltest  # noqa: E402

FLAGS = {"check": ["check"], "plan": ["plan"], "plan_json": ["plan", "--json"],
         "plan_dot": ["plan", "--dot"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pmlc", required=True)
    ap.add_argument("--mode", required=True, choices=sorted(FLAGS))
    ap.add_argument("example")
    args = ap.parse_args()
    example = os.path.abspath(args.example)
    folder, base = os.path.split(example)
    name = os.path.splitext(base)[0]
    fails = pmltest.Failures(f"example.{args.mode}.{name}")

    res = pmltest.run([os.path.abspath(args.pmlc), *FLAGS[args.mode], base], cwd=folder, timeout=60)
    for problem in pmltest.crash_problems(res):
        fails.add(problem)
    if not fails.check(res.code == 0, f"exit {res.code}, expected 0"):
        fails.finish(res)
    fails.check("error:" not in res.stderr and "warning:" not in res.stderr,
                "diagnostics on stderr for a valid example")

    if args.mode == "check":
        pass
    elif args.mode == "plan":
        fails.check(res.stdout.strip() != "", "empty plan")
    elif args.mode == "plan_json":
        try:
            doc = json.loads(res.stdout)
            fails.check(isinstance(doc, dict) and "pml_plan_version" in doc,
                        'JSON plan has no top-level "pml_plan_version"')
        except ValueError as exc:
            fails.add(f"invalid JSON: {exc}")
    elif args.mode == "plan_dot":
        fails.check(res.stdout.lstrip().startswith("digraph"), "DOT output does not start with `digraph`")
        dot = shutil.which("dot")
        if dot:
            proc = subprocess.run([dot, "-Tsvg", "-o", os.devnull], input=res.stdout.encode(),
                                  capture_output=True, timeout=60)
            fails.check(proc.returncode == 0,
                        f"dot -Tsvg rejected the graph (exit {proc.returncode}):\n"
                        + proc.stderr.decode("utf-8", "replace"))
        else:
            print("note: graphviz `dot` not installed; checked the `digraph` header only")
    fails.finish(res if fails.items else None)


if __name__ == "__main__":
    main()
