#!/usr/bin/env bash
# Every test, from a fresh machine: installs what is missing, checks formatting, lints and
# the alert rules (promtool), starts the local Kafka cluster, then runs unit, property and
# integration tests and a short chaos run (scripts/chaos.sh, which starts its own Kafka
# cluster).
# The multi-cluster tests start a second Kafka cluster, b, when they first need it; it is
# stopped again before the chaos run. The default cluster is left running for the next
# run; stop it with scripts/kafka-cluster.sh down.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."

start=$SECONDS
"$here/install-deps.sh"
cargo fmt --all --check
promtool check rules config/monitoring/alerts.yml
promtool test rules config/monitoring/alerts_test.yml
shellcheck -x scripts/*.sh scripts/lib/*.sh .ci/run
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
"$here/kafka-cluster.sh" up
# test-hooks: the filter that shows every verdict and the injected task failure.
cargo test --workspace --features flotilla/test-hooks
cat target/rolling-restart.txt
# The chaos run starts a Kafka cluster of its own: cluster b, which only the multi-cluster
# tests use, makes room for it (the next run starts it again, in about 15 s).
KAFKA_CLUSTER_NAME=b "$here/kafka-cluster.sh" down
# A short chaos run (kill and pause faults, fixed seed) must come out valid.
"$here/chaos.sh" --time 60 --seed 42 --nemesis kill,kill-leader,pause
echo "all tests passed in $((SECONDS - start))s"
