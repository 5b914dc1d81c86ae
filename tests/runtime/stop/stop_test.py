#!/usr/bin/env python3
"""Stopping `pmlc train` well (pml.h's pml_session_request_stop, tools/pmlc/cli_signal.h) and
every write of a run checked, one behaviour per invocation: stop_test.py PMLC TESTDIR BEHAVIOUR.

  signals        SIGINT, SIGTERM and SIGUSR1 at random moments of runs that checkpoint every
                 step into the folder they resumed from, many inside a save: each run exits
                 128 + the signal; one stopped in training says "stopped at step N by SIG;
                 resume with: COMMAND", its folder holds step N, and COMMAND, run as printed,
                 ends as the uninterrupted run bit for bit; without --out it says nothing
                 was saved
  second_signal  a second SIGINT during the stop's save ends pmlc at once: no temporary file
                 is left, and the folder loads and resumes bit for bit
  full_disk_logs --metrics and --trace on /dev/full (a full disk): the failure is said at
                 once, naming the file and the system's reason, training goes on to its
                 checkpoint, and the exit status is 3 (a log is incomplete)
  closed_pipe    --metrics to a stdout whose reader left, and progress to a closed stderr:
                 the same (EPIPE, never a silent death by SIGPIPE)"""
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from st_files import read_st  # noqa: E402

pmlc, here, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
ADAMW = os.path.join(here, "..", "checkpoint", "adamw.pml")
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def train_cmd(*args):
    return [pmlc, "train", ADAMW, *args, "--threads", "2"]


def must_train(*args):
    r = subprocess.run(train_cmd(*args, "--quiet"), capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"pmlc train {' '.join(args)} succeeds: {r.stderr}")
    return r


def step_of(d):
    with open(os.path.join(d, "trainer.json")) as f:
        return json.load(f)["step"]


def same_run(a, b, what):
    """Checkpoints a and b hold the same model and optimizer state, bit for bit."""
    for f in ("model.safetensors", "optimizer.safetensors"):
        ha, _, da = read_st(os.path.join(a, f))
        hb, _, db = read_st(os.path.join(b, f))
        check(ha.keys() == hb.keys() and da == db, f"{what}: {f} equal bit for bit")


def temporary_files(d):
    """Half-written files: PATH.tmp.* files in d (a stage folder is a folder, cleaned by the next save)."""
    return [n for n in os.listdir(d) if ".tmp." in n and not os.path.isdir(os.path.join(d, n))]


def saving(d):
    """Whether a save is under way in d or one of its step folders (a stage folder exists)."""
    for root in [d] + [os.path.join(d, n) for n in os.listdir(d) if n.startswith("step-")]:
        try:
            if any(n.startswith("ckpt.tmp.") for n in os.listdir(root)):
                return True
        except OSError:
            pass
    return False


def stopped_line(stderr, sig):
    """(step, command) from "stopped at step N by SIG; resume with: COMMAND", or None."""
    m = re.search(rf"stopped at step (\d+) by {sig.name}; resume with: (.*)", stderr)
    return (int(m.group(1)), m.group(2)) if m else None


