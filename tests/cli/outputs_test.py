#!/usr/bin/env python3
"""outputs_test.py — where pmlc writes (runtime/src/formats/out_path.h): every output path
follows one rule, and is checked before the work starts. One behaviour per test; every
file is made by the test in its own work folder.

    outputs_test.py --list                       # test names (read by CMake)
    outputs_test.py --pmlc PMLC --work DIR NAME  # run one test

Special files are made here (mknod as root, else skipped parts) or reached through links,
so a failure never touches the machine's own /dev/null."""
import os
import socket
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pmltest  # noqa: E402
from cli_test import TRAINED  # noqa: E402

MODEL = TRAINED  # a small trained model: 10 steps of a linear classifier

TESTS, test = pmltest.registry()


class Ctx(pmltest.WorkCtx):
    timeout = 60

    def __init__(self, *args):
        super().__init__(*args)
        self.model = self.write("m.pml", MODEL)

    def train(self, *args, timeout=None):
        return self.pmlc_run("train", self.model, "--quiet", "--threads", "2", *args, timeout=timeout)

    def ok(self, res, what):
        self.expect(res.code == 0, f"{what}: exit {res.code}: {res.stderr}")

    def refused(self, res, what, *words):
        self.expect(res.code == 1, f"{what}: exit {res.code}, expected 1: {res.stderr}")
        for w in words:
            self.expect(w in res.stderr, f"{what}: the message says {w!r}: {res.stderr}")


def mode(path):
    return os.lstat(path).st_mode


def null_device(c):
    """A private character device like /dev/null (root can mknod), else None."""
    p = c.path("null")
    try:
        os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        return p
    except OSError:
        return None


def every_writer(c, path):
    """Each pmlc writer's output at `path`: (what, result)."""
    weights = c.path("w")
    if not os.path.exists(weights):
        c.train("--steps", "1", "--out", weights)
    x = c.path("x.npy")
    if not os.path.exists(x):
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"
        header += " " * (-(len(header) + 11) % 64) + "\n"
        with open(x, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 48)
    return [("build -o", c.pmlc_run("build", c.model, "--arch", "none", "-o", path)),
            ("infer --output", c.pmlc_run("infer", c.model, "--weights", weights, "--input", x, "--output", path,
                                          "--quiet")),
            ("train --metrics", c.train("--steps", "2", "--metrics", path)),
            ("train --trace", c.train("--steps", "2", "--trace", path))]


@test
def a_device_output_is_written_in_place(c):
    link = c.path("null-link")
    os.symlink("/dev/null", link)  # followed to /dev/null: an old pmlc replaced the link, not the device
    dev = null_device(c)
    for path in [link] + ([dev] if dev else []):
        for what, res in every_writer(c, path):
            c.ok(res, f"{what} {os.path.basename(path)}")
        if path == link:
            c.expect(stat.S_ISLNK(mode(link)) and os.readlink(link) == "/dev/null", "the link to /dev/null stays")
        else:
            c.expect(stat.S_ISCHR(mode(dev)), "the device stays a device")
    c.expect(stat.S_ISCHR(os.stat("/dev/null").st_mode), "/dev/null is a device")
    c.expect(not [n for n in os.listdir(c.work) if ".tmp." in n], f"no temporary files: {os.listdir(c.work)}")


def read_fifo(path, into):
    with open(path, "rb") as f:
        into.append(f.read())


@test
def a_fifo_output_is_written_in_place(c):
    fifo = c.path("fifo")
    os.mkfifo(fifo)
    c.ok(c.pmlc_run("build", c.model, "--arch", "none", "-o", c.path("m.plan")), "build -o a file")
    for what, args, expect in (("build -o", ["build", c.model, "--arch", "none", "-o", fifo], open(c.path("m.plan"), "rb").read()),
                               ("train --metrics", ["train", c.model, "--quiet", "--steps", "2", "--metrics", fifo],
                                None)):
        got = []
        reader = threading.Thread(target=read_fifo, args=(fifo, got))
        reader.start()
        res = c.pmlc_run(*args)
        reader.join(30)
        c.ok(res, what)
        if expect is not None:
            c.expect(got and got[0] == expect, f"{what}: the reader got the plan file's bytes")
        else:
            c.expect(got and got[0].count(b'"step"') == 2, f"{what}: the reader got two step records: {got}")
        c.expect(stat.S_ISFIFO(mode(fifo)), f"{what}: the fifo stays a fifo")


@test
def a_fifo_nobody_reads_is_refused_in_bounded_time(c):
    fifo = c.path("fifo")
    os.mkfifo(fifo)
    t = time.monotonic()
    res = c.pmlc_run("build", c.model, "--arch", "none", "-o", fifo, timeout=30)
    c.refused(res, "build -o a fifo without a reader", fifo, "nobody reads")
    c.expect(time.monotonic() - t < 15, "refused within seconds, not blocked")
    c.expect(stat.S_ISFIFO(mode(fifo)), "the fifo stays a fifo")


