#!/usr/bin/env python3
"""Checkpoints of `pmlc train` (runtime/src/ckpt/checkpoint.h), one behaviour per
invocation: checkpoint_test.py PMLC TESTDIR BEHAVIOUR.

  resume_sgd, resume_adamw  3 steps, then --resume to 6, equals 6 straight, bit for bit
  init                      --init from a --steps 0 output trains exactly as without it
  periodic                  checkpoint_every = 2 writes OUT/step-000002 ... and each resumes
  refuse_*                  a hostile or mismatched checkpoint: exit 1, the path named
  failed_write              an unwritable --out: exit 1, no partial files
  shards_*                  the Hugging Face sharded layout (model-0000k-of-0000n.safetensors and
                            an index, as ranks write it), made here from a one-process checkpoint:
                            resumes, loads with --init and infer, and refuses a broken set
  kills                     the commit protocol: runs that save into the folder they resumed from
                            are killed (SIGKILL) at random moments and in each phase of the save;
                            after each kill the folder loads and resumes bit for bit
  kill_after_commit         killed between the commit and the install: the new checkpoint loads,
                            and the next save finishes the install (a plain folder again)
  full_disk                 a save that runs out of space (a file size limit) keeps the old
                            checkpoint whole and names the file
  stale_stage               a dead writer's stage folder and temporary files are removed by the next save, a live one's kept"""
import json
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from st_files import read_st, shard, write_st  # noqa: E402

pmlc, here, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
SGD, ADAMW, OTHER = (os.path.join(here, f) for f in ("sgd.pml", "adamw.pml", "other.pml"))
failures = []


def run(*args):
    return subprocess.run([pmlc, "train", *args, "--quiet", "--threads", "2"], capture_output=True, text=True,
                          timeout=300)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def must_train(*args):
    r = run(*args)
    check(r.returncode == 0, f"pmlc train {' '.join(args)} succeeds: {r.stderr}")
    return r


def same_tensors(a, b, what):
    ha, _, da = read_st(a)
    hb, _, db = read_st(b)
    check({k: v["shape"] for k, v in ha.items()} == {k: v["shape"] for k, v in hb.items()}, f"{what}: same tensors")
    check(da == db, f"{what}: tensor data equal bit for bit")


def resume_equals_straight(tmp, pml):
    must_train(pml, "--steps", "6", "--out", os.path.join(tmp, "straight"))
    must_train(pml, "--steps", "3", "--out", os.path.join(tmp, "A"))
    must_train(pml, "--steps", "6", "--resume", os.path.join(tmp, "A"), "--out", os.path.join(tmp, "B"))
    for f in ("model.safetensors", "optimizer.safetensors"):
        same_tensors(os.path.join(tmp, "straight", f), os.path.join(tmp, "B", f), f"{os.path.basename(pml)} {f}")
    t = json.load(open(os.path.join(tmp, "B", "trainer.json")))
    check(t["step"] == 6 and t["version"] == 2, "the resumed run's trainer.json says step 6, version 2")
    # A version-1 trainer.json (before `freeze auto` state was saved) still resumes.
    path = os.path.join(tmp, "A", "trainer.json")
    t = json.load(open(path))
    t["version"] = 1
    json.dump(t, open(path, "w"))
    must_train(pml, "--steps", "6", "--resume", os.path.join(tmp, "A"), "--out", os.path.join(tmp, "C"))
    same_tensors(os.path.join(tmp, "straight", "model.safetensors"), os.path.join(tmp, "C", "model.safetensors"),
                 f"{os.path.basename(pml)} resumed from a version-1 checkpoint")


def behaviour_init(tmp):
    must_train(ADAMW, "--steps", "0", "--out", os.path.join(tmp, "w0"))
    must_train(ADAMW, "--steps", "4", "--out", os.path.join(tmp, "plain"))
    must_train(ADAMW, "--steps", "4", "--init", os.path.join(tmp, "w0", "model.safetensors"), "--out",
               os.path.join(tmp, "init"))
    same_tensors(os.path.join(tmp, "plain", "model.safetensors"), os.path.join(tmp, "init", "model.safetensors"),
                 "--init from the initial weights")
    # Other weights do change the result: --init is really used.
    must_train(ADAMW, "--steps", "0", "--seed", "5", "--out", os.path.join(tmp, "w5"))
    must_train(ADAMW, "--steps", "4", "--init", os.path.join(tmp, "w5", "model.safetensors"), "--out",
               os.path.join(tmp, "init5"))
    check(read_st(os.path.join(tmp, "init5", "model.safetensors"))[2] != read_st(
        os.path.join(tmp, "plain", "model.safetensors"))[2], "--init with other weights trains differently")


