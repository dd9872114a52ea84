#!/usr/bin/env bash
# A real Apache Kafka cluster on loopback for integration tests and local development:
# 3 combined broker+controller nodes (KRaft, no ZooKeeper), replication factor 3 and
# min.insync.replicas 2 by default.
#
#   scripts/kafka-cluster.sh up         start it; a no-op when it is already up. Waits
#                                       until all 3 brokers are registered and answer.
#                                       The last line on stdout is the bootstrap list.
#   scripts/kafka-cluster.sh status     one line per broker, then the bootstrap list;
#                                       exit 0 only if all 3 are alive
#   scripts/kafka-cluster.sh down       stop the brokers this script started (by pid)
#                                       and delete the cluster's data
#   scripts/kafka-cluster.sh add-broker ID
#                                       start a broker-only node ID (4 to 9) in the running
#                                       cluster, as an operator adding a broker would; waits
#                                       until it is registered and unfenced
#   scripts/kafka-cluster.sh remove-broker ID
#                                       stop broker ID (4 to 9), unregister it from the
#                                       cluster and delete its data
#   scripts/kafka-cluster.sh libs       print the directory of Kafka's jars, for
#                                       java -cp "$(scripts/kafka-cluster.sh libs)/*" ...
#   scripts/kafka-cluster.sh run-class CLASS [ARGS...]
#                                       run a Kafka Java class (a tool such as
#                                       org.apache.kafka.tools.TopicCommand) with a small
#                                       heap; it logs warnings to stderr only
#
# Kafka's jars come from Maven Central through mvn (scripts/lib/kafka-pom.xml) into
# $FLOTILLA_CACHE/kafka-$KAFKA_VERSION/libs, once; nothing else is downloaded.
#
# Environment:
#   KAFKA_VERSION        Apache Kafka version (default 4.3.1: the newest 4.x for which
#                        both kafka_2.13 and kafka-tools are on Maven Central)
#   KAFKA_LOG4J_VERSION  log4j2 version of the logging binding (default 2.25.4, the
#                        version Kafka 4.3.1 itself depends on)
#   KAFKA_HOST           address the brokers listen on and advertise (default 127.0.0.1;
#                        the chaos harness uses its network bridge's address)
#   KAFKA_BASE_PORT      brokers listen on BASE..BASE+2, controllers on BASE+100..BASE+102
#                        (default 39092)
#   KAFKA_START_TIMEOUT  seconds `up` waits for the cluster (default 120)
#   KAFKA_STOP_TIMEOUT   seconds `down` waits after SIGTERM before SIGKILL (default 30)
#   FLOTILLA_CACHE       cache directory (default ~/.cache/flotilla)
#   FLOTILLA_KAFKA_DIR   cluster state: node1..node3 with config, data, logs, pid
#                        (default $FLOTILLA_CACHE/cluster)
#   KAFKA_TOOL_HEAP      heap flags of run-class tools (default "-Xms32m -Xmx256m"; the
#                        benchmark gives its load generators more)
#   JAVA_HOME            Java to use (default: java on PATH); Java 17 or newer
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${KAFKA_VERSION:-4.3.1}
log4j_version=${KAFKA_LOG4J_VERSION:-2.25.4}
cache=$(realpath -m "${FLOTILLA_CACHE:-$HOME/.cache/flotilla}")
dist=$cache/kafka-$version
libs=$dist/libs
state=$(realpath -m "${FLOTILLA_KAFKA_DIR:-$cache/cluster}")
host=${KAFKA_HOST:-127.0.0.1}
base_port=${KAFKA_BASE_PORT:-39092}
start_timeout=${KAFKA_START_TIMEOUT:-120}
stop_timeout=${KAFKA_STOP_TIMEOUT:-30}
nodes=(1 2 3)
if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then java=$JAVA_HOME/bin/java; else java=java; fi
# shellcheck source=scripts/lib/maven-fetch.sh
. "$here/lib/maven-fetch.sh"

die() {
  echo "kafka-cluster: $*" >&2
  exit 1
}
say() { echo "kafka-cluster: $*" >&2; }

if ! [[ $base_port =~ ^[0-9]+$ ]] || ((base_port < 1 || base_port + 102 > 65535)); then
  die "KAFKA_BASE_PORT must be a port number (at most 65433), not '$base_port'"
fi
[[ $start_timeout =~ ^[0-9]+$ ]] || die "KAFKA_START_TIMEOUT must be a number of seconds"
[[ $stop_timeout =~ ^[0-9]+$ ]] || die "KAFKA_STOP_TIMEOUT must be a number of seconds"

broker_port() { echo $((base_port + $1 - 1)); }
controller_port() { echo $((base_port + 100 + $1 - 1)); }
bootstrap_list() {
  local list=() i
  for i in "${nodes[@]}"; do list+=("$host:$(broker_port "$i")"); done
  (IFS=,; echo "${list[*]}")
}

