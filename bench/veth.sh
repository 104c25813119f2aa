#!/usr/bin/env bash
# A realistic slice behind a veth (issue 12): 198.18.64.0/18 (16,384 addresses) × 5 ports in
# ../shared/tools/veth-testbed, 1 % of the addresses hosting simulated PACS (pacswatch sim), SYNs
# to every other address dropped by nftables in the fleet's namespace. Scanned from the other
# namespace by pacswatch alone (SYN stage, the default as root; connect() stage), pacswatch
# --discover zmap, and nmap -sS -T5
# --script dicom-ping, one after the other on the same fleet; each scored against the truth.
# Writes $OUT/veth.md. Needs root, nft, zmap, nmap, jq. Nothing leaves the test bed.
source "$(dirname "$0")/lib.sh"
need jq bc nft zmap nmap
[ -x "$PW" ] || build
TESTBED=${TESTBED:-$ROOT/../shared/tools/veth-testbed}
CIDR=198.18.64.0/18
HOSTS=164
rm -f "$OUT"/veth.{truth.json,sim.err,fleet.ok,md} "$OUT"/veth.{syn,connect,zmap,nmap}.* "$OUT"/veth-*.db*

# The fleet: the sim, then a drop rule for every SYN to an address that hosts nothing.
fleet="$PW sim --hosts $HOSTS --seed 5 --cidr $CIDR --ports $PORTS --truth $OUT/veth.truth.json 2>$OUT/veth.sim.err &
SIM=\$!
trap 'kill -INT \$SIM' TERM EXIT
for i in \$(seq 200); do grep -q ' ready\$' $OUT/veth.sim.err && break; sleep 0.05; done
hosts=\$(jq -r '[.hosts[].addr | sub(\":[0-9]+\$\"; \"\")] | unique | join(\", \")' $OUT/veth.truth.json)
nft add table inet veth
nft add set inet veth hosts '{ type ipv4_addr; }'
nft add element inet veth hosts \"{ \$hosts }\"
nft add chain inet veth in '{ type filter hook input priority 0; }'
nft add rule inet veth in ip daddr $CIDR ip daddr != @hosts 'tcp flags & (syn|ack) == syn' drop
echo fleet ready >$OUT/veth.fleet.ok
wait \$SIM"

timed() { # NAME CMD...: wall clock of CMD into $OUT/NAME.secs
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  "$@" || echo "exit $?" >"$OUT/$name.rc"
  echo "$(date +%s.%N) - $t0" | bc >"$OUT/$name.secs"
}
export -f timed
scan="set -u
[ -e $OUT/veth.fleet.ok ] || { echo 'fleet not ready' >&2; exit 1; }
timed veth.syn /usr/bin/time -f '%M' -o $OUT/veth.syn.rss $PW scan $CIDR -p $PORTS --rate 0 --syn on -q --db $OUT/veth-syn.db -o $OUT/veth.syn.jsonl
timed veth.connect /usr/bin/time -f '%M' -o $OUT/veth.connect.rss $PW scan $CIDR -p $PORTS --rate 0 --syn off -q --db $OUT/veth-connect.db -o $OUT/veth.connect.jsonl
timed veth.zmap /usr/bin/time -f '%M' -o $OUT/veth.zmap.rss $PW scan $CIDR -p $PORTS --rate 50000 -q --db $OUT/veth-zmap.db -o $OUT/veth.zmap.jsonl \
  --discover zmap --zmap-args \"-i \$SCAN_IF -S \$SCAN_SRC -G \$FLEET_MAC -c 1\"
timed veth.nmap timeout 600 nmap -n -Pn -sS -T5 -e \$SCAN_IF --script dicom-ping -p $PORTS $CIDR -oN $OUT/veth.nmap.txt -oG $OUT/veth.nmap.gnmap >/dev/null"
OUT=$OUT PW=$PW "$TESTBED" --fleet-cidr "$CIDR" --wait 5 --fleet "$fleet" --scan "$scan"

truth_ports=$(jq '.hosts | length' "$OUT/veth.truth.json")
for m in syn connect zmap; do
  score "veth.$m" "$OUT/veth.truth.json" "$OUT/veth.$m.jsonl"
done
nmap_open=$(grep -o '[0-9]*/open/tcp' "$OUT/veth.nmap.gnmap" | wc -l)
nmap_dicom=$(grep -c 'DICOM Service: true\|dicom: DICOM Service' "$OUT/veth.nmap.txt" || true)
truth_dicom=$(jq '[.hosts[] | select(.level != "not-dicom" and .level != "closed")] | length' "$OUT/veth.truth.json")
row() { # NAME LABEL
  local secs; secs=$(cat "$OUT/$1.secs")
  echo "| $2 | $(printf '%.1f' "$secs") s | $(rate 81920 "$secs") | $(( $(cat "$OUT/$1.rss") / 1024 )) MB | $(jq -r .results "$OUT/$1.score.json")/$truth_ports | $(jq -r 'if .perfect then "perfect" else "NOT perfect" end' "$OUT/$1.score.json") |"
}
cat >"$OUT/veth.md" <<MD
### A slice behind a veth: $CIDR × $NPORTS ports, $HOSTS simulated PACS (1 %), other SYNs dropped

\`../shared/tools/veth-testbed\`: the fleet namespace runs \`pacswatch sim --hosts $HOSTS --seed 5 --cidr $CIDR\`
and an nftables rule that drops SYNs to its other 16,220 addresses (81,920 targets in all, $truth_ports listening);
the scanner namespace reaches it through one veth. One run of each, one after the other, on the same fleet.

| scanner | wall clock | targets/s | peak RSS | services found / truth | score against the truth |
| --- | --- | --- | --- | --- | --- |
$(row veth.syn "\`pacswatch scan $CIDR --rate 0\` (SYN stage, the default as root; 2 s connect timeout)")
$(row veth.connect "\`pacswatch scan $CIDR --rate 0 --syn off\` (connect() stage, 2 s connect timeout)")
$(row veth.zmap "\`pacswatch scan $CIDR --discover zmap --rate 50000\` (zmap -c 1)")
| \`nmap -n -Pn -sS -T5 --script dicom-ping\` | $(printf '%.1f' "$(cat "$OUT/veth.nmap.secs")") s | $(rate 81920 "$(cat "$OUT/veth.nmap.secs")") | — | $nmap_open open ports/$truth_ports; dicom-ping said DICOM on $nmap_dicom (truth: $truth_dicom speak DICOM) | $( [ -e "$OUT/veth.nmap.rc" ] && cat "$OUT/veth.nmap.rc" || echo "finished") |

<details><summary>scores</summary>

\`\`\`
SYN stage:
$(cat "$OUT/veth.syn.score.txt")

connect() stage:
$(cat "$OUT/veth.connect.score.txt")

--discover zmap:
$(cat "$OUT/veth.zmap.score.txt")
\`\`\`
</details>
MD
cat "$OUT/veth.md"