def behaviour_periodic(tmp):
    out = os.path.join(tmp, "out")
    must_train(ADAMW, "--out", out)  # steps = 6, checkpoint_every = 2
    for s in (2, 4, 6):
        d = os.path.join(out, f"step-{s:06d}")
        check(all(os.path.isfile(os.path.join(d, f)) for f in ("model.safetensors", "optimizer.safetensors",
                                                                 "trainer.json")), f"{d} is a whole checkpoint")
        check(json.load(open(os.path.join(d, "trainer.json")))["step"] == s, f"{d} is at step {s}")
    must_train(ADAMW, "--resume", os.path.join(out, "step-000004"), "--out", os.path.join(tmp, "again"))
    same_tensors(os.path.join(out, "model.safetensors"), os.path.join(tmp, "again", "model.safetensors"),
                 "resuming from step-000004")
    check(not [f for f in os.listdir(out) if ".tmp" in f], "no temporary files are left")


def refused(tmp, ckpt, expect, named=None, pml=SGD):
    """--resume ckpt fails; the message names `named` (default: the folder) and says `expect`."""
    r = run(pml, "--steps", "6", "--resume", ckpt, "--out", os.path.join(tmp, "never"))
    check(r.returncode == 1, f"exit status 1 (got {r.returncode}: {r.stderr})")
    check((named or ckpt) in r.stderr, f"the message names the path: {r.stderr}")
    check(expect in r.stderr, f"the message says '{expect}': {r.stderr}")
    check("Traceback" not in r.stderr and "Sanitizer" not in r.stderr, "no crash")
    check(not os.path.exists(os.path.join(tmp, "never")), "nothing is written")


def hostile(tmp):
    ckpt = os.path.join(tmp, "ckpt")
    must_train(SGD, "--steps", "3", "--out", ckpt)
    return ckpt, os.path.join(ckpt, "model.safetensors")


def behaviour_refuse_incomplete(tmp):
    ckpt, _ = hostile(tmp)
    os.remove(os.path.join(ckpt, "trainer.json"))
    refused(tmp, ckpt, "not a checkpoint (no trainer.json")


def behaviour_failed_run_names_its_last_checkpoint(tmp):
    # A run that diverges at step 3 after periodic checkpoints of steps 1 and 2: it says
    # which one is left, and a resume of its folder (which holds only those) names it.
    out = os.path.join(tmp, "out")
    r = run(SGD, "--set", "optimizer=sgd(lr = 1e3)", "--set", "checkpoint_every=1", "--steps", "50", "--out", out)
    check(r.returncode == 1 and "step 3:" in r.stderr, f"the run fails at step 3: {r.stderr}")
    last = os.path.join(out, "step-000002")
    check(f"pmlc: the last checkpoint is {last}\n" in r.stderr, f"names {last}: {r.stderr}")
    check(os.path.isfile(os.path.join(last, "trainer.json")), f"{last} is committed")
    refused(tmp, out, f"only periodic ones; the latest is {last}")


def behaviour_refuse_wrong_shape(tmp):
    ckpt, model = hostile(tmp)
    header, meta, data = read_st(model)
    header["fc1.weight"]["shape"] = list(reversed(header["fc1.weight"]["shape"]))
    write_st(model, header, meta, data)
    refused(tmp, ckpt, "tensor 'fc1.weight' has shape [16, 32], but the plan's is [32, 16]", model)


def behaviour_refuse_missing_parameter(tmp):
    ckpt, model = hostile(tmp)
    header, meta, data = read_st(model)
    del header["head.bias"]
    write_st(model, header, meta, data)
    refused(tmp, ckpt, "tensor 'head.bias' is missing", model)