# ---------------------------------------------------------------------------------------
# Fetching Kafka

pom_text() {
  [[ -f $here/lib/kafka-pom.xml ]] || die "missing $here/lib/kafka-pom.xml"
  sed -e "s/@KAFKA_VERSION@/$version/g" -e "s/@LOG4J_VERSION@/$log4j_version/g" \
    "$here/lib/kafka-pom.xml"
}

# Brokers: INFO and up to server.log in the node's directory (kafka.logs.dir), rolled at
# 20 MB; nothing on stdout.
broker_log_config() {
  cat <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka-cluster.sh: logging of the local Kafka brokers. -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="FILE" fileName="${sys:kafka.logs.dir}/server.log"
                 filePattern="${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.clients.NetworkClient" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="FILE"/></Root>
  </Loggers>
</Configuration>
XML
}

# Tools (run-class): warnings and errors to stderr, so their stdout stays parseable.
tool_log_config() {
  cat <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka-cluster.sh: logging of Kafka tools run by run-class. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="STDERR" target="SYSTEM_ERR">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="STDERR"/></Root>
  </Loggers>
</Configuration>
XML
}

# Identifies what a complete fetch contains: a change to the pom or the log configs
# fetches again.
fetch_stamp() {
  { pom_text; broker_log_config; tool_log_config; } | sha256sum | cut -c1-32
}

# The log configurations live beside the jars and are part of the stamp.
write_log_configs() {
  broker_log_config >"$dist/log4j2-broker.xml"
  tool_log_config >"$dist/log4j2-tools.xml"
}

fetch() {
  command -v "$java" >/dev/null || die "java not found (run scripts/install-deps.sh)"
  maven_fetch "Apache Kafka $version" "$dist" "$(fetch_stamp)" pom_text write_log_configs \
    "kafka_2.13-$version.jar" "kafka-tools-$version.jar"
}

# A Kafka tool run by this script itself (start-up checks): small, quick to start.
java_tool() {
  "$java" -Xms32m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dist/log4j2-tools.xml" -cp "$libs/*" "$@"
}

# ---------------------------------------------------------------------------------------
# Processes

pid_of() {
  local pid
  pid=$(cat "$state/node$1/pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
  return 0
}

# True if node $1's pid file names a live Kafka broker started with this node's config,
# so a reused pid never counts (and is never signalled).
alive() {
  local pid cmd
  pid=$(pid_of "$1")
  [[ -n $pid ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *" kafka.Kafka $state/node$1/server.properties"* ]]
}
any_alive() {
  local i
  for i in "${nodes[@]}"; do alive "$i" && return 0; done
  return 1
}
all_alive() {
  local i
  for i in "${nodes[@]}"; do alive "$i" || return 1; done
}

# Every broker the controllers know, one line each with its fenced state.
broker_registrations() {
  timeout 30 "$java" -Xms32m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$dist/log4j2-tools.xml" -cp "$libs/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$(bootstrap_list)" \
    --command-config "$state/probe.properties" 2>/dev/null
}

# The cluster is usable when every broker is registered with the controllers, unfenced,
# and answers on its listener.
cluster_answers() {
  local out
  out=$(broker_registrations) || return 1
  [[ $(grep -c '(id: [0-9]* rack: .* isFenced: false)' <<<"$out") -eq ${#nodes[@]} ]]
}

# Serialises up and down on $state/.lock. `down` deletes the state directory, lock file
# included, so after the lock is won it must still be the file at that path; if not,
# lock the new one.
lock_state() {
  while :; do
    mkdir -p "$state"
    exec 9>>"$state/.lock"
    if ! flock -n 9; then
      say "waiting for another kafka-cluster.sh ($state/.lock)"
      flock -w $((start_timeout + 900)) 9 || die "timed out waiting for $state/.lock"
    fi
    [[ /proc/self/fd/9 -ef $state/.lock ]] && return
    exec 9>&-
  done
}

# write_config ID [broker]: a combined broker+controller node, or a broker-only node.
write_config() {
  local i=$1 dir="$state/node$1" voters=() j roles=broker,controller listeners
  listeners="PLAINTEXT://$host:$(broker_port "$1"),CONTROLLER://$host:$(controller_port "$1")"
  if [[ ${2:-} == broker ]]; then
    roles=broker
    listeners="PLAINTEXT://$host:$(broker_port "$1")"
  fi
  for j in "${nodes[@]}"; do voters+=("$j@$host:$(controller_port "$j")"); done
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
# Written by scripts/kafka-cluster.sh; rewritten on every fresh start.
node.id=$i
process.roles=$roles
listeners=$listeners
advertised.listeners=PLAINTEXT://$host:$(broker_port "$i")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
log.dirs=$dir/data

num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=12
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0

# Light on a small machine.
num.network.threads=2
num.io.threads=4
background.threads=4
log.segment.bytes=16777216
log.retention.hours=24
log.cleaner.dedupe.buffer.size=33554432
PROPS
}

start_node() {
  local i=$1 dir="$state/node$1"
  rm -f "$dir/pid"
  # setsid: the broker outlives this script and the caller's terminal or process group.
  # The inner shell writes its own pid, which exec hands to the JVM.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$1" && shift && exec "$@"' kafka-node "$dir/pid" \
    "$java" -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Dkafka.logs.dir="$dir" \
    -Dlog4j2.configurationFile="$dist/log4j2-broker.xml" \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >"$dir/stdout.log" 2>&1 8>&- 9>&- &
}

node_logs() {
  local i f
  for i in "${nodes[@]}"; do
    for f in "$state/node$i/stdout.log" "$state/node$i/server.log" "$state/node$i/kafka.log"; do
      [[ -s $f ]] || continue
      echo "--- broker $i: last lines of $f" >&2
      tail -n 25 "$f" >&2
    done
  done
}

# The 3 combined nodes and any broker added with add-broker.
all_nodes() {
  local dir ids=("${nodes[@]}")
  for dir in "$state"/node[4-9]; do [[ -d $dir ]] && ids+=("${dir##*/node}"); done
  echo "${ids[@]}"
}

