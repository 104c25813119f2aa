#!/usr/bin/env bash
# The guard across a link, as deployed: the client in one network namespace, the SCP and the guard
# in front of it in another (the guard reaches the SCP over that host's loopback), joined by the
# sealed veth of ../shared/tools/veth-testbed, the link's egress shaped with tc tbf to each rate of
# LINK_RATES (default "1gbit 10gbit") and once unshaped. C-GET of 100 MB 7 times each way,
# alternating, direct and through `pacswatch guard`. Writes $OUT/guardlink.md; needs root, tc.
source "$(dirname "$0")/lib.sh"
need tc
[ -x "$PW" ] || build
(cd "$ROOT" && go build -o "$OUT/guardbench" ./bench/guardbench)
VETH=$ROOT/../shared/tools/veth-testbed
SCP=198.18.64.10:11112 GUARD=198.18.64.11:11112
policy=$OUT/guardlink.policy.yaml
cat >"$policy" <<'YAML'
peers:
  - name: bench
    calling_ae: [BENCH]
    source: 198.18.0.1
    services: [echo, get]
    query_levels: [STUDY]
YAML
fleet="$OUT/guardbench -serve $SCP -mb 100 -instance-kb 1024 & $PW guard --listen $GUARD --upstream $SCP --policy $policy --audit $OUT/guardlink.audit.jsonl 2>/dev/null; wait"
out=$OUT/guardlink.md
: >"$out"
for rate in ${LINK_RATES:-1gbit 10gbit} none; do
  shape=: link="the sealed veth, unshaped"
  if [ "$rate" != none ]; then
    shape="tc qdisc add dev \$SCAN_IF root tbf rate $rate burst 4mb latency 20ms"
    link="the sealed veth shaped to $rate each way (tc tbf)"
  fi
  "$VETH" --fleet-cidr 198.18.64.0/24 --wait 2 \
    --fleet-setup "[ \"$rate\" = none ] || tc qdisc add dev veth1 root tbf rate $rate burst 4mb latency 20ms" \
    --fleet "$fleet" \
    --scan "set -o pipefail; [ -z \"\$(ip route show default)\" ] || { echo 'guardlink: a default route: not the sealed test bed' >&2; exit 3; }; $shape && $OUT/guardbench -direct $SCP -via $GUARD -link '$link' -mb 100 -instance-kb 1024 -runs 7 -echoes 500 -assocs 100 | grep -v ^Goal" \
    >>"$out"
  echo >>"$out"
done
printf 'Load average after these runs: %s.\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out"
echo "bench: wrote $out"
