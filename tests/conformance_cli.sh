#!/bin/bash
# The conformance runner must be able to fail: no case found is an error, a case the library cannot
# run fails the run (unless --allow-unsupported), and linked case folders are run (a link back up the
# tree does not loop). Usage: conformance_cli.sh <path to the smp binary> <a valid case folder>
set -uo pipefail
smp=$1
valid=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/empty" "$work/links" "$work/unported/case"
ln -s "$valid" "$work/links/valid"
ln -s . "$work/links/self"
echo '{"kind": "smp_model", "arch": "NoSuchArch", "kwargs": {"encoder_name": "resnet18"}}' \
  > "$work/unported/case/case.json"

"$smp" conformance "$work/empty" > "$work/empty.log" 2>&1 && fail "a folder without cases passed"
grep -q "found no case" "$work/empty.log" || fail "no case: the error does not say so: $(cat "$work/empty.log")"

out=$("$smp" conformance "$work/links") || fail "a linked valid case failed: $out"
grep -q "^1 passed, 0 failed, 0 unsupported" <<< "$out" || fail "the linked case ran not exactly once: $out"

"$smp" conformance "$work/unported" > "$work/unported.log" 2>&1 && fail "an unsupported case passed the run"
grep -q "^UNSUPPORTED" "$work/unported.log" || fail "the unported case was not reported: $(cat "$work/unported.log")"
"$smp" conformance --allow-unsupported "$work/unported" > /dev/null || fail "--allow-unsupported still failed"
echo "conformance runner checks passed"
