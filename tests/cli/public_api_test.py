#!/usr/bin/env python3
"""public_api_test.py --nm NM --objects A.o:B.o:... HEADER.h... — the pmlc command is a
client of the public headers like any other program: every pml_* / pmlc_* function its
object files call from outside themselves is one that HEADER.h (pml.h, pml_mpi.h, pmlc.h)
declares. Its include path already holds no library's src/ (tools/pmlc/CMakeLists.txt),
but it links the static libraries, whose internal functions a stray declaration could
still reach; this reads what the objects actually call. The declarations are read as
install.the_shared_libraries_export_exactly_the_public_api reads them (exports_test.py)."""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "install"))
from exports_test import strip_comments, top_level_statements  # noqa: E402


def declared(header):
    """The functions `header` declares (its top-level statements that are not types)."""
    names = set()
    for st in top_level_statements(strip_comments(open(header, encoding="utf-8").read())):
        m = None if st.startswith("typedef") else re.match(r"(.*?)\b(\w+)\s*\(", st)
        if m:
            names.add(m.group(2))
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--objects", required=True, help="the CLI's object files, ':'-separated")
    ap.add_argument("headers", nargs="+")
    args = ap.parse_args()
    public = set().union(*(declared(h) for h in args.headers))
    objects = [o for o in args.objects.split(":") if o]
    defined, called = set(), {}
    for obj in objects:
        out = subprocess.run([args.nm, obj], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                called.setdefault(parts[1], []).append(os.path.basename(obj))
            elif len(parts) == 3 and parts[1] in "TDBR":
                defined.add(parts[2])
    outside = {name: objs for name, objs in called.items() if name not in defined and re.match(r"pmlc?_", name)}
    private = sorted(name for name in outside if name not in public)
    for name in private:
        print(f"FAIL: {', '.join(sorted(set(outside[name])))} calls {name}, which no public header declares")
    print(f"{len(objects)} objects call {len(outside)} library functions, {len(private)} of them private")
    if len(objects) < 2 or not outside:
        print("FAIL: no objects or no library calls read (is the object list right?)")
        return 1
    return 1 if private else 0


if __name__ == "__main__":
    sys.exit(main())
