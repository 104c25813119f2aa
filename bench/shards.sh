#!/usr/bin/env bash
# Many machines (issue 13's acceptance run), on one machine: a 65,536-address sim scanned
#   1. by one SQLite run of the whole space (the reference);
#   2. by 4 shard processes at once into one PostgreSQL, each run as the Indexed Job's pod I
#      would run it (JOB_COMPLETION_INDEX=I and DATABASE_URL in its environment, the args of
#      deploy/k8s/base/job.yaml), one of them killed (SIGKILL) at a random point and re-run;
#   3. by the same 4 shards into 4 SQLite stores, folded with pacswatch merge (twice).
# Every store must hold the reference's result set, no target twice; report from PostgreSQL
# must equal report from a SQLite copy of it, and its tables the reference's. Writes
# $OUT/shards.md. Run it in an empty network namespace: ../shared/tools/netns-run bash bench/shards.sh
source "$(dirname "$0")/lib.sh"
need jq
[ -x "$PW" ] || build
(cd "$ROOT" && go build -o "$OUT/pgserver" ./bench/pgserver && go build -o "$OUT/dumpstore" ./bench/dumpstore)

CIDR=127.10.0.0/16
SHARDS=4
work=$OUT/shards
rm -rf "$work" && mkdir -p "$work"
echo "$CIDR" > "$work/targets.txt"
: > "$work/exclude.txt"

"$OUT/pgserver" > "$work/pg.out" 2> "$work/pg.err" &
PG_PID=$!
for _ in $(seq 300); do grep -q '^url ' "$work/pg.out" && break; sleep 0.1; done
URL=$(sed -n 's/^url //p' "$work/pg.out")
[ -n "$URL" ] || { cat "$work/pg.err" >&2; exit 1; }
start_sim shards --hosts 2000 --seed 1 --cidr "$CIDR" --ports "$PORTS" --truth "$work/truth.json"
cleanup() { stop_sim; kill -INT "$PG_PID" 2>/dev/null || true; wait "$PG_PID" 2>/dev/null || true; }
trap cleanup EXIT

# The pod's args, as the manifest gives them: one per line under "args:" in the Job.
mapfile -t MANIFEST < <(awk '/^ *args:/ { on = 1; next } on && /^ *#/ { next } on && /^ *- / { sub(/^ *- /, ""); gsub(/"/, ""); print; next } on { exit }' \
  "$ROOT/deploy/k8s/base/job.yaml")
# pod_args I DB: the manifest's args for pod I writing to DB: the targets and exclusions files
# of this run, the sim's ports; not the manifest's --discover zmap (ZMap needs a real interface,
# which loopback is not: bench/veth.sh and the veth test bed's tests cover it), so the connect
# stage (SYN, as root); --rate 0 (the sim is on loopback).
pod_args() {
  local i=$1 db=$2 a skip=0
  POD=()
  for a in "${MANIFEST[@]}"; do
    if [ $skip = 1 ]; then skip=0; continue; fi
    case $a in
      /etc/pacswatch/targets.txt) a=$work/targets.txt ;;
      /etc/pacswatch/exclude.txt) a=$work/exclude.txt ;;
      --discover) skip=1; continue ;;
      --rate) skip=1; continue ;;
      '$(JOB_COMPLETION_INDEX)'/*) a=$i/${a#*/} ;;
      '$(DATABASE_URL)') a=$db ;;
    esac
    POD+=("$a")
  done
  POD+=(-p "$PORTS" --rate 0)
}

# 1. The reference: one SQLite run of the whole space.
measure shards.ref "$PW" scan "$CIDR" -p "$PORTS" --rate 0 --name monthly --seed 20261201 -q --db "$work/ref.db"
[ "$RC" -le 1 ] || { echo "bench: reference scan exited $RC" >&2; exit 1; }
ref_secs=$SECS ref_rss=$RSS_MB
"$OUT/dumpstore" "$work/ref.db" > "$work/ref.txt" 2> "$work/ref.dump"

# 2. Four pods into PostgreSQL; one killed at a random point, then run again.
killed=$(( RANDOM % SHARDS ))
t0=$(date +%s.%N)
pids=()
for i in $(seq 0 $((SHARDS - 1))); do
  pod_args "$i" '$(DATABASE_URL)'
  [ "$i" = 0 ] && printf 'pod args: %s\n' "${POD[*]}" > "$work/pod-args.txt"
  pod_args "$i" "$URL"
  if [ "$i" = "$killed" ]; then # no wrapper: SIGKILL goes to pacswatch itself
    JOB_COMPLETION_INDEX=$i DATABASE_URL=$URL "$PW" "${POD[@]}" 2> "$work/pod$i.err" &
  else
    JOB_COMPLETION_INDEX=$i DATABASE_URL=$URL /usr/bin/time -f '%M' -o "$work/pod$i.rss" "$PW" "${POD[@]}" 2> "$work/pod$i.err" &
  fi
  pids+=($!)
