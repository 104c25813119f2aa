#!/usr/bin/env bash
# Scale: a 65,536-address sim (2,000 hosts) scanned end to end by pacswatch on every port, against
# the raw TCP connect rate of this machine to the same addresses (bench/rawconnect) as the ceiling.
# Writes $OUT/scale.md; prints a summary. Run it in an empty network namespace:
# ../shared/tools/netns-run bash bench/scale.sh (bench/run.sh does).
source "$(dirname "$0")/lib.sh"
need jq bc
[ -x "$PW" ] || build

CIDR=127.10.0.0/16
HOSTS=2000
TARGETS=$(( 65536 * NPORTS ))
truth=$OUT/scale.truth.json
results=$OUT/scale.results.jsonl
rm -f "$OUT"/scale.db* "$results"

start_sim scale --hosts "$HOSTS" --seed 1 --cidr "$CIDR" --ports "$PORTS" --truth "$truth"
trap stop_sim EXIT
sim_rss0=$(proc_kb "$SIM_PID" VmRSS)

# The ceiling: connect to every address of the CIDR on the first port, and close.
first=${PORTS%%,*}
"$OUT/rawconnect" -cidr "$CIDR" -port "$first" -concurrency 1000 | tee "$OUT/scale.raw.txt"
raw_rate=$(sed -n 's/.* = \([0-9]*\) connects\/s.*/\1/p' "$OUT/scale.raw.txt")
raw_rss=$(sed -n 's/.*peak RSS \([0-9]*\) kB.*/\1/p' "$OUT/scale.raw.txt")

measure scale.scan "$PW" scan "$CIDR" -p "$PORTS" --rate 0 --concurrency 1000 --seed 1 -q \
  --db "$OUT/scale.db" -o "$results"
[ "$RC" -le 1 ] || { echo "bench: scan exited $RC" >&2; exit 1; }
scan_secs=$SECS scan_rss=$RSS_MB
db_bytes=$(( $(stat -c %s "$OUT/scale.db") + $( [ -e "$OUT/scale.db-wal" ] && stat -c %s "$OUT/scale.db-wal" || echo 0) ))
answering=$(wc -l < "$results")
# The same scan with the probe opening its own connection after the connect stage (as zgrab2
# behind ZMap), rather than taking the connect stage's over: the choice, measured.
rm -f "$OUT"/scale-redial.db*
measure scale.redial "$PW" scan "$CIDR" -p "$PORTS" --rate 0 --concurrency 1000 --seed 1 -q \
  --db "$OUT/scale-redial.db" -o "$OUT/scale-redial.jsonl" --probe-redial
redial_secs=$SECS
sim_rss1=$(proc_kb "$SIM_PID" VmRSS)
sim_hwm=$(proc_kb "$SIM_PID" VmHWM)
score scale "$truth" "$results"
perfect=$(jq -r 'if .perfect then "perfect" else "NOT perfect" end' "$OUT/scale.score.json")

targets_rate=$(rate "$TARGETS" "$scan_secs")
addr_rate=$(rate 65536 "$scan_secs")
cat > "$OUT/scale.md" <<MD
### Scale: 65,536 addresses × $NPORTS ports, $HOSTS simulated hosts

\`pacswatch sim --hosts $HOSTS --seed 1 --cidr $CIDR --ports $PORTS\`, then
\`pacswatch scan $CIDR -p $PORTS --rate 0 --concurrency 1000\` (default depth: query), on the same machine.

| measure | value |
| --- | --- |
| sim start-up (2,000 listeners, truth written) | $(printf '%.2f' "$SIM_START") s |
| sim resident memory: ready → after the scan (peak) | $((sim_rss0/1024)) MB → $((sim_rss1/1024)) MB ($((sim_hwm/1024)) MB) |
| targets (address:port pairs) | $TARGETS |
| pacswatch scan, wall clock | ${scan_secs} s |
| pacswatch targets/s (addresses/s) | $targets_rate ($addr_rate) |
| pacswatch peak RSS | ${scan_rss} MB |
| raw TCP connect ceiling (bench/rawconnect, 65,536 connects, 1,000 in flight) | $raw_rate connects/s, peak RSS $((raw_rss/1024)) MB |
| pacswatch / ceiling | $(echo "100 * $targets_rate / $raw_rate" | bc -l | xargs printf '%.0f') % |
| the same scan, the probe reconnecting after the connect stage (\`--probe-redial\`) | ${redial_secs} s ($(rate "$TARGETS" "$redial_secs") targets/s) |
| store after the scan (SQLite, WAL checkpointed) | $((db_bytes / 1024)) KiB: $answering answering targets stored, $((TARGETS - answering)) counted |
| store bytes per answering target / per million targets probed | $((db_bytes / answering)) B / $(echo "$db_bytes * 1000000 / $TARGETS / 1048576" | bc -l | xargs printf '%.1f') MiB |
| score against the truth | $perfect (studies exact on $(count scale studies exact)/$(count scale studies hosts) readable hosts, hostile classified $(jq -r .hostile.classified "$OUT/scale.score.json")/$(jq -r .hostile.hosts "$OUT/scale.score.json")) |

<details><summary>score</summary>

\`\`\`
$(cat "$OUT/scale.score.txt")
\`\`\`
</details>
MD
echo "scale: $TARGETS targets in ${scan_secs}s = $targets_rate/s, ceiling $raw_rate/s, scan peak RSS ${scan_rss} MB, sim RSS $((sim_rss0/1024))→$((sim_rss1/1024)) MB, score $perfect"
