#!/usr/bin/env bash
# Measures every encoder (builds each one: about 45 minutes and 5 GB on 2 cores) into the compiled-in
# table src/encoders/encoder_table.tsv, and renders the table of docs/encoders.md from it.
# Run after adding a family or an encoder, then rebuild.
# Usage: scripts/gen-encoders-doc.sh [--smp path/to/smp] [pattern ...]
# With patterns ('dpn*', 'tu-sk*'), only the matching encoders are measured again and merged into the
# table (the EncoderTable tests say when the table and the registries differ).
set -euo pipefail
cd "$(dirname "$0")/.."
smp_bin=build/smp
if [ "${1:-}" = "--smp" ]; then smp_bin=$2; shift 2; fi
tsv=src/encoders/encoder_table.tsv
doc=docs/encoders.md
trap 'rm -f "$tsv.tmp" "$tsv.new" "$tsv.old" "$doc.tmp" "$doc.table" "$doc.families"' EXIT
if [ $# -eq 0 ]; then
  SMP_LOG_LEVEL=warn "$smp_bin" list-encoders --measure --tsv > "$tsv.new"
else
  for pattern in "$@"; do SMP_LOG_LEVEL=warn "$smp_bin" list-encoders --measure --tsv "$pattern"; done > "$tsv.new"
  # The other encoders' rows as they were.
  awk -F'\t' 'FILENAME == ARGV[1] { fresh[$1] = 1; next } /^#/ { next } !($1 in fresh)' "$tsv.new" "$tsv" > "$tsv.old"
  cat "$tsv.old" >> "$tsv.new"
fi
{
  printf '# name\tfamily\tchannels\treductions\tparameters (written by scripts/gen-encoders-doc.sh; do not edit)\n'
  # The library's order: smp's own names, then the timm ones, each sorted bytewise.
  LC_ALL=C sort -t "$(printf '\t')" -k1,1 "$tsv.new" | awk '!/^tu-/'
  LC_ALL=C sort -t "$(printf '\t')" -k1,1 "$tsv.new" | awk '/^tu-/'
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
# One member of each timm family (its smallest) through the universal encoder: `smp info` of a Unet.
awk -F'\t' '/^tu-/ && !/^tu-test_/ && (!($2 in best) || $5 + 0 < size[$2]) { best[$2] = $1; size[$2] = $5 + 0 }
  END { for (f in best) print f "\t" best[f] }' "$tsv" | LC_ALL=C sort > "$doc.families"
{
  while IFS=$'\t' read -r family name; do
    printf '\n`smp info Unet encoder_name=%s` (%s)\n\n```\n' "$name" "$family"
    SMP_LOG_LEVEL=warn "$smp_bin" info Unet "encoder_name=$name"
    printf '```\n'
  done < "$doc.families"
} > "$doc.table"
awk -v table="$doc.table" '
  /<!-- family-info:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /<!-- family-info:end -->/ { skip = 0 }
  !skip { print }
' "$doc" > "$doc.tmp"
mv "$doc.tmp" "$doc"
echo "$tsv, $doc: $(grep -vc '^#' "$tsv") encoders, $(wc -l < "$doc.families") timm families"
