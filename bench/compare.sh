#!/usr/bin/env bash
# Comparison, in one run on one simulated fleet (300 hosts on 1,024 addresses):
#   discovery  pacswatch vs nmap --script dicom-ping, on the whole CIDR × ports;
#   echo       pacswatch --depth echo vs a loop of dcmtk echoscu, on the 300 listening host:ports;
#   counting   pacswatch (default depth) vs a loop of dcmtk findscu, on the same host:ports.
# Every tool's findings are scored against the sim's truth. Writes $OUT/compare.md.
source "$(dirname "$0")/lib.sh"
need nmap echoscu findscu jq bc
[ -x "$PW" ] || build

CIDR=127.11.0.0/22
HOSTS=300
TIMEOUT=3 # seconds per step, for every tool
truth=$OUT/compare.truth.json
start_sim compare --hosts "$HOSTS" --seed 2 --cidr "$CIDR" --ports "$PORTS" --latency 200ms --truth "$truth"
trap stop_sim EXIT
TARGETS=$(( 1024 * NPORTS ))
jq -r '.hosts[].addr' "$truth" > "$OUT/compare.list"           # ip:port, for pacswatch -iL
sed 's/:\([0-9]*\)$/ \1/' "$OUT/compare.list" > "$OUT/compare.pairs" # ip port, for the loops

pw_scan() { # NAME ARGS...
  local name=$1; shift
  rm -f "$OUT/$name.db"*
  measure "$name" "$PW" scan "$@" --rate 0 --timeout "${TIMEOUT}s" -q --db "$OUT/$name.db" -o "$OUT/$name.jsonl"
  [ "$RC" -le 1 ] || { echo "bench: $name exited $RC" >&2; exit 1; }
  score "$name" "$truth" "$OUT/$name.jsonl"
}

# --- discovery: the whole CIDR × ports
script=dicom-ping
[ "$(id -u)" = 0 ] || script=+dicom-ping # dicom-ping runs only on its own ports unless forced
measure nmap nmap -n -Pn -p "$PORTS" --script "$script" --script-timeout "${TIMEOUT}s" -oX "$OUT/nmap.xml" "$CIDR" > "$OUT/nmap.txt" 2> "$OUT/nmap.err"
nmap_bugs=$(grep -c 'Bug in dicom-ping' "$OUT/nmap.err" || true)
nmap_secs=$SECS nmap_rss=$RSS_MB
"$OUT/convert" nmap < "$OUT/nmap.xml" > "$OUT/nmap.jsonl"
score nmap "$truth" "$OUT/nmap.jsonl"
pw_scan pw-associate "$CIDR" -p "$PORTS" --depth associate
pwa_secs=$SECS pwa_rss=$RSS_MB
pw_scan pw-query "$CIDR" -p "$PORTS"
pwq_secs=$SECS pwq_rss=$RSS_MB

# --- association + C-ECHO on the listening host:ports
loop() { # TOOL ARGS...: one line per target: ip port exit pending rejected
  local tool=$1; shift
  while read -r ip port; do
    out=$("$tool" -to "$TIMEOUT" -ta "$TIMEOUT" -td "$TIMEOUT" "$@" "$ip" "$port" 2>&1 | tr -d '\0'
      exit "${PIPESTATUS[0]}") && rc=0 || rc=$?
    pending=$(grep -ac '(Pending)' <<<"$out" || true)
    rejected=0
    grep -aq 'Association Rejected' <<<"$out" && rejected=1
    echo "$ip $port $rc $pending $rejected"
  done < "$OUT/compare.pairs"
}
export -f loop; export OUT TIMEOUT
measure echoscu bash -c 'loop echoscu > "$OUT/echoscu.log"'
echo_secs=$SECS echo_rss=$RSS_MB
"$OUT/convert" dcmtk < "$OUT/echoscu.log" > "$OUT/echoscu.jsonl"
score echoscu "$truth" "$OUT/echoscu.jsonl"
pw_scan pw-echo -iL "$OUT/compare.list" --depth echo
pwe_secs=$SECS pwe_rss=$RSS_MB

# --- counting studies on the same host:ports
measure findscu bash -c 'loop findscu -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID > "$OUT/findscu.log"'
find_secs=$SECS find_rss=$RSS_MB
"$OUT/convert" dcmtk < "$OUT/findscu.log" > "$OUT/findscu.jsonl"
score findscu "$truth" "$OUT/findscu.jsonl"
pw_scan pw-count -iL "$OUT/compare.list"
pwc_secs=$SECS pwc_rss=$RSS_MB

frac() { echo "$(field "$1" "$2" "$3" correct)/$(field "$1" "$2" "$3" truth)"; }
fp() { echo $(( $(field "$1" "$2" "$3" reported) - $(field "$1" "$2" "$3" correct) )); }
studies() { echo "$(count "$1" studies exact)/$(count "$1" studies hosts)"; }
relerr() { jq -r '.counts[] | select(.field == "studies") | if .truth > 0 then 100 * .abs_error / .truth else 0 end' "$OUT/$1.score.json" | xargs printf '%.1f %%'; }
nlisted=$(wc -l < "$OUT/compare.list")
readable=$(count pw-count studies hosts)

