#!/usr/bin/env python3
"""run_fuzz.py — runs one of the formats' libFuzzer targets for a bounded time over a
fresh copy of its seed corpus (every file in corpus/NAME), so the sources stay
untouched. Fails if libFuzzer reports a crash, leak, timeout or sanitizer error; the
offending input is left in the work folder and named in the output.

    run_fuzz.py --name NAME --fuzzer BIN --corpus DIR [--dict FILE] --work DIR --runs N --max-total-time S
"""
import argparse
import os
import shutil
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--fuzzer", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--dict")
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=200000)
    ap.add_argument("--max-total-time", type=int, default=25)
    args = ap.parse_args()

    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    corpus = os.path.join(work, "corpus")
    artifacts = os.path.join(work, "artifacts") + os.sep
    shutil.copytree(args.corpus, corpus)
    os.makedirs(artifacts)
    print(f"{args.name}: {len(os.listdir(corpus))} seed files, {args.runs} runs or {args.max_total_time} s")

    argv = [os.path.abspath(args.fuzzer), corpus,
            f"-runs={args.runs}", f"-max_total_time={args.max_total_time}",
            "-max_len=4096", "-timeout=10", "-rss_limit_mb=2048", "-seed=1",
            "-print_final_stats=1", f"-artifact_prefix={artifacts}"]
    if args.dict:
        argv.append(f"-dict={os.path.abspath(args.dict)}")
    print("$ " + " ".join(argv), flush=True)
    proc = subprocess.run(argv, cwd=work, capture_output=True, text=True, errors="replace",
                          timeout=args.max_total_time + 120)
    out = proc.stderr + proc.stdout
    findings = sorted(os.listdir(artifacts))
    if proc.returncode != 0 or findings:
        print(out[-12000:])
        print(f"FAIL: {args.name}: libFuzzer exited {proc.returncode}; findings: "
              + (", ".join(os.path.join(artifacts, f) for f in findings) or "none saved"))
        sys.exit(1)
    stats = [line for line in out.splitlines() if line.startswith("stat::") or "DONE" in line]
    print("\n".join(stats[-8:]))
    print(f"ok: {args.name}")


if __name__ == "__main__":
    main()
