# shellcheck shell=bash
# scripts/lib/build.sh — configures and builds one CMake build folder with Ninja.
#
# Sourced by scripts/quickstart and scripts/test. Re-running is cheap: CMake and Ninja
# only redo what changed.

PML_JOBS="${PML_JOBS:-2}"

# pml_configure DIR [CMAKE ARGS...] — configures DIR (RelWithDebInfo, Ninja) from the
# repository root. A folder configured earlier with another generator is refused with
# a hint rather than silently wiped.
pml_configure() {
    local dir="$1"
    shift
    if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
        echo "pml: $dir was configured with another generator; remove it (rm -rf $dir) and re-run" >&2
        return 1
    fi
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
}

# pml_build DIR — builds everything in DIR.
pml_build() {
    cmake --build "$1" -j "$PML_JOBS"
}
