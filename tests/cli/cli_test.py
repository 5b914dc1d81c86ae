#!/usr/bin/env python3
"""cli_test.py — the pmlc command line, one behaviour per test. Every input file is
written by the test into its own work folder.

    cli_test.py --list                          # test names (read by CMake)
    cli_test.py --pmlc PMLC [--version X.Y.Z] --work DIR NAME   # run one test
"""
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pmltest  # noqa: E402
from npy_files import write_npy  # noqa: E402

VERSION_RE = re.compile(r"\b\d+\.\d+\.\d+\b")
ANSI = "\x1b["

VALID = """\
model m(x: f32[B, 4]) -> f32[B, 4] {
    return relu(x)
}
"""

# One file, three independent syntax errors on lines 2, 5 and 8: the parser recovers
# at each statement and reports all three.
THREE_ERRORS = """\
model a(x: f32[B, 4]) -> f32[B, 4] {
    return relu(x) +
}
model b(x: f32[B, 4]) -> f32[B, 4] {
    return x * * 2
}
model c(x: f32[B, 4]) -> f32[B, 4] {
    return x ] 3
}
"""

# Three unknown names in three models (lines 2, 5 and 8): a checker error does not
# hide the next one.
THREE_NAME_ERRORS = """\
model a(x: f32[B, 4]) -> f32[B, 4] {
    return reluu(x)
}
model b(x: f32[B, 4]) -> f32[B, 4] {
    return nosuchop(x)
}
model c(x: f32[B, 4]) -> f32[B, 4] {
    return x @ ones_of_no_kind
}
"""

TRAINED = """\
import "nn"
model m(x: f32[B, 4]) -> f32[B, 2] {
    return linear(x, 2) as head
}
train m {
    data = classes(features = 4, classes = 2)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 64, microbatches = 8
    steps = 10
}
"""

IMPORTER = """\
import "helper"
model m(x: f32[B, 4]) -> f32[B, 4] {
    return helper_double(x)
}
"""

HELPER = """\
fn helper_double(x) {
    return x + x
}
"""

TESTS, test = pmltest.registry()


def expect_usage_error(c, res):
    c.expect(res.code == 2, f"exit {res.code}, expected 2")
    c.expect("usage" in res.stderr.lower(), "no usage text on stderr")
    c.expect(res.stdout == "", "stdout is not empty")


def expect_help(c, res):
    c.expect(res.code == 0, f"exit {res.code}, expected 0")
    c.expect("usage" in res.stdout.lower(), "no usage text on stdout")
    for command in ("check", "plan"):
        c.expect(command in res.stdout, f"help does not mention `{command}`")
    c.expect(res.stderr == "", "stderr is not empty")


def expect_version(c, res):
    c.expect(res.code == 0, f"exit {res.code}, expected 0")
    if c.version:
        c.expect(c.version in res.stdout, f"version {c.version} not on stdout")
    else:
        c.expect(VERSION_RE.search(res.stdout) is not None, "no version number on stdout")
    c.expect(res.stderr == "", "stderr is not empty")


@test
def help_flag_prints_usage_to_stdout(c):
    expect_help(c, c.pmlc_run("--help"))


@test
def help_command_prints_usage_to_stdout(c):
    expect_help(c, c.pmlc_run("help"))


@test
def version_flag_prints_version(c):
    expect_version(c, c.pmlc_run("--version"))


@test
def version_command_prints_version(c):
    expect_version(c, c.pmlc_run("version"))


@test
def no_arguments_is_usage_error(c):
    expect_usage_error(c, c.pmlc_run())


@test
def unknown_command_is_usage_error(c):
    expect_usage_error(c, c.pmlc_run("frobnicate", "x.pml"))


@test
def unknown_flag_is_usage_error(c):
    c.write("ok.pml", VALID)
    expect_usage_error(c, c.pmlc_run("check", "--no-such-flag", "ok.pml"))


@test
def valid_file_checks_silently(c):
    c.write("ok.pml", VALID)
    res = c.pmlc_run("check", "ok.pml")
    c.expect(res.code == 0, f"exit {res.code}, expected 0")
    c.expect(res.stderr == "", "diagnostics for a valid file")


