#!/usr/bin/env bash
# Runs the bench suite (make bench runs it after the Go benchmarks) and writes bench/RESULTS.md:
# the scale run (bench/scale.sh) and the comparison with nmap and dcmtk (bench/compare.sh), with
# the machine and the date; the many-machines run (bench/shards.sh) and store writes
# (bench/storebench.sh). Needs nmap, dcmtk, jq, bc, GNU time and postgresql; about 7 minutes on
# 2 cores.
# Everything runs on loopback: the sims bind only 127.10.0.0/16 and 127.11.0.0/22.
source "$(dirname "$0")/lib.sh"
need nmap echoscu findscu jq bc
build
load=$(cut -d' ' -f1-3 /proc/loadavg)

bash "$BENCH/scale.sh"
bash "$BENCH/compare.sh"
bash "$BENCH/guard.sh"
bash "$BENCH/shards.sh"
bash "$BENCH/storebench.sh"

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || rev="$rev (with uncommitted changes)"
{
  cat <<MD
# Bench results

Written by \`make bench\` (bench/run.sh); rerun it to refresh. Everything ran on one machine, over
loopback, with the simulated fleet (\`pacswatch sim\`) and the scanners sharing its cores.

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- machine: $(uname -srm), $cpu, $(nproc) cores, $mem; load average before the run: $load
- pacswatch $rev, $(go version | cut -d' ' -f3); $(nmap --version | head -1); dcmtk $(echoscu --version 2>&1 | sed -n 's/.*echoscu \(v[0-9.]*\).*/\1/p' | head -1)

MD
  cat "$OUT/compare.md"
  echo
  cat "$OUT/scale.md"
  echo
  cat "$OUT/guard.md"
  echo
  cat "$OUT/shards.md"
  echo
  cat "$OUT/storebench.md"
} > "$BENCH/RESULTS.md"
echo "bench: wrote $BENCH/RESULTS.md"
