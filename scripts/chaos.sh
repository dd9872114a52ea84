#!/usr/bin/env bash
# One chaos run against a local flotilla fleet: nodes in their own network namespaces in
# front of a dedicated local Kafka cluster, librdkafka and Java clients producing and
# consuming, faults from a seeded schedule, then recovery, final reads and the checker.
#
#   scripts/chaos.sh [--time SECONDS] [--seed N] [--nodes N] [--nemesis LIST] [--out DIR]
#                    [--no-java] [--runs N]
#
#   --time      seconds of traffic under faults (default 60); recovery and final reads
#               follow
#   --seed      seed of the fault schedule (default: from the clock); the report names it
#   --nodes     fleet size (default 3; 5 also works)
#   --nemesis   comma-separated faults, or `all`: kill, kill-leader, kill-busiest, pause,
#               restart, partition-node, partition-minority, partition-brokers,
#               cut-clients, slow (default kill,kill-leader,pause)
#   --runs      a campaign: N runs on seeds SEED, SEED+1, ..., each in DIR/run-SEED, then
#               one table (DIR/campaign.md, printed) of every run's verdict, the anomalies,
#               and per fault kind and client library the median and maximum time until
#               the library was acknowledged again (DIR defaults to
#               target/chaos/campaign-SEED)
#
# Prints one summary line (valid or not, and why) and, last, the path of report.json (of
# campaign.md for a campaign). Exits 0 only if every run is valid. Needs root (ip netns);
# uses iproute2's ip and tc.
# CHAOS_PROFILE=release builds and tests the release binaries (default: the debug build
# the test suite already made).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
profile=${CHAOS_PROFILE:-dev}
die() {
  echo "chaos: $*" >&2
  exit 2
}

[[ $(id -u) -eq 0 ]] || die "network namespaces need root (run with sudo)"
command -v ip >/dev/null || die "ip (iproute2) not found; run scripts/install-deps.sh"
command -v tc >/dev/null || die "tc (iproute2) not found; run scripts/install-deps.sh"

cd "$root"
cargo build --quiet --profile "$profile" -p flotilla --bin flotilla -p flotilla-jepsen --bin chaos
dir=debug
[[ $profile == dev ]] || dir=$profile
exec "target/$dir/chaos" run --flotilla "target/$dir/flotilla" "$@"