@test
def missing_file_is_error_naming_the_path(c):
    res = c.pmlc_run("check", "no/such/file.pml")
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    c.expect("no/such/file.pml" in res.stderr, "the message does not name the path")
    c.expect("error:" in res.stderr, "no `error:` on stderr")


@test
def color_always_colours_diagnostics(c):
    c.write("bad.pml", THREE_ERRORS)
    res = c.pmlc_run("check", "--color=always", "bad.pml")
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    c.expect(ANSI in res.stderr, "no ANSI escape in the diagnostics")


@test
def color_never_has_no_escapes(c):
    c.write("bad.pml", THREE_ERRORS)
    res = c.pmlc_run("check", "--color=never", "bad.pml")
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    c.expect(ANSI not in res.stderr, "ANSI escape in the diagnostics")


@test
def no_color_env_disables_auto_colour(c):
    c.write("bad.pml", THREE_ERRORS)
    res = c.pmlc_run("check", "--color=auto", "bad.pml", env={"NO_COLOR": "1"})
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    c.expect(ANSI not in res.stderr, "ANSI escape in the diagnostics despite NO_COLOR")


@test
def auto_colour_is_off_when_stderr_is_not_a_terminal(c):
    c.write("bad.pml", THREE_ERRORS)
    res = c.pmlc_run("check", "bad.pml")
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    c.expect(ANSI not in res.stderr, "ANSI escape in the diagnostics written to a pipe")


def expect_errors_on_lines(c, text, lines):
    c.write("bad.pml", text)
    res = c.pmlc_run("check", "--color=never", "bad.pml")
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    for line in lines:
        c.expect(f"bad.pml:{line}:" in res.stderr, f"no error reported on line {line}")
    c.expect(f"{len(lines)} errors generated" in res.stderr, f"the summary does not count {len(lines)} errors")


@test
def several_syntax_errors_are_all_reported(c):
    expect_errors_on_lines(c, THREE_ERRORS, (2, 5, 8))


@test
def several_name_errors_are_all_reported(c):
    expect_errors_on_lines(c, THREE_NAME_ERRORS, (2, 5, 8))


@test
def max_errors_stops_after_the_limit(c):
    c.write("bad.pml", THREE_ERRORS)
    res = c.pmlc_run("check", "--color=never", "--max-errors", "1", "bad.pml")
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    count = len(re.findall(r"^\S+:\d+:\d+: error:", res.stderr, re.M))
    c.expect(count == 1, f"{count} errors reported, expected 1")


@test
def set_overrides_a_train_field(c):
    c.write("t.pml", TRAINED)
    res = c.pmlc_run("check", "t.pml")
    c.expect(res.code == 0, f"without --set: exit {res.code}, expected 0")
    # batch 12 is not divisible by microbatches 8: only an applied override can fail.
    res = c.pmlc_run("check", "--color=never", "--set", "batch=12", "t.pml")
    c.expect(res.code == 1, f"with --set batch=12: exit {res.code}, expected 1")
    c.expect("batch" in res.stderr, "the error does not mention batch")
    res = c.pmlc_run("check", "--set", "batch=128", "t.pml")
    c.expect(res.code == 0, f"with --set batch=128: exit {res.code}, expected 0")


@test
def set_with_a_bad_value_is_an_error(c):
    c.write("t.pml", TRAINED)
    res = c.pmlc_run("check", "--color=never", "--set", "batch=banana", "t.pml")
    c.expect(res.code in (1, 2), f"exit {res.code}, expected 1 (or 2, a usage error)")
    c.expect("error:" in res.stderr or "usage" in res.stderr.lower(), "no error on stderr")
    c.expect("batch" in res.stderr, "the error does not mention batch")


@test
def backend_cpu_and_auto_train_here(c):
    c.write("t.pml", TRAINED)
    for backend in ("cpu", "auto"):
        out = os.path.join(c.work, "out-" + backend)
        res = c.pmlc_run("train", "t.pml", "--steps", "1", "--quiet", "--backend", backend, "--out", out)
        c.expect(res.code == 0, f"--backend {backend}: exit {res.code}, expected 0: {res.stderr}")
        c.expect(os.path.exists(os.path.join(out, "model.safetensors")), f"--backend {backend}: no weights written")


