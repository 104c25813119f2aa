#!/usr/bin/env bash
# Runs every native fuzz target in the module for $FUZZTIME (default 20s), one after the other,
# on top of the committed corpus under each package's testdata/fuzz. Exits non-zero on the first
# failure (the crasher is left under testdata/fuzz/FuzzXxx for committing).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-20s}
found=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    found=$((found + 1))
    echo "== $pkg $target ($FUZZTIME)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel "${FUZZPARALLEL:-2}" "$pkg" 2>&1 | tail -n 4
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz: $pkg $target failed"; exit 1; }
  done
done
echo "fuzz: $found targets ran for $FUZZTIME each"
