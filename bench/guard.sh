#!/usr/bin/env bash
# The guard's cost (bench/guardbench): added latency of a C-ECHO and of an association (p50, p99)
# and the throughput of a C-GET of 100 MB through pacswatch guard against direct, all in one
# process on loopback. Writes $OUT/guard.md for bench/run.sh; about 10 s.
source "$(dirname "$0")/lib.sh"
load=$(cut -d' ' -f1-3 /proc/loadavg)
(cd "$ROOT" && go run ./bench/guardbench -mb 100 -instance-kb 1024 -runs 7) >"$OUT/guard.md"
printf '\nLoad average before this run: %s.\n' "$load" >>"$OUT/guard.md"
echo "bench: wrote $OUT/guard.md"
