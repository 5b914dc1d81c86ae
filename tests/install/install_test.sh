#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR — cmake --install puts pmlc, libpml.so
# (with its SONAME), pml.h, pml.pc and the CMake package in place; a separate CMake
# project builds examples/embed against the installed copy with find_package(pml), a
# plain cc line builds against it with pkg-config, and both run.
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) work=$3
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in bin/pmlc include/pml.h include/pmlc.h lib/libpml.so lib/pkgconfig/pml.pc lib/cmake/pml/pmlConfig.cmake \
         share/pml/stdlib/nn.pml; do
    [ -e "$prefix/$f" ] || { echo "FAIL: $f was not installed"; exit 1; }
done
readelf -d "$prefix/lib/libpml.so" | grep -q 'SONAME.*libpml\.so\.0' || { echo "FAIL: libpml.so has no SONAME"; exit 1; }
"$prefix/bin/pmlc" check "$src/examples/gpt.pml"   # finds its stdlib beside itself

cmake -S "$src/tests/install/project" -B "$work/b" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
      -DEMBED_SOURCE="$src/examples/embed/main.c" > "$work/configure.log"
cmake --build "$work/b" > "$work/build.log"
LD_LIBRARY_PATH="$prefix/lib" "$work/b/embed_train" "$src/examples/mlp.pml" 2 | tee "$work/run.log"
grep -q '^step 2 loss' "$work/run.log" || { echo "FAIL: the installed embed example did not train"; exit 1; }

cat > "$work/version.c" <<'C'
#include <stdio.h>
#include "pml.h"
int main(void) { printf("libpml %s\n", pml_version()); return 0; }
C
# shellcheck disable=SC2046
cc -o "$work/version" "$work/version.c" $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs pml)
LD_LIBRARY_PATH="$prefix/lib" "$work/version"
echo "install: 0 failed"