cat > "$OUT/compare.md" <<MD
### pacswatch vs nmap dicom-ping, echoscu and findscu (same fleet, same run)

One sim: \`pacswatch sim --hosts $HOSTS --seed 2 --cidr $CIDR --ports $PORTS --latency 200ms\` (default mix:
open, called-AE checks, calling-AE checks, echo-only, query-only, retrieve, TLS, not-DICOM, slow, hostile).
Every tool's findings are scored against the sim's truth with \`pacswatch sim score\`. Timeouts ${TIMEOUT} s per
step for every tool. "Accepting" = a DICOM service that accepts an association from us (exposure level echo or
above, after guessing the called AE title where one is checked); "readable" = C-FIND returns studies.

**Discovery** — all $TARGETS address:port pairs of $CIDR × {$PORTS}:

| tool | wall clock | targets/s | peak RSS | DICOM services found | accepting found | readable found | false positives (accepting) |
| --- | --- | --- | --- | --- | --- | --- | --- |
| \`nmap -n -Pn --script dicom-ping\` | ${nmap_secs} s | $(rate "$TARGETS" "$nmap_secs") | ${nmap_rss} MB | $(frac nmap dicom yes) | $(frac nmap accepted yes) | — (cannot tell) | $(fp nmap accepted yes) |
| \`pacswatch scan --depth associate\` | ${pwa_secs} s | $(rate "$TARGETS" "$pwa_secs") | ${pwa_rss} MB | $(frac pw-associate dicom yes) | $(frac pw-associate accepted yes) | — (not asked) | $(fp pw-associate accepted yes) |
| \`pacswatch scan\` (default: query) | ${pwq_secs} s | $(rate "$TARGETS" "$pwq_secs") | ${pwq_rss} MB | $(frac pw-query dicom yes) | $(frac pw-query accepted yes) | $(frac pw-query exposed yes) | $(fp pw-query accepted yes) |

pacswatch --depth associate is $(ratio "$nmap_secs" "$pwa_secs") × as fast as nmap dicom-ping here; nmap's dicom-ping tries only the
called AE title ANY-SCP, speaks no TLS, and reports any rejection as "Called AET check enabled" (it also printed "Bug in dicom-ping: no string
output" for $nmap_bugs ports). On a fleet
this small pacswatch's wall clock is set by its slowest hosts (a silent host holds its probe for the ${TIMEOUT} s
step timeout, a slow one for several of its 200 ms delays), so the ratios understate its throughput: see the
scale run below.

**Association and C-ECHO** — the $nlisted listening host:ports, one after another for echoscu:

| tool | wall clock | targets/s | peak RSS | accepting found | false positives |
| --- | --- | --- | --- | --- | --- |
| loop of \`echoscu\` (dcmtk) | ${echo_secs} s | $(rate "$nlisted" "$echo_secs") | ${echo_rss} MB | $(frac echoscu accepted yes) | $(fp echoscu accepted yes) |
| \`pacswatch scan -iL LIST --depth echo\` | ${pwe_secs} s | $(rate "$nlisted" "$pwe_secs") | ${pwe_rss} MB | $(frac pw-echo accepted yes) | $(fp pw-echo accepted yes) |

pacswatch is $(ratio "$echo_secs" "$pwe_secs") × as fast as the echoscu loop.

**Counting studies** — the same $nlisted host:ports; $readable of them are readable:

| tool | wall clock | targets/s | peak RSS | readable found | exact study counts | study count error |
| --- | --- | --- | --- | --- | --- | --- |
| loop of \`findscu -S\` (STUDY level, universal) | ${find_secs} s | $(rate "$nlisted" "$find_secs") | ${find_rss} MB | $(frac findscu exposed yes) | $(studies findscu) | $(relerr findscu) |
| \`pacswatch scan -iL LIST\` (default: query) | ${pwc_secs} s | $(rate "$nlisted" "$pwc_secs") | ${pwc_rss} MB | $(frac pw-count exposed yes) | $(studies pw-count) | $(relerr pw-count) |

pacswatch is $(ratio "$find_secs" "$pwc_secs") × as fast as the findscu loop, and also counts instances
($(count pw-count instances exact)/$(count pw-count instances hosts) exact), tests retrieval and reports AE checks.
findscu uses the called AE ANY-SCP and counts every response: it misses archives behind a guessable
called AE title and undercounts those that cap their answers.
MD
echo "compare: nmap ${nmap_secs}s vs pacswatch associate ${pwa_secs}s; echoscu ${echo_secs}s vs ${pwe_secs}s; findscu ${find_secs}s vs ${pwc_secs}s"