def behaviour_signals(tmp):
    steps, budget = 8, 10.0
    straight, base, d = (os.path.join(tmp, n) for n in ("straight", "base", "D"))
    must_train("--steps", str(steps), "--out", straight)
    must_train("--steps", "2", "--out", base)
    env = dict(os.environ, PML_TEST_CKPT_PAUSE_MS="3")  # saves long enough to land in
    cmd = train_cmd("--steps", str(steps), "--set", "checkpoint_every=1", "--resume", d, "--out", d, "--quiet")
    shutil.copytree(base, d)
    t0 = time.monotonic()
    subprocess.run(cmd, env=env, capture_output=True, timeout=60)
    full = time.monotonic() - t0  # an uninterrupted run, to place the random signals
    rng = random.Random(20)
    signals = stopped = in_save = 0
    start = time.monotonic()
    while (time.monotonic() - start < budget or stopped < 4 or in_save < 2) and time.monotonic() - start < 3 * budget:
        shutil.rmtree(d)
        shutil.copytree(base, d)
        sig = rng.choice(STOPS)
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t = time.monotonic()
        if rng.random() < 0.25:  # anywhere, compiling included (then it ends at once)
            deadline = t + rng.uniform(0, full)
            while p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
        else:  # in training: after a step folder appears, mostly inside a save
            while p.poll() is None and time.monotonic() - t < 2 * full + 1:
                if any(n.startswith("step-") for n in os.listdir(d)):
                    break
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.03))
        if p.poll() is not None:
            p.communicate()
            continue  # finished before the signal: nothing to test this round
        mid = saving(d)
        p.send_signal(sig)
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        signals += 1
        what = f"signal {signals} ({sig.name}{', inside a save' if mid else ''})"
        check(not temporary_files(d), f"{what}: no temporary file is left: {temporary_files(d)}")
        said = stopped_line(err, sig)
        # Ended at once before training (the handlers), or by the signal itself before
        # they were installed (the loader's time): a shell says 128 + the signal for both.
        # After the last step a request changes nothing: the run finishes, exit 0.
        finished = said is None and p.returncode == 0 and step_of(d) == steps
        check(p.returncode == 128 + sig or (said is None and p.returncode == -sig) or finished,
              f"{what}: exit {128 + sig}, not {p.returncode}: {err}")
        if said is None:  # before the run (nothing to save: D as it was) or after it (all saved)
            check("stopped at step" not in err, f"{what}: a stop is said in the expected form: {err}")
            check(step_of(d) in (2, steps), f"{what}: ended at once outside the run, D holds step 2 or {steps}")
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        else:
            stopped += 1
            in_save += mid
            step, resume = said
            check(2 <= step <= steps and step_of(d) == step, f"{what}: D holds the step it stopped at ({step})")
            check(resume.split()[-2:] == ["--resume", d] and "--resume " + d + " --out" not in resume,
                  f"{what}: the command resumes D once: {resume}")
            r = subprocess.run(shlex.split(resume), env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"{what}: the resume finishes: {r.stderr}")
        same_run(straight, d, f"{what}: resumed to the end")
    print(f"signals: {signals}, {stopped} stopped in training, {in_save} of them inside a save")
    check(stopped >= 4 and in_save >= 2, f"at least 4 stops in training, 2 inside a save ({stopped}, {in_save})")

    # Without --out the stop says that nothing was saved.
    p = subprocess.Popen(train_cmd("--steps", "1000000"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    first = p.stderr.readline()  # "training ...": the run is under way
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    check(first.startswith("training") and p.returncode == 143 and
          re.search(r"stopped at step \d+ by SIGTERM; nothing was saved \(no --out\)", err),
          f"without --out: exit 143, nothing saved said: {first}{err}")


def behaviour_second_signal(tmp):
    base, d = os.path.join(tmp, "base"), os.path.join(tmp, "D")
    must_train("--steps", "2", "--out", base)
    shutil.copytree(base, d)
    env = dict(os.environ, PML_TEST_CKPT_PAUSE_MS="300")  # the stop's save takes over a second
    p = subprocess.Popen(train_cmd("--steps", "1000000", "--set", "checkpoint_every=1000000", "--resume", d, "--out", d),
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    said = p.stderr.readline()
    check(said.startswith("training"), f"the run starts: {said}")
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    while "stopping at step" not in said and p.poll() is None:
        said = p.stderr.readline()
    m = re.search(r"stopping at step (\d+): saving it to", said)
    check(m is not None, f"the first SIGINT starts the stop's save: {said}")
    while not saving(d) and p.poll() is None:
        time.sleep(0.001)
    check(p.poll() is None, "still saving when the second SIGINT comes")
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    took = time.monotonic() - t
    check(p.returncode == 130, f"exit 130, not {p.returncode}: {err}")
    check(took < 1.0, f"the second SIGINT ends it at once ({took:.2f} s)")
    check(not temporary_files(d), f"no temporary file is left: {temporary_files(d)}")
    # D holds a whole checkpoint (step 2's: the save had not committed), and resuming it
    # to a few steps past the stop equals a run that never stopped.
    at = step_of(d)
    check(at == 2 or (m and at == int(m.group(1))), f"D holds step 2, or the stop's if it had committed (got {at})")
    steps = str(int(m.group(1)) + 3 if m else 10)
    straight = os.path.join(tmp, "straight")
    rare = ["--set", "checkpoint_every=1000000"]  # no periodic saves: each one fsyncs
    must_train("--steps", steps, *rare, "--out", straight)
    must_train("--steps", steps, *rare, "--resume", d, "--out", d)
    same_run(straight, d, "resumed after the second signal")


def behaviour_full_disk_logs(tmp):
    d = os.path.join(tmp, "D")
    r = subprocess.run(train_cmd("--steps", "20", "--metrics", "/dev/full", "--out", d), capture_output=True,
                       text=True, timeout=120)
    said = "pmlc: error: cannot write the metrics file /dev/full: No space left on device"
    check(r.returncode == 3, f"--metrics /dev/full: exit 3 (a log is incomplete), not {r.returncode}: {r.stderr}")
    check(r.stderr.count(said) == 1, f"--metrics /dev/full: said once: {r.stderr}")
    check(said in r.stderr and "step 2/20" in r.stderr and r.stderr.index(said) < r.stderr.index("step 2/20"),
          f"--metrics /dev/full: said at the first record, before step 2: {r.stderr}")
    check(step_of(d) == 20, "--metrics /dev/full: training went on to its checkpoint")
    d = os.path.join(tmp, "E")
    r = subprocess.run(train_cmd("--steps", "4", "--trace", "/dev/full", "--out", d, "--quiet"), capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 3, f"--trace /dev/full: exit 3, not {r.returncode}: {r.stderr}")
    check(re.search(r"pmlc: error: cannot write the timeline: /dev/full: .*No space left on device", r.stderr),
          f"--trace /dev/full: names the file and why: {r.stderr}")
    check(step_of(d) == 4, "--trace /dev/full: the checkpoint is written")


def behaviour_closed_pipe(tmp):
    d = os.path.join(tmp, "D")
    p = subprocess.Popen(train_cmd("--steps", "30", "--metrics", "/dev/stdout", "--out", d, "--quiet"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()  # the reader takes one record and leaves
    p.stdout.close()
    err = p.stderr.read()
    p.wait(timeout=120)
    check(first.startswith('{"step": 1,'), f"the first record arrives: {first}")
    check(p.returncode == 3, f"metrics to a closed stdout: exit 3, not {p.returncode}: {err}")
    check("cannot write the metrics file /dev/stdout: Broken pipe" in err, f"names the file and why: {err}")
    check(step_of(d) == 30, "training went on to its checkpoint")
    d = os.path.join(tmp, "E")
    p = subprocess.Popen(train_cmd("--steps", "10", "--out", d), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    p.stderr.close()  # nobody reads the progress
    p.wait(timeout=120)
    check(p.returncode == 3, f"progress to a closed stderr: exit 3, not {p.returncode}")
    check(step_of(d) == 10, "progress to a closed stderr: training went on to its checkpoint")


with tempfile.TemporaryDirectory() as tmp:
    fn = globals().get("behaviour_" + behaviour)
    if not fn:
        sys.exit(f"unknown behaviour {behaviour}")
    fn(tmp)
sys.exit(1 if failures else 0)