@test
def backend_cuda_that_cannot_run_fails_clearly(c):
    # No CUDA executor in this build, or no GPU on the test machine: either way a clear
    # error naming the CUDA backend, exit 1, and nothing written.
    c.write("t.pml", TRAINED)
    out = os.path.join(c.work, "out")
    for cmd in ("train", "run"):
        res = c.pmlc_run(cmd, "t.pml", "--steps", "1", "--quiet", "--backend=cuda", "--out", out)
        c.expect(res.code == 1, f"{cmd}: exit {res.code}, expected 1")
        c.expect("CUDA" in res.stderr and "--backend cpu" in res.stderr, f"{cmd}: unclear error: {res.stderr!r}")
        c.expect(not os.path.exists(out), f"{cmd}: wrote {out} although it could not train")


@test
def pml_cpu_isa_caps_the_kernels_and_a_bad_value_is_refused(c):
    # A level trains (the paths of a narrower CPU) and says so where it matters; a name
    # that is no level is an error naming the variable and the levels, exit 1, nothing written.
    c.write("t.pml", TRAINED)
    out = os.path.join(c.work, "capped")
    res = c.pmlc_run("train", "t.pml", "--steps", "1", "--quiet", "--set", "precision=bf16", "--out", out,
                     env={"PML_CPU_ISA": "avx2"})
    c.expect(res.code == 0, f"PML_CPU_ISA=avx2: exit {res.code}: {res.stderr}")
    c.expect(os.path.exists(os.path.join(out, "model.safetensors")), "PML_CPU_ISA=avx2: no weights written")
    write_npy(os.path.join(c.work, "x.npy"), [3, 4], [0.5] * 12)
    out = os.path.join(c.work, "bad")
    for cmd in ("train", "infer"):
        args = ["--steps", "1", "--out", out] if cmd == "train" else ["--weights", os.path.join(c.work, "capped"),
                                                                      "--input", "x.npy", "--output", out]
        res = c.pmlc_run(cmd, "t.pml", *args, env={"PML_CPU_ISA": "avx1024"})
        c.expect(res.code == 1, f"{cmd} with PML_CPU_ISA=avx1024: exit {res.code}, expected 1")
        c.expect("PML_CPU_ISA=avx1024" in res.stderr and "avx512_bf16" in res.stderr,
                 f"{cmd}: unclear error: {res.stderr!r}")
        c.expect(not os.path.exists(out), f"{cmd}: wrote {out} although PML_CPU_ISA was refused")


@test
def ops_lists_every_primitive_op_with_its_class_and_arity(c):
    res = c.pmlc_run("ops")
    c.expect(res.code == 0 and res.stderr == "", f"exit {res.code}: {res.stderr}")
    rows = [line.split(None, 3) for line in res.stdout.splitlines()]
    c.expect(rows and rows[0][:3] == ["op", "class", "inputs"], "no header line")
    by_name = {r[0]: r for r in rows[1:] if len(r) == 4}
    c.expect(len(by_name) == len(rows) - 1 and len(by_name) > 30, f"{len(rows) - 1} rows, each op once with a meaning")
    c.expect(by_name.get("matmul", [None] * 3)[1:3] == ["matmul", "2"], f"matmul: {by_name.get('matmul')}")
    c.expect(by_name.get("add", [None] * 3)[1] == "elementwise", f"add: {by_name.get('add')}")
    c.expect(all(r[1] in ("source", "elementwise", "reduce", "movement", "gather", "matmul", "row", "attention")
                 for r in by_name.values()), "an op with an unknown class")
    c.expect(by_name.get("attention", [None] * 3)[1:3] == ["attention", "3"], f"attention: {by_name.get('attention')}")


@test
def unknown_backend_is_usage_error(c):
    c.write("t.pml", TRAINED)
    res = c.pmlc_run("train", "t.pml", "--backend", "tpu")
    expect_usage_error(c, res)
    c.expect("tpu" in res.stderr, "the bad value is not named")


