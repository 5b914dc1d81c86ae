#!/usr/bin/env python3
"""coverage_test.py HEADER.h... CASES.c [HEADER.h... CASES.c ...] — every function the public
headers declare is called in the cases file that follows them (tests/api/bad_arguments.c for
pml.h and pmlc.h, bad_arguments_mpi.c for pml_mpi.h: the cases of the argument policy), so
a new public function cannot arrive without its bad-argument case. The declarations are
read as install.the_shared_libraries_export_exactly_the_public_api reads them
(exports_test.py)."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "install"))
from exports_test import declared_functions, strip_comments  # noqa: E402


def main():
    groups, headers = [], []
    for arg in sys.argv[1:]:
        if arg.endswith(".h"):
            headers.append(arg)
        else:
            groups.append((headers, arg))
            headers = []
    if headers or not groups:
        sys.exit("usage: coverage_test.py HEADER.h... CASES.c [HEADER.h... CASES.c ...]")
    missing = []
    for headers, cases in groups:
        called = set(re.findall(r"\b(\w+)\s*\(", strip_comments(open(cases, encoding="utf-8").read())))
        lacking = []
        for header in headers:
            _, functions = declared_functions(header)
            lacking += [f"{name} ({os.path.basename(header)}) in {os.path.basename(cases)}"
                        for name in sorted(functions) if name not in called]
        if not lacking:
            print(f"every public function of {', '.join(map(os.path.basename, headers))} is called in "
                  f"{os.path.basename(cases)}")
        missing += lacking
    if missing:
        sys.exit("FAIL: no bad-argument case of: " + ", ".join(missing))


if __name__ == "__main__":
    main()
