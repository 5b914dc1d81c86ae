#!/usr/bin/env python3
"""run_plan.py — golden plans: `pmlc plan NAME.pml`, run in the case's folder, must
print exactly NAME.txt; when NAME.json exists, `pmlc plan --json NAME.pml` must print
the same JSON value (compared parsed, shown as a diff of the pretty-printed forms).

    run_plan.py --pmlc PMLC CASE.pml            # compare
    run_plan.py --pmlc PMLC --update CASE.pml   # rewrite NAME.txt (and NAME.json if present)
    run_plan.py --pmlc PMLC --update --json CASE.pml   # also create NAME.json
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pmltest  # noqa: E402


def plan(pmlc, case, *flags):
    folder, base = os.path.split(case)
    return pmltest.run([pmlc, "plan", *flags, base], cwd=folder, timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pmlc", required=True)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--json", action="store_true", help="with --update: also write NAME.json")
    ap.add_argument("case")
    args = ap.parse_args()
    pmlc, case = os.path.abspath(args.pmlc), os.path.abspath(args.case)
    stem = os.path.splitext(case)[0]
    name = os.path.basename(stem)
    fails = pmltest.Failures(f"plan.{name}")

    text = plan(pmlc, case)
    for problem in pmltest.crash_problems(text):
        fails.add(problem)
    if not fails.check(text.code == 0, f"pmlc plan exited {text.code}, expected 0"):
        fails.finish(text)
    if args.update:
        with open(stem + ".txt", "w", encoding="utf-8", newline="") as f:
            f.write(text.stdout)
        print(text.stdout)
    elif not os.path.exists(stem + ".txt"):
        fails.add(f"missing golden {name}.txt (make it with --update and review it)")
    else:
        with open(stem + ".txt", encoding="utf-8", newline="") as f:
            want = f.read()
        if text.stdout != want:
            fails.add("text plan differs from the golden:\n"
                      + pmltest.unified_diff(want, text.stdout, f"{name}.txt (expected)",
                                             f"{name}.txt (actual)"))

    if os.path.exists(stem + ".json") or (args.update and args.json):
        res = plan(pmlc, case, "--json")
        for problem in pmltest.crash_problems(res):
            fails.add(problem)
        fails.check(res.code == 0, f"pmlc plan --json exited {res.code}, expected 0")
        try:
            got = json.loads(res.stdout)
        except ValueError as exc:
            fails.add(f"pmlc plan --json printed invalid JSON: {exc}")
            fails.finish(res)
        if args.update:
            with open(stem + ".json", "w", encoding="utf-8") as f:
                json.dump(got, f, indent=2, sort_keys=True)
                f.write("\n")
        else:
            with open(stem + ".json", encoding="utf-8") as f:
                want_json = json.load(f)
            if got != want_json:
                fails.add("JSON plan differs from the golden:\n" + pmltest.unified_diff(
                    json.dumps(want_json, indent=2, sort_keys=True) + "\n",
                    json.dumps(got, indent=2, sort_keys=True) + "\n",
                    f"{name}.json (expected)", f"{name}.json (actual)"))
    fails.finish()


if __name__ == "__main__":
    main()