@test
def include_dir_resolves_an_import(c):
    c.write("main/app.pml", IMPORTER)
    c.write("lib/helper.pml", HELPER)
    res = c.pmlc_run("check", "--color=never", "main/app.pml")
    c.expect(res.code == 1, f"without -I: exit {res.code}, expected 1")
    c.expect("helper" in res.stderr, "the unresolved import is not named")
    res = c.pmlc_run("check", "-I", "lib", "main/app.pml")
    c.expect(res.code == 0, f"with -I lib: exit {res.code}, expected 0")


@test
def pml_path_resolves_an_import(c):
    c.write("main/app.pml", IMPORTER)
    c.write("lib/helper.pml", HELPER)
    env = {"PML_PATH": os.path.join(c.work, "nowhere") + ":" + os.path.join(c.work, "lib")}
    res = c.pmlc_run("check", "main/app.pml", env=env)
    c.expect(res.code == 0, f"with PML_PATH: exit {res.code}, expected 0")


@test
def import_cycle_is_reported_with_the_chain(c):
    c.write("a.pml", 'import "b"\n')
    c.write("b.pml", 'import "c"\n')
    c.write("c.pml", 'import "a"\n')
    res = c.pmlc_run("check", "--color=never", "a.pml")
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    c.expect("cycle" in res.stderr, "the message does not say `cycle`")
    for name in ("a", "b", "c"):
        c.expect(name in res.stderr, f"the chain does not show {name}")


DISTILLED = TRAINED.replace("import \"nn\"\n", "import \"nn\"\nmodel t(x: f32[B, 4]) -> f32[B, 2] {\n"
                            "    return linear(x, 2) as head\n}\n") + \
    'distill m from t("FIFO") { temperature = 2.0, alpha = 0.5 }\n'


@test
def a_fifo_as_any_input_is_refused_at_once(c):
    """Every file pmlc reads, given as a fifo nobody writes to: refused with its path
    (pmlc_run's timeout makes a hang a failure), never waited on."""
    c.write("t.pml", TRAINED)
    res = c.pmlc_run("train", "t.pml", "--steps", "1", "--quiet", "--out", "ck")
    c.expect(res.code == 0, f"the checkpoint to damage trains: {res.stderr}")
    os.mkfifo(os.path.join(c.work, "f"))
    for name in ("trainer.json", "model.safetensors", "optimizer.safetensors"):
        bad = os.path.join(c.work, "ck-" + name)
        shutil.copytree(os.path.join(c.work, "ck"), bad)
        os.remove(os.path.join(bad, name))
        os.mkfifo(os.path.join(bad, name))
    os.makedirs(os.path.join(c.work, "init"))
    os.mkfifo(os.path.join(c.work, "init", "model.safetensors"))
    c.write("npy.pml", TRAINED.replace("classes(features = 4, classes = 2)", '"f"\n    labels = "f"'))
    c.write("distill.pml", DISTILLED.replace("FIFO", "f"))
    c.write("app.pml", IMPORTER)
    runs = [
        (("check", "f"), "f"),
        (("check", "-I", "f", "app.pml"), "helper"),
        (("train", "f", "--steps", "1"), "f"),
        (("infer", "f", "--weights", "ck", "--input", "f", "--output", "y.npy"), "f"),
        (("train", "t.pml", "--steps", "1", "--init", "f"), "f"),
        (("train", "t.pml", "--steps", "1", "--init", "init"), "init/model.safetensors"),
        (("train", "t.pml", "--steps", "2", "--resume", "ck-trainer.json"), "ck-trainer.json/trainer.json"),
        (("train", "t.pml", "--steps", "2", "--resume", "ck-model.safetensors"), "ck-model.safetensors/model"),
        (("train", "t.pml", "--steps", "2", "--resume", "ck-optimizer.safetensors"), "ck-optimizer.safetensors/"),
        (("infer", "t.pml", "--weights", "f", "--input", "f", "--output", "y.npy"), "f"),
        (("infer", "t.pml", "--weights", "ck", "--input", "f", "--output", "y.npy"), "f"),
        (("train", "npy.pml", "--steps", "1"), "f"),
        (("train", "distill.pml", "--steps", "1"), "f"),
    ]
    for args, named in runs:
        res = c.pmlc_run(*args, "--quiet")
        what = "pmlc " + " ".join(args)
        c.expect(res.code == 1, f"{what}: exit {res.code}, expected 1: {res.stderr}")
        c.expect(named in res.stderr, f"{what}: the message does not name {named}: {res.stderr}")
        if named != "helper":
            c.expect("fifo" in res.stderr, f"{what}: the message does not say it is a fifo: {res.stderr}")


