#!/usr/bin/env python3
"""Ranks over TCP: `pmlc train` started as torchrun starts its workers (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT in each process's environment, no MPI) trains the
weights of one process, on one host and on two (network namespaces); a rank that dies
is named at once, one whose link goes dead within the peer timeout; start-up names the
rank that never came, refuses a rank of another world, a rank given twice or a port
already taken, and ranks started differently refuse to start as under mpirun; SIGTERM
to every rank (what torchrun does with its own) stops them at one step in one
resumable checkpoint.

The goodbye_* behaviours run test_goodbye (test_goodbye.c says what it checks) as the
three ranks, over TCP.

usage: tcp_ranks_test.py PMLC TEST_GOODBYE EXAMPLES WORK BEHAVIOUR"""
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
from checkpoints import bit_identical, rel_diff, sharded  # noqa: E402
import twohosts  # noqa: E402

pmlc, goodbye, examples, work, behaviour = sys.argv[1:6]
MLP = os.path.join(examples, "mlp.pml")
GPT = os.path.join(examples, "gpt.pml")
SMALL_GPT = ["--set", "batch=16", "--set", "T=16", "--set", "microbatches=4", "--set", "place=cpu"]
SKIP = 77
LAUNCHERS = ("OMPI_", "PMIX_", "SLURM_", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_of(rank, world, port, addr="127.0.0.1", **more):
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHERS)}
    env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
               MASTER_ADDR=addr, MASTER_PORT=str(port))
    env.update(more)
    return env


