#!/usr/bin/env python3
"""install_test.py STEP [options] — the installed package as a user meets it. One install to
a temporary prefix (STEP `install`, the ctest fixture every other step requires), then:

  files     the libraries with their SONAME links, headers, pml.pc/pmlc.pc, the CMake
            package and the stdlib are in place (with --mpi, libpml_mpi, pml_mpi.h and
            pml_mpi.pc too); the installed pmlc finds its stdlib
  headers   pml.h and pmlc.h (with --mpi, pml_mpi.h) compile alone as C99 with -pedantic-errors
  embed     one examples/embed*/ program builds against the installed package by one route
            (pkg-config: `cc ... $(pkg-config --cflags --libs pml pmlc)`; cmake:
            find_package(pml) with CMAKE_PREFIX_PATH; static: pkg-config --static with the
            archives) and runs, linked to the installed libraries only. A program that
            includes pml_mpi.h links pml_mpi too (pkg-config pml_mpi, find_package(pml
            COMPONENTS mpi) and pml::pml_mpi, libpml_mpi.a) and runs twice: alone, then as
            EMBED_RANKS ranks under mpirun, every rank printing the lone run's lines
  api       builds the API conformance program (tests/api/*.c; *_mpi.c with --mpi, and
            pml_mpi) by pkg-config

How each examples/embed*/ program is run is EMBED_RUNS below: a new examples/embed*/ folder
gets its install tests from CMake's glob, and needs one entry here (the test says so)."""
import argparse
import os
import re
import shutil
import subprocess
import sys

# folder name: (arguments, a regex its standard output must match). In the arguments,
# {examples} is the examples/ folder, {work} the test's own scratch folder, {pmlc} the
# installed pmlc.
EMBED_RUNS = {
    "embed": (["{examples}/mlp.pml", "2"], r"(?m)^step 2 loss .*\n(?s:.*)values, sum "),
    "embed_serve": (["{examples}/mlp.pml"], r"(?m)^25 of 25 rows predicted as made$"),
    "embed_ranks": (["{examples}/mlp.pml", "3"], r"(?m)^rank 1 of 2: step 3 loss "),
}
# How many ranks mpirun starts for a program that includes pml_mpi.h.
EMBED_RANKS = 2
SKIP = 77


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run(cmd, env=None, cwd=None, log=None, timeout=None):
    """Runs cmd; on failure prints the command and its output and fails the test."""
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if log:
        with open(log, "w") as f:
            f.write(p.stdout + p.stderr)
    if p.returncode:
        print("$", " ".join(cmd))
        print(p.stdout + p.stderr)
        fail(f"{os.path.basename(cmd[0])} exited with {p.returncode}")
    return p.stdout


def pkg_config(args, prefix, *flags, packages=("pml", "pmlc")):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    return run([args.pkg_config, *flags, *packages], env=env).split()


def installed_env(prefix):
    """The environment a run of a program built against the prefix gets: the installed
    libraries found through LD_LIBRARY_PATH, nothing of the build tree."""
    return dict(os.environ, LD_LIBRARY_PATH=os.path.join(prefix, "lib"))


def step_install(args):
    shutil.rmtree(args.prefix, ignore_errors=True)
    run(["cmake", "--install", args.build, "--prefix", args.prefix])
    print(f"installed to {args.prefix}")


