#!/usr/bin/env python3
"""examples/embed trains examples/mlp.pml through pml.h: it exits 0, prints one line per
step, the loss falls, and it reads a parameter back by name."""
import re
import subprocess
import sys

r = subprocess.run([sys.argv[1], sys.argv[2], "8"], capture_output=True, text=True, timeout=300)
losses = [float(x) for x in re.findall(r"^step \d+ loss ([0-9.]+)$", r.stdout, re.M)]
ok = r.returncode == 0 and len(losses) == 8 and losses[-1] < losses[0] and re.search(r"^fc1\.\w+: \d+ values", r.stdout, re.M)
if not ok:
    print(r.stdout, r.stderr)
print(f"embed: {'0' if ok else '1'} failed")
sys.exit(0 if ok else 1)
