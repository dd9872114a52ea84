#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, starts a local 3-broker
# Kafka cluster and one flotilla node in front of it, then produces and consumes through
# the node with kcat and prints what the client saw.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

"$here/install-deps.sh"
bootstrap=$("$here/fleet.sh" up 1 | tail -1)
topic="demo-$(date +%s)"

echo "== brokers as clients see them through $bootstrap"
kcat -b "$bootstrap" -L -X broker.address.family=v4 | grep -E '^ *broker'

echo "== producing 5 records to $topic (acks=all)"
seq 1 5 | sed 's/^/hello flotilla /' | kcat -b "$bootstrap" -P -t "$topic" -X acks=all

echo "== consuming them back"
kcat -b "$bootstrap" -C -t "$topic" -o beginning -e -q -f 'partition %p offset %o: %s\n'

echo "== fleet"
"$here/fleet.sh" status
echo "stop with: scripts/fleet.sh down && scripts/kafka-cluster.sh down"