def step_files(args):
    p = args.prefix
    files = ["bin/pmlc", "include/pml.h", "include/pmlc.h", "lib/libpml.a", "lib/libpmlc.a",
             "lib/pkgconfig/pml.pc", "lib/pkgconfig/pmlc.pc", "lib/cmake/pml/pmlConfig.cmake",
             "lib/cmake/pml/pmlConfigVersion.cmake", "share/pml/stdlib/nn.pml"]
    mpi_files = ["include/pml_mpi.h", "lib/libpml_mpi.a", "lib/pkgconfig/pml_mpi.pc"]
    for f in files + mpi_files:
        if os.path.exists(os.path.join(p, f)) != (f in files or args.mpi):
            fail(f"{f} was not installed" if f in files or args.mpi else f"{f} was installed without MPI")
    major = args.version.split(".")[0]
    for lib in ["libpml", "libpmlc"] + (["libpml_mpi"] if args.mpi else []):
        # libX.so -> libX.so.MAJOR -> libX.so.MAJOR.MINOR.PATCH, whose SONAME is libX.so.MAJOR
        chain = [f"{lib}.so", f"{lib}.so.{major}", f"{lib}.so.{args.version}"]
        for link, target in zip(chain, chain[1:]):
            path = os.path.join(p, "lib", link)
            if not os.path.islink(path) or os.readlink(path) != target:
                fail(f"lib/{link} should be a link to {target}")
        real = os.path.join(p, "lib", chain[-1])
        dyn = run(["readelf", "-d", real])
        m = re.search(r"\(SONAME\)\s+Library soname: \[(.*)\]", dyn)
        if not m or m.group(1) != chain[1]:
            fail(f"lib/{chain[-1]} has SONAME {m.group(1) if m else 'none'}, not {chain[1]}")
        print(f"lib/{chain[-1]}: SONAME {chain[1]}")
    out = run([os.path.join(p, "bin", "pmlc"), "check", os.path.join(args.examples, "gpt.pml")])
    print(out.strip() or "pmlc check: ok (the installed pmlc found its stdlib)")


def step_headers(args):
    os.makedirs(args.work, exist_ok=True)
    for header in ["pml.h", "pmlc.h"] + (["pml_mpi.h"] if args.mpi else []):
        src = os.path.join(args.work, header.replace(".", "_") + ".c")
        with open(src, "w") as f:
            f.write(f"#include <{header}>\nint main(void) {{ return 0; }}\n")
        run([args.cc, "-std=c99", "-pedantic-errors", "-Wall", "-Wextra", "-Werror", "-Wstrict-prototypes",
             "-fsyntax-only", "-I", os.path.join(args.prefix, "include"), src])
        print(f"{header}: compiles alone as C99")


def build_by_pkg_config(args, sources, exe, static=False, mpi=False):
    packages = ("pml", "pmlc") + (("pml_mpi",) if mpi else ())
    cflags = pkg_config(args, args.prefix, "--cflags", packages=packages)
    if not static:
        libs = pkg_config(args, args.prefix, "--libs", packages=packages)
    else:
        # The archives by path, then what --static says they need (without -lpml -lpmlc
        # -lpml_mpi, which would pick the shared libraries again).
        lib = os.path.join(args.prefix, "lib")
        libs = [os.path.join(lib, f"lib{p}.a") for p in reversed(packages)]
        libs += [f for f in pkg_config(args, args.prefix, "--static", "--libs", packages=packages)
                 if f not in ("-lpml", "-lpmlc", "-lpml_mpi")]
    run([args.cc, "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-o", exe, *sources, *cflags, *libs, "-lm"])  # -lm: the programs' own math


def mpi_env(prefix):
    env = installed_env(prefix)
    # CI runs as root in a container; Open MPI refuses root unless told twice.
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return env


def run_as_ranks(args, argv, lone):
    """Runs argv as EMBED_RANKS ranks under mpirun; every rank must print the lines of the
    lone run (`lone`, one process: "rank 0 of 1: ..."), as its own ("rank R of N: ...")."""
    cmd = [args.mpirun, "--oversubscribe", "-np", str(EMBED_RANKS)]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    out = run(cmd + argv, env=mpi_env(args.prefix), timeout=120)
    lone_lines = [line.split(": ", 1)[1] for line in lone.splitlines() if line.startswith("rank 0 of 1: ")]
    if not lone_lines:
        fail(f"the lone run printed no 'rank 0 of 1: ' line:\n{lone}")
    for r in range(EMBED_RANKS):
        mine = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(f"rank {r} of {EMBED_RANKS}: ")]
        if mine != lone_lines:
            fail(f"rank {r} of {EMBED_RANKS} printed {mine}, the lone run {lone_lines}")
    print(f"{EMBED_RANKS} ranks under {os.path.basename(args.mpirun)}: each printed the lone run's "
          f"{len(lone_lines)} lines")
    return out