def behaviour_refuse_unknown_tensor(tmp):
    ckpt, model = hostile(tmp)
    header, meta, data = read_st(model)
    header["extra.weight"] = {"dtype": "F32", "shape": [2]}
    data["extra.weight"] = b"\0" * 8
    write_st(model, header, meta, data)
    refused(tmp, ckpt, "unknown tensor 'extra.weight'", model)
    # The same for --init.
    r = run(SGD, "--init", model)
    check(r.returncode == 1 and model in r.stderr and "unknown tensor 'extra.weight'" in r.stderr,
          f"--init refuses it too: {r.stderr}")


def behaviour_refuse_other_model(tmp):
    ckpt = os.path.join(tmp, "ckpt")
    must_train(OTHER, "--steps", "3", "--out", ckpt)
    # The refusal names each parameter that differs, with both sides.
    refused(tmp, ckpt, "a checkpoint of another model: 'fc1.weight' is [24, 16] in the checkpoint, [32, 16] in "
            "this model; 'fc1.bias' is [24] in the checkpoint, [32] in this model; 'head.weight' is [4, 24] in the "
            "checkpoint, [4, 32] in this model", pml=ADAMW)
    # A parameter renamed: one side's name is missing from the other.
    renamed = os.path.join(tmp, "renamed.pml")
    open(renamed, "w").write(open(ADAMW).read().replace("as head", "as out"))
    refused(tmp, os.path.join(tmp, "ckpt"), "'out.weight' [4, 32] of this model is not in the checkpoint", pml=renamed)
    check("'head.weight' [4, 24] of the checkpoint is not in this model" in run(
        renamed, "--steps", "6", "--resume", ckpt, "--out", os.path.join(tmp, "never")).stderr,
        "the checkpoint's own name is named too")
    r = run(ADAMW, "--init", os.path.join(ckpt, "model.safetensors"))
    check(r.returncode == 1 and "has shape" in r.stderr, f"--init refuses another model's weights: {r.stderr}")


def behaviour_refuse_other_optimizer(tmp):
    ckpt, _ = hostile(tmp)  # SGD with momentum
    refused(tmp, ckpt, "the checkpoint's optimizer is \"sgd_momentum\"", pml=ADAMW)


