#!/usr/bin/env bash
# What flotilla costs a Kafka client, side by side in one run: direct to the local Kafka
# cluster, one flotilla node, a 3-node fleet and Kroxylicious (port-per-broker, no
# filters), interleaved round by round.
#
#   scripts/bench.sh [--quick] [--rounds N] [--targets LIST] [--workloads LIST]
#                    [--baseline BINARY] [--out DIR]
#
#   --quick      about two minutes: one round of small workloads, for development
#   --rounds     rounds of every workload against every target (default 5)
#   --targets    direct,node,fleet,kroxylicious,direct-tls,node-tls (default: the first
#                four; the TLS pair is Kafka's SSL listener direct, and one node with TLS
#                to its clients and to Kafka, compared with each other and, for CPU per
#                GiB, with their plaintext twins)
#   --workloads  produce-1k,produce-100,consume,latency,idle (default all)
#   --baseline   an earlier flotilla binary, measured as one more target (one node), so
#                what an optimization gained is measured in the same run
#   --out        where bench.json and bench.md go (default target/bench/<unix time>)
#
# Workloads: ProducerPerformance with 1 KiB and 100-byte records (acks=all),
# ConsumerPerformance, end-to-end latency at a fixed rate (librdkafka), CPU seconds of the
# proxy processes per GiB moved (/proc), and proxy resident memory with 1,000 idle client
# connections. Prints a Markdown table (also bench.md); the last line is the path of
# bench.json. Starts the local Kafka cluster if it is not running and leaves it running.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
"$here/install-deps.sh"
"$here/lib/kroxylicious.sh" fetch >&2
exec cargo bench --quiet --bench compare -- "$@"