# SIGTERM to the given brokers (default: every broker of this cluster), wait for them,
# SIGKILL what is left.
stop_all() {
  local i pid pids=() targets
  if (($#)); then targets=("$@"); else read -ra targets <<<"$(all_nodes)"; fi
  for i in "${targets[@]}"; do
    if alive "$i"; then
      pid=$(pid_of "$i")
      pids+=("$i:$pid")
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  ((${#pids[@]})) || return 0
  say "stopping ${#pids[@]} broker(s)"
  local deadline=$((SECONDS + stop_timeout)) entry left
  while :; do
    left=0
    for entry in "${pids[@]}"; do alive "${entry%%:*}" && left=1; done
    ((left)) || return 0
    ((SECONDS < deadline)) || break
    sleep 0.2
  done
  for entry in "${pids[@]}"; do
    if alive "${entry%%:*}"; then
      say "broker ${entry%%:*} (pid ${entry#*:}) did not stop in ${stop_timeout}s; SIGKILL"
      kill -KILL "${entry#*:}" 2>/dev/null || true
    fi
  done
  deadline=$((SECONDS + 10))
  for entry in "${pids[@]}"; do
    while alive "${entry%%:*}"; do
      ((SECONDS < deadline)) || die "broker ${entry%%:*} (pid ${entry#*:}) survives SIGKILL"
      sleep 0.1
    done
  done
}

port_in_use() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* ]] || break
  done
  echo "$id"
}

# ---------------------------------------------------------------------------------------
# Commands

cmd_up() {
  fetch
  lock_state
  if all_alive; then
    printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n' >"$state/probe.properties"
    if cluster_answers; then
      say "kafka cluster already up"
      bootstrap_list
      return
    fi
    say "brokers are running but the cluster does not answer; starting it afresh"
  elif [[ -n $(find "$state" -mindepth 1 -maxdepth 1 -name 'node*' -print -quit) ]]; then
    say "found a stopped or partial cluster in $state; starting it afresh"
  fi
  stop_all
  rm -rf "${state:?}"/node* "$state/probe.properties"

  local i port started=$SECONDS
  for i in "${nodes[@]}"; do
    for port in "$(broker_port "$i")" "$(controller_port "$i")"; do
      port_in_use "$port" && die "$host:$port is already in use by another process; \
set KAFKA_BASE_PORT or stop it"
    done
  done
  printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=10000\nsocket.connection.setup.timeout.ms=1000\nsocket.connection.setup.timeout.max.ms=2000\n' \
    >"$state/probe.properties"

  local cluster_id formats=()
  cluster_id=$(new_cluster_id)
  for i in "${nodes[@]}"; do
    write_config "$i"
    java_tool kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$state/node$i/server.properties" >"$state/node$i/format.log" 2>&1 8>&- 9>&- &
    formats+=("$!")
  done
  for i in "${!formats[@]}"; do
    wait "${formats[$i]}" || {
      cat "$state/node${nodes[$i]}/format.log" >&2
      die "formatting the storage of broker ${nodes[$i]} failed"
    }
  done
  for i in "${nodes[@]}"; do start_node "$i"; done
  say "starting Kafka $version: 3 brokers in $state (cluster id $cluster_id)"

  # Every node must have written its pid before anything else looks at it.
  local deadline=$((SECONDS + 10))
  for i in "${nodes[@]}"; do
    until [[ -n $(pid_of "$i") ]]; do
      ((SECONDS < deadline)) || die "broker $i did not start (no pid file)"
      sleep 0.05
    done
  done

  deadline=$((SECONDS + start_timeout))
  until cluster_answers; do
    for i in "${nodes[@]}"; do
      if ! alive "$i"; then
        node_logs
        stop_all
        die "broker $i exited during start-up (logs above, in $state/node$i)"
      fi
    done
    if ((SECONDS >= deadline)); then
      node_logs
      stop_all
      die "cluster not ready within ${start_timeout}s (logs above and in $state/node*)"
    fi
    sleep 1
  done
  say "kafka cluster up in $((SECONDS - started))s"
  bootstrap_list
}

# True when broker $1 is registered with the controllers and unfenced.
broker_unfenced() {
  local out
  out=$(broker_registrations) || return 1
  grep -q "(id: $1 rack: .* isFenced: false)" <<<"$out"
}

extra_broker_id() {
  [[ ${1:-} =~ ^[4-9]$ ]] || die "an added broker's id is 4 to 9, not '${1:-}'"
}

cmd_add_broker() {
  local i=$1 cluster_id deadline
  extra_broker_id "$i"
  fetch
  lock_state
  all_alive || die "the cluster is not up (run: $0 up)"
  alive "$i" && die "broker $i is already running"
  cluster_id=$(sed -n 's/^cluster.id=//p' "$state/node1/data/meta.properties")
  [[ -n $cluster_id ]] || die "cannot read the cluster id from $state/node1/data/meta.properties"
  rm -rf "${state:?}/node$i"
  write_config "$i" broker
  java_tool kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$state/node$i/server.properties" >"$state/node$i/format.log" 2>&1 8>&- 9>&- ||
    die "formatting the storage of broker $i failed (see $state/node$i/format.log)"
  start_node "$i"
  deadline=$((SECONDS + start_timeout))
  until broker_unfenced "$i"; do
    if ((SECONDS >= deadline)) || { [[ -n $(pid_of "$i") ]] && ! alive "$i"; }; then
      tail -n 25 "$state/node$i/server.log" >&2 || true
      stop_all "$i"
      die "broker $i did not join the cluster (logs in $state/node$i)"
    fi
    sleep 0.5
  done
  say "broker $i joined at $host:$(broker_port "$i")"
}

cmd_remove_broker() {
  local i=$1
  extra_broker_id "$i"
  fetch
  lock_state
  [[ -d $state/node$i ]] || die "there is no broker $i to remove"
  stop_all "$i"
  java_tool org.apache.kafka.tools.ClusterTool unregister --bootstrap-server "$(bootstrap_list)" \
    --id "$i" >"$state/unregister.log" 2>&1 8>&- 9>&- ||
    die "stopped broker $i but could not unregister it (see $state/unregister.log)"
  rm -rf "${state:?}/node$i"
  say "broker $i stopped and unregistered"
}

cmd_status() {
  local i pid ok=0
  for i in "${nodes[@]}"; do
    pid=$(pid_of "$i")
    if alive "$i"; then
      echo "broker $i $host:$(broker_port "$i") pid=$pid alive"
    else
      echo "broker $i $host:$(broker_port "$i") pid=${pid:--} dead"
      ok=1
    fi
  done
  bootstrap_list
  return $ok
}

cmd_down() {
  if [[ ! -d $state ]]; then
    echo "no kafka cluster to stop ($state does not exist)"
    return
  fi
  lock_state
  local had=0
  any_alive && had=1
  stop_all
  rm -rf "$state"
  if ((had)); then
    echo "kafka cluster stopped; removed $state"
  else
    echo "no kafka brokers were running; removed $state"
  fi
}

usage() {
  cat >&2 <<EOF
usage: $0 up | down | status | add-broker ID | remove-broker ID | libs | run-class CLASS [ARGS...]
EOF
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  add-broker) cmd_add_broker "${2:-}" ;;
  remove-broker) cmd_remove_broker "${2:-}" ;;
  libs)
    fetch
    echo "$libs"
    ;;
  run-class)
    shift
    [[ $# -ge 1 ]] || die "run-class needs a class name, e.g. org.apache.kafka.tools.TopicCommand"
    fetch
    # shellcheck disable=SC2086 # KAFKA_TOOL_HEAP is a list of JVM flags
    exec "$java" ${KAFKA_TOOL_HEAP:--Xms32m -Xmx256m} -XX:+UseSerialGC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$dist/log4j2-tools.xml" -cp "$libs/*" "$@"
    ;;
  -h | --help | help) usage ;;
  *)
    usage
    exit 2
    ;;
esac
