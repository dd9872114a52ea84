#!/usr/bin/env bash
# The main job on a fresh machine, and the product's promise in about two minutes:
# installs what is missing, starts a local 3-broker Kafka cluster and a 3-node flotilla
# fleet in front of it, then produces continuously through the fleet (Kafka's own
# VerifiableProducer: idempotent, acks=all) while it kills -9 one node. The node's
# identities move to the survivors, the node comes back, and the run ends by reading the
# topic back and checking that every acknowledged record is there, once.
#
# The fleet and the Kafka cluster are left running; stop them with
#   scripts/fleet.sh down && scripts/kafka-cluster.sh down
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
records=${DEMO_RECORDS:-12000}
rate=${DEMO_RATE:-200}
victim=2
work=$(mktemp -d)
trap 'kill "${producer:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

say() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }
proxyctl() { "$root/target/release/proxyctl" --endpoint "http://127.0.0.1:9644" "$@"; }
kafka_tool() { "$here/kafka-cluster.sh" run-class "$@"; }
acked() { grep -c '"name":"producer_send_success"' "$work/producer.jsonl" || true; }

# Polls `$2...` until it succeeds, for at most $1 seconds.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

"$here/install-deps.sh"
(cd "$root" && cargo build --release --quiet --bin flotilla --bin proxyctl) || die "build failed"
export FLOTILLA_BIN=$root/target/release/flotilla
"$here/fleet.sh" down >/dev/null
say "starting Kafka (3 brokers) and a flotilla fleet of 3 nodes (127.0.0.1-3)"
bootstrap=$("$here/fleet.sh" up 3 | tail -1)
echo "clients bootstrap from: $bootstrap"
proxyctl cluster wait --timeout 60s >/dev/null
proxyctl cluster status

topic="demo-$(date +%s)"
say "creating $topic (6 partitions, replication factor 3) through the fleet"
kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create \
  --topic "$topic" --partitions 6 --replication-factor 3 >/dev/null

say "producing $records records at $rate/s through the fleet (idempotent, acks=all)"
printf 'enable.idempotence=true\nacks=all\nretries=2147483647\n' >"$work/producer.properties"
kafka_tool org.apache.kafka.tools.VerifiableProducer --bootstrap-server "$bootstrap" \
  --topic "$topic" --max-messages "$records" --throughput "$rate" --acks -1 \
  --command-config "$work/producer.properties" >"$work/producer.jsonl" 2>"$work/producer.log" &
producer=$!
producing() { (($(acked) >= rate * 5)); }
wait_until 60 producing || die "the producer got no acknowledgements"

pid=$(cat "${FLOTILLA_FLEET_DIR:-$HOME/.cache/flotilla/fleet}/node-$victim/pid")
say "kill -9 node $victim (pid $pid) with $(acked) records acknowledged so far"
kill -9 "$pid"
moved() { proxyctl cluster status -o json | grep -q "\"owner\": $victim" && return 1 || return 0; }
wait_until 30 moved || die "node $victim's identities did not move"
proxyctl cluster status
echo "(the identities of node $victim moved to the survivors; $(acked) acknowledged by now)"

say "restarting node $victim"
"$here/fleet.sh" start "$victim" >/dev/null
proxyctl cluster wait --timeout 60s >/dev/null
proxyctl cluster status

say "waiting for the producer to finish"
wait "$producer" || die "the producer failed (see $work/producer.log)"
producer=""
failed=$(grep -c '"name":"producer_send_error"' "$work/producer.jsonl" || true)
grep -o '"name":"producer_send_success".*"value":"[0-9]*"' "$work/producer.jsonl" |
  sed 's/.*"value":"\([0-9]*\)"/\1/' | sort >"$work/acked"

say "reading $topic back through the fleet"
kcat -b "$bootstrap" -X broker.address.family=v4 -C -t "$topic" -o beginning -e -q \
  -f '%s\n' | sort >"$work/read"
lost=$(comm -23 "$work/acked" <(sort -u "$work/read") | wc -l)
duplicated=$(($(wc -l <"$work/read") - $(sort -u "$work/read" | wc -l)))
acked_count=$(wc -l <"$work/acked")
if ((lost == 0 && duplicated == 0 && failed == 0 && acked_count == records)); then
  echo "verdict: PASS: $acked_count records acknowledged, every one read back once;" \
    "node $victim was killed mid-produce and nothing was lost"
else
  echo "verdict: FAIL: $acked_count of $records acknowledged, $failed failed sends," \
    "$lost acknowledged but not read, $duplicated read twice"
  exit 1
fi
echo "stop with: scripts/fleet.sh down && scripts/kafka-cluster.sh down"
