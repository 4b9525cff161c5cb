#!/bin/bash
# Installs the built library into a temporary prefix and builds and runs a small consumer project
# against it with find_package(smp): the package config must find every public dependency.
# Usage: consumer_install.sh <build dir> <tests/consumer dir> [compiler and linker flags]
# (the third argument: the sanitizer flags a SMP_SANITIZE build's consumers need as well).
set -euo pipefail
build=$1
consumer=$2
flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" > "$work/install.log" || fail "install failed: $(tail -5 "$work/install.log")"
[ -f "$work/prefix/include/smp/smp.h" ] || fail "the headers were not installed"
cmake -S "$consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
  > "$work/configure.log" 2>&1 || fail "find_package(smp) failed: $(tail -20 "$work/configure.log")"
cmake --build "$work/build" -j 2 > "$work/build.log" 2>&1 || fail "the consumer did not build: $(tail -30 "$work/build.log")"
out=$("$work/build/consumer" 2>&1) || fail "the consumer failed: $out"
grep -q "consumer: mask \[1, 2, 64, 64\]" <<< "$out" || fail "unexpected output: $out"
# smp::core alone: the training library does not come into a program that only runs models, and the
# core library itself needs neither OpenCV nor libcurl (LibTorch may bring OpenCV on its own).
if ldd "$work/build/consumer" | grep libsmp_train; then fail "a smp::core program loads the training library"; fi
core=$(find "$work/prefix" -name "libsmp_core.so" | head -1)
[ -n "$core" ] || fail "libsmp_core.so was not installed"
if readelf -d "$core" | grep NEEDED | grep -E "opencv|curl"; then fail "libsmp_core.so links the above"; fi
echo "$out"