done
# The kill falls at 20–70 % of the reference run's wall clock: the shards share the same cores,
# so each takes about as long as the whole space alone, and the kill lands mid-scan.
delay=$(echo "$ref_secs * (20 + $RANDOM % 50) / 100" | bc -l)
sleep "$delay"
kill -KILL "${pids[$killed]}" 2>/dev/null || true
rcs=()
for i in "${!pids[@]}"; do rc=0; wait "${pids[$i]}" || rc=$?; rcs+=("$rc"); done
"$PW" scans --db "$URL" > "$work/scans-killed.txt"
done_at_kill=$(awk -v s="$killed/$SHARDS" '$3 == s { print $8 }' "$work/scans-killed.txt")
# The re-run: what a restarted pod does, the same command; it continues its shard's unfinished
# scan (same shard, name, seed and target space).
rc=0
pod_args "$killed" "$URL"
JOB_COMPLETION_INDEX=$killed DATABASE_URL=$URL "$PW" "${POD[@]}" 2> "$work/rerun.err" || rc=$?
pg_secs=$(echo "$(date +%s.%N) - $t0" | bc)
"$PW" scans --db "$URL" > "$work/scans.txt"
"$OUT/dumpstore" "$URL" > "$work/pg.txt" 2> "$work/pg.dump"

# report: PostgreSQL against a SQLite copy of it (merge), then the tables against the reference.
"$PW" merge "$URL" --db "$work/pg-copy.db" > /dev/null
"$PW" report --db "$URL" --format md > "$work/report-pg.md"
"$PW" report --db "$work/pg-copy.db" --format md > "$work/report-pg-copy.md"
"$PW" report --db "$URL" --format json | jq 'del(.scan, .compare) | .trend |= map(del(.scan, .started))' > "$work/report-pg.json"
"$PW" report --db "$work/ref.db" --format json | jq 'del(.scan, .compare) | .trend |= map(del(.scan, .started))' > "$work/report-ref.json"

# 3. The same shards into SQLite stores of their own, merged twice.
for i in $(seq 0 $((SHARDS - 1))); do
  pod_args "$i" "$work/shard$i.db"
  "$PW" "${POD[@]}" 2> "$work/sqlite-pod$i.err" &
  pids[i]=$!
done
for i in $(seq 0 $((SHARDS - 1))); do wait "${pids[$i]}" || true; done
merge_args=()
for i in $(seq 0 $((SHARDS - 1))); do merge_args+=("$work/shard$i.db"); done
"$PW" merge "${merge_args[@]}" --db "$work/merged.db" > "$work/merge1.txt"
"$PW" merge "${merge_args[@]}" --db "$work/merged.db" > "$work/merge2.txt"
"$OUT/dumpstore" "$work/merged.db" > "$work/merged.txt" 2> "$work/merged.dump"

# cells DUMP: dumpstore's counts as table cells.
cells() { sed -E 's/dumpstore: ([0-9]+) scans, ([0-9]+) results, ([0-9]+) targets, ([0-9]+) duplicates/\1 | \2 | \3 | \4/' "$1"; }
same() { if cmp -s "$1" "$2"; then echo "identical"; else echo "DIFFERENT ($(diff "$1" "$2" | grep -c '^[<>]') lines)"; fi; }
cat > "$OUT/shards.md" <<MD
### Many machines: 4 shards into one PostgreSQL, and merge (issue 13)

\`pacswatch sim --hosts 2000 --seed 1 --cidr $CIDR --ports $PORTS\`: $(( 65536 * NPORTS )) address:port pairs.
Each shard process ran as pod I of deploy/k8s's Indexed Job would: \`JOB_COMPLETION_INDEX=I\` and
\`DATABASE_URL\` in its environment, the manifest's args ($(cat "$work/pod-args.txt" | sed 's/^pod args: //'))
with this run's targets file, the sim's ports and \`--rate 0\`; without \`--discover zmap\` (ZMap cannot send on loopback: the connect stage finds the ports). PostgreSQL 15 on a Unix socket (bench/pgserver).

| run | wall clock | scans | results | targets | duplicates | result set vs the reference |
| --- | --- | --- | --- | --- | --- | --- |
| reference: one SQLite scan of the whole space | ${ref_secs} s | $(cells "$work/ref.dump") | — |
| 4 shard processes → PostgreSQL, shard $killed killed (SIGKILL) after $(printf "%.1f" "$delay") s at ${done_at_kill:-?} targets done, then re-run | ${pg_secs%.*} s | $(cells "$work/pg.dump") | $(same "$work/ref.txt" "$work/pg.txt") |
| 4 shards → 4 SQLite stores → \`pacswatch merge\` (run twice) | — | $(cells "$work/merged.dump") | $(same "$work/ref.txt" "$work/merged.txt") |

- peak RSS: the reference scan ${ref_rss} MB; each shard process $(for i in $(seq 0 $((SHARDS - 1))); do [ "$i" = "$killed" ] || printf '%s ' "$(( $(tail -1 "$work/pod$i.rss") / 1024 )) MB"; done)(the killed one not measured)
- exit statuses of the 4 pods: ${rcs[*]} (the killed one: 137); the re-run: $rc
- \`report --format md\` from PostgreSQL vs from a SQLite copy of it (\`pacswatch merge \$URL --db copy.db\`): $(same "$work/report-pg.md" "$work/report-pg-copy.md")
- \`report --format json\` tables (scan metadata left out) from PostgreSQL vs the reference SQLite run: $(same "$work/report-pg.json" "$work/report-ref.json")
- second merge: $(grep -c 'results' "$work/merge2.txt") scans completed again, nothing added (duplicates above)

<details><summary>pacswatch scans --db postgres://… after the re-run</summary>

\`\`\`
$(cat "$work/scans.txt")
\`\`\`
</details>
MD
cat "$OUT/shards.md"
