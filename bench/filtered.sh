#!/usr/bin/env bash
# Filtered and refused: the connect stage against 65,536 targets that never answer (an nftables
# rule drops every SYN to port 104 in an empty network namespace) and 65,536 that refuse
# (nothing listens), through the SYN stage (--syn on, raw sockets) and through connect()
# (--syn off), against the raw connect ceiling (bench/rawconnect) in the same run; nmap
# -sS -T5 on 4,096 of the filtered ones for the ratio. Writes $OUT/filtered.md. Needs nft, nmap
# and root; everything runs in an empty network namespace (../shared/tools/netns-run), loopback only.
source "$(dirname "$0")/lib.sh"
need jq bc nft sqlite3
[ -x "$PW" ] || build
NETNS=${NETNS:-$ROOT/../shared/tools/netns-run}
CT=${CONNECT_TIMEOUT:-2s}

# filtered_count DB: the targets a scan counted filtered (the checkpoint's tallies).
filtered_count() { sqlite3 "$1" "SELECT coalesce(sum(filtered), 0) FROM tallies"; }
drop='nft add table inet bench && nft add chain inet bench in "{ type filter hook input priority 0; }" && nft add rule inet bench in tcp dport 104 "tcp flags & (syn|ack) == syn" drop'

# run NAME CMD: runs CMD (a shell line) in a fresh empty namespace with the drop rule, under GNU time.
run() {
  local name=$1; shift
  rm -f "$OUT/$name".db*
  measure "$name" "$NETNS" sh -c "$drop && $*"
}

run filtered "$PW scan 127.20.0.0/16 -p 104 --rate 0 --connect-timeout $CT --syn on -q --db $OUT/filtered.db -o $OUT/filtered.jsonl"
f_secs=$SECS f_rss=$RSS_MB f_rc=$RC
f_err=$(jq -r 'select(.status == "error") | .ip' "$OUT/filtered.jsonl" | wc -l)
f_stored=$(wc -l < "$OUT/filtered.jsonl")
f_counted=$(filtered_count "$OUT/filtered.db")
run filteredconn "$PW scan 127.20.0.0/16 -p 104 --rate 0 --connect-timeout $CT --syn off -q --db $OUT/filteredconn.db -o $OUT/filteredconn.jsonl"
fc_secs=$SECS fc_rss=$RSS_MB
fc_err=$(jq -r 'select(.status == "error") | .ip' "$OUT/filteredconn.jsonl" | wc -l)
fc_counted=$(filtered_count "$OUT/filteredconn.db")
run filtered1s "$PW scan 127.20.0.0/16 -p 104 --rate 0 --connect-timeout 1s --syn off -q --db $OUT/filtered1s.db -o $OUT/filtered1s.jsonl"
f1_secs=$SECS f1_rss=$RSS_MB
f1_err=$(jq -r 'select(.status == "error") | .ip' "$OUT/filtered1s.jsonl" | wc -l)
run nmapfiltered "nmap -n -Pn -sS -T5 --max-retries 0 -p 104 127.21.0.0/20 -oG $OUT/nmapfiltered.gnmap >/dev/null"
n_secs=$SECS
n_filtered=$(grep -o '104/filtered' "$OUT/nmapfiltered.gnmap" | wc -l)

# Refused: nothing listens on port 9; the ceiling first, in the same namespace.
measure refused "$NETNS" sh -c "$OUT/rawconnect -cidr 127.22.0.0/16 -port 9 -concurrency 1000 > $OUT/refused.raw.txt && $PW scan 127.22.0.0/16 -p 9 --rate 0 --syn on -q --db $OUT/refused.db"
r_secs_total=$SECS r_rss=$RSS_MB
raw_rate=$(sed -n 's/.* = \([0-9]*\) connects\/s.*/\1/p' "$OUT/refused.raw.txt")
raw_secs=$(sed -n 's/.* in \([0-9.]*\)s.*/\1/p' "$OUT/refused.raw.txt" | head -1)
# The scan's own time: measured apart, as the same command without rawconnect.
measure refusedscan "$NETNS" sh -c "$PW scan 127.23.0.0/16 -p 9 --rate 0 --syn on -q --db $OUT/refusedscan.db"
r_secs=$SECS r_rss=$RSS_MB
measure refusedconn "$NETNS" sh -c "$PW scan 127.24.0.0/16 -p 9 --rate 0 --syn off -q --db $OUT/refusedconn.db"
rc_secs=$SECS rc_rss=$RSS_MB
db_kb=$(( $(stat -c %s "$OUT/refusedscan.db") / 1024 ))

cat > "$OUT/filtered.md" <<MD
### Filtered and refused targets (issue 12)

In an empty network namespace (loopback only) where nftables drops every SYN to port 104:
\`pacswatch scan 127.20.0.0/16 -p 104 --rate 0\` (65,536 targets, \`--connect-timeout\` as given,
default \`--concurrency 1000\`). The file-descriptor limit here is $(ulimit -n) (soft and hard, cannot be raised),
so at most about $(( $(ulimit -n) * 19 / 20 )) connect() attempts are in flight at once; the SYN stage holds no descriptor per
attempt (65,536 in flight at most, \`scan.SYNInFlight\`).

| run | wall clock | targets/s | peak RSS | error results | stored rows | counted filtered |
| --- | --- | --- | --- | --- | --- | --- |
| pacswatch, SYN stage (\`--syn on\`, the default as root), \`--connect-timeout $CT\` (default) | ${f_secs} s | $(rate 65536 "$f_secs") | ${f_rss} MB | $f_err | $f_stored | $f_counted |
| pacswatch, connect() (\`--syn off\`), \`--connect-timeout $CT\` | ${fc_secs} s | $(rate 65536 "$fc_secs") | ${fc_rss} MB | $fc_err | $(wc -l < "$OUT/filteredconn.jsonl") | $fc_counted |
| pacswatch, connect() (\`--syn off\`), \`--connect-timeout 1s\` | ${f1_secs} s | $(rate 65536 "$f1_secs") | ${f1_rss} MB | $f1_err | $(wc -l < "$OUT/filtered1s.jsonl") | — |
| \`nmap -n -Pn -sS -T5 --max-retries 0\`, 4,096 of them | ${n_secs} s | $(rate 4096 "$n_secs") | — | — | $n_filtered filtered found |

Refused (nothing listens, port 9): raw connect ceiling (\`bench/rawconnect\`, 1,000 in flight, same
namespace, just before) $raw_rate connects/s; \`pacswatch scan 127.23.0.0/16 -p 9 --rate 0 --syn on\`: ${r_secs} s =
$(rate 65536 "$r_secs") targets/s = $(echo "100 * 65536 / $r_secs / $raw_rate" | bc -l | xargs printf '%.0f') % of the ceiling, peak RSS ${r_rss} MB;
with \`--syn off\` (connect()): ${rc_secs} s = $(rate 65536 "$rc_secs") targets/s = $(echo "100 * 65536 / $rc_secs / $raw_rate" | bc -l | xargs printf '%.0f') % of the ceiling, peak RSS ${rc_rss} MB;
store $db_kb KiB for 65,536 targets probed (none answered: no rows, only the per-port counts).
MD
cat "$OUT/filtered.md"