@test
def a_symlink_output_replaces_its_target_and_keeps_the_link(c):
    os.makedirs(c.path("real"))
    target, link = c.path("real", "m.plan"), c.path("m.plan")
    with open(target, "w") as f:
        f.write("old")
    os.symlink(os.path.join("real", "m.plan"), link)
    c.ok(c.pmlc_run("build", c.model, "--arch", "none", "-o", link), "build -o a link")
    c.expect(stat.S_ISLNK(mode(link)), "the link stays a link")
    c.expect(open(target, "rb").read()[:4] != b"old", "its target holds the new plan")
    c.expect(not [n for n in os.listdir(c.path("real")) if ".tmp." in n], "no temporary files")


@test
def refuses_a_block_device_a_socket_a_folder_and_a_dangling_link(c):
    sock = c.path("sock")
    s = socket.socket(socket.AF_UNIX)
    here = os.getcwd()
    os.chdir(c.work)  # a socket's path has a length limit (108 bytes): bind by its short name
    s.bind("sock")
    os.chdir(here)
    os.makedirs(c.path("folder"))
    os.symlink(c.path("nowhere", "x"), c.path("dangling"))
    cases = [(sock, "a socket"), (c.path("folder"), "a folder"), (c.path("dangling"), "does not exist")]
    try:
        os.mknod(c.path("disk"), 0o600 | stat.S_IFBLK, os.makedev(7, 200))  # a loop device number, never opened
        cases.append((c.path("disk"), "a block device"))
    except OSError:
        pass
    for path, says in cases:
        before = mode(path)
        for what, res in every_writer(c, path):
            c.refused(res, f"{what} {os.path.basename(path)}", path, says)
        c.expect(mode(path) == before, f"{os.path.basename(path)} is untouched")
    c.expect(not os.path.exists(c.path("nowhere")), "nothing is created behind the dangling link")
    s.close()


@test
def out_is_created_with_its_parents(c):
    out = c.path("runs", "teacher")  # the README's walkthrough on a fresh clone: no runs/
    c.ok(c.train("--out", out), "--out runs/teacher")
    c.expect(os.path.isfile(os.path.join(out, "trainer.json")), "the checkpoint is written")


@test
def unwritable_outputs_fail_before_the_first_step(c):
    with open(c.path("file"), "w") as f:
        f.write("a file, not a folder")
    endless = ("--steps", "100000000")  # would run for hours: only an early check returns
    for opt, path, says in (("--out", c.path("file", "ckpt"), "not a folder"),
                            ("--metrics", c.path("no", "m.jsonl"), "No such file or directory"),
                            ("--trace", c.path("file", "t.json"), "Not a directory")):
        t = time.monotonic()
        res = c.train(*endless, opt, path, timeout=60)
        c.refused(res, opt, path, says)
        c.expect(time.monotonic() - t < 30, f"{opt}: refused before training")
    res = c.pmlc_run("infer", c.model, "--weights", c.path("missing"), "--input", c.path("missing.npy"),
                     "--output", c.path("no", "y.npy"))
    c.refused(res, "infer --output", c.path("no", "y.npy"))  # checked before the weights are even read
    c.refused(c.pmlc_run("build", c.model, "--arch", "none", "-o", c.path("no", "m.plan")), "build -o", c.path("no", "m.plan"))
    # A read-only mount stops root where permission bits do not (needs mount rights).
    ro = c.path("ro")
    os.makedirs(ro)
    if subprocess.run(["mount", "--bind", "-o", "ro", ro, ro], capture_output=True).returncode == 0:
        try:
            if subprocess.run(["mount", "-o", "remount,bind,ro", ro], capture_output=True).returncode == 0:
                c.refused(c.train(*endless, "--out", os.path.join(ro, "ckpt")), "--out on a read-only mount",
                          "Read-only file system")
        finally:
            subprocess.run(["umount", ro], capture_output=True)


@test
def stale_temporary_files_of_dead_writers_are_removed(c):
    host = socket.gethostname().replace(".", "_").replace("/", "_").replace(" ", "_") or "host"
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        out = c.path("m.plan")
        gone = [f"m.plan.tmp.{host}.{dead.pid}", f"m.plan.tmp.{dead.pid}"]  # this machine's, dead (old name too)
        kept = [f"m.plan.tmp.{host}.{live.pid}", f"m.plan.tmp.otherhost.{dead.pid}", f"other.tmp.{host}.{dead.pid}"]
        for n in gone + kept:
            with open(c.path(n), "w") as f:
                f.write("partial")
        c.ok(c.pmlc_run("build", c.model, "--arch", "none", "-o", out), "build -o")
        for n in gone:
            c.expect(not os.path.exists(c.path(n)), f"{n} (a dead writer's) is removed")
        for n in kept:
            c.expect(os.path.exists(c.path(n)), f"{n} (alive, another machine's, or another file's) is kept")
    finally:
        live.kill()
        live.wait()


def main():
    pmltest.named_tests_main(TESTS, Ctx)


if __name__ == "__main__":
    main()
