"""pmltest — what every PML test runner shares: running pmlc, spotting crashes and
sanitizer reports, and showing a unified diff when output differs from a golden file.

A runner prints why it failed and exits 1; it exits 0 when the behaviour holds.
"""
import difflib
import os
import signal
import subprocess
import sys

# Text a sanitizer prints when it finds a bug; any of these in stderr is a failure.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "ERROR: libFuzzer",
    "SUMMARY: UndefinedBehaviorSanitizer",
)

DEFAULT_TIMEOUT = 10.0


class Result:
    """What one pmlc run did: exit code (negative: killed by that signal), output, and
    whether it ran out of time."""

    def __init__(self, argv, code, stdout, stderr, timed_out):
        self.argv, self.code, self.stdout, self.stderr = argv, code, stdout, stderr
        self.timed_out = timed_out

    def describe(self):
        if self.timed_out:
            status = "timed out"
        elif self.code < 0:
            status = f"killed by signal {signal.Signals(-self.code).name}"
        else:
            status = f"exit {self.code}"
        return f"$ {' '.join(self.argv)}\n-> {status}"


def clean_env(extra=None):
    """The environment for pmlc: the caller's, minus what changes its output."""
    env = dict(os.environ)
    for key in ("PML_PATH", "NO_COLOR", "PML_CPU_ISA"):
        env.pop(key, None)
    if extra:
        env.update(extra)
    return env


def run(argv, cwd=None, env=None, timeout=DEFAULT_TIMEOUT, stdin=None):
    """Runs argv, capturing stdout and stderr as text (invalid UTF-8 replaced)."""
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env if env is not None else clean_env(),
                              input=stdin, capture_output=True, timeout=timeout)
        return Result(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                      proc.stderr.decode("utf-8", "replace"), False)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace")
        err = (exc.stderr or b"").decode("utf-8", "replace")
        return Result(argv, None, out, err, True)


def crash_problems(res):
    """Reasons this run counts as a crash, hang or sanitizer report (empty: none)."""
    problems = []
    if res.timed_out:
        problems.append("timed out")
    elif res.code is not None and res.code < 0:
        problems.append(f"killed by signal {signal.Signals(-res.code).name}")
    for marker in SANITIZER_MARKERS:
        if marker in res.stderr:
            problems.append(f"sanitizer report: {marker!r}")
    return problems


def unified_diff(expected, actual, name_expected, name_actual):
    return "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                        name_expected, name_actual))


class Failures:
    """Collects failed expectations; `finish` prints them and exits."""

    def __init__(self, title):
        self.title, self.items = title, []

    def add(self, message):
        self.items.append(message)

    def check(self, cond, message):
        if not cond:
            self.add(message)
        return cond

    def finish(self, res=None):
        if not self.items:
            print(f"ok: {self.title}")
            sys.exit(0)
        print(f"FAIL: {self.title}")
        for item in self.items:
            print("  - " + item.replace("\n", "\n    "))
        if res is not None:
            print(res.describe())
            print("--- stdout ---\n" + tail(res.stdout))
            print("--- stderr ---\n" + tail(res.stderr))
        sys.exit(1)


def tail(text, limit=4000):
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


def registry():
    """A script's table of named tests and the decorator that fills it:
    `TESTS, test = pmltest.registry()`, then `@test` on each test function."""
    tests = {}

    def test(fn):
        tests[fn.__name__] = fn
        return fn

    return tests, test


class WorkCtx:
    """What a named test takes: pmlc, its own work folder and the failures. `pmlc_run`
    runs pmlc there (the environment cleaned, `timeout` seconds unless told), counts a
    crash or sanitizer report as a failure, and keeps the result as `last`, which a
    failing test prints. Scripts subclass it for what their tests share."""

    timeout = DEFAULT_TIMEOUT

    def __init__(self, pmlc, work, fails, version=None):
        self.pmlc, self.work, self.fails, self.version = pmlc, work, fails, version
        self.last = None

    def path(self, *rel):
        return os.path.join(self.work, *rel)

    def write(self, rel, text):
        """Writes text to rel (its folders made) and returns the full path."""
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def pmlc_run(self, *args, cwd=None, env=None, timeout=None):
        self.last = run([self.pmlc, *args], cwd=cwd or self.work, env=clean_env(env),
                        timeout=timeout or self.timeout)
        for problem in crash_problems(self.last):
            self.fails.add(problem)
        return self.last

    def expect(self, cond, message):
        return self.fails.check(cond, message)


def named_tests_main(tests, make_ctx=WorkCtx, prefix="cli"):
    """The command line of a script of named tests (tests/cli/*_test.py): `--list` prints
    the names (CMake reads them); `--pmlc PMLC --work DIR [--version V] NAME` runs one in a
    fresh DIR. make_ctx(pmlc, work, failures, version) makes what each test function takes
    (a WorkCtx unless told);
    a failure also prints the context's `last` result when it has one."""
    import argparse
    import shutil

    ap = argparse.ArgumentParser()
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--pmlc")
    ap.add_argument("--work")
    ap.add_argument("--version", help="the version pmlc must report (the project's)")
    ap.add_argument("name", nargs="?", choices=sorted(tests))
    args = ap.parse_args()
    if args.list:
        print("\n".join(tests))
        return
    if not (args.pmlc and args.work and args.name):
        ap.error("give --pmlc, --work and a test name")
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    fails = Failures(f"{prefix}.{args.name}")
    ctx = make_ctx(os.path.abspath(args.pmlc), work, fails, args.version)
    tests[args.name](ctx)
    fails.finish(getattr(ctx, "last", None) if fails.items else None)
