#!/usr/bin/env bash
# Measures every encoder (builds each one: about 45 minutes and 5 GB on 2 cores) into the compiled-in
# table src/encoders/encoder_table.tsv, and renders the table of docs/encoders.md from it.
# Run after adding a family or an encoder, then rebuild. Usage: scripts/gen-encoders-doc.sh [path/to/smp]
set -euo pipefail
cd "$(dirname "$0")/.."
smp_bin=${1:-build/smp}
tsv=src/encoders/encoder_table.tsv
doc=docs/encoders.md
trap 'rm -f "$tsv.tmp" "$doc.tmp" "$doc.table"' EXIT
{
  printf '# name\tfamily\tchannels\treductions\tparameters (written by scripts/gen-encoders-doc.sh; do not edit)\n'
  SMP_LOG_LEVEL=warn "$smp_bin" list-encoders --measure --tsv
} > "$tsv.tmp"
mv "$tsv.tmp" "$tsv"
awk -F'\t' '
  BEGIN { print "| Encoder | Family | Channels | Reductions | Params (M) |"; print "|---|---|---|---|---|" }
  /^#/ { next }
  { gsub(",", ", ", $3); gsub(",", ", ", $4); printf "| %s | %s | %s | %s | %.1f |\n", $1, $2, $3, $4, $5 / 1e6 }
' "$tsv" > "$doc.table"
awk -v table="$doc.table" '
  /<!-- encoders:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /<!-- encoders:end -->/ { skip = 0 }
  !skip { print }
' "$doc" > "$doc.tmp"
mv "$doc.tmp" "$doc"
echo "$tsv, $doc: $(grep -vc '^#' "$tsv") encoders"
