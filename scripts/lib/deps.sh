# shellcheck shell=bash
# scripts/lib/deps.sh — installs the Debian packages PML needs to build and test.
#
# Sourced by scripts/quickstart and scripts/test. Only what is missing is installed
# (checked with dpkg), `apt-get update` runs only when something must be installed, and
# sudo is used only when we are not root. The one thing from elsewhere is test-only:
# ONNX Runtime from PyPI, in a virtual environment of its own (pml_test_python_install,
# called by scripts/test alone); nothing is downloaded at build or run time.

# Packages every build needs: a C toolchain, CMake + Ninja, flex/bison for the grammar,
# Python 3 for the test runners, clang (with its sanitizer and libFuzzer runtimes) for
# the sanitizer/fuzzing build, oneDNN for the CPU backend's matrix products (OpenBLAS
# and BLIS, to compare and as the other choices of PML_BLAS), Debian's numpy, which tests use to check files PML writes, and
# Debian's PyTorch, which the parity tests train the same models with; Open MPI, which
# runs (and the rank tests launch) several processes (the build works without it).
PML_DEPS_REQUIRED=(build-essential cmake ninja-build flex bison python3 clang libdnnl-dev libopenblas-dev libblis-dev
    python3-numpy python3-torch pkg-config libopenmpi-dev openmpi-bin python3-venv)

# The test-only Python: a venv with ONNX Runtime (which the export tests run PML's ONNX
# files with), onnx (its model checker) and numpy. Debian packages neither onnx nor
# onnxruntime.
PML_ONNX_VENV="${PML_ONNX_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pml/onnx}"
PML_ONNX_PACKAGES=(onnxruntime onnx numpy)

# Prints the given packages that dpkg does not report as installed.
pml_deps_missing() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

# Runs a command as root: directly when we are root, through sudo otherwise.
pml_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "pml: need root to run: $* (and sudo is not installed)" >&2
        return 1
    fi
}

# Installs the packages given that are missing; prints what it does.
pml_deps_install_missing() {
    local missing
    mapfile -t missing < <(pml_deps_missing "$@")
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "pml: missing packages ${missing[*]}, and apt-get is not available; install them by hand" >&2
        return 1
    fi
    echo "pml: installing ${missing[*]}"
    pml_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    pml_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Installs everything PML needs. The sanitizer and libFuzzer runtimes of Debian's clang
# live in libclang-rt-N-dev, which clang only recommends: when clang cannot find its
# libFuzzer runtime, ask for that package by clang's major version.
pml_deps_install() {
    if [ "${PML_SKIP_DEPS:-0}" = 1 ]; then
        return 0
    fi
    pml_deps_install_missing "${PML_DEPS_REQUIRED[@]}"
    local major fuzzer
    major="$(clang -dumpversion | cut -d. -f1)"
    fuzzer="$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer-$(uname -m).a"
    if [ ! -e "$fuzzer" ]; then
        pml_deps_install_missing "libclang-rt-${major}-dev"
    fi
}

# Makes $PML_ONNX_VENV once (again only when it cannot import its packages) and prints
# nothing when it is ready. A machine without PyPI gets a note, not a failure: the export
# tests then skip and say so.
pml_test_python_install() {
    local py="$PML_ONNX_VENV/bin/python"
    if [ "${PML_SKIP_DEPS:-0}" = 1 ] || { [ -x "$py" ] && "$py" -c 'import onnxruntime, onnx, numpy' 2>/dev/null; }; then
        return 0
    fi
    echo "pml: installing ${PML_ONNX_PACKAGES[*]} from PyPI into $PML_ONNX_VENV (test-only; once)"
    if ! { python3 -m venv "$PML_ONNX_VENV" && "$PML_ONNX_VENV/bin/pip" install --quiet "${PML_ONNX_PACKAGES[@]}"; }; then
        echo "pml: could not install ${PML_ONNX_PACKAGES[*]}; the export tests will skip" >&2
    fi
}