# Three stages, four micro-batches, ZB-H1: the timeline's rows and boxes are countable.
PIPELINED = """\
import "nn"
model m(x: f32[B, 4]) -> f32[B, 2] {
    place = auto(stages = 3)
    h = tanh(linear(x, 8) as a)
    h = tanh(linear(h, 8) as b)
    return linear(h, 2) as head
}
train m {
    data = classes(features = 4, classes = 2)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 16, microbatches = 4, schedule = zero_bubble
    steps = 1
}
"""


@test
def plan_timeline_draws_a_row_per_stage_with_its_boxes_and_both_bubbles(c):
    import xml.etree.ElementTree as ET
    src = c.write("zb.pml", PIPELINED)
    svg = os.path.join(c.work, "zb.svg")
    res = c.pmlc_run("plan", src, "--timeline", svg)
    c.expect(res.code == 0, f"exit {res.code}: {res.stderr}")
    c.expect("schedule       zero_bubble" in res.stdout, "the plan is still printed")
    if res.code:
        return
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in root.iter(ns + "text")]
    titles = [t.text or "" for t in root.iter(ns + "title")]
    c.expect([t for t in texts if t.startswith("stage ")] == ["stage 0", "stage 1", "stage 2"], f"rows: {texts}")
    for s in range(3):
        for kind in ("fwd", "bwd_input", "bwd_weight"):
            got = sorted(t for t in titles if t.startswith(f"stage {s}: {kind} of"))
            want = sorted(f"stage {s}: {kind} of micro-batch {m}" for m in range(4))
            c.expect(got == want, f"stage {s} {kind} boxes: {got}")
    caption = [t for t in texts if "analytic" in t]
    c.expect(len(caption) == 1 and "simulated" in caption[0], f"the caption gives both bubbles: {texts}")
    c.expect(any(t.startswith("W") for t in texts), "the weight halves are labelled W and their micro-batch")


@test
def plan_timeline_refuses_a_folder_before_planning(c):
    src = c.write("zb.pml", PIPELINED)
    folder = os.path.join(c.work, "pictures")
    os.makedirs(folder)
    res = c.pmlc_run("plan", src, "--timeline", folder)
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    c.expect("--timeline" in res.stderr and folder in res.stderr, f"the message names the path: {res.stderr}")
    c.expect(res.stdout == "", "nothing was planned")
    c.expect(os.listdir(folder) == [], "the folder is untouched")


def measured_boxes(c, svg, stages, mbs, kinds):
    """The picture of one measured step: a row per stage, each stage's `kinds` boxes for
    every micro-batch and its update, every box inside the plot; returns its texts."""
    import xml.etree.ElementTree as ET
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in root.iter(ns + "text")]
    titles = [t.text or "" for t in root.iter(ns + "title")]
    c.expect([t for t in texts if t.startswith("stage ")] == [f"stage {s}" for s in range(stages)], f"rows: {texts}")
    for s in range(stages):
        for kind in kinds:
            got = sorted(t for t in titles if t.startswith(f"stage {s}: {kind} of"))
            c.expect(got == sorted(f"stage {s}: {kind} of micro-batch {m}" for m in range(mbs)),
                     f"stage {s} {kind} boxes: {got}")
        c.expect(titles.count(f"stage {s}: update") == 1, f"stage {s}'s update: {titles}")
    for r in root.iter(ns + "rect"):
        if r.find(ns + "title") is not None:
            x, w = float(r.get("x")), float(r.get("width"))
            c.expect(80 - 0.01 <= x and x + w <= 1180 + 0.01 and w >= 0, f"a box inside the plot: x {x}, width {w}")
    return texts