def behaviour_refuse_truncated(tmp):
    ckpt, model = hostile(tmp)
    raw = open(model, "rb").read()
    with open(model, "wb") as f:
        f.write(raw[:len(raw) // 2])
    refused(tmp, ckpt, "", model)


def behaviour_refuse_step_mismatch(tmp):
    ckpt, _ = hostile(tmp)
    opt = os.path.join(ckpt, "optimizer.safetensors")
    header, meta, data = read_st(opt)
    meta["pml_step"] = "2"
    write_st(opt, header, meta, data)
    refused(tmp, ckpt, "pml_step is '2' but trainer.json says 3", opt)


def behaviour_failed_write(tmp):
    r = run(SGD, "--steps", "1", "--out", "/proc/pml-checkpoint-test")
    check(r.returncode == 1 and "/proc/pml-checkpoint-test" in r.stderr, f"exit 1 naming the path: {r.stderr}")
    check(not os.path.exists("/proc/pml-checkpoint-test"), "nothing is created")
    # trainer.json cannot be replaced (a folder is in the way): no checkpoint is
    # committed and no temporary file is left behind.
    out = os.path.join(tmp, "out")
    os.makedirs(os.path.join(out, "trainer.json", "blocker"))
    r = run(SGD, "--steps", "1", "--out", out)
    check(r.returncode == 1 and "trainer.json" in r.stderr, f"exit 1 naming trainer.json: {r.stderr}")
    check(not [f for f in os.listdir(out) if ".tmp" in f], f"no temporary files: {os.listdir(out)}")
    check(os.path.isdir(os.path.join(out, "trainer.json")), "no trainer.json was committed")


def sharded_checkpoint(tmp):
    ckpt, _ = hostile(tmp)
    shard(ckpt, "fc1.")
    return ckpt, os.path.join(ckpt, "model.safetensors.index.json")


def behaviour_shards_resume(tmp):
    must_train(SGD, "--steps", "6", "--out", os.path.join(tmp, "straight"))
    ckpt, index = sharded_checkpoint(tmp)
    must_train(SGD, "--steps", "6", "--resume", ckpt, "--out", os.path.join(tmp, "B"))
    for f in ("model.safetensors", "optimizer.safetensors"):
        same_tensors(os.path.join(tmp, "straight", f), os.path.join(tmp, "B", f), f"resumed from shards: {f}")
    # --init from the folder or the index equals --init from the one file it was.
    must_train(SGD, "--steps", "3", "--out", os.path.join(tmp, "one"))
    must_train(SGD, "--steps", "4", "--init", os.path.join(tmp, "one", "model.safetensors"), "--out",
               os.path.join(tmp, "from_file"))
    for w in (ckpt, index):
        out = os.path.join(tmp, "from_" + os.path.basename(w))
        must_train(SGD, "--steps", "4", "--init", w, "--out", out)
        same_tensors(os.path.join(tmp, "from_file", "model.safetensors"), os.path.join(out, "model.safetensors"),
                     f"--init {os.path.basename(w)}")


def behaviour_shards_refuse_missing_shard(tmp):
    ckpt, index = sharded_checkpoint(tmp)
    os.remove(os.path.join(ckpt, "model-00002-of-00002.safetensors"))
    refused(tmp, ckpt, "shard model-00002-of-00002.safetensors (holding 'head.", index)


def behaviour_shards_refuse_a_tensor_in_two_shards(tmp):
    ckpt, index = sharded_checkpoint(tmp)
    second = os.path.join(ckpt, "model-00002-of-00002.safetensors")
    h1, _, d1 = read_st(os.path.join(ckpt, "model-00001-of-00002.safetensors"))
    h2, meta, d2 = read_st(second)
    h2["fc1.bias"], d2["fc1.bias"] = h1["fc1.bias"], d1["fc1.bias"]
    write_st(second, h2, meta, d2)
    refused(tmp, ckpt, "tensor 'fc1.bias' is in shard model-00002-of-00002.safetensors too, but the index puts it "
            "in model-00001-of-00002.safetensors", index)


def behaviour_shards_refuse_what_the_index_does_not_list(tmp):
    ckpt, index = sharded_checkpoint(tmp)
    doc = json.load(open(index))
    del doc["weight_map"]["head.bias"]
    json.dump(doc, open(index, "w"))
    refused(tmp, ckpt, "shard model-00002-of-00002.safetensors holds tensor 'head.bias', which the index does not "
            "list", index)
    doc["weight_map"]["head.bias"] = "model-00001-of-00002.safetensors"
    json.dump(doc, open(index, "w"))
    refused(tmp, ckpt, "'head.bias' is in shard model-00002-of-00002.safetensors too", index)
    doc["weight_map"]["head.bias"] = "../model-00002-of-00002.safetensors"
    json.dump(doc, open(index, "w"))
    refused(tmp, ckpt, "which is not a file name in the index's folder", index)


def behaviour_shards_refuse_a_malformed_index(tmp):
    ckpt, index = sharded_checkpoint(tmp)
    doc = json.load(open(index))
    for bad, expect in (([1, 2], "not a JSON object"),
                        ({"metadata": {}}, 'no "weight_map" object'),
                        (dict(doc, metadata=[]), '"metadata" is not an object'),
                        (dict(doc, weight_map=dict(doc["weight_map"], **{"head.bias": 7})),
                         "the weight map's entry for 'head.bias' is not a file name")):
        json.dump(bad, open(index, "w"))
        refused(tmp, ckpt, expect, index)
    with open(index, "w") as f:
        f.write('{"weight_map": {')
    refused(tmp, ckpt, "", index)


def behaviour_shards_refuse_a_wrong_shape_naming_the_shard(tmp):
    ckpt, _ = sharded_checkpoint(tmp)
    first = os.path.join(ckpt, "model-00001-of-00002.safetensors")
    header, meta, data = read_st(first)
    header["fc1.weight"]["shape"] = list(reversed(header["fc1.weight"]["shape"]))
    write_st(first, header, meta, data)
    refused(tmp, ckpt, "tensor 'fc1.weight' has shape [16, 32], but the plan's is [32, 16]", first)


def behaviour_shards_refuse_a_leftover_shard_of_another_step(tmp):
    # A shard from a save that was never committed (another step) is not mixed in.
    ckpt, _ = sharded_checkpoint(tmp)
    second = os.path.join(ckpt, "optimizer-00002-of-00002.safetensors")
    header, meta, data = read_st(second)
    meta["pml_step"] = "5"
    write_st(second, header, meta, data)
    refused(tmp, ckpt, "pml_step is '5' but trainer.json says 3", second)


def same_run(a, b, what):
    """Checkpoints a and b hold the same model and optimizer state, bit for bit."""
    for f in ("model.safetensors", "optimizer.safetensors"):
        same_tensors(os.path.join(a, f), os.path.join(b, f), f"{what}: {f}")


def train_cmd(*args):
    return [pmlc, "train", *args, "--quiet", "--threads", "2"]


def loads_and_resumes(tmp, d, straight, steps, what):
    """`d` loads, and resuming it to `steps` equals the uninterrupted run `straight`."""
    again = os.path.join(tmp, "again")
    shutil.rmtree(again, ignore_errors=True)
    r = run(ADAMW, "--steps", str(steps), "--resume", d, "--out", again)
    check(r.returncode == 0, f"{what}: {d} loads and resumes: {r.stderr}")
    if r.returncode == 0:
        same_run(straight, again, what)
    return r.returncode == 0


def behaviour_kills(tmp):
    """The crash-consistency test: within a bounded time, runs that resume D and save
    into it (and into D/step-NNNNNN every step) are killed, some at random moments,
    most at a random delay after D's own save starts (a change among D's files); after
    each kill D must load and resume to the uninterrupted run's bytes."""
    steps, budget = 8, 8.0
    straight, base, d = (os.path.join(tmp, n) for n in ("straight", "base", "D"))
    must_train(ADAMW, "--steps", str(steps), "--out", straight)
    must_train(ADAMW, "--steps", "2", "--out", base)
    shutil.copytree(base, d)
    env = dict(os.environ, PML_TEST_CKPT_PAUSE_MS="3")
    cmd = train_cmd(ADAMW, "--steps", str(steps), "--set", "checkpoint_every=1", "--resume", d, "--out", d)
    t0 = time.monotonic()
    subprocess.run(cmd, env=env, capture_output=True, timeout=60)
    full = time.monotonic() - t0  # an uninterrupted run, to place the random kills
    shutil.rmtree(d)
    shutil.copytree(base, d)
    rng = random.Random(12)
    kills = in_save = lost = 0
    start = time.monotonic()
    while time.monotonic() - start < budget or in_save < 3:
        if time.monotonic() - start > 3 * budget:
            break
        if json.load(open(os.path.join(d, "trainer.json")))["step"] == steps and not os.path.exists(
                os.path.join(d, "latest")):
            shutil.rmtree(d)  # finished: start over from step 2
            shutil.copytree(base, d)
        names = sorted(n for n in os.listdir(d) if not n.startswith("step-"))
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t = time.monotonic()
        if rng.random() < 0.3:  # anywhere in the run
            deadline = t + rng.uniform(0, full)
            while p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
        else:  # in D's own save: after its first change, at a random phase
            while p.poll() is None and time.monotonic() - t < 2 * full + 1:
                if sorted(n for n in os.listdir(d) if not n.startswith("step-")) != names:
                    break
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.04))
        if p.poll() is not None:
            continue  # finished before the kill: nothing to test this round
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        mid = sorted(n for n in os.listdir(d) if not n.startswith("step-")) != names
        in_save += mid
        if not loads_and_resumes(tmp, d, straight, steps, f"after kill {kills} ({'in' if mid else 'outside'} "
                                 f"D's save)"):
            lost += 1
    print(f"kills: {kills}, {in_save} of them during the save into the resumed folder; checkpoints lost: {lost}")
    check(in_save >= 3, f"at least 3 kills landed in the save into D ({in_save} of {kills})")
    # A run left to finish after all those kills ends as the uninterrupted one.
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"a last run finishes: {r.stderr}")
    same_run(straight, d, "the run finished after the kills")
    check(not [n for n in os.listdir(d) if ".tmp." in n or n == "latest"], f"D is a plain folder: {os.listdir(d)}")