def step_embed(args):
    name = os.path.basename(os.path.normpath(args.example))
    if name not in EMBED_RUNS:
        fail(f"examples/{name} has no entry in EMBED_RUNS ({__file__}): say how the install tests run it")
    sources = sorted(os.path.join(args.example, f) for f in os.listdir(args.example) if f.endswith(".c"))
    mpi = any('#include "pml_mpi.h"' in open(f, encoding="utf-8").read() for f in sources)
    if mpi and (not args.mpirun or not shutil.which(args.mpirun)):
        print(f"SKIP: {name} runs as ranks and there is no mpirun (install openmpi-bin)")
        sys.exit(SKIP)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    exe = os.path.join(args.work, name)
    if args.route == "cmake":
        b = os.path.join(args.work, "b")
        run(["cmake", "-S", args.project, "-B", b, "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={args.prefix}",
             f"-DCMAKE_C_COMPILER={args.cc}", f"-DEMBED_NAME={name}", f"-DEMBED_SOURCES={';'.join(sources)}",
             f"-DEMBED_MPI={'ON' if mpi else 'OFF'}"])
        run(["cmake", "--build", b])
        exe = os.path.join(b, name)
    else:
        build_by_pkg_config(args, sources, exe, static=args.route == "static", mpi=mpi)
    deps = run(["ldd", exe], env=installed_env(args.prefix))
    for lib in ["libpml.so", "libpmlc.so"] + (["libpml_mpi.so"] if mpi else []):
        linked = [line for line in deps.splitlines() if lib + "." in line]
        if args.route == "static" and linked:
            fail(f"the static build still needs {linked[0].strip()}")
        if args.route != "static" and not any(os.path.join(args.prefix, "lib") in line for line in linked):
            fail(f"{name} does not load the installed {lib}: {linked or 'not linked'}")
    argv, expect = EMBED_RUNS[name]
    subst = {"examples": args.examples, "work": args.work, "pmlc": os.path.join(args.prefix, "bin", "pmlc")}
    argv = [exe, *(a.format(**subst) for a in argv)]
    out = run(argv, env=installed_env(args.prefix), timeout=120)
    if mpi:
        out = run_as_ranks(args, argv, out)
    print(out, end="")
    if not re.search(expect, out):
        fail(f"{name}'s output does not match {expect!r}")
    print(f"{name}: built by {args.route} against the installed package, ran")


def step_api(args):
    # The *_mpi.c cases use pml_mpi.h: only in a package built with MPI (tests/api/CMakeLists.txt).
    sources = sorted(os.path.join(args.api, f) for f in os.listdir(args.api)
                     if f.endswith(".c") and (args.mpi or not f.endswith("_mpi.c")))
    os.makedirs(os.path.dirname(args.exe), exist_ok=True)
    build_by_pkg_config(args, sources, args.exe, mpi=args.mpi)
    print(f"{args.exe}: built from {len(sources)} files against the installed package")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["install", "files", "headers", "embed", "api"])
    ap.add_argument("--build", help="the build folder to install")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--work")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--pkg-config", default="pkg-config")
    ap.add_argument("--version", help="the project's MAJOR.MINOR.PATCH")
    ap.add_argument("--examples", help="the examples/ folder")
    ap.add_argument("--example", help="one examples/embed*/ folder")
    ap.add_argument("--route", choices=["pkg-config", "cmake", "static"])
    ap.add_argument("--project", help="the CMake project that builds an example (tests/install/project)")
    ap.add_argument("--api", help="the folder of the API conformance sources")
    ap.add_argument("--mpi", action="store_true", help="PML was built with MPI: pml_mpi is installed")
    ap.add_argument("--mpirun", help="the launcher of programs that run as ranks")
    ap.add_argument("--exe", help="where the API conformance program goes")
    args = ap.parse_args()
    {"install": step_install, "files": step_files, "headers": step_headers, "embed": step_embed,
     "api": step_api}[args.step](args)
    print("install: 0 failed")


if __name__ == "__main__":
    main()
