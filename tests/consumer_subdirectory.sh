#!/bin/bash
# Configures the consumer project with the source tree added by add_subdirectory (SMP_SOURCE_DIR) and
# checks that its program links smp::core from that tree. The library is not built a second time here:
# that is the whole suite's time budget on two cores; consumer_install builds and runs the same program.
# Usage: consumer_subdirectory.sh <source tree> <tests/consumer dir>
set -euo pipefail
tree=$1
consumer=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake -S "$consumer" -B "$work/build" -DSMP_SOURCE_DIR="$tree" -DCMAKE_BUILD_TYPE=Release \
  --graphviz="$work/deps.dot" > "$work/configure.log" 2>&1 ||
  fail "add_subdirectory of the tree failed: $(tail -20 "$work/configure.log")"
[ -f "$work/deps.dot.consumer" ] || fail "no consumer target was generated"
grep -q '// consumer -> smp_core$' "$work/deps.dot.consumer" || fail "consumer does not link smp_core: $(cat "$work/deps.dot.consumer")"
# The tree's own generated sources land in the consumer's build folder, not in the source tree.
[ -f "$work/build/smp/generated/encoder_table_data.cpp" ] || fail "the encoder table was generated elsewhere"
echo "consumer_subdirectory: configured, consumer -> smp_core"