def behaviour_kill_after_commit(tmp):
    straight, d = os.path.join(tmp, "straight"), os.path.join(tmp, "D")
    must_train(ADAMW, "--steps", "4", "--out", straight)
    must_train(ADAMW, "--steps", "2", "--out", d)
    env = dict(os.environ, PML_TEST_CKPT_PAUSE_MS="300")
    p = subprocess.Popen(train_cmd(ADAMW, "--steps", "4", "--set", "checkpoint_every=100", "--resume", d, "--out", d),
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = time.monotonic()
    while not os.path.exists(os.path.join(d, "latest")) and p.poll() is None and time.monotonic() - t < 30:
        time.sleep(0.001)
    check(p.poll() is None, "the run was still saving when the commit appeared")
    p.kill()
    p.wait()
    check(os.path.exists(os.path.join(d, "latest")), "killed between the commit and the install")
    check(json.load(open(os.path.join(d, "trainer.json")))["step"] == 2, "D's own trainer.json is still step 2's")
    loads_and_resumes(tmp, d, straight, 4, "a folder whose install was interrupted")
    # The next save into D finishes the install first, then saves: a plain folder again.
    must_train(ADAMW, "--steps", "4", "--resume", d, "--out", d)
    same_run(straight, d, "saved again after the interrupted install")
    left = sorted(f for f in os.listdir(d) if not f.startswith("step-"))
    check(left == ["model.safetensors", "optimizer.safetensors", "trainer.json"],
          f"only the checkpoint's files are left: {left}")


def behaviour_full_disk(tmp):
    straight, d = os.path.join(tmp, "straight"), os.path.join(tmp, "D")
    must_train(ADAMW, "--steps", "4", "--out", straight)
    must_train(ADAMW, "--steps", "2", "--out", d)

    def files():
        return {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d) if not f.startswith("step-")}

    before = files()
    limit = os.path.getsize(os.path.join(d, "model.safetensors")) + 512  # the optimizer's file does not fit

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    r = subprocess.run(train_cmd(ADAMW, "--steps", "4", "--set", "checkpoint_every=100", "--resume", d, "--out", d),
                       capture_output=True, text=True, timeout=120, preexec_fn=small_disk)
    check(r.returncode == 1, f"the save fails: exit 1 (got {r.returncode}: {r.stderr})")
    check("optimizer.safetensors" in r.stderr and "File too large" in r.stderr,
          f"the message names the file and why: {r.stderr}")
    check(files() == before,
          f"the old checkpoint is untouched, nothing else is left: {sorted(os.listdir(d))}")
    loads_and_resumes(tmp, d, straight, 4, "after a full disk")


