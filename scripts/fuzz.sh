#!/usr/bin/env bash
# Runs every native fuzz target of the module for $FUZZTIME (default 20s) each, one after the
# other, on top of the committed corpus under each package's testdata/fuzz, with
# $FUZZPARALLEL workers (default 2), minimizing each new input for at most $FUZZMINIMIZETIME
# (default 10s: Go's 60s would take a whole short run on large seeds, such as MaxMind DB files).
# Prints one line per target with its executions. On the first failure it prints the fuzzer's
# whole output (which names the crasher it wrote under testdata/fuzz/FuzzXxx, to commit with the
# fix) and exits 1.
# internal/resilience's TestEveryParserFuzzed checks that every parsing package has a target.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-20s}
FUZZPARALLEL=${FUZZPARALLEL:-2}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
found=0
# Targets are found in the test sources: listing them with go test -list would build and run
# every test binary (and their TestMain) first.
while read -r dir pkg; do
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*(' "$dir"/*_test.go 2>/dev/null | sed 's/^func //; s/($//' | sort -u || true)
  for target in $targets; do
    found=$((found + 1))
    note=""
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" \
      -parallel "$FUZZPARALLEL" "$pkg" >"$log" 2>&1; then
      # Go before 1.27 may report the end of -fuzztime itself as a failure, with no input
      # (go.dev/issue/75804): that is no finding.
      if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        note=" (stopped by go.dev/issue/75804, no failing input)"
      else
        cat "$log"
        echo "fuzz: $pkg $target failed; commit the crasher under ${dir#"$PWD"/}/testdata/fuzz/$target with the fix"
        exit 1
      fi
    fi
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    printf '%-52s %-22s %12s execs%s\n' "$pkg" "$target" "${execs:-?}" "$note"
  done
done < <(go list -f '{{.Dir}} {{.ImportPath}}' ./...)
echo "fuzz: $found targets ran for $FUZZTIME each, $FUZZPARALLEL workers"
# The plain closing line CI reads (a failure exits above).
echo "fuzz: $found passed, 0 failed"