def start(rank, world, port, args, prefix=(), **more):
    return subprocess.Popen([*prefix, pmlc, "train", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env_of(rank, world, port, **more))


def torchrun(args_by_rank, timeout=300, agent=False, **more):
    """One process per rank, as torchrun starts them: [(exit status, stderr)] by rank.
    With `agent`, as torchrun itself does: its agent's store listens on MASTER_PORT,
    which it tells the workers (TORCHELASTIC_USE_AGENT_STORE=True)."""
    store = socket.socket() if agent else None
    if store:
        store.bind(("127.0.0.1", 0))
        store.listen(8)
        more["TORCHELASTIC_USE_AGENT_STORE"] = "True"
    port = store.getsockname()[1] if store else free_port()
    procs = [start(k, len(args_by_rank), port, a, **more) for k, a in enumerate(args_by_rank)]
    out = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            err += "\n(killed by the test after the timeout)"
        out.append((p.returncode, err))
    if store:
        store.close()
    return out


def one_process(model, extra, steps, out):
    r = subprocess.run([pmlc, "train", model, *extra, "--steps", str(steps), "--out", out, "--quiet"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"one process trains: {r.stderr}")


def refused_on_every_rank(results, message):
    for k, (code, err) in enumerate(results):
        print(f"rank {k}: exit {code}\n{err[-2000:]}")
        check(code == 1 and message in err, f"rank {k} exits 1 saying '{message}'")


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)

if behaviour == "train":
    # The MLP's two stages on two ranks, beside torchrun's agent: the bits of one process.
    ref, out = os.path.join(work, "one"), os.path.join(work, "two")
    one_process(MLP, [], 5, ref)
    res = torchrun([[MLP, "--steps", "5", "--out", out]] * 2, agent=True)
    for k, (code, err) in enumerate(res):
        check(code == 0, f"rank {k} of 2 trains: {err[-2000:]}")
    check("on 2 ranks" in res[0][1] and "training " not in res[1][1], "rank 0 alone prints the progress")
    check(sharded(out, 2) and bit_identical(ref, out), "2 ranks over TCP train the bits of one process")
    # The GPT's four stages as two replicas of two ranks: replica gradient sums too. SGD,
    # as over MPI (ranks_test.py, gpt_replicas): the key bias's gradient is rounding
    # noise about zero, which AdamW would amplify.
    gpt = [GPT, *SMALL_GPT, "--set", "optimizer=sgd(lr = 0.05, momentum = 0.9)"]
    ref, out = os.path.join(work, "gpt_one"), os.path.join(work, "gpt_four")
    one_process(gpt[0], gpt[1:], 4, ref)
    res = torchrun([[*gpt, "--steps", "4", "--out", out, "--replicas", "2", "--quiet"]] * 4)
    for k, (code, err) in enumerate(res):
        check(code == 0, f"rank {k} of 4 trains: {err[-2000:]}")
    if all(code == 0 for code, _ in res):
        check(sharded(out, 2), f"2 replicas of 2 ranks wrote 2 shards: {sorted(os.listdir(out))}")
        for base in ("model", "optimizer"):
            d = rel_diff(ref, out, base)
            check(d <= 1e-5, f"4 ranks (2 replicas) over TCP: {base} within 1e-5 of one process (got {d:.3g})")
elif behaviour == "killed_rank":
    # A rank killed mid-run: its connection closes with no goodbye, and rank 0 says so at
    # once, far inside the 60 s peer timeout.
    metrics = os.path.join(work, "metrics.jsonl")
    port = free_port()
    args = [MLP, "--steps", "1000000", "--metrics", metrics, "--peer-timeout", "60"]
    procs = [start(k, 2, port, args) for k in range(2)]
    deadline = time.time() + 120
    while time.time() < deadline and (not os.path.exists(metrics) or os.path.getsize(metrics) == 0):
        time.sleep(0.1)
    t0 = time.time()
    procs[1].send_signal(signal.SIGKILL)
    try:
        _, err = procs[0].communicate(timeout=60)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        _, err = procs[0].communicate()
    procs[1].wait()
    took = time.time() - t0
    print(err[-3000:])
    print(f"rank 0 ended {took:.1f} s after rank 1 was killed")
    check(procs[0].returncode != 0, "rank 0 exits non-zero")
    check("rank 1 stopped: its connection closed without a goodbye" in err, "rank 0 names rank 1 and why")
    check(took < 15, f"at once, not after the 60 s timeout ({took:.1f} s)")
elif behaviour == "start_up":
    # Rank 1 never comes: rank 0 names it after the timeout.
    port = free_port()
    t0 = time.time()
    p = start(0, 2, port, [MLP, "--steps", "1", "--peer-timeout", "2"])
    _, err = p.communicate(timeout=60)
    print(err)
    check(p.returncode == 1 and "rank 0 waited 2 s for the other ranks to connect; missing: 1" in err,
          "a rank that never came is named")
    check(time.time() - t0 < 20, "after the start-up timeout")
    # A rank of another world: both say so.
    port = free_port()
    procs = [start(0, 2, port, [GPT, *SMALL_GPT, "--steps", "1", "--peer-timeout", "10"]),
             start(1, 4, port, [GPT, *SMALL_GPT, "--steps", "1", "--peer-timeout", "10"])]
    res = [(p.wait(timeout=60), p.communicate()[1]) for p in procs]
    refused_on_every_rank(res, "says the world has 4 ranks, rank 0 says 2")
    # Two processes that both say they are rank 1: rank 0 refuses the second.
    port = free_port()
    procs = [start(0, 3, port, [GPT, *SMALL_GPT, "--steps", "1", "--peer-timeout", "10"])]
    procs += [start(1, 3, port, [GPT, *SMALL_GPT, "--steps", "1", "--peer-timeout", "10"]) for _ in range(2)]
    res = [(p.wait(timeout=60), p.communicate()[1]) for p in procs]
    print("\n".join(err for _, err in res))
    check(res[0][0] == 1 and "two processes say they are rank 1" in res[0][1], "rank 0 names the rank given twice")
    # The port is taken: rank 0 cannot listen, and says which.
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        p = start(0, 2, busy, [MLP, "--steps", "1", "--peer-timeout", "5"])
        _, err = p.communicate(timeout=60)
    print(err)
    check(p.returncode == 1 and f"rank 0 cannot listen on port {busy}: Address already in use" in err,
          "a port in use is named")
    # MASTER_PORT that is not a port.
    p = start(1, 2, "http", [MLP, "--steps", "1"])
    _, err = p.communicate(timeout=60)
    check(p.returncode == 1 and "MASTER_PORT is http, not a port (1 to 65535)" in err, f"a bad port: {err}")
    # Ranks started differently refuse, as under mpirun (the comparison is the dist's user).
    res = torchrun([[MLP, "--steps", "2", "--seed", "3"], [MLP, "--steps", "2", "--seed", "7"]], timeout=60)
    refused_on_every_rank(res, "cannot join the run: rank 1 was started with --seed 7, rank 0 with --seed 3")
elif behaviour in ("two_hosts", "two_hosts_cut_link"):
    net, why = twohosts.TwoHosts.make(work, "none")
    if not net:
        print(f"SKIP: {why}")
        sys.exit(SKIP)
    with_net = net
    try:
        def host(k):
            return ["ip", "netns", "exec", net.ns[k], "unshare", "-u", "sh", "-c",
                    f'hostname host{"ab"[k]} && exec "$@"', "sh"]
        port = free_port()
        if behaviour == "two_hosts":
            ref, out = os.path.join(work, "one"), os.path.join(work, "two")
            one_process(MLP, [], 5, ref)
            procs = [start(k, 2, port, [MLP, "--steps", "5", "--out", out, "--quiet"], prefix=host(k),
                           addr=net.ips[0]) for k in range(2)]
            res = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
            for k, (code, err) in enumerate(res):
                check(code == 0, f"rank {k} on host {'ab'[k]} trains: {err[-2000:]}")
            check(sharded(out, 2) and bit_identical(ref, out), "two hosts over TCP train the bits of one process")
        else:
            # The link goes dead (packets vanish, nothing is closed): only the heartbeat
            # can tell, and rank 0 names rank 1 within the peer timeout.
            metrics = os.path.join(work, "metrics.jsonl")
            args = [MLP, "--steps", "1000000", "--metrics", metrics, "--peer-timeout", "5"]
            procs = [start(k, 2, port, args, prefix=host(k), addr=net.ips[0]) for k in range(2)]
            deadline = time.time() + 120
            while time.time() < deadline and (not os.path.exists(metrics) or os.path.getsize(metrics) == 0):
                time.sleep(0.1)
            net.cut()
            t0 = time.time()
            try:
                _, err = procs[0].communicate(timeout=60)
            except subprocess.TimeoutExpired:
                procs[0].kill()
                _, err = procs[0].communicate()
            took = time.time() - t0
            print(err[-3000:])
            print(f"rank 0 ended {took:.1f} s after the cut")
            check(procs[0].returncode not in (0, None), "rank 0 exits non-zero")
            check("rank 1 has not answered for" in err, "rank 0 names rank 1 as silent")
            check(took < 5 + 20, f"within the peer timeout and a margin ({took:.1f} s)")
            procs[1].kill()
            procs[1].wait()
    finally:
        with_net.close()
elif behaviour == "stop_signal":
    # torchrun passes SIGTERM on to every worker: every rank stops at one step, saved as
    # one sharded checkpoint that resumes over TCP bit for bit.
    d, metrics = os.path.join(work, "D"), os.path.join(work, "metrics.jsonl")
    port = free_port()
    args = [MLP, "--steps", "1000000", "--set", "checkpoint_every=5", "--out", d, "--metrics", metrics]
    procs = [start(k, 2, port, args) for k in range(2)]
    deadline = time.time() + 120
    while time.time() < deadline and (not os.path.exists(metrics) or open(metrics).read().count("\n") < 8):
        time.sleep(0.1)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    errs = []
    for p in procs:
        try:
            errs.append(p.communicate(timeout=60)[1])
        except subprocess.TimeoutExpired:
            p.kill()
            errs.append(p.communicate()[1] + "\n(killed by the test)")
    print(errs[0][-2000:])
    check([p.returncode for p in procs] == [143, 143], f"both ranks exit 143: {[p.returncode for p in procs]}")
    m = re.search(r"stopped at step (\d+) by SIGTERM on rank 0 \(all 2 ranks stopped there\)", errs[0])
    check(m is not None, "rank 0 says where every rank stopped")
    if m:
        step = int(m.group(1))
        with open(os.path.join(d, "trainer.json")) as f:
            check(sharded(d, 2) and json.load(f)["step"] == step, f"D is one sharded checkpoint of step {step}")
        straight, resumed = os.path.join(work, "straight"), os.path.join(work, "resumed")
        to = ["--steps", str(step + 3), "--quiet"]
        a = torchrun([[MLP, *to, "--out", straight]] * 2)
        b = torchrun([[MLP, *to, "--resume", d, "--out", resumed]] * 2)
        check(all(code == 0 for code, _ in a + b), f"both runs finish: {[e[-500:] for _, e in a + b]}")
        check(bit_identical(straight, resumed), "the resumed run has the uninterrupted run's bits")
elif behaviour in ("goodbye_ended", "goodbye_failed"):
    port = free_port()
    procs = [subprocess.Popen([goodbye, behaviour.split("_")[1], "tcp"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env_of(k, 3, port)) for k in range(3)]
    outs = []
    for k, p in enumerate(procs):  # rank 0 judges; the others are ended then, as mpirun would
        try:
            outs.append(p.communicate(timeout=90 if k == 0 else 1))
        except subprocess.TimeoutExpired:
            p.kill()
            outs.append(p.communicate())
    for k, (out, err) in enumerate(outs):
        print(f"rank {k}: exit {procs[k].returncode}\n{out[-2000:]}{err[-2000:]}")
    results = [line for line in outs[0][0].splitlines() if line.startswith("RESULT")]
    check(results and results[0].startswith("RESULT ok"), f"rank 0 judged: {results}")
else:
    print("unknown behaviour", behaviour)
    sys.exit(2)

sys.exit(1 if failures else 0)
