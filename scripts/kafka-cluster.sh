#!/usr/bin/env bash
# A local Apache Kafka cluster for development and tests: 3 combined broker+controller
# nodes (KRaft) on loopback, replication factor 3 and min.insync.replicas 2 by default.
#
#   scripts/kafka-cluster.sh up          start it (a no-op if it is running); prints the
#                                        bootstrap list last
#   scripts/kafka-cluster.sh status      one line per broker, then the bootstrap list
#   scripts/kafka-cluster.sh down        stop the brokers it started (by pid), delete data
#   scripts/kafka-cluster.sh libs        the directory of Kafka's jars
#   scripts/kafka-cluster.sh run-class CLASS ARGS...   run a Kafka Java tool
#
# Kafka comes from Maven Central through mvn, into ${FLOTILLA_CACHE:-~/.cache/flotilla}.
# Environment: KAFKA_VERSION (default 4.3.1), KAFKA_BASE_PORT (default 39092: brokers
# listen on 39092-39094, controllers on 39192-39194), FLOTILLA_KAFKA_DIR (cluster state).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${KAFKA_VERSION:-4.3.1}
cache=${FLOTILLA_CACHE:-$HOME/.cache/flotilla}
dist="$cache/kafka-$version"
libs="$dist/libs"
state=${FLOTILLA_KAFKA_DIR:-$cache/cluster}
base_port=${KAFKA_BASE_PORT:-39092}
nodes=(1 2 3)

die() { echo "kafka-cluster: $*" >&2; exit 1; }
broker_port() { echo $((base_port + $1 - 1)); }
controller_port() { echo $((base_port + 100 + $1 - 1)); }
bootstrap_list() {
  local list=() i
  for i in "${nodes[@]}"; do list+=("127.0.0.1:$(broker_port "$i")"); done
  (IFS=,; echo "${list[*]}")
}

fetch() {
  [[ -f $dist/.complete ]] && return
  command -v mvn >/dev/null || die "mvn not found; run scripts/install-deps.sh"
  echo "fetching Apache Kafka $version from Maven Central into $dist" >&2
  mkdir -p "$dist"
  sed "s/KAFKA_VERSION/$version/" "$here/lib/kafka-pom.xml" >"$dist/pom.xml"
  if ! mvn -q -B -f "$dist/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs" >"$dist/fetch.log" 2>&1; then
    grep ERROR "$dist/fetch.log" | head -5 >&2
    die "could not fetch Kafka $version (full log: $dist/fetch.log)"
  fi
  cp "$here/lib/log4j2.yaml" "$dist/log4j2.yaml"
  touch "$dist/.complete"
}

java_tool() {
  java -Xms64m -Xmx256m -Dlog4j2.configurationFile="$dist/log4j2.yaml" -cp "$libs/*" "$@"
}

pid_of() { cat "$state/node$1/pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }
all_alive() { local i; for i in "${nodes[@]}"; do alive "$i" || return 1; done; }

# The cluster is usable when every broker is registered and answers.
cluster_answers() {
  local out
  out=$(java_tool org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$(bootstrap_list)" 2>/dev/null) || return 1
  [[ $(grep -c '(id: [0-9]* rack' <<<"$out") -eq ${#nodes[@]} ]]
}

write_config() {
  local i=$1 dir="$state/node$1" voters=() j
  for j in "${nodes[@]}"; do voters+=("$j@127.0.0.1:$(controller_port "$j")"); done
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
node.id=$i
process.roles=broker,controller
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$i"),CONTROLLER://127.0.0.1:$(controller_port "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$i")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
log.dirs=$dir/data
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.segment.bytes=67108864
log.retention.hours=24
PROPS
}

start_node() {
  local i=$1 dir="$state/node$1"
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Dflotilla.log.level=INFO -Dlog4j2.configurationFile="$dist/log4j2.yaml" \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 9>&- &
  echo $! >"$dir/pid"
}

stop_all() {
  local i pid
  for i in "${nodes[@]}"; do
    pid=$(pid_of "$i")
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; fi
  done
  local deadline=$((SECONDS + 30))
  for i in "${nodes[@]}"; do
    pid=$(pid_of "$i")
    [[ -n $pid ]] || continue
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

up() {
  fetch
  mkdir -p "$state"
  exec 9>"$state/.lock"
  flock -w 300 9 || die "another kafka-cluster.sh holds $state/.lock"
  if all_alive && cluster_answers; then
    echo "kafka cluster already up" >&2
    bootstrap_list
    return
  fi
  stop_all
  rm -rf "${state:?}"/node*
  local cluster_id i
  cluster_id=$(java_tool kafka.tools.StorageTool random-uuid)
  for i in "${nodes[@]}"; do
    write_config "$i"
    java_tool kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$state/node$i/server.properties" >/dev/null
    start_node "$i"
  done
  echo "starting Kafka $version (3 brokers) in $state" >&2
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-120}))
  until cluster_answers; do
    for i in "${nodes[@]}"; do
      alive "$i" || { tail -20 "$state/node$i/kafka.log" >&2; die "broker $i exited during start-up"; }
    done
    if ((SECONDS >= deadline)); then
      for i in "${nodes[@]}"; do echo "--- broker $i" >&2; tail -20 "$state/node$i/kafka.log" >&2; done
      die "cluster not ready within ${KAFKA_START_TIMEOUT:-120}s"
    fi
    sleep 0.5
  done
  echo "kafka cluster up" >&2
  bootstrap_list
}

status() {
  local i ok=0
  for i in "${nodes[@]}"; do
    if alive "$i"; then
      echo "broker $i 127.0.0.1:$(broker_port "$i") pid=$(pid_of "$i") alive"
    else
      echo "broker $i 127.0.0.1:$(broker_port "$i") dead"
      ok=1
    fi
  done
  bootstrap_list
  return $ok
}

down() {
  if [[ ! -d $state ]]; then
    echo "no kafka cluster to stop"
    return
  fi
  stop_all
  rm -rf "$state"
  echo "kafka cluster stopped and its data removed"
}

case ${1:-} in
  up) up ;;
  status) status ;;
  down) down ;;
  libs) fetch; echo "$libs" ;;
  run-class)
    shift
    [[ $# -ge 1 ]] || die "run-class needs a class name"
    fetch
    exec java -Xms64m -Xmx256m -Dlog4j2.configurationFile="$dist/log4j2.yaml" -cp "$libs/*" "$@"
    ;;
  *) die "usage: $0 up | status | down | libs | run-class CLASS [ARGS...]" ;;
esac
