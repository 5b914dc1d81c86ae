#!/usr/bin/env python3
"""devices_test.py — where `pmlc train` and `pmlc infer` run a plan (runtime/src/exec/backend.h):
the train block's `place` map travels in the plan, `--backend auto` follows it (the CPU
only for cpu devices, never instead of a GPU), `--backend cpu` runs anything on the CPU
and says what it leaves, and `--devices` remaps the plan's cuda:N (or, `local`, puts
every stage on the launcher's local rank's GPU) or is refused. One
behaviour per test; each makes its programs in its own work folder. The refusals that
need a machine without a GPU (the CI's) also hold on one with a GPU: there each test
checks the GPU's side of the same rule.

    devices_test.py --list                       # test names (read by CMake)
    devices_test.py --pmlc PMLC --work DIR NAME  # run one test
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pmltest  # noqa: E402

# Two stages, placed by PLACE.
PROGRAM = """import "nn"
model m(x: f32[B, 8]) -> f32[B, 2] {
    stage 0 { h = tanh(linear(x, 16) as a) }
    stage 1 { return linear(h, 2) as head }
}
train m {
    data = classes(features = 8, classes = 2)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 16, microbatches = 4
    steps = 2
    place = PLACE
}
"""
GPUS = "[cuda:0, cuda:1]"

TESTS, test = pmltest.registry()


class Ctx(pmltest.WorkCtx):
    timeout = 120

    def program(self, place, name="m.pml"):
        self.write(name, PROGRAM.replace("PLACE", place))
        return name

    def run(self, *args):
        return self.pmlc_run(*args)

    def first_line(self, res):
        return res.stderr.splitlines()[0] if res.stderr else ""


def has_gpu(c):
    """Whether this machine runs CUDA: an explicit --backend cuda of a cpu-placed
    program says "no GPU" exactly when it has none."""
    r = c.run("train", c.program("cpu", "probe.pml"), "--backend", "cuda", "--steps", "0", "--quiet")
    return "no GPU" not in r.stderr


@test
def auto_runs_a_cpu_placed_plan_on_the_cpu_and_says_so(c):
    for place in ("[cpu, cpu]", "cpu"):
        r = c.run("train", c.program(place), "--steps", "1")
        c.expect(r.code == 0, f"place = {place}: trains: exit {r.code}: {r.stderr}")
        c.expect(" on the CPU:" in c.first_line(r), f"place = {place}: the first line names the CPU: {r.stderr}")


@test
def auto_refuses_a_gpu_placed_plan_without_a_gpu_and_writes_nothing(c):
    name = c.program("[cuda:0, cuda:0]")
    r = c.run("train", name, "--steps", "1", "--out", "out", "--metrics", "m.jsonl")
    if has_gpu(c):  # the same rule's other side: the GPU runs it
        c.expect(r.code == 0 and " on the GPU:" in c.first_line(r), f"trains on the GPU: {r.stderr}")
        c.expect("stage devices on GPUs 0, 0 (place [cuda:0, cuda:0])" in c.first_line(r), f"names them: {r.stderr}")
        return
    c.expect(r.code == 1, f"exit {r.code}, expected 1: {r.stderr}")
    c.expect("no GPU for the plan's place [cuda:0, cuda:0]" in r.stderr, f"names the map: {r.stderr}")
    c.expect("--backend cpu" in r.stderr, f"says how to run it on the CPU: {r.stderr}")
    c.expect("training " not in r.stderr and "step 1" not in r.stderr, f"nothing ran on the CPU: {r.stderr}")
    c.expect(not os.path.exists(c.path("out")) and not os.path.exists(c.path("m.jsonl")),
             f"nothing was written: {os.listdir(c.work)}")
    r = c.run("infer", name, "--weights", "w.safetensors", "--input", "x.npy", "--output", "y.npy")
    c.expect(r.code == 1 and "no GPU for the plan's place" in r.stderr, f"infer: refused the same: {r.stderr}")
    c.expect(not os.path.exists(c.path("y.npy")), "infer: wrote nothing")


@test
def a_built_plan_file_carries_its_gpu_placement_to_the_run(c):
    r = c.run("build", c.program(GPUS), "-o", "m.plan", "--arch", "none")
    c.expect(r.code == 0, f"builds: {r.stderr}")
    if has_gpu(c):  # a plan without GPU code cannot run on one: said as such, not run on the CPU
        r = c.run("train", "m.plan", "--devices", "0,0")
        c.expect(r.code == 1 and "no GPU code" in r.stderr, f"refused for its missing GPU code: {r.stderr}")
        return
    r = c.run("train", "m.plan", "--steps", "1")
    c.expect(r.code == 1 and "no GPU for the plan's place [cuda:0, cuda:1]" in r.stderr, f"refused: {r.stderr}")
    r = c.run("train", "m.plan", "--steps", "1", "--backend", "cpu")
    c.expect(r.code == 0, f"--backend cpu trains it: {r.stderr}")


@test
def backend_cpu_runs_a_gpu_placed_plan_and_names_the_map_it_leaves(c):
    r = c.run("train", c.program(GPUS), "--steps", "1", "--backend", "cpu")
    c.expect(r.code == 0, f"trains: exit {r.code}: {r.stderr}")
    line = c.first_line(r)
    c.expect(" on the CPU:" in line and "the CPU as asked, not the plan's place [cuda:0, cuda:1]" in line,
             f"the first line says so: {line}")


@test
def devices_lists_that_are_not_gpu_numbers_are_usage_errors(c):
    name = c.program(GPUS)
    for bad in ("", "0,", ",0", "0,,1", "-1", "0,-1", "a", "1.5", "0 1", "99999999"):
        r = c.run("train", name, "--devices", bad)
        c.expect(r.code == 2 and "--devices takes GPU numbers from 0" in r.stderr, f"--devices '{bad}': {r.stderr}")
        r = c.run("train", name, f"--devices={bad}")
        c.expect(r.code == 2, f"--devices='{bad}': exit {r.code}: {r.stderr}")
    r = c.run("plan", name, "--devices", "0,0")
    c.expect(r.code == 2 and "takes no --devices" in r.stderr, f"plan takes no --devices: {r.stderr}")


@test
def a_devices_remap_that_does_not_fit_the_plan_is_refused(c):
    gpus, cpus = c.program(GPUS, "g.pml"), c.program("[cpu, cpu]", "c.pml")
    cases = [  # (program, arguments, what the message must say)
        (gpus, ["--devices", "0"], "--devices gives 1 GPU, but the plan's map [cuda:0, cuda:1] names cuda:0 to cuda:1"),
        (gpus, ["--devices", "0,0,0"], "--devices gives 3 GPUs"),
        (gpus, ["--devices", "0,0", "--backend", "cpu"], "this run is on the CPU: leave --devices out"),
        (cpus, ["--devices", "0,0"], "the plan places its stages on [cpu, cpu]: leave --devices out"),
        (cpus, ["--devices", "0,0", "--backend", "cuda"], "leave --devices out"),
    ]
    for prog, args, want in cases:
        r = c.run("train", prog, "--steps", "1", "--out", "out", *args)
        c.expect(r.code == 1 and want in r.stderr, f"{prog} {' '.join(args)}: exit {r.code}: {r.stderr}")
        c.expect(not os.path.exists(c.path("out")), f"{prog} {' '.join(args)}: nothing written")
    r = c.run("infer", gpus, "--devices", "0", "--weights", "w", "--input", "x.npy", "--output", "y.npy")
    c.expect(r.code == 1 and "--devices gives 1 GPU" in r.stderr, f"infer: refused the same: {r.stderr}")


@test
def devices_local_puts_every_stage_on_the_local_ranks_gpu_or_is_refused(c):
    name = c.program(GPUS)
    launchers = ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MASTER_ADDR")
    bare = {k: v for k, v in pmltest.clean_env().items() if k not in launchers}
    r = pmltest.run([c.pmlc, "train", name, "--devices", "local", "--out", "out"], cwd=c.work, env=bare)
    c.expect(r.code == 1 and "no launcher said this process's local rank (LOCAL_RANK from torchrun" in r.stderr,
             f"no launcher: exit {r.code}: {r.stderr}")
    c.expect(not os.path.exists(c.path("out")), "nothing written")
    r = c.pmlc_run("train", name, "--devices", "local", env={"LOCAL_RANK": "x"})
    c.expect(r.code == 1 and "LOCAL_RANK is 'x'" in r.stderr, f"a malformed LOCAL_RANK is named: {r.stderr}")
    r = c.pmlc_run("train", name, "--devices", "local", "--backend", "cpu", "--steps", "1", env={"LOCAL_RANK": "0"})
    c.expect(r.code == 1 and "this run is on the CPU: leave --devices out" in r.stderr, f"CPU run: {r.stderr}")
    if has_gpu(c):  # the GPU's side: every stage on GPU 0, not cuda:1
        r = c.pmlc_run("train", name, "--devices", "local", "--steps", "1", env={"LOCAL_RANK": "0"})
        c.expect(r.code == 0 and "stage devices on GPUs 0, 0" in c.first_line(r), f"on GPU 0: {r.stderr}")
        return
    r = c.pmlc_run("infer", name, "--devices", "local", "--weights", "w", "--input", "x.npy", "--output", "y.npy",
                   env={"LOCAL_RANK": "0"})
    c.expect(r.code == 1 and "no GPU for the plan's place" in r.stderr, f"infer: no GPU, as any CUDA run: {r.stderr}")
    r = c.pmlc_run("train", name, "--devices", "local", "--steps", "1", env={"LOCAL_RANK": "1"})
    c.expect(r.code == 1 and "no GPU for the plan's place [cuda:0, cuda:1]" in r.stderr, f"train: {r.stderr}")


def main():
    pmltest.named_tests_main(TESTS, Ctx)


if __name__ == "__main__":
    main()
