#!/usr/bin/env python3
"""exports_test.py --nm NM LIB.so HEADER.h [LIB.so HEADER.h ...] — each shared library exports
exactly the functions its public header declares, and each of those declarations carries
the header's export macro (PML_API in pml.h and pml_mpi.h, PMLC_API in pmlc.h).

The declarations are read from the header itself, so a new public function needs no edit
here; an internal function that leaks into the dynamic symbol table, a public one left
hidden, or a declaration without the macro fails with its name."""
import argparse
import os
import re
import subprocess
import sys

# Symbols the linker itself defines in every shared object on some toolchains.
LINKER_SYMBOLS = {"_init", "_fini", "__bss_start", "_edata", "_end"}


def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)


def top_level_statements(text):
    """The header's statements outside any braces (struct and enum bodies drop out),
    with preprocessor lines removed."""
    text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))
    text = re.sub(r'extern\s+"C"\s*\{', " ", text)  # the C++ guard's brace is not a body
    statements, depth, current = [], 0, []
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(depth - 1, 0)
        elif depth == 0:
            if ch == ";":
                statements.append(" ".join("".join(current).split()))
                current = []
            else:
                current.append(ch)
    return statements


def export_macros(header, text):
    """The NAME_API macros the header defines; for a header that defines none, those of the
    headers it includes from its own folder (pml_mpi.h marks its functions with pml.h's
    PML_API)."""
    macros = set(re.findall(r"#\s*define\s+(\w+_API)\b", text))
    if macros:
        return macros
    folder = os.path.dirname(header)
    for inc in re.findall(r'#\s*include\s+"([^"]+)"', text):
        path = os.path.join(folder, inc)
        if os.path.exists(path):
            macros |= set(re.findall(r"#\s*define\s+(\w+_API)\b", open(path, encoding="utf-8").read()))
    return macros


def declared_functions(header):
    """{name: has_macro} for every function the header declares; the macro is the header's
    NAME_API (PML_API, PMLC_API), or the one of the header it includes."""
    text = strip_comments(open(header, encoding="utf-8").read())
    macros = export_macros(header, text)
    if len(macros) != 1:
        sys.exit(f"FAIL: {header} should define one export macro (NAME_API), found {sorted(macros) or 'none'}")
    macro = macros.pop()
    functions = {}
    for st in top_level_statements(text):
        if st.startswith("typedef") or "(" not in st:
            continue  # types, function-pointer types, the closing brace of the C++ guard
        m = re.match(r"(.*?)\b(\w+)\s*\(", st)
        if not m:
            continue
        functions[m.group(2)] = re.match(rf"{macro}\b", st) is not None
    return macro, functions


def exported_symbols(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            names.add(parts[2].split("@")[0])
    return names - LINKER_SYMBOLS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nm", default="nm")
    ap.add_argument("pairs", nargs="+", help="LIB.so HEADER.h, repeated")
    args = ap.parse_args()
    if len(args.pairs) % 2:
        sys.exit("usage: exports_test.py [--nm NM] LIB.so HEADER.h [LIB.so HEADER.h ...]")
    failures = []
    for lib, header in zip(args.pairs[::2], args.pairs[1::2]):
        macro, declared = declared_functions(header)
        if not declared:
            failures.append(f"{header}: no function declarations found (is the parser reading it right?)")
        exported = exported_symbols(args.nm, lib)
        for name in sorted(exported - declared.keys()):
            failures.append(f"{lib} exports {name}, which {header} does not declare (an internal leaking out?)")
        for name in sorted(declared.keys() - exported):
            failures.append(f"{header} declares {name}, but {lib} does not export it")
        for name in sorted(n for n, has in declared.items() if not has):
            failures.append(f"{header}: the declaration of {name} does not start with {macro}")
        print(f"{lib}: {len(exported)} exported, {len(declared)} declared in {header}")
    for f in failures:
        print("FAIL:", f)
    print(f"exports: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
