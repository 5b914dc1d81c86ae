#!/usr/bin/env python3
"""coverage_test.py HEADER.h... CASES.c — every function the public headers declare is
called in CASES.c (tests/api/bad_arguments.c, the cases of the argument policy), so a new
public function cannot arrive without its bad-argument case. The declarations are read as
install.the_shared_libraries_export_exactly_the_public_api reads them (exports_test.py)."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "install"))
from exports_test import declared_functions, strip_comments  # noqa: E402


def main():
    *headers, cases = sys.argv[1:]
    called = set(re.findall(r"\b(\w+)\s*\(", strip_comments(open(cases, encoding="utf-8").read())))
    missing = []
    for header in headers:
        _, functions = declared_functions(header)
        missing += [f"{name} ({os.path.basename(header)})" for name in sorted(functions) if name not in called]
    if missing:
        sys.exit(f"FAIL: {os.path.basename(cases)} calls no bad-argument case of: " + ", ".join(missing))
    print(f"every public function of {len(headers)} headers is called in {os.path.basename(cases)}")


if __name__ == "__main__":
    main()
