#!/usr/bin/env python3
"""run_fuzz.py — runs a libFuzzer target (the front end's, or a file format's) for a
bounded time over a fresh copy of its seed corpus (the files matching --pattern in each
--corpus folder), so the sources stay untouched. Fails if libFuzzer reports a crash,
leak, timeout or sanitizer error; the offending input is left in the work folder and
named in the output.

    run_fuzz.py [--name TEST] --fuzzer BIN --corpus DIR [--corpus DIR...] [--pattern GLOB]
                [--dict FILE] [--seeds KIND --pmlc PMLC [--source F.pml...] [--model F.pml]]
                [--max-len BYTES] --work DIR --runs N --max-total-time S
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys

import make_seeds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="fuzz.frontend", help="the test's name, for messages")
    ap.add_argument("--fuzzer", required=True)
    ap.add_argument("--corpus", action="append", default=[])
    ap.add_argument("--pattern", default="*.pml", help="which files of each corpus folder are seeds")
    ap.add_argument("--dict", help="libFuzzer dictionary")
    ap.add_argument("--seeds", choices=["plan", "checkpoint", "shards"], help="make_seeds.py's seeds too")
    ap.add_argument("--pmlc", help="the pmlc that makes the seeds")
    ap.add_argument("--source", action="append", default=[], help="plan seeds: the programs to build")
    ap.add_argument("--model", help="checkpoint and shard seeds: the program to train")
    ap.add_argument("--max-len", type=int, default=4096, help="the largest input libFuzzer makes")
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=20000)
    ap.add_argument("--max-total-time", type=int, default=60)
    args = ap.parse_args()

    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    corpus = os.path.join(work, "corpus")
    artifacts = os.path.join(work, "artifacts") + os.sep
    os.makedirs(corpus)
    os.makedirs(artifacts)
    seeds = 0
    for src in args.corpus:
        for path in sorted(glob.glob(os.path.join(src, args.pattern))):
            shutil.copy(path, os.path.join(corpus, f"{seeds:03d}_{os.path.basename(path)}"))
            seeds += 1
    if args.seeds:
        seeds += make_seeds.write(args.seeds, corpus, args.pmlc, args.source, args.model)
    print(f"{args.name}: {seeds} seed files, {args.runs} runs or {args.max_total_time} s")

    argv = [os.path.abspath(args.fuzzer), corpus,
            f"-runs={args.runs}", f"-max_total_time={args.max_total_time}",
            f"-max_len={args.max_len}", "-timeout=10", "-rss_limit_mb=2048", "-seed=1",
            "-print_final_stats=1", f"-artifact_prefix={artifacts}"]
    if args.dict:
        argv.append(f"-dict={os.path.abspath(args.dict)}")
    print("$ " + " ".join(argv), flush=True)
    # The fuzzer runs in the work folder: imports in fuzz inputs resolve against it.
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