def behaviour_stale_stage(tmp):
    d = os.path.join(tmp, "D")
    must_train(ADAMW, "--steps", "2", "--out", d)
    host = socket.gethostname().replace(".", "_").replace("/", "_").replace(" ", "_") or "host"
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now, and no process of ours reuses it this soon
    live = subprocess.Popen(["sleep", "30"])
    try:
        stale, alive = (os.path.join(d, f"ckpt.tmp.{host}.{pid}") for pid in (dead.pid, live.pid))
        other = os.path.join(d, f"ckpt.tmp.otherhost.{dead.pid}")
        for s in (stale, alive, other):
            os.makedirs(s)
            open(os.path.join(s, "model.safetensors"), "wb").write(b"partial")
        # A killed install leaves links or writes never renamed: of the checkpoint's files,
        # of its pointer, of a file another layout had.
        temps = [os.path.join(d, f"{n}.tmp.{host}.{dead.pid}") for n in
                 ("optimizer.safetensors", "latest", "model-00002-of-00002.safetensors")]
        for t in temps:
            open(t, "wb").write(b"partial")
        kept = os.path.join(d, f"model.safetensors.tmp.{host}.{live.pid}")
        open(kept, "wb").write(b"partial")
        must_train(ADAMW, "--steps", "3", "--resume", d, "--out", d)
        check(not os.path.exists(stale), "a dead writer's stage folder is removed")
        check(not [t for t in temps if os.path.exists(t)], "a dead writer's temporary files are removed")
        check(os.path.exists(kept), "a live writer's temporary file is kept")
        check(os.path.isdir(alive), "a live writer's stage folder is kept")
        check(os.path.isdir(other), "another machine's stage folder is kept (its writer may be alive there)")
        check(json.load(open(os.path.join(d, "trainer.json")))["step"] == 3, "the save went through")
    finally:
        live.kill()
        live.wait()


with tempfile.TemporaryDirectory() as tmp:
    if behaviour == "resume_sgd":
        resume_equals_straight(tmp, SGD)
    elif behaviour == "resume_adamw":
        resume_equals_straight(tmp, ADAMW)
    else:
        globals()["behaviour_" + behaviour](tmp)

print(f"checkpoint {behaviour}: {len(failures)} failed")
sys.exit(1 if failures else 0)
