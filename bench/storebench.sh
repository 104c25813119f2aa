#!/usr/bin/env bash
# Store write throughput (issue 13): 327,680 results (65,536 loopback addresses × 5 ports, every
# target stored with --all-targets, in an empty network namespace) written again through
# store.Store by 1 and by 4 writers at once (the shards of one run, each its own scan), into
# SQLite and into PostgreSQL 15 with its production defaults (fsync and synchronous commit on), in
# the scanner's batches of 500. One run each. Writes $OUT/storebench.md.
source "$(dirname "$0")/lib.sh"
[ -x "$PW" ] || build
NETNS=${NETNS:-$ROOT/../shared/tools/netns-run}
records=$OUT/storebench.records.db
if [ ! -f "$records" ]; then
  # Since closed targets are only counted, a scan stores what answered: --all-targets stores all.
  "$NETNS" "$PW" scan 127.30.0.0/16 -p "$PORTS" --rate 0 --all-targets -q --db "$records" ||
    { echo "bench: the records' scan failed" >&2; exit 1; }
fi
(cd "$ROOT" && go build -o "$OUT/pgserver" ./bench/pgserver && go build -o "$OUT/storebench" ./bench/storebench)
work=$OUT/storebench.d
rm -rf "$work" && mkdir -p "$work"

"$OUT/pgserver" -durable -dbs 2 > "$work/pg.out" 2> "$work/pg.err" &
PG_PID=$!
trap 'kill -INT $PG_PID 2>/dev/null || true; wait $PG_PID 2>/dev/null || true' EXIT
for _ in $(seq 300); do [ "$(grep -c '^url ' "$work/pg.out")" = 2 ] && break; sleep 0.1; done
mapfile -t URLS < <(sed -n 's/^url //p' "$work/pg.out")
[ "${#URLS[@]}" = 2 ] || { cat "$work/pg.err" >&2; exit 1; }

rows=()
for w in 1 4; do
  rows+=("$("$OUT/storebench" -db "$work/w$w.db" -writers "$w" -records "$records")")
done
i=0
for w in 1 4; do
  rows+=("$("$OUT/storebench" -db "${URLS[$i]}" -writers "$w" -records "$records")")
  i=$((i + 1))
done
{
  cat <<MD
### Store writes: results/s into SQLite and PostgreSQL, 1 and 4 writers (issue 13)

327,680 results (\`pacswatch scan 127.30.0.0/16 --all-targets\`, every target stored) written again through \`store.Store\`
(\`bench/storebench\`): W writers at once, each the shard of one run with its own scan, in the
scanner's batches of 500, each batch one transaction with its checkpoint. SQLite in WAL mode
(synchronous NORMAL), one file; PostgreSQL 15 with its defaults (fsync, synchronous commit),
on a Unix socket, on the same 2 cores. One run each.

| store | writers | results | wall clock | results/s | bytes on disk (results) | bytes per result |
| --- | --- | --- | --- | --- | --- | --- |
MD
  for r in "${rows[@]}"; do
    read -r backend writers n secs rps bytes <<<"$r"
    echo "| $backend | $writers | $n | $secs s | $rps | $(( bytes / 1048576 )) MiB | $(( bytes / n )) |"
  done
} > "$OUT/storebench.md"
cat "$OUT/storebench.md"