@test
def train_timeline_draws_the_median_measured_step_with_its_bubbles(c):
    src = c.write("zb.pml", PIPELINED)
    svg = os.path.join(c.work, "run.svg")
    res = c.pmlc_run("train", src, "--steps", "4", "--threads", "2", "--timeline", svg)
    c.expect(res.code == 0, f"exit {res.code}: {res.stderr}")
    if res.code:
        return
    c.expect(f"picture of a step in {svg}" in res.stderr, f"the summary names the picture: {res.stderr}")
    texts = measured_boxes(c, svg, 3, 4, ("fwd", "bwd_input", "bwd_weight"))
    title = [t for t in texts if t.startswith("measured: ")]
    c.expect(len(title) == 1 and "zero_bubble, 3 stages, 4 micro-batches; step " in title[0], f"the title: {title}")
    c.expect(title and not title[0].endswith("step 1"), "not the first step, which warms caches")
    caption = [t for t in texts if "analytic" in t]
    c.expect(len(caption) == 1 and "(the median of the traced steps), bubble " in caption[0]
             and "measured" in caption[0] and "(mean of 3 steps)" in caption[0], f"the caption: {texts}")


@test
def train_timeline_refuses_a_folder_before_training(c):
    src = c.write("zb.pml", PIPELINED)
    folder = os.path.join(c.work, "pictures")
    os.makedirs(folder)
    res = c.pmlc_run("train", src, "--timeline", folder, "--out", os.path.join(c.work, "out"))
    c.expect(res.code == 1, f"exit {res.code}, expected 1: {res.stderr}")
    c.expect("timeline picture" in res.stderr and folder in res.stderr, f"the message names the path: {res.stderr}")
    c.expect("step 1/" not in res.stderr and not os.path.exists(os.path.join(c.work, "out")), "before training")
    c.expect(os.listdir(folder) == [], "the folder is untouched")


INTERLEAVED = """\
import "nn"
model m(x: f32[B, 4]) -> f32[B, 2] {
    place = auto(stages = 2, chunks = 2)
    h = tanh(linear(x, 8) as a)
    h = tanh(linear(h, 8) as b)
    h = tanh(linear(h, 8) as c)
    return linear(h, 2) as head
}
train m {
    data = classes(features = 4, classes = 2)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 16, microbatches = 4, schedule = interleaved_1f1b
    steps = 1
}
"""


@test
def plan_prints_the_interleaved_schedule_its_chunks_and_bubble(c):
    src = c.write("il.pml", INTERLEAVED)
    res = c.pmlc_run("plan", src)
    c.expect(res.code == 0, f"exit {res.code}: {res.stderr}")
    out = res.stdout
    c.expect("2 stages (auto), 2 chunks each" in out, f"the placement names the chunks: {out}")
    c.expect("schedule       interleaved_1f1b" in out, "the schedule is named")
    c.expect("chunks         2 per stage" in out, "the chunks have their line")
    # (S - 1)/(V M + S - 1) = 1/9 of the step: idle over work (S - 1)/(V M) = 1/8.
    c.expect("bubble         11.1% analytic" in out, f"the analytic bubble: {out}")
    c.expect("chunk 2 (stage 0's chunk 1) on cpu" in out, "each chunk says which stage runs it")
    c.expect("stage 0 (chunks 0 2)" in out and " F0/1 " in out, "each stage's order names the chunk of each unit")


