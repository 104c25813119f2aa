# Shared helpers of the bench scripts: sourced, not run.
# shellcheck shell=bash
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
OUT=${BENCH_OUT:-$ROOT/bin/bench}
mkdir -p "$OUT"
PW=$OUT/pacswatch
export TCP_NODELAY=1 # DCMTK leaves Nagle on otherwise: 40 ms per exchange (peers.md)

# The SPEC's default DICOM ports when we may bind 104, else unprivileged ones.
if [ "$(id -u)" = 0 ]; then
  PORTS=${BENCH_PORTS:-104,11112,4242,2761,2762}
else
  PORTS=${BENCH_PORTS:-20104,21112,24242,22761,22762}
fi
NPORTS=$(tr ',' '\n' <<<"$PORTS" | wc -l)

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null || { echo "bench: $c is missing (apt-get install -y nmap dcmtk jq time)" >&2; exit 2; }
  done
  [ -x /usr/bin/time ] || { echo "bench: GNU time is missing (apt-get install -y time)" >&2; exit 2; }
}

build() {
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$OUT/pacswatch" ./cmd/pacswatch \
    && go build -o "$OUT/convert" ./bench/convert && go build -o "$OUT/rawconnect" ./bench/rawconnect)
}

# start_sim NAME ARGS...: runs pacswatch sim ARGS in the background and waits for its ready line.
# Sets SIM_PID and SIM_START (seconds from launch to ready).
start_sim() {
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  "$PW" sim "$@" 2>"$OUT/$name.sim.err" &
  SIM_PID=$!
  for _ in $(seq 1200); do
    if grep -q ' ready$' "$OUT/$name.sim.err"; then
      SIM_START=$(echo "$(date +%s.%N) - $t0" | bc)
      return 0
    fi
    kill -0 "$SIM_PID" 2>/dev/null || { cat "$OUT/$name.sim.err" >&2; exit 1; }
    sleep 0.05
  done
  echo "bench: sim $name not ready after 60 s" >&2
  exit 1
}

stop_sim() {
  kill -INT "$SIM_PID" 2>/dev/null || true
  wait "$SIM_PID" 2>/dev/null || true
}

# proc_kb PID FIELD: a field of /proc/PID/status (VmRSS, VmHWM), in kB.
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# measure NAME CMD...: runs CMD under GNU time. Sets SECS (wall clock) and RSS_MB (peak resident
# set of the command and its children), and RC.
measure() {
  local name=$1; shift
  RC=0
  /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "$@" || RC=$?
  local kb
  read -r SECS kb < <(tail -1 "$OUT/$name.time")
  RSS_MB=$(( kb / 1024 ))
}

# score NAME TRUTH RESULTS: scores RESULTS against TRUTH into $OUT/NAME.score.{txt,json}.
score() {
  "$PW" sim score --truth "$2" --results "$3" > "$OUT/$1.score.txt"
  "$PW" sim score --truth "$2" --results "$3" --format json > "$OUT/$1.score.json"
}

# field NAME FIELD VALUE KEY: a number of a scored field (truth, reported, correct).
field() { jq -r --arg f "$2" --arg v "$3" ".fields[] | select(.field == \$f and .value == \$v) | .$4" "$OUT/$1.score.json"; }
# count NAME FIELD KEY: a number of a scored count (hosts, exact, truth, reported, abs_error).
count() { jq -r --arg f "$2" ".counts[] | select(.field == \$f) | .$3" "$OUT/$1.score.json"; }

# rate N SECS: N per second, rounded.
rate() { echo "$1 / $2" | bc -l | xargs printf '%.0f'; }
# ratio A B: A / B with one decimal.
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.1f'; }
