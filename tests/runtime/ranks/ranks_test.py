#!/usr/bin/env python3
"""Ranks: `pmlc train` as N processes under mpirun, each running its share of the
stages (with chunks: of the stage devices, every chunk of each), trains the same
weights as one process; a rank that stops answering or dies
ends the run with a non-zero exit within the peer timeout, naming it; ranks started
differently (plan, --seed, --steps, --set, paths rank 0 alone uses, --out folders that
are not one folder) refuse to start naming the difference; a checkpoint written by N
ranks resumes on M; --trace writes one timeline of every rank; a rank that leaves says
goodbye (the goodbye_* behaviours run test_goodbye in place of pmlc); a device backend's
tensors cross ranks through host copies (test_device_ranks in place of pmlc); a stop signal to
mpirun or to one rank stops every rank at one step, saved as one resumable checkpoint.

usage: ranks_test.py PMLC EXAMPLES MPIRUN|none WORK BEHAVIOUR
Behaviours that need mpirun exit 77 (skipped) with a message when there is none or
pmlc was built without MPI."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
import deep_mlp  # noqa: E402
from checkpoints import bit_identical, checkpoint_tensors, rel_diff, sharded  # noqa: E402
import tied_gpt  # noqa: E402
import twohosts  # noqa: E402

pmlc, examples, mpirun, work, behaviour = sys.argv[1:6]
MLP = os.path.join(examples, "mlp.pml")
GPT = os.path.join(examples, "gpt.pml")
# The GPT example made small enough for a shared 2-core machine, on the CPU (ranks run
# there; the example's own place is four GPUs, which --backend auto would refuse without one).
SMALL_GPT = ["--set", "batch=16", "--set", "T=16", "--set", "microbatches=4", "--set", "place=cpu"]
SKIP = 77
SOURCE_REPLICAS = 2  # what the replicas_from_the_source behaviour writes into the GPT's place


def need_mpirun():
    if mpirun == "none" or not shutil.which(mpirun):
        print("SKIP: no mpirun (install openmpi-bin and libopenmpi-dev and rebuild with MPI)")
        sys.exit(SKIP)


def mpi_env(kill_grace=False):
    """The environment of a test's mpirun. Without `kill_grace`, mpirun ends the job as
    soon as a rank exits non-zero: by default it waits odls_base_sigkill_timeout (1 s)
    before each of SIGTERM and SIGKILL, 2 s of nothing on every refused or failed run.
    Tests that stop or lose a rank while others save keep that grace (README)."""
    env = dict(os.environ)
    # CI runs as root in a container; Open MPI refuses root unless told twice.
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    # Open MPI keeps its own allocations to exit; a leak report would fail the
    # sanitizer build for memory that is not PML's.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    if not kill_grace:
        env["OMPI_MCA_odls_base_sigkill_timeout"] = "0"
    return env


def mpi_cmd(n, *args):
    cmd = [mpirun, "--oversubscribe", "-np", str(n)]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd + [pmlc, "train", *args]


def run_mpi(n, *args, timeout=300):
    return subprocess.run(mpi_cmd(n, *args), capture_output=True, text=True, timeout=timeout, env=mpi_env())


def run_mpmd(*per_rank, timeout=120, cwd=None):
    """One process per argument list, rank k running `pmlc train *per_rank[k]`."""
    cmd = [mpirun, "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    for k, args in enumerate(per_rank):
        cmd += ([":"] if k else []) + ["-np", "1", pmlc, "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=mpi_env(), cwd=cwd)


def refused(name, r, message):
    """Every rank refuses to start with `message`, before step 1."""
    print(r.stderr[-3000:])
    check(r.returncode != 0, f"{name}: the run exits non-zero")
    for k in (0, 1):
        check(f"rank {k} cannot join the run: {message}" in r.stderr, f"{name}: rank {k} says '{message}'")
    check("step 1/" not in r.stderr, f"{name}: before step 1")


def run_one(*args):
    return subprocess.run([pmlc, "train", *args], capture_output=True, text=True, timeout=300)


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def same_weights(name, ref, got, norm="max"):
    for f in ("model", "optimizer"):
        d = rel_diff(ref, got, f, norm)
        print(f"{name}: {f} relative difference ({norm}) {d:.3g}")
        check(d <= 1e-5, f"{name}: {f} within 1e-5 of one process (got {d:.3g})")


def train_like_one_process(model, extra, counts, steps=10, replicas=1, norm="max"):
    """replicas None: no --replicas flag (the plan's place says)."""
    ref = os.path.join(work, "one")
    r = run_one(model, *extra, "--steps", str(steps), "--out", ref, "--quiet")
    check(r.returncode == 0, f"one process trains: {r.stderr}")
    for n in counts:
        out = os.path.join(work, f"ranks{n}")
        flag = [] if replicas is None else ["--replicas", str(replicas)]
        r = run_mpi(n, model, *extra, "--steps", str(steps), "--out", out, *flag)
        check(r.returncode == 0, f"{n} ranks train: {r.stderr[-2000:]}")
        if r.returncode:
            continue
        check(r.stderr.count("training ") == 1 and f"on {n} ranks" in r.stderr,
              f"{n} ranks: only rank 0 prints the progress: {r.stderr[-2000:]}")
        per = n // (replicas or SOURCE_REPLICAS)
        check(sharded(out, per), f"{n} ranks wrote {per} shards of each kind: {sorted(os.listdir(out))}")
        if replicas != 1:
            want = f"as {replicas or SOURCE_REPLICAS} replicas of"
            check(want in r.stderr, f"{n} ranks: the progress line says '{want}': {r.stderr[-2000:]}")
        same_weights(f"{n} ranks, {replicas or 'the source'} replica(s)", ref, out, norm)


def deep_model(name, place, layers, optimizer, *lines):
    """The freeze tests' residual MLP (tests/lib/deep_mlp.py) placed by `place`, with
    `layers` residual layers and the train block's extra `lines`, written to
    WORK/NAME.pml: its path."""
    return deep_mlp.write(os.path.join(work, name + ".pml"), place, layers, optimizer, lines)


def chunked_gpt(place):
    """The GPT example, placed by `place` (`stages = 2, chunks = 2`): its path."""
    with open(GPT) as f:
        src = f.read()
    check("place = auto(stages = 4)" in src, "the GPT example places itself on 4 stages")
    path = os.path.join(work, "gpt_" + re.sub(r"\W+", "_", place) + ".pml")
    with open(path, "w") as f:
        f.write(src.replace("place = auto(stages = 4)", f"place = auto({place})"))
    return path


def chunked_like_one_process(name, model, extra, counts, steps=10, replicas=1, bits=False, one_stage=None):
    """A chunked plan on each of `counts` ranks writes one shard per rank of a replica
    and trains one process's weights: its bits (bits), else within 1e-5; and within
    1e-5 (relative L2) of the run in `one_stage`, when given. replicas (R, 2 R ranks a
    pipeline of 2 ranks) with --replicas, or from the source: ("source", R)."""
    flag = [] if isinstance(replicas, tuple) else ["--replicas", str(replicas)]
    replicas = replicas[1] if isinstance(replicas, tuple) else replicas
    more = ["--steps", str(steps)]
    ref = os.path.join(work, "one")
    shutil.rmtree(ref, ignore_errors=True)
    r = run_one(model, *extra, *more, "--out", ref, "--quiet")
    check(r.returncode == 0, f"{name}: one process trains: {r.stderr}")
    for n in counts:
        out = os.path.join(work, f"ranks{n}")
        shutil.rmtree(out, ignore_errors=True)
        r = run_mpi(n, model, *extra, *more, "--out", out, *flag, "--quiet")
        check(r.returncode == 0, f"{name}: {n} ranks train: {r.stderr[-2000:]}")
        if r.returncode:
            continue
        check(sharded(out, n // replicas), f"{name}: {n} ranks wrote {n // replicas} shards: {sorted(os.listdir(out))}")
        if bits:
            check(bit_identical(ref, out), f"{name}: {n} ranks train the bits of one process")
        else:
            same_weights(f"{name}, {n} ranks", ref, out)
        if one_stage:
            d = rel_diff(one_stage, out, "model", "l2")
            print(f"{name}, {n} ranks: relative difference (l2) from 1 stage x 1 micro-batch {d:.3g}")
            check(d <= 1e-5, f"{name}, {n} ranks: within 1e-5 of 1 stage x 1 micro-batch (got {d:.3g})")


def check_timeline(name, path, n, replicas, stages, mbs, steps, stderr):
    """`pmlc train --trace` under n ranks wrote one Chrome trace of every rank: a process
    per rank, a thread per stage it runs, a forward and a backward span per step and
    micro-batch of its replica, no overlap within a stage, and every receive ending
    after the send it waited for began on the sender's side (its work producing the
    message ended), once clocks are corrected, within the recorded uncertainties."""
    with open(path) as f:
        t = json.load(f)  # parses
    other = t["otherData"]
    ranks = other["ranks"]
    check([k["rank"] for k in ranks] == list(range(n)), f"{name}: otherData lists every rank: {ranks}")
    names = {e["pid"]: e["args"]["name"] for e in t["traceEvents"] if e["name"] == "process_name"}
    want = {k + 1: f"rank {k} (replica {k // (n // replicas)})" for k in range(n)}
    check(names == want, f"{name}: one process per rank, named for it and its replica: {names}")
    check(sorted(s for k in ranks if k["replica"] == 0 for s in k["stages"]) == list(range(stages)),
          f"{name}: replica 0's ranks run every stage once: {ranks}")
    slack = 0.002  # microseconds: ts and dur are printed to 0.001
    for k in ranks:
        check(abs(k["clock_offset_us"]) <= k["clock_uncertainty_us"] + slack,
              f"{name}: rank {k['rank']} shares rank 0's clock on one host, so its offset is within its "
              f"uncertainty: {k}")
        check(0 <= k["transport_wait"] < 1, f"{name}: rank {k['rank']}'s transport wait is a share: {k}")
        check(f"rank {k['rank']} {100 * k['transport_wait']:.1f}%" in stderr,
              f"{name}: the summary line gives rank {k['rank']}'s wait: {stderr[-1500:]}")
    check(0 <= other["measured_bubble"] < 1 and "over the %d stages of replica 0" % stages in stderr,
          f"{name}: the bubble is replica 0's: {other} {stderr[-1500:]}")
    spans = {}  # (pid, stage) -> the timetable's spans (op spans nest inside them)
    for e in t["traceEvents"]:
        if e["ph"] == "X" and e["cat"] != "op":
            spans.setdefault((e["pid"], e["tid"]), []).append(e)
    owner = {}  # (replica, stage) -> rank
    per_mb = mbs // replicas
    for k in ranks:
        mine = range(k["replica"] * per_mb, (k["replica"] + 1) * per_mb)
        for s in k["stages"]:
            owner[(k["replica"], s)] = k["rank"]
            ev = sorted(spans.get((k["rank"] + 1, s), []), key=lambda e: e["ts"])
            for cat in ("fwd", "bwd"):
                got = sorted((e["args"]["step"], e["args"]["microbatch"]) for e in ev if e["cat"] == cat)
                check(got == [(st, mb) for st in range(1, steps + 1) for mb in mine],
                      f"{name}: rank {k['rank']} stage {s} has one {cat} span per step and micro-batch of its "
                      f"replica: {got}")
            for a, b in zip(ev, ev[1:]):
                check(a["ts"] + a["dur"] <= b["ts"] + slack,
                      f"{name}: rank {k['rank']} stage {s}: {a['name']} overlaps {b['name']}")
    unc = {k["rank"]: k["clock_uncertainty_us"] for k in ranks}
    matched = 0
    for k in ranks:
        for s in k["stages"]:
            for e in spans.get((k["rank"] + 1, s), []):
                if e["cat"] not in ("recv_act", "recv_grad"):
                    continue
                src, made = (s - 1, "fwd") if e["cat"] == "recv_act" else (s + 1, "bwd")
                peer = owner[(k["replica"], src)]
                sent = [x for x in spans.get((peer + 1, src), []) if x["cat"] == made and
                        (x["args"]["step"], x["args"]["microbatch"]) == (e["args"]["step"], e["args"]["microbatch"])]
                check(len(sent) == 1, f"{name}: {e['name']} of step {e['args']['step']} has its sender's span")
                if len(sent) == 1:
                    matched += 1
                    # The send starts after the work that produced the message ends.
                    check(e["ts"] + e["dur"] >= sent[0]["ts"] + sent[0]["dur"] - unc[k["rank"]] - unc[peer] - slack,
                          f"{name}: rank {k['rank']}'s {e['name']} (step {e['args']['step']}) ends before rank "
                          f"{peer} sent it")
    check(matched >= 2 * (stages - 1) * mbs * steps, f"{name}: every receive was matched ({matched})")

def two_hosts():
    """tests/lib/twohosts.py's two hosts, or a skip saying why there are none here."""
    need_mpirun()
    net, why = twohosts.TwoHosts.make(work, mpirun)
    if not net:
        print(f"SKIP: {why}")
        sys.exit(SKIP)
    return net


def check_picture(name, svg, stages, mbs):
    """--timeline's picture under ranks: a row per stage device of replica 0, each with a
    forward and a backward of each of its micro-batches (a replica runs its share of
    them), whichever rank ran it."""
    import xml.etree.ElementTree as ET
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.parse(svg).getroot()
    rows = [t.text for t in root.iter(ns + "text") if (t.text or "").startswith("stage ")]
    titles = [t.text or "" for t in root.iter(ns + "title")]
    check(rows == [f"stage {s}" for s in range(stages)], f"{name}: the picture's rows: {rows}")
    for s in range(stages):
        for kind in ("fwd", "bwd"):
            got = sorted(t for t in titles if t.startswith(f"stage {s}: {kind} of"))
            check(got == sorted(f"stage {s}: {kind} of micro-batch {m}" for m in range(mbs)),
                  f"{name}: stage {s}'s {kind} boxes: {got}")


def rank_pids(marker, rank):
    """The pids of processes whose command line holds `marker` and whose rank is `rank`."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if marker.encode() not in f.read() or int(p) == os.getpid():
                    continue
            with open(f"/proc/{p}/environ", "rb") as f:
                if f"OMPI_COMM_WORLD_RANK={rank}".encode() in f.read().split(b"\0"):
                    pids.append(int(p))
        except OSError:
            continue
    return pids


def lose_a_rank(sig, n, victim, timeout):
    """Starts a long run on n ranks, sends `sig` to rank `victim` once training is under
    way, and returns (exit status, seconds from the signal to the end, output)."""
    metrics = os.path.join(work, "metrics.jsonl")
    args = [GPT, *SMALL_GPT, "--steps", "1000000", "--peer-timeout", str(timeout), "--metrics", metrics]
    proc = subprocess.Popen(mpi_cmd(n, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=mpi_env(kill_grace=True))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and (not os.path.exists(metrics) or os.path.getsize(metrics) == 0):
            time.sleep(0.2)
        pids = rank_pids(metrics, victim)
        check(len(pids) == 1, f"rank {victim}'s process is found (got {pids})")
        t0 = time.time()
        for pid in pids:
            os.kill(pid, sig)
        out, _ = proc.communicate(timeout=timeout + 60)
        return proc.returncode, time.time() - t0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in rank_pids(metrics, victim):  # a stopped process outlives mpirun
            os.kill(pid, signal.SIGKILL)


def stop_ranks(sig, to_mpirun):
    """A long run on 2 ranks checkpointing every 5 steps into work/D, and `sig` sent to
    mpirun (which passes SIGUSR1 on to every rank; SIGTERM it turns into a kill, README)
    or to rank 1 alone once training is under way: every rank must stop at one step,
    rank 0 saying which, with one sharded checkpoint of it that resumes bit for bit as
    the run that never stopped."""
    d, metrics = os.path.join(work, "D"), os.path.join(work, "metrics.jsonl")
    args = [MLP, "--steps", "1000000", "--set", "checkpoint_every=5", "--out", d, "--metrics", metrics,
            "--peer-timeout", "30"]
    cmd = mpi_cmd(2, *args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=mpi_env(kill_grace=True))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and (not os.path.exists(metrics) or
                                          open(metrics).read().count("\n") < 8):
            time.sleep(0.1)
        pids = [proc.pid] if to_mpirun else rank_pids(metrics, 1)
        check(len(pids) == 1, f"the process to signal is found (got {pids})")
        t0 = time.time()
        for pid in pids:
            os.kill(pid, sig)
        out, _ = proc.communicate(timeout=120)
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(out[-3000:])
    by = 0 if to_mpirun else 1  # mpirun signals every rank: the lowest rank's request names it
    m = re.search(rf"stopped at step (\d+) by {sig.name} on rank {by} \(all 2 ranks stopped there\); resume with: "
                  rf"(.*) \(under the launcher", out)
    check(m is not None, f"rank 0 says where every rank stopped, why, and how to resume")
    check(proc.returncode == 128 + sig, f"exit {128 + sig}, not {proc.returncode}")
    check(took < 30, f"the ranks stop within a few steps and a save, not {took:.1f} s")
    if not m:
        return
    step = int(m.group(1))
    check(m.group(2).endswith(f"--resume {d}"), f"the command resumes D: {m.group(2)}")
    check(sharded(d, 2) and json.load(open(os.path.join(d, "trainer.json")))["step"] == step,
          f"D is one sharded checkpoint of step {step}: {sorted(os.listdir(d))}")
    check(not [n for n in os.listdir(d) if ".tmp." in n or n == "latest"], f"D is committed: {sorted(os.listdir(d))}")
    # It resumes on 2 ranks to the weights of the run that never stopped, bit for bit,
    # and loads in one process as any checkpoint does.
    to = str(step + 3)
    straight, resumed = os.path.join(work, "straight"), os.path.join(work, "resumed")
    a = run_mpi(2, MLP, "--steps", to, "--out", straight, "--quiet")
    b = run_mpi(2, MLP, "--steps", to, "--resume", d, "--out", resumed, "--quiet")
    check(a.returncode == 0 and b.returncode == 0, f"both runs to step {to} finish: {a.stderr[-1000:]}{b.stderr[-1000:]}")
    if a.returncode == 0 and b.returncode == 0:
        for base in ("model", "optimizer"):
            x, y = checkpoint_tensors(straight, base), checkpoint_tensors(resumed, base)
            check(x.keys() == y.keys() and all(x[k].tobytes() == y[k].tobytes() for k in x),
                  f"resumed {base} state equals the uninterrupted run's bit for bit")
    r = run_one(MLP, "--steps", str(step + 1), "--resume", d, "--quiet")
    check(r.returncode == 0, f"one process resumes it: {r.stderr[-1000:]}")


os.makedirs(work, exist_ok=True)
shutil.rmtree(work)
os.makedirs(work)

if behaviour == "mlp_two_ranks":
    need_mpirun()
    train_like_one_process(MLP, [], [2])
    # Rank 0 evaluates the gathered model: the same held-out loss and accuracy.
    one = run_one(MLP, "--steps", "3", "--eval", "2", "--quiet")
    two = run_mpi(2, MLP, "--steps", "3", "--eval", "2", "--quiet")
    evals = [[l for l in r.stderr.splitlines() if l.startswith("eval:")] for r in (one, two)]
    print(evals)
    check(one.returncode == 0 and two.returncode == 0 and len(evals[0]) == 1 and evals[0] == evals[1],
          f"2 ranks evaluate like one process: {evals}")
elif behaviour == "gpt_two_three_four_ranks":
    need_mpirun()
    train_like_one_process(GPT, SMALL_GPT, [2, 3, 4])
elif behaviour == "mlp_two_replicas":
    need_mpirun()
    # Replicas add their gradient sums in another order than one process: AdamW turns
    # the rounding of a near-zero gradient into a full step of either sign for a few
    # single weights, so the MLP (AdamW) is compared tensor by tensor in L2 norm.
    train_like_one_process(MLP, [], [2], replicas=2, norm="l2")
elif behaviour == "gpt_replicas":
    need_mpirun()
    # The GPT's key bias has an exactly zero gradient (softmax ignores a constant added
    # to every score), all rounding noise, which AdamW would amplify: SGD here, and
    # every weight within 1e-5 of the largest in its tensor.
    sgd = ["--set", "optimizer=sgd(lr = 0.05, momentum = 0.9)"]
    train_like_one_process(GPT, SMALL_GPT + sgd, [4], replicas=2)   # 2 pipelines of 2 ranks
    train_like_one_process(GPT, SMALL_GPT + sgd, [4], replicas=4)   # 4 ranks, each the whole pipeline
elif behaviour == "zero_bubble_ranks_and_replicas":
    need_mpirun()
    # ZB-H1 (split backwards, weight halves late) across processes: the MLP's 2 stages on
    # 2 ranks, and the small GPT's 4 stages as 2 replicas of 2 ranks, train the weights
    # of one process running the same timetable.
    zb = ["--set", "schedule=zero_bubble"]
    train_like_one_process(MLP, zb, [2])
    sgd = ["--set", "optimizer=sgd(lr = 0.05, momentum = 0.9)"]
    train_like_one_process(GPT, SMALL_GPT + sgd + zb, [4], replicas=2)
elif behaviour == "replicas_from_the_source":
    need_mpirun()
    # `place = auto(stages = 4, replicas = 2)` in the model: 4 ranks form 2 pipelines
    # of 2 ranks without any flag, and train one process's weights (one process is one
    # pipeline whatever the plan says); --replicas overrides the source.
    with open(GPT) as f:
        src = f.read()
    check("place = auto(stages = 4)" in src, "the GPT example places itself on 4 stages")
    model = os.path.join(work, "gpt_replicas.pml")
    with open(model, "w") as f:
        f.write(src.replace("place = auto(stages = 4)", f"place = auto(stages = 4, replicas = {SOURCE_REPLICAS})"))
    sgd = ["--set", "optimizer=sgd(lr = 0.05, momentum = 0.9)"]
    p = subprocess.run([pmlc, "plan", model, *SMALL_GPT, "--json"], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0 and json.loads(p.stdout)["replicas"] == 2, f"the plan carries the replicas: {p.stderr}")
    train_like_one_process(model, SMALL_GPT + sgd, [4], replicas=None)  # 2 pipelines of 2 ranks
    train_like_one_process(model, SMALL_GPT + sgd, [4], replicas=4)     # the flag wins: 4 whole pipelines
    r = run_mpi(3, model, *SMALL_GPT, "--steps", "1", timeout=120)
    check(r.returncode != 0 and "3 ranks cannot form 2 equal pipeline replicas" in r.stderr
          and "--replicas overrides it" in r.stderr, f"3 ranks cannot form the source's 2 replicas: {r.stderr[-2000:]}")
elif behaviour == "freeze_auto_like_one_process":
    need_mpirun()
    # `freeze auto` judges every layer by its gradient norm, but a rank holds only its
    # own stages' gradients: the ranks must decide on the norms of the whole model, as
    # one process does, or each freezes its own prefix. A residual MLP over 4 stages
    # (the freeze tests' model: with this seed the stem and layers 0-2 freeze at steps
    # 8 and 10), SGD, compared with one process for 2 and 4 ranks and 2 replicas of 2.
    model = deep_model("deep_auto", "stages = 4", 5, "sgd(lr = 0.05, momentum = 0.9)",
                       "freeze auto(every = 2, threshold = 0.2)")

    def frozen(folder):
        with open(os.path.join(folder, "trainer.json")) as f:
            return json.load(f)["auto_freeze"]["frozen"]

    seed = ["--seed", "7"]
    train_like_one_process(model, seed, [2, 4], steps=12)
    want = frozen(os.path.join(work, "one"))
    print("one process froze", want)
    check(len(want) >= 2, f"the one-process run freezes a prefix of layers (the test needs one): {want}")
    for n in (2, 4):
        got = frozen(os.path.join(work, f"ranks{n}"))
        check(got == want, f"{n} ranks freeze the layers one process does: {got}, want {want}")
    train_like_one_process(model, seed, [4], steps=12, replicas=2)
    got = frozen(os.path.join(work, "ranks4"))
    check(got == want, f"2 replicas of 2 ranks freeze the layers one process does: {got}, want {want}")
elif behaviour == "replicas_must_divide_the_microbatches":
    need_mpirun()
    r = run_mpi(3, GPT, *SMALL_GPT, "--steps", "1", "--replicas", "3", timeout=120)
    check(r.returncode != 0, "the run exits non-zero")
    check("4 micro-batches do not divide among 3 replicas" in r.stderr, f"the message says why: {r.stderr[-2000:]}")
elif behaviour == "resume_on_other_rank_counts":
    need_mpirun()
    ref, half = os.path.join(work, "one"), os.path.join(work, "half")
    check(run_one(GPT, *SMALL_GPT, "--steps", "10", "--out", ref, "--quiet").returncode == 0, "one process trains")
    r = run_mpi(4, GPT, *SMALL_GPT, "--steps", "5", "--set", "checkpoint_every=5", "--out", half)
    check(r.returncode == 0, f"4 ranks write a checkpoint at step 5: {r.stderr[-2000:]}")
    check(sharded(half, 4), f"as 4 shards of each kind: {sorted(os.listdir(half))}")
    periodic = os.path.join(half, "step-000005")
    check(os.path.isdir(periodic) and sharded(periodic, 4), "the periodic checkpoint is sharded too")
    r = run_mpi(2, GPT, *SMALL_GPT, "--steps", "10", "--resume", half, "--out", os.path.join(work, "two"))
    check(r.returncode == 0, f"2 ranks resume it: {r.stderr[-2000:]}")
    if r.returncode == 0:
        same_weights("4 ranks, then 2", ref, os.path.join(work, "two"))
    # 2 ranks resume it into the same folder: the 4-rank shards are replaced, not kept.
    r = run_mpi(2, GPT, *SMALL_GPT, "--steps", "6", "--resume", half, "--out", half)
    check(r.returncode == 0, f"2 ranks resume it into its own folder: {r.stderr[-2000:]}")
    check(sharded(half, 2) and not [f for f in os.listdir(half) if "-of-00004" in f],
          f"the folder holds the 2-rank checkpoint alone: {sorted(os.listdir(half))}")
    r = run_one(GPT, *SMALL_GPT, "--steps", "10", "--resume", half, "--out", os.path.join(work, "single"), "--quiet")
    check(r.returncode == 0, f"one process resumes it: {r.stderr}")
    if r.returncode == 0:
        same_weights("4 ranks, then 2 (to step 6), then 1", ref, os.path.join(work, "single"))
        check(sharded(os.path.join(work, "single"), 0), "one process writes one file of each kind")
    # The single-process checkpoint resumes on 4 ranks too, and the shards load as
    # --init weights (folder or index) and for inference.
    r = run_one(GPT, *SMALL_GPT, "--steps", "5", "--out", os.path.join(work, "half1"), "--quiet")
    check(r.returncode == 0, f"one process writes a checkpoint at step 5: {r.stderr}")
    r = run_mpi(4, GPT, *SMALL_GPT, "--steps", "10", "--resume", os.path.join(work, "half1"), "--out",
                os.path.join(work, "four"))
    check(r.returncode == 0, f"4 ranks resume it: {r.stderr[-2000:]}")
    if r.returncode == 0:
        same_weights("1 process, then 4 ranks", ref, os.path.join(work, "four"))
    for w in (half, os.path.join(half, "model.safetensors.index.json")):
        r = run_one(GPT, *SMALL_GPT, "--steps", "0", "--init", w, "--out", os.path.join(work, "init"), "--quiet")
        check(r.returncode == 0, f"--init {w}: {r.stderr}")
        if r.returncode == 0:
            d = rel_diff(half, os.path.join(work, "init"), "model")
            check(d == 0, f"--init {w} loads the shards exactly (difference {d:.3g})")
elif behaviour == "unwritable_shard_commits_nothing":
    need_mpirun()
    # Rank 2's shard cannot be written (its disk is "full": a file size limit on rank 2
    # alone, SIGXFSZ ignored so the write fails with EFBIG): every rank learns it, rank 0
    # does not commit, and the run fails naming the rank and the folder.
    out = os.path.join(work, "out")
    cmd = mpi_cmd(4, GPT, *SMALL_GPT, "--steps", "2", "--out", out)
    at = cmd.index(pmlc)
    cmd[at:at] = ["sh", "-c", 'trap "" XFSZ; [ "$OMPI_COMM_WORLD_RANK" = 2 ] && ulimit -f 1; exec "$0" "$@"']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=mpi_env())
    print(r.stderr[-3000:])
    check(r.returncode != 0, "the run exits non-zero")
    check("rank 2 cannot write its checkpoint shard" in r.stderr, "rank 2 says why")
    check(f"{out} was not committed: 1 rank(s) could not write" in r.stderr, "rank 0 says nothing was committed")
    check(not os.path.exists(os.path.join(out, "trainer.json")), "no trainer.json")
    check(not [f for f in os.listdir(out) if f.endswith(".index.json") or ".tmp" in f],
          f"no index and no temporary file: {sorted(os.listdir(out))}")
elif behaviour == "stopped_rank_is_named":
    need_mpirun()
    code, secs, out = lose_a_rank(signal.SIGSTOP, 4, 2, 6)  # 6 s: a loaded sanitizer build stays under it
    print(out[-3000:])
    check(code != 0, "the run exits non-zero")
    check(secs < 6 + 30, f"within the timeout and a margin (took {secs:.1f} s)")
    named = [line for line in out.splitlines() if "rank 2 has not answered" in line]
    check(len(named) >= 1, "the other ranks name rank 2")
    check(all("rank 0 has not" not in l and "rank 1 has not" not in l and "rank 3 has not" not in l
              for l in out.splitlines()), "no live rank is blamed")
elif behaviour == "killed_rank_is_named":
    need_mpirun()
    code, secs, out = lose_a_rank(signal.SIGKILL, 2, 1, 5)
    print(out[-3000:])
    check(code != 0, "the run exits non-zero")
    check(secs < 5 + 30, f"within the timeout and a margin (took {secs:.1f} s)")
    check("rank 1" in out, "the output names rank 1")
elif behaviour == "different_plans_refuse_to_start":
    need_mpirun()
    cmd = [mpirun, "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    cmd += ["-np", "1", pmlc, "train", MLP, "--steps", "2", ":",
            "-np", "1", pmlc, "train", MLP, "--steps", "2", "--set", "batch=128"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=mpi_env())
    print(r.stderr[-3000:])
    check(r.returncode != 0, "the run exits non-zero")
    check("rank 0 cannot join" in r.stderr and "rank 1 cannot join" in r.stderr, "both ranks refuse")
    check("rank 1 was started with --set batch=128, rank 0 without --set batch" in r.stderr,
          "the message names rank 1 and the option")
    # The same options, but rank 1's program is another (a copy with another learning
    # rate, at another path: paths are not compared, what they hold is).
    other = os.path.join(work, "mlp_other.pml")
    with open(MLP) as f:
        src = f.read()
    check("lr = 3e-4" in src, "the MLP example's learning rate is 3e-4")
    with open(other, "w") as f:
        f.write(src.replace("lr = 3e-4", "lr = 1e-3"))
    r = run_mpmd([MLP, "--steps", "2"], [other, "--steps", "2"])
    refused("another program", r, f"rank 1 was started with the plan of '{other}'")
    check(f"rank 0 with the plan of '{MLP}'" in r.stderr and "every rank must run the same plan" in r.stderr,
          f"the message names both plans and why: {r.stderr[-2000:]}")
elif behaviour == "different_seeds_refuse_to_start":
    need_mpirun()
    r = run_mpmd([MLP, "--steps", "2", "--seed", "3"], [MLP, "--steps", "2", "--seed", "7"])
    refused("--seed 3 and 7", r, "rank 1 was started with --seed 7, rank 0 with --seed 3")
    # The train block's seed is the seed a rank without --seed uses: named as such.
    r = run_mpmd([MLP, "--steps", "2"], [MLP, "--steps", "2", "--seed", "7"])
    refused("no --seed and 7", r, "rank 1 was started with --seed 7, rank 0 with --seed 0 (the train block's)")
    # ... and a --seed equal to it is the same run.
    r = run_mpmd([MLP, "--steps", "1", "--quiet"], [MLP, "--steps", "1", "--seed", "0", "--quiet"])
    check(r.returncode == 0, f"--seed 0 is the train block's seed: the ranks train: {r.stderr[-2000:]}")
elif behaviour == "different_steps_refuse_to_start":
    need_mpirun()
    # Before, the rank with fewer steps finished and the other waited for it until the
    # timeout ("rank 0 has not answered"): now neither starts.
    t0 = time.time()
    r = run_mpmd([MLP, "--steps", "2", "--peer-timeout", "20"], [MLP, "--steps", "3", "--peer-timeout", "20"])
    refused("--steps 2 and 3", r, "rank 1 was started with --steps 3, rank 0 with --steps 2")
    check(time.time() - t0 < 20, f"at once, not after the peer timeout ({time.time() - t0:.1f} s)")
    check("has not answered" not in r.stderr, "no rank is called dead")
elif behaviour == "different_sets_refuse_to_start":
    need_mpirun()
    sgd = "optimizer=sgd(lr = 0.05, momentum = 0.9)"
    r = run_mpmd([MLP, "--steps", "1", "--set", "batch=128", "--set", sgd],
                 [MLP, "--steps", "1", "--set", sgd, "--set", "batch=64"])
    refused("batch 128 and 64", r, "rank 1 was started with --set batch=64, rank 0 with --set batch=128")
    # The order of the --set options does not matter, and the last of a key wins, as
    # in the compiler: these two ranks ask for the same run.
    r = run_mpmd([MLP, "--steps", "1", "--set", "batch=64", "--set", sgd, "--quiet"],
                 [MLP, "--steps", "1", "--set", sgd, "--set", "batch=128", "--set", "batch=64", "--quiet"])
    check(r.returncode == 0, f"the same --set in another order trains: {r.stderr[-2000:]}")
    # Options rank 0 alone uses are compared as given: another rank's would be ignored.
    r = run_mpmd([MLP, "--steps", "1", "--metrics", os.path.join(work, "m0.jsonl")], [MLP, "--steps", "1"])
    refused("--metrics on rank 0 alone", r, "rank 1 was started without --metrics, rank 0 with --metrics")
    check("rank 0 alone writes it" in r.stderr, "and says why")
    r = run_mpmd([MLP, "--steps", "1", "--eval", "2"], [MLP, "--steps", "1", "--eval", "3"])
    refused("--eval 2 and 3", r, "rank 1 was started with --eval 3, rank 0 with --eval 2")
elif behaviour == "different_out_folders_refuse_to_start":
    need_mpirun()
    a, b = os.path.join(work, "a"), os.path.join(work, "b")
    r = run_mpmd([MLP, "--steps", "1", "--out", a], [MLP, "--steps", "1", "--out", b])
    refused("two folders", r, f"rank 1 was started with --out '{b}', rank 0 with --out '{a}'")
    check("must be one folder that every rank reaches" in r.stderr, f"and says why: {r.stderr[-2000:]}")
    check(not os.path.exists(a) and not os.path.exists(b), "no folder is left behind")
    # One command line, as on two hosts that do not share the folder: each rank's
    # relative --out is a folder of its own (a wrapper runs each in its own folder).
    wrapper = os.path.join(work, "per_rank.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nmkdir -p "host$OMPI_COMM_WORLD_RANK" && cd "host$OMPI_COMM_WORLD_RANK" && exec "$@"\n')
    os.chmod(wrapper, 0o755)
    cmd = [mpirun, "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    cmd += ["-np", "2", wrapper, pmlc, "train", MLP, "--steps", "1", "--out", "out"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=mpi_env(), cwd=work)
    refused("one spelling, two folders", r, "rank 1 was started with --out 'out', rank 0 with --out 'out'")
    for k in (0, 1):
        out = os.path.join(work, f"host{k}", "out")
        check(not os.path.exists(out) or not os.listdir(out), f"nothing is written to host {k}'s folder")
elif behaviour == "two_hosts_out_not_shared":
    # With one folder seen by both hosts the ranks train over TCP; when the second host
    # sees a folder of its own at the same path (as a node without the shared file
    # system), the run is refused before step 1.
    with two_hosts() as net:
        shared = os.path.join(work, "shared")
        os.makedirs(shared)
        out = os.path.join(shared, "out")
        r = net.run([pmlc, "train", MLP, "--steps", "2", "--out", out], mpi_env())
        check(r.returncode == 0, f"two hosts sharing the folder train over TCP: {r.stderr[-2000:]}")
        check(os.path.isdir(out) and sharded(out, 2), "and commit the checkpoint")
        net.private(shared)
        out = os.path.join(shared, "out2")
        r = net.run([pmlc, "train", MLP, "--steps", "2", "--out", out], mpi_env())
        refused("a folder host b does not share", r,
                f"rank 1 was started with --out '{out}', rank 0 with --out '{out}': the ranks' --out must be one "
                "folder that every rank reaches")
elif behaviour == "two_hosts_slow_link":
    # A link of 10 Mbit/s: the MLP's stage boundary carries 8 micro-batches of 32 x 512
    # floats each way a step, 0.42 s of this link; the ranks wait on it, and train what
    # one process trains.
    with two_hosts() as net:
        why = net.slow("10mbit")
        if why:
            print(f"SKIP: {why}")
            sys.exit(SKIP)
        out, ref = os.path.join(work, "two"), os.path.join(work, "one")
        t0 = time.time()
        r = net.run([pmlc, "train", MLP, "--steps", "5", "--out", out, "--quiet"], mpi_env())
        secs, floor = time.time() - t0, 5 * 8 * 32 * 512 * 4 * 8 / 10e6
        print(f"5 steps over the slow link: {secs:.1f} s (its rate alone needs {floor:.1f} s)")
        check(r.returncode == 0, f"the ranks train over the slow link: {r.stderr[-2000:]}")
        check(secs > floor, "the link is as slow as asked")
        r = run_one(MLP, "--steps", "5", "--out", ref, "--quiet")
        check(r.returncode == 0, f"one process trains: {r.stderr}")
        check(sharded(out, 2) and bit_identical(out, ref), "the bits of one process")
elif behaviour == "two_hosts_cut_link":
    # The link between the hosts goes dead mid-run (packets vanish, nothing is closed):
    # rank 0 names the rank it lost within --peer-timeout, says which checkpoint to
    # resume and exits; nothing committed is lost, and that checkpoint resumes, on one
    # process, bit for bit. (mpirun itself then waits minutes for its daemon on the
    # lost host, tests/lib/twohosts.py: Open MPI's, not the ranks', so the test ends it.)
    import threading
    with two_hosts() as net:
        out = os.path.join(work, "out")
        p = net.start([pmlc, "train", MLP, "--steps", "100000", "--out", out, "--peer-timeout", "5",
                       "--set", "checkpoint_every=20"], mpi_env(kill_grace=True))
        said = []
        threading.Thread(target=lambda: said.extend(iter(p.stderr.readline, "")), daemon=True).start()
        threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
        first = os.path.join(out, "step-000020", "trainer.json")
        deadline = time.time() + 120
        while not os.path.exists(first) and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        check(os.path.exists(first), "a periodic checkpoint is committed before the cut")
        net.cut()
        t0 = time.time()
        while "pmlc: the last checkpoint is" not in "".join(said) and time.time() - t0 < 60:
            time.sleep(0.1)
        secs = time.time() - t0
        time.sleep(2)  # rank 0's exit
        rank0 = net.running(0, "pmlc")
        p.kill()
        p.wait()
        err = "".join(said)
        print(err[-3000:])
        print(f"rank 0 spoke {secs:.1f} s after the cut")
        check(secs < 5 + 20, f"within the peer timeout and a margin ({secs:.1f} s)")
        check("rank 1 has not answered" in err, "rank 0 names rank 1")
        check(not rank0, f"rank 0 has exited (still running: {rank0})")
        m = re.search(r"the last checkpoint is (\S+/step-(\d+)); resume with: .* --resume \1", err)
        check(m is not None, "and says which checkpoint to resume, and how")
        if m:
            step = int(m.group(2))
            check(os.path.exists(os.path.join(m.group(1), "trainer.json")), f"{m.group(1)} is committed")
            r = run_one(MLP, "--steps", str(step + 2), "--resume", out, "--out", os.path.join(work, "x"))
            check(r.returncode != 0 and f"only periodic ones; the latest is {m.group(1)}" in r.stderr,
                  f"--resume of the run's folder names that checkpoint: {r.stderr}")
            resumed, ref = os.path.join(work, "resumed"), os.path.join(work, "one")
            r = run_one(MLP, "--steps", str(step + 2), "--resume", m.group(1), "--out", resumed, "--quiet")
            check(r.returncode == 0, f"it resumes on one process: {r.stderr}")
            r = run_one(MLP, "--steps", str(step + 2), "--out", ref, "--quiet")
            check(r.returncode == 0 and bit_identical(resumed, ref), "to the bits of a run never cut")
elif behaviour == "one_out_folder_leaves_no_token":
    need_mpirun()
    # Two spellings of one folder are one folder: the ranks train, and the token rank 0
    # wrote for them is gone from the checkpoint.
    out = os.path.join(work, "out")
    r = run_mpmd([MLP, "--steps", "2", "--out", out, "--quiet"],
                 [MLP, "--steps", "2", "--out", os.path.join(work, ".", "out") + "/", "--quiet"], cwd=work)
    check(r.returncode == 0, f"the ranks train into one folder: {r.stderr[-2000:]}")
    check(sharded(out, 2), f"a committed checkpoint: {sorted(os.listdir(out)) if os.path.isdir(out) else None}")
    check(not [f for f in os.listdir(out) if "token" in f], f"no token left: {sorted(os.listdir(out))}")
    # A token a killed start-up left (or a link in its place) is replaced, not followed.
    target = os.path.join(work, "not-yours")
    with open(target, "w") as f:
        f.write("keep")
    os.symlink(target, os.path.join(out, ".pml-ranks-token"))
    r = run_mpi(2, MLP, "--steps", "2", "--out", out, "--quiet", timeout=120)
    check(r.returncode == 0, f"the ranks train over a stale token: {r.stderr[-2000:]}")
    with open(target) as f:
        check(f.read() == "keep", "the link's target is untouched")
    check(not [f for f in os.listdir(out) if "token" in f], f"no token left: {sorted(os.listdir(out))}")
    r = run_one(MLP, "--steps", "3", "--resume", out, "--out", os.path.join(work, "resumed"), "--quiet")
    check(r.returncode == 0, f"the checkpoint resumes: {r.stderr}")
elif behaviour in ("goodbye_ended", "goodbye_failed"):
    need_mpirun()
    # Here the first argument is test_goodbye, not pmlc (test_goodbye.c says what it does).
    cmd = [mpirun, "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    cmd += ["-np", "3", pmlc, behaviour.split("_")[1]]

    def ranks_alive():
        """Processes of the test binary that have not exited (zombies have)."""
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode(errors="replace")
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if argv0 == pmlc and state != "Z":
                alive.append(pid)
        return alive

    # Open MPI 4's mpirun can deadlock in its own PMIx server finalize after ranks that
    # end without MPI_Finalize (as these do) have all exited (seen in about 1 run of 6
    # here): the ranks did what the test asks and only the launcher hangs. So the job is
    # over when it ends, or 10 s after its last rank has; a rank still running after
    # 60 s is the failure this test exists to catch.
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=mpi_env())
    start, seen, gone, launcher_hung = time.monotonic(), False, None, False
    while p.poll() is None and time.monotonic() - start < 60:
        time.sleep(0.25)
        alive = ranks_alive()
        seen = seen or bool(alive)
        gone = None if alive or not seen else gone or time.monotonic()
        if gone and time.monotonic() - gone > 10:
            launcher_hung = True
            break
    alive = ranks_alive() if p.poll() is None else []
    if p.poll() is None:
        p.kill()
    out, err = p.communicate()
    check(not alive, f"the ranks ended within 60 s (the test takes about 8); still running: {alive}\n"
          f"{out[-3000:]}\n{err[-3000:]}")
    if launcher_hung:
        print("NOTE: every rank had exited; mpirun hung in its own finalize and was killed")
    print(out[-3000:], err[-3000:])
    results = [line for line in out.splitlines() if line.startswith("RESULT")]
    check(results and results[0].startswith("RESULT ok"), f"rank 0 judged: {results}")
elif behaviour in ("device_buffers_cross_through_host_copies", "device_buffers_cross_tcp_ranks"):
    need_mpirun()
    # Here the first argument is test_device_ranks, not pmlc (test_device_ranks.c says
    # what it checks): 2 ranks (one pipeline), then 4 (two replicas of it); over MPI, or
    # meeting over TCP (mpirun still starts them, and carries the stand-in's links).
    for n in (2, 4):
        cmd = [mpirun, "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
        if behaviour.endswith("tcp_ranks"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd += ["-x", "MASTER_ADDR=127.0.0.1", "-x", f"MASTER_PORT={port}", "-np", str(n), pmlc, "tcp"]
        else:
            cmd += ["-np", str(n), pmlc]
        r = subprocess.run(cmd, capture_output=True, text=True, env=mpi_env(), timeout=240)
        print(r.stdout[-4000:], r.stderr[-3000:])
        results = [line for line in r.stdout.splitlines() if line.startswith("RESULT")]
        check(r.returncode == 0 and results and results[0] == "RESULT ok",
              f"{n} ranks: exit {r.returncode}, rank 0 judged {results}")
elif behaviour == "trace_covers_every_rank":
    need_mpirun()
    steps = 3
    for name, n, model, extra, replicas, stages, mbs in (
            ("2 ranks", 2, MLP, [], 1, 2, 8),
            ("4 ranks", 4, GPT, SMALL_GPT, 1, 4, 4),
            ("2 replicas x 2 stages", 4, MLP, [], 2, 2, 8)):
        path = os.path.join(work, f"trace{n}x{replicas}.json")
        svg = os.path.join(work, f"step{n}x{replicas}.svg")
        r = run_mpi(n, model, *extra, "--steps", str(steps), "--trace", path, "--replicas", str(replicas),
                    "--timeline", svg)
        check(r.returncode == 0, f"{name}: trains with --trace: {r.stderr[-2000:]}")
        if r.returncode == 0:
            check_timeline(name, path, n, replicas, stages, mbs, steps, r.stderr)
            check_picture(name, svg, stages, mbs // replicas)
elif behaviour == "bad_trace_path_fails_before_training":
    need_mpirun()
    bad = os.path.join(work, "no-such-folder", "t.json")
    r = run_mpi(2, MLP, "--steps", "2", "--trace", bad, "--out", os.path.join(work, "out"), timeout=120)
    check(r.returncode != 0, "the run exits non-zero")
    check(bad in r.stderr and "No such file or directory" in r.stderr and "timeline" in r.stderr,
          f"rank 0 names the path and why: {r.stderr[-2000:]}")
    check("step 1/" not in r.stderr and not os.path.exists(os.path.join(work, "out")),
          f"before training: {r.stderr[-2000:]}")
elif behaviour == "signal_to_mpirun":
    need_mpirun()
    stop_ranks(signal.SIGUSR1, to_mpirun=True)
elif behaviour == "signal_to_one_rank":
    need_mpirun()
    stop_ranks(signal.SIGTERM, to_mpirun=False)
elif behaviour in ("chunks_interleaved", "chunks_vee"):
    need_mpirun()
    # Chunked schedules over ranks: each rank runs whole stage devices, every chunk of
    # each, messages between chunks of one rank staying in it. The small GPT cut into 2
    # and 4 devices of 2 chunks, on as many ranks and (4 devices, interleaving and ZB-V)
    # on 2 ranks of 2 devices each, whose boundaries share a pair of ranks. With SGD and no clip the
    # weights do not depend on the norm's sum order, so they are one process's bits; and
    # within 1e-5 of 1 stage with 1 micro-batch (3 steps, relative L2 per tensor).
    schedules = ["interleaved_1f1b"] if behaviour == "chunks_interleaved" else ["zero_bubble_v", "dualpipe_v"]
    plain = ["--set", "batch=16", "--set", "T=16", "--set", "place=cpu", "--set", "optimizer=sgd(lr = 0.1)",
             "--set", "grad_clip=1e30"]  # a clip that never clips
    ref = os.path.join(work, "one_stage")
    r = run_one(chunked_gpt("stages = 1"), *plain, "--set", "microbatches=1", "--set", "schedule=gpipe", "--steps", "3",
                "--out", ref, "--quiet")
    check(r.returncode == 0, f"one stage trains: {r.stderr}")
    for schedule in schedules:
        for D in (2, 4):
            mbs = 8 if schedule == "dualpipe_v" and D == 4 else 4  # DualPipeV: at least 2 per device
            model = chunked_gpt(f"stages = {D}, chunks = 2")
            extra = [*plain, "--set", f"microbatches={mbs}", "--set", f"schedule={schedule}"]
            # 2 devices per rank once per placement: DualPipeV's is ZB-V's
            counts = [D, 2] if D > 2 and schedule != "dualpipe_v" else [D]
            chunked_like_one_process(f"{schedule}, {D} devices", model, extra, counts, steps=3, bits=True,
                                     one_stage=ref)
    if behaviour == "chunks_vee":
        # A checkpoint of the V on 4 ranks (rank 0 holds the first and last chunks)
        # resumes on 2 ranks: each parameter goes to the rank of its chunk's device.
        model = chunked_gpt("stages = 4, chunks = 2")
        extra = [*plain, "--set", "microbatches=4", "--set", "schedule=zero_bubble_v"]
        ref, half, two = (os.path.join(work, k) for k in ("one_v", "half_v", "two_v"))
        r = run_one(model, *extra, "--steps", "3", "--out", ref, "--quiet")
        check(r.returncode == 0, f"one process trains: {r.stderr}")
        r = run_mpi(4, model, *extra, "--steps", "2", "--out", half, "--quiet")
        check(r.returncode == 0 and sharded(half, 4), f"4 ranks write 4 shards: {r.stderr[-2000:]}")
        r = run_mpi(2, model, *extra, "--steps", "3", "--resume", half, "--out", two, "--quiet")
        check(r.returncode == 0, f"2 ranks resume it: {r.stderr[-2000:]}")
        check(r.returncode == 0 and bit_identical(ref, two), "4 ranks, then 2, train the bits of one process")
    if behaviour == "chunks_interleaved":
        # The example's AdamW and grad_clip = 1.0, which clips these steps: the norm is
        # summed over every chunk of every rank before any device updates.
        model = chunked_gpt("stages = 4, chunks = 2")
        chunked_like_one_process("interleaved_1f1b, AdamW, clipped", model,
                                 [*SMALL_GPT, "--set", "place=cpu", "--set", "schedule=interleaved_1f1b"], [4])
        # --trace: one thread per stage device of each rank, its forward spans naming
        # the device's chunks (c and c + 4), the bubble over the 4 devices.
        trace = os.path.join(work, "chunks.json")
        r = run_mpi(2, model, *SMALL_GPT, "--set", "place=cpu", "--set", "schedule=interleaved_1f1b", "--steps", "2",
                    "--out", os.path.join(work, "traced"), "--trace", trace, "--quiet")
        check(r.returncode == 0 and os.path.exists(trace), f"2 ranks write the trace: {r.stderr[-2000:]}")
        if os.path.exists(trace):
            with open(trace) as f:
                t = json.load(f)
            got = [k["stages"] for k in t["otherData"]["ranks"]]
            check(got == [[0, 1], [2, 3]], f"each rank lists its stage devices: {got}")
            spans = {(e["pid"], e["tid"], e["args"].get("chunk")) for e in t["traceEvents"] if e.get("cat") == "fwd"}
            want = {(1 + d // 2, d, c) for d in range(4) for c in (d, d + 4)}
            check(spans == want, f"each device's forward spans name its chunks: {sorted(spans)}")
            check(0 <= t["otherData"]["measured_bubble"] < 1, f"a bubble over the devices: {t['otherData']}")
        r = run_mpi(4, chunked_gpt("stages = 2, chunks = 2"), *SMALL_GPT, "--set", "place=cpu", "--set",
                    "schedule=interleaved_1f1b", "--steps", "1", timeout=120)
        check(r.returncode != 0 and "4 ranks but the plan has 2 stages" in r.stderr and "step 1/" not in r.stderr,
              f"ranks split the stage devices, not the chunks: 4 ranks for 2 devices are refused: {r.stderr[-2000:]}")
elif behaviour == "chunks_replicas":
    need_mpirun()
    # Replicas of chunked pipelines: 2 replicas of 2 ranks, each device's chunks summed
    # over the replicas one by one (interleaved 1F1B and ZB-V, the small GPT on 2 devices
    # of 2 chunks): one process's weights within 1e-5 (the replicas sum their halves of
    # the micro-batches, a different order of sums; SGD, as AdamW divides the qkv bias's
    # zero gradient by its rounding noise, pipeline/interleaved_gpt_test.py). From
    # --replicas, and (DualPipeV) from the source's place.
    sgd = ["--set", "optimizer=sgd(lr = 0.05, momentum = 0.9)"]
    for schedule in ("interleaved_1f1b", "zero_bubble_v"):
        chunked_like_one_process(f"{schedule}, 2 replicas", chunked_gpt("stages = 2, chunks = 2"),
                                 [*SMALL_GPT, *sgd, "--set", "place=cpu", "--set", f"schedule={schedule}"], [4],
                                 replicas=2)
    chunked_like_one_process("dualpipe_v, 2 replicas of the source", chunked_gpt("stages = 2, chunks = 2, replicas = 2"),
                             [*SMALL_GPT, *sgd, "--set", "place=cpu", "--set", "schedule=dualpipe_v"], [4],
                             replicas=("source", 2))
elif behaviour == "chunks_freeze":
    need_mpirun()
    # A scheduled freeze under ZB-V over 2 ranks: the residual MLP on 2 devices of 2
    # chunks with `freeze stem, layers.[0-1].* after 3 steps`. One process re-cuts its
    # chunks at the freeze, ranks run the plan's phase in place, which trains the same
    # weights (freeze.zbv_with_a_scheduled_freeze_and_recut_trains_1f1b_weights): within
    # 1e-5, and the frozen tensors are those of step 3 bit for bit.
    model = deep_model("deep_zbv", "stages = 2, chunks = 2", 4, "adamw(lr = 0.01)", "schedule = zero_bubble_v",
                       "freeze stem, layers.[0-1].* after 3 steps")
    chunked_like_one_process("zero_bubble_v, scheduled freeze", model, [], [2], steps=7)
    at3 = os.path.join(work, "at3")
    r = run_mpi(2, model, "--steps", "3", "--out", at3, "--quiet")
    check(r.returncode == 0, f"2 ranks train 3 steps: {r.stderr[-2000:]}")
    if r.returncode == 0:
        a, b = checkpoint_tensors(at3, "model"), checkpoint_tensors(os.path.join(work, "ranks2"), "model")
        frozen = [n for n in a if n.startswith(("stem.", "layers.0.", "layers.1."))]
        check(frozen and all(a[n].tobytes() == b[n].tobytes() for n in frozen),
              f"the frozen tensors stay those of step 3: {frozen}")
    # `freeze auto` under interleaving: the layers' norms summed over every chunk of
    # every rank, so 2 ranks freeze what one process does, to its bits.
    model = deep_model("deep_auto_il", "stages = 2, chunks = 2", 5, "sgd(lr = 0.05, momentum = 0.9)",
                       "schedule = interleaved_1f1b", "freeze auto(every = 2, threshold = 0.2)")
    chunked_like_one_process("interleaved_1f1b, freeze auto", model, ["--seed", "7"], [2], steps=12, bits=True)
    froze = []
    for folder in ("one", "ranks2"):
        with open(os.path.join(work, folder, "trainer.json")) as f:
            froze.append(json.load(f)["auto_freeze"]["frozen"])
    check(len(froze[0]) >= 2 and froze[0] == froze[1], f"2 ranks freeze the layers one process does: {froze}")
elif behaviour == "tied_weights":
    need_mpirun()
    # The GPT example with wte tied to its output projection (first and last stage):
    # the copies' gradients meet at the first stage's rank and the sum goes back, in
    # stage order as in one process, so 2 and 4 ranks (and ZB-V's chunks on 2) train
    # its bits; replicas of 2-rank pipelines (their own order of sums, SGD) within
    # 1e-5; a 4-rank checkpoint of it resumes on 2 ranks to the bits of one process.
    with open(GPT) as f:
        src = f.read()
    tied, tied_v = os.path.join(work, "tied.pml"), os.path.join(work, "tied_v.pml")
    with open(tied, "w") as f:
        f.write(tied_gpt.tie(src))
    with open(tied_v, "w") as f:
        f.write(tied_gpt.tie(src, "stages = 2, chunks = 2"))
    sgd = ["--set", "optimizer=sgd(lr = 0.05, momentum = 0.9)"]
    chunked_like_one_process("tied wte, 1f1b", tied, SMALL_GPT, [2, 4], bits=True)
    chunked_like_one_process("tied wte, zero_bubble_v", tied_v, [*SMALL_GPT, "--set", "schedule=zero_bubble_v"], [2],
                             bits=True)
    chunked_like_one_process("tied wte, 2 replicas", tied, [*SMALL_GPT, *sgd], [4], replicas=2)
    ref, half, two = (os.path.join(work, n) for n in ("tied_one", "tied_half", "tied_two"))
    check(run_one(tied, *SMALL_GPT, "--steps", "6", "--out", ref, "--quiet").returncode == 0, "one process trains")
    r = run_mpi(4, tied, *SMALL_GPT, "--steps", "3", "--out", half, "--quiet")
    check(r.returncode == 0, f"4 ranks write a checkpoint at step 3: {r.stderr[-2000:]}")
    r = run_mpi(2, tied, *SMALL_GPT, "--steps", "6", "--resume", half, "--out", two, "--quiet")
    check(r.returncode == 0 and bit_identical(ref, two), f"2 ranks resume it to one process's bits: {r.stderr[-2000:]}")
elif behaviour == "more_ranks_than_stages_is_an_error":
    need_mpirun()
    r = run_mpi(3, MLP, "--steps", "1", timeout=120)
    check(r.returncode != 0, "the run exits non-zero")
    check("3 ranks but the plan has 2 stages" in r.stderr, f"the message says why: {r.stderr[-2000:]}")
elif behaviour == "rank_without_its_launcher_is_an_error":
    env = dict(os.environ, RANK="1", WORLD_SIZE="2")
    for k in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "MASTER_ADDR",
              "MASTER_PORT"):
        env.pop(k, None)
    r = subprocess.run([pmlc, "train", MLP, "--steps", "1"], capture_output=True, text=True, timeout=120, env=env)
    print(r.stderr)
    check(r.returncode == 1, "exit status 1")
    check("rank 1" in r.stderr and "pmlc: error:" in r.stderr, "the message names the rank")
    check("MASTER_ADDR is not set" in r.stderr, "and what a torchrun-style launch lacks")
    r = subprocess.run([pmlc, "train", MLP, "--steps", "1"], capture_output=True, text=True, timeout=120,
                       env=dict(env, RANK="2"))
    check(r.returncode == 1 and "RANK is 2, not below WORLD_SIZE (2)" in r.stderr, f"a rank past the world: {r.stderr}")
    r = subprocess.run([pmlc, "train", MLP, "--steps", "1", "--rank", "0"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2, f"--rank without --world is a usage error: {r.stderr}")
    r = subprocess.run([pmlc, "train", MLP, "--steps", "1", "--rank", "0", "--world", "3", "--replicas", "2"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "3 ranks cannot form 2 equal pipeline replicas" in r.stderr,
          f"replicas must divide the world: {r.stderr}")
else:
    print("unknown behaviour", behaviour)
    sys.exit(2)

sys.exit(1 if failures else 0)
