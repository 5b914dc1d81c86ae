"""freeze_lib — what the freeze tests share: their command line (PMLC WORK, WORK made
empty), the residual MLP they train (stem, layers.N, norm, head; 32 features, 4
classes), failed checks collected and reported, and running pmlc.

Importing it imports parity_lib, which exits 77 (skipped) without numpy/torch."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from parity_lib import load_safetensors  # noqa: E402,F401  (re-exported for the tests)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import deep_mlp  # noqa: E402

pmlc, work = sys.argv[1:3]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def model(name, stages, steps, optimizer, *lines, layers=4):
    """Writes the model with the train block's extra `lines` (freezes, checkpoint_every)
    to WORK/NAME.pml and returns its path."""
    return deep_mlp.write(os.path.join(work, name + ".pml"), f"stages = {stages}", layers, optimizer,
                          [f"steps = {steps}", *lines])


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, stderr=False):
    """pmlc's stdout (and stderr with stderr=True); exits the test when it fails."""
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=300)
    if r.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{r.stderr}")
    return r.stdout + (r.stderr if stderr else "")


def finish(title):
    print(f"{title}: {len(failures)} failed")
    sys.exit(1 if failures else 0)