@test
def plan_timeline_draws_each_stages_chunks_apart(c):
    import xml.etree.ElementTree as ET
    src = c.write("il.pml", INTERLEAVED)
    svg = os.path.join(c.work, "il.svg")
    res = c.pmlc_run("plan", src, "--timeline", svg)
    c.expect(res.code == 0, f"exit {res.code}: {res.stderr}")
    if res.code:
        return
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in root.iter(ns + "text")]
    c.expect([t for t in texts if t.startswith("stage ")] == ["stage 0", "stage 1"], f"a row per stage: {texts}")
    titles = [t.text or "" for t in root.iter(ns + "title")]
    for s in range(2):
        for v in range(2):
            got = sorted(t for t in titles if t.startswith(f"stage {s}: fwd of") and t.endswith(f"chunk {v})"))
            want = sorted(f"stage {s}: fwd of micro-batch {m} on chunk {2 * v + s} (the stage's chunk {v})"
                          for m in range(4))
            c.expect(got == want, f"stage {s}'s chunk {v} forward boxes: {got}")
    rects = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
    dashed = {r.find(ns + "title").text.endswith("chunk 1)") for r in rects if r.get("stroke-dasharray")}
    c.expect(dashed == {True}, "exactly the later chunks' boxes are dashed")
    fills = {r.find(ns + "title").text.endswith("chunk 1)"): r.get("fill") for r in rects
             if " fwd " in r.find(ns + "title").text}
    c.expect(len(set(fills.values())) == 2, f"the two chunks are shaded apart: {fills}")
    c.expect(any("of 2 chunks each" in t for t in texts), "the title names the chunks")


@test
def interleaved_refuses_microbatches_not_a_multiple_of_the_stages(c):
    src = c.write("il.pml", INTERLEAVED.replace("batch = 16, microbatches = 4", "batch = 12, microbatches = 3"))
    res = c.pmlc_run("plan", src)
    c.expect(res.code == 1, f"exit {res.code}, expected 1")
    c.expect("il.pml:13:" in res.stderr and "microbatches = 3 is not a multiple of the 2 stages" in res.stderr,
             f"the message is at the schedule's line and says why: {res.stderr}")
    c.expect(res.stdout == "", "nothing was planned")


@test
def chunks_and_interleaved_1f1b_need_each_other(c):
    src = c.write("il.pml", INTERLEAVED.replace("interleaved_1f1b", "1f1b"))
    res = c.pmlc_run("plan", src)
    c.expect(res.code == 1 and "il.pml:3:" in res.stderr and "only schedule = interleaved_1f1b, zero_bubble_v or dualpipe_v runs"
             in res.stderr,
             f"chunks under 1f1b: exit {res.code}: {res.stderr}")
    src = c.write("il2.pml", INTERLEAVED.replace(", chunks = 2", ""))
    res = c.pmlc_run("plan", src)
    c.expect(res.code == 1 and "il2.pml:13:" in res.stderr and "chunks = V" in res.stderr,
             f"interleaved_1f1b without chunks: exit {res.code}: {res.stderr}")


@test
def plan_prints_the_zbv_schedule_its_v_and_bubble(c):
    src = c.write("zbv.pml", INTERLEAVED.replace("interleaved_1f1b", "zero_bubble_v"))
    res = c.pmlc_run("plan", src)
    c.expect(res.code == 0, f"exit {res.code}: {res.stderr}")
    out = res.stdout
    c.expect("in a V: stage s runs chunks s and 3 - s" in out, f"the placement names the V: {out}")
    c.expect("schedule       zero_bubble_v" in out, "the schedule is named")
    # 2 stages, 4 micro-batches: 1 - 6M / max(6M + S - 1, 4M + 4S - 2) = 1 - 24/25.
    c.expect("bubble         4.0% analytic" in out, f"the analytic bubble: {out}")
    c.expect("chunk 3 (stage 0's chunk 1) on cpu" in out and "chunk 2 (stage 1's chunk 1) on cpu" in out,
             "each chunk says which stage runs it, in a V")
    c.expect("stage 0 (chunks 0 3)" in out and "stage 1 (chunks 1 2)" in out, "each stage's chunks")
    c.expect(" B0/1 W0/1 " in out, "each stage's order has split backwards on the chunks")
    import xml.etree.ElementTree as ET
    svg = os.path.join(c.work, "zbv.svg")
    res = c.pmlc_run("plan", src, "--timeline", svg)
    c.expect(res.code == 0, f"--timeline: exit {res.code}: {res.stderr}")
    if res.code:
        return
    titles = [t.text or "" for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}title")]
    for s, chunks in ((0, (0, 3)), (1, (1, 2))):
        for v, k in enumerate(chunks):
            got = sorted(t for t in titles if t.startswith(f"stage {s}: bwd_weight of") and f"on chunk {k} " in t)
            want = sorted(f"stage {s}: bwd_weight of micro-batch {m} on chunk {k} (the stage's chunk {v})"
                          for m in range(4))
            c.expect(got == want, f"the picture's stage {s} runs chunk {k}'s weight halves: {got}")


