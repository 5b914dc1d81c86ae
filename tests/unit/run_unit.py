#!/usr/bin/env python3
"""run_unit.py — shape inference and name resolution, written as PML files.

A case must check cleanly (`pmlc check` exits 0 with nothing on stderr); a model's
declared output type already asserts the inferred shape, and `assert` statements in
the case assert intermediate ones. `# expect` lines then state facts about
`pmlc plan --json` (format: docs/plan-json.md):

    # expect param NAME DTYPE[DIMS]     a parameter with exactly this name, dtype and shape
    # expect no-param NAME              no parameter has this name
    # expect params N                   exactly N parameter tensors
    # expect stages N                   the plan has N stages
    # expect input NAME TYPE            a model input declared as TYPE, e.g. f32[B, T]
    # expect send STAGE NAME DTYPE[DIMS]  stage STAGE sends NAME to the next stage
    # expect dimension NAME N           symbolic dimension NAME is bound to N

A `# plan-args: ARGS...` line gives extra arguments for the plan (e.g. `--set T=12`).

    run_unit.py --pmlc PMLC CASE.pml
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pmltest  # noqa: E402

TYPE_RE = re.compile(r"^(\w+)\[(.*)\]$")


def parse_type(text):
    """'f32[32, 16]' -> ('f32', ['32', '16'])."""
    m = TYPE_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a tensor type: {text!r}")
    dims = [d.strip() for d in m.group(2).split(",") if d.strip()]
    return m.group(1), dims


def expectations(path):
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            m = re.match(r"\s*#\s*expect\s+(\S+)\s*(.*)$", line)
            if m:
                yield lineno, m.group(1), m.group(2).strip()


def plan_args(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*#\s*plan-args:\s*(.*)$", line)
            if m:
                return m.group(1).split()
    return []


def check_expectation(doc, kind, arg, fails, where):
    params = {p["name"]: p for p in doc.get("parameters", [])}
    if kind == "param":
        name, _, typ = arg.partition(" ")
        dtype, dims = parse_type(typ)
        p = params.get(name)
        if p is None:
            fails.add(f"{where}: no parameter {name}; parameters are: {', '.join(params) or 'none'}")
        else:
            got = f"{p['dtype']}[{', '.join(str(d) for d in p['shape'])}]"
            fails.check(p["dtype"] == dtype and [str(d) for d in p["shape"]] == dims,
                        f"{where}: parameter {name} is {got}, expected {typ}")
    elif kind == "no-param":
        fails.check(arg not in params, f"{where}: unexpected parameter {arg}")
    elif kind == "params":
        fails.check(len(params) == int(arg),
                    f"{where}: {len(params)} parameters ({', '.join(params)}), expected {arg}")
    elif kind == "stages":
        fails.check(doc.get("stages_count") == int(arg),
                    f"{where}: {doc.get('stages_count')} stages, expected {arg}")
    elif kind == "input":
        name, _, typ = arg.partition(" ")
        inputs = {i["name"]: i["type"] for i in doc.get("inputs", [])}
        want = parse_type(typ)
        got = inputs.get(name)
        fails.check(got is not None and parse_type(got) == want,
                    f"{where}: input {name} is {got}, expected {typ}")
    elif kind == "send":
        stage, name, typ = arg.split(None, 2)
        dtype, dims = parse_type(typ)
        stages = doc.get("stages", [])
        sends = stages[int(stage)]["sends"] if int(stage) < len(stages) else []
        found = [s for s in sends if s["name"] == name]
        shown = ", ".join(f"{s['name']} {s['dtype']}{s['shape']}" for s in sends) or "nothing"
        fails.check(any(s["dtype"] == dtype and [str(d) for d in s["shape"]] == dims for s in found),
                    f"{where}: stage {stage} sends {shown}; expected {name} {typ}")
    elif kind == "dimension":
        name, value = arg.split()
        got = doc.get("dimensions", {}).get(name)
        fails.check(got == int(value), f"{where}: dimension {name} = {got}, expected {value}")
    else:
        fails.add(f"{where}: unknown expectation `{kind}`")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pmlc", required=True)
    ap.add_argument("case")
    args = ap.parse_args()
    pmlc, case = os.path.abspath(args.pmlc), os.path.abspath(args.case)
    folder, base = os.path.split(case)
    name = os.path.splitext(base)[0]
    fails = pmltest.Failures(f"unit.{name}")

    res = pmltest.run([pmlc, "check", "--color=never", base], cwd=folder)
    for problem in pmltest.crash_problems(res):
        fails.add(problem)
    fails.check(res.code == 0, f"pmlc check exited {res.code}, expected 0")
    fails.check(res.stderr == "", "pmlc check printed diagnostics")
    if fails.items:
        fails.finish(res)

    expects = list(expectations(case))
    if expects:
        res = pmltest.run([pmlc, "plan", "--json", "--color=never", *plan_args(case), base], cwd=folder, timeout=30)
        for problem in pmltest.crash_problems(res):
            fails.add(problem)
        if not fails.check(res.code == 0, f"pmlc plan --json exited {res.code}, expected 0"):
            fails.finish(res)
        try:
            doc = json.loads(res.stdout)
        except ValueError as exc:
            fails.add(f"invalid JSON: {exc}")
            fails.finish(res)
        if doc.get("pml_plan_version") != 1:
            fails.add(f"pml_plan_version is {doc.get('pml_plan_version')!r}; this runner reads version 1")
            fails.finish()
        for lineno, kind, arg in expects:
            try:
                check_expectation(doc, kind, arg, fails, f"{base}:{lineno}")
            except (ValueError, IndexError, KeyError) as exc:
                fails.add(f"{base}:{lineno}: bad expectation `{kind} {arg}`: {exc}")
    print(f"{len(expects)} expectations")
    fails.finish()


if __name__ == "__main__":
    main()
