#!/usr/bin/env bash
# Runs the bench suite (make bench runs it after the Go benchmarks) and writes bench/RESULTS.md:
# the scale run (bench/scale.sh), filtered and refused targets (bench/filtered.sh), the slice
# behind a veth with zmap and nmap (bench/veth.sh), and the comparison with nmap and dcmtk
# (bench/compare.sh), with the machine and the date; the guard (bench/guard.sh, across a link bench/guardlink.sh), the many-machines run
# (bench/shards.sh) and store writes (bench/storebench.sh). Needs root, nmap, dcmtk, zmap, nft, jq, bc,
# GNU time and postgresql; about 20 minutes on 2 cores (nmap on the veth slice alone may take 10).
# Nothing leaves the machine: the loopback runs go through ../shared/tools/netns-run (an empty
# network namespace), the veth slice through ../shared/tools/veth-testbed.
source "$(dirname "$0")/lib.sh"
need nmap echoscu findscu jq bc nft zmap
build
load=$(cut -d' ' -f1-3 /proc/loadavg)
NETNS=$ROOT/../shared/tools/netns-run

"$NETNS" env BENCH_OUT="$OUT" bash "$BENCH/scale.sh"
bash "$BENCH/filtered.sh"
bash "$BENCH/veth.sh"
"$NETNS" env BENCH_OUT="$OUT" bash "$BENCH/compare.sh"
bash "$BENCH/guard.sh"
bash "$BENCH/guardlink.sh"
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
  cat "$OUT/filtered.md"
  echo
  cat "$OUT/veth.md"
  echo
  cat "$OUT/guard.md"
  echo
  cat "$OUT/guardlink.md"
  echo
  cat "$OUT/shards.md"
  echo
  cat "$OUT/storebench.md"
} > "$BENCH/RESULTS.md"
echo "bench: wrote $BENCH/RESULTS.md"