@test
def schedule_auto_weighs_zbv_and_dualpipev_beside_interleaving_with_two_chunks(c):
    src = c.write("auto.pml", INTERLEAVED.replace("schedule = interleaved_1f1b", "schedule = auto"))
    res = c.pmlc_run("plan", src)
    c.expect(res.code == 0, f"exit {res.code}: {res.stderr}")
    line = next((l for l in res.stdout.splitlines() if l.startswith("  schedule auto")), "")
    c.expect("zero_bubble_v" in line and "interleaved_1f1b" in line and "dualpipe_v" in line,
             f"every chunked schedule is weighed: {line}")
    three = INTERLEAVED.replace("schedule = interleaved_1f1b", "schedule = auto").replace(
        "stages = 2, chunks = 2", "stages = 1, chunks = 3")
    res = c.pmlc_run("plan", c.write("auto3.pml", three))
    line = next((l for l in res.stdout.splitlines() if l.startswith("  schedule auto")), "")
    c.expect(res.code == 0 and "interleaved_1f1b" in line and "zero_bubble_v" not in line and "dualpipe_v" not in line,
             f"with 3 chunks, interleaving alone: {line} {res.stderr}")


@test
def plan_prints_dualpipev_on_the_v_and_refuses_fewer_microbatches_than_chunks(c):
    src = c.write("dpv.pml", INTERLEAVED.replace("interleaved_1f1b", "dualpipe_v"))
    res = c.pmlc_run("plan", src)
    c.expect(res.code == 0, f"exit {res.code}: {res.stderr}")
    out = res.stdout
    c.expect("schedule       dualpipe_v" in out and "in a V: stage s runs chunks s and 3 - s" in out,
             f"the schedule and its V: {out}")
    # M = 4 >= 2S: ZB-V's bubble, 1 - 24/25.
    c.expect("bubble         4.0% analytic" in out, f"the analytic bubble: {out}")
    c.expect("stage 0 (chunks 0 3)" in out, "each stage's chunks")
    few = INTERLEAVED.replace("interleaved_1f1b", "dualpipe_v").replace("batch = 16, microbatches = 4",
                                                                          "batch = 12, microbatches = 3")
    res = c.pmlc_run("plan", c.write("dpv3.pml", few))
    c.expect(res.code == 1 and "dpv3.pml:13:" in res.stderr and "microbatches = 3 is fewer than the 4 chunks"
             in res.stderr, f"3 micro-batches for 4 chunks: exit {res.code}: {res.stderr}")
    c.expect(res.stdout == "", "nothing was planned")


@test
def zbv_refuses_other_than_two_chunks(c):
    three = INTERLEAVED.replace("interleaved_1f1b", "zero_bubble_v").replace("stages = 2, chunks = 2",
                                                                              "stages = 1, chunks = 3")
    res = c.pmlc_run("plan", c.write("z3.pml", three))
    c.expect(res.code == 1 and "z3.pml:3:" in res.stderr and "exactly two model chunks" in res.stderr,
             f"chunks = 3: exit {res.code}: {res.stderr}")
    res = c.pmlc_run("plan", c.write("z1.pml", INTERLEAVED.replace("interleaved_1f1b", "zero_bubble_v")
                                     .replace(", chunks = 2", "")))
    c.expect(res.code == 1 and "z1.pml:13:" in res.stderr and "chunks = 2" in res.stderr,
             f"no chunks: exit {res.code}: {res.stderr}")
    c.expect(res.stdout == "", "nothing was planned")


@test
def timeline_is_for_plan_and_train_only(c):
    src = c.write("zb.pml", PIPELINED)
    for cmd in ("check", "build"):
        expect_usage_error(c, c.pmlc_run(cmd, src, "--timeline", os.path.join(c.work, "x.svg")))
    c.expect(not os.path.exists(os.path.join(c.work, "x.svg")), "nothing drawn")


def main():
    pmltest.named_tests_main(TESTS)


if __name__ == "__main__":
    main()
