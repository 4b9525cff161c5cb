#!/usr/bin/env bash
# Regenerates the encoder table of docs/encoders.md from `smp list-encoders --markdown`.
# Usage: scripts/gen-encoders-doc.sh [path/to/smp]   (default: build/smp)
set -euo pipefail
cd "$(dirname "$0")/.."
smp_bin=${1:-build/smp}
doc=docs/encoders.md
table=$(mktemp)
trap 'rm -f "$table" "$doc.tmp"' EXIT
SMP_LOG_LEVEL=warn "$smp_bin" list-encoders --markdown > "$table"
awk -v table="$table" '
  /<!-- encoders:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /<!-- encoders:end -->/ { skip = 0 }
  !skip { print }
' "$doc" > "$doc.tmp"
mv "$doc.tmp" "$doc"
echo "$doc: $(($(wc -l < "$table") - 2)) encoders"
