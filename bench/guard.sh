#!/usr/bin/env bash
# The guard's cost (bench/guardbench): added latency of a C-ECHO and of an association (p50, p99)
# and the throughput of a C-GET through pacswatch guard against direct, all in one process on
# loopback: 100 MB (the acceptance case) 7 times and 500 MB 9 times each way, alternating, so that
# the median stands beside the single run; then 500 MB with the guard forwarding data sets unread
# (-splice, guard.Config.Splice); last, the deployed shape: the guard as a process of its own on
# CPU 1 (pacswatch guard), the SCP and the client on CPU 0, 100 MB 7 times each way.
# Writes $OUT/guard.md for bench/run.sh; about 60 s.
source "$(dirname "$0")/lib.sh"
load=$(cut -d' ' -f1-3 /proc/loadavg)
(cd "$ROOT" && go build -o "$OUT/guardbench" ./bench/guardbench)
{
	"$OUT/guardbench" -mb 100 -instance-kb 1024 -runs 7
	echo
	"$OUT/guardbench" -mb 500 -instance-kb 1024 -runs 9 -echoes 10 -assocs 10 | grep -E '^`|^\| C-GET|alternating|^CPU time'
	echo
	"$OUT/guardbench" -mb 500 -instance-kb 1024 -runs 9 -echoes 10 -assocs 10 -splice | grep -E '^`|^\| C-GET|alternating|^CPU time'
	echo
	[ -x "$PW" ] || build
	taskset -c 0 "$OUT/guardbench" -mb 100 -instance-kb 1024 -runs 7 -guard-cmd "taskset -c 1 $PW guard" | grep -Ev '^Goal'
} >"$OUT/guard.md"
printf '\nLoad average before this run: %s.\n' "$load" >>"$OUT/guard.md"
echo "bench: wrote $OUT/guard.md"
