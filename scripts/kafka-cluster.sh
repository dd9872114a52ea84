#!/usr/bin/env bash
# A real Apache Kafka cluster on loopback for integration tests and local development:
# 3 combined broker+controller nodes (KRaft, no ZooKeeper), replication factor 3 and
# min.insync.replicas 2 by default. Every broker has three listeners for clients, each
# advertising its own port (broker id i, BASE = KAFKA_BASE_PORT):
#
#   PLAINTEXT  BASE+i-1      (39092-39094) also the brokers' own (inter-broker) traffic
#   SASL_SSL   BASE+200+i-1  (39292-39294) SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over
#                            TLS; clients must re-authenticate (KIP-368) within
#                            KAFKA_SASL_REAUTH_MS
#   SSL        BASE+300+i-1  (39392-39394) TLS without SASL (no client certificates)
#
# SASL users, each with PLAIN and both SCRAM credentials: flotilla / flotilla-secret (the
# proxy's service account), alice / alice-secret, bob / bob-secret. There is no authorizer:
# every client may do everything, on every listener.
#
# TLS material (scripts/lib/tls.sh) lives in $FLOTILLA_CACHE/tls (`tls-dir` prints it):
# ca.pem, the CA that clients trust; broker-HOST.pem and .key, the brokers' certificate
# (subjectAltNames KAFKA_HOST, 127.0.0.1 and localhost); and settings for Java clients and
# tools (--command-config): client-sasl-ssl-plain.properties (PLAIN as alice),
# client-sasl-ssl-scram512.properties (SCRAM-SHA-512 as alice) and client-ssl.properties.
# librdkafka before 2.6.1 (so Debian 12's kcat, on 2.0.2) fails every SCRAM login against
# Kafka 4; its PLAIN and SSL work.
#
#   scripts/kafka-cluster.sh up         start it; a no-op when it is already up with this
#                                       configuration. A running cluster with another one
#                                       (say, from before the SASL_SSL and SSL listeners)
#                                       is restarted with it, keeping its data, and gets
#                                       the SCRAM users. Waits until all 3 brokers are
#                                       registered and answer SCRAM logins over SASL_SSL.
#                                       Prints the SASL_SSL and SSL bootstrap lists on
#                                       lines labelled so; the last line on stdout is the
#                                       PLAINTEXT bootstrap list.
#   scripts/kafka-cluster.sh status     one line per broker, the labelled SASL_SSL and SSL
#                                       lists, then the bootstrap list; exit 0 only if all
#                                       3 are alive
#   scripts/kafka-cluster.sh down       stop the brokers this script started (by pid)
#                                       and delete the cluster's data (not the TLS files)
#   scripts/kafka-cluster.sh tls-dir    make the TLS files if they are missing or due for
#                                       renewal, and print their directory
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
# Several independent clusters can run side by side (the multi-cluster proxy's backends):
# KAFKA_CLUSTER_NAME picks one, and every command above acts on that cluster only. The
# cluster `default` (the default) keeps its state in $FLOTILLA_CACHE/cluster and BASE 39092;
# any other name, such as `b`, in $FLOTILLA_CACHE/cluster-NAME with BASE 40092 (so 40092-40094,
# 40292-40294, 40392-40394), so that
#
#   KAFKA_CLUSTER_NAME=b scripts/kafka-cluster.sh up
#
# runs next to the default cluster with nothing else set. A third cluster needs its own
# KAFKA_BASE_PORT as well (say 41092: every cluster uses BASE..BASE+308). Each fresh start
# formats with a new random cluster id; the brokers' racks are zone-1..3 in every cluster;
# the TLS files and SASL users are the same for all of them (one CA and one certificate per
# KAFKA_HOST, so a client that trusts ca.pem reaches every cluster). The state directory
# records its cluster's name, and a command for another name refuses to touch it.
#
# Kafka's jars come from Maven Central through mvn (scripts/lib/kafka-pom.xml) into
# $FLOTILLA_CACHE/kafka-$KAFKA_VERSION/libs, once; nothing else is downloaded.
#
# Environment:
#   KAFKA_CLUSTER_NAME   which local cluster (default `default`): letters, digits, '-' and
#                        '_'; a name other than default changes the defaults of
#                        FLOTILLA_KAFKA_DIR and KAFKA_BASE_PORT (above); messages say
#                        kafka-cluster[NAME]
#   KAFKA_VERSION        Apache Kafka version (default 4.3.1: the newest 4.x for which
#                        both kafka_2.13 and kafka-tools are on Maven Central)
#   KAFKA_LOG4J_VERSION  log4j2 version of the logging binding (default 2.25.4, the
#                        version Kafka 4.3.1 itself depends on)
#   KAFKA_HOST           address the brokers listen on and advertise (default 127.0.0.1;
#                        the chaos harness uses its network bridge's address)
#   KAFKA_BASE_PORT      brokers listen on BASE..BASE+2 (PLAINTEXT), BASE+200..BASE+202
#                        (SASL_SSL) and BASE+300..BASE+302 (SSL), controllers on
#                        BASE+100..BASE+102 (default 39092, or 40092 for a cluster not
#                        named default); added brokers 4 to 9 continue the brokers' ranges
#   KAFKA_SASL_REAUTH_MS connections.max.reauth.ms of the SASL_SSL listener (default
#                        10000, so a test sees re-authentication; 0 turns it off)
#   KAFKA_RACKS          1 (default): broker i gets broker.rack zone-((i-1)%3+1), the
#                        zones scripts/fleet.sh gives its nodes, and the rack-aware replica
#                        selector, so consumers can fetch from a replica in their zone
#                        (KIP-392); 0: no racks
#   KAFKA_START_TIMEOUT  seconds `up` waits for the cluster (default 120)
#   KAFKA_STOP_TIMEOUT   seconds `down` waits after SIGTERM before SIGKILL (default 30)
#   FLOTILLA_CACHE       cache directory (default ~/.cache/flotilla); TLS files in its tls/
#   FLOTILLA_KAFKA_DIR   cluster state: node1..node3 with config, data, logs, pid
#                        (default $FLOTILLA_CACHE/cluster, or $FLOTILLA_CACHE/cluster-NAME
#                        for the cluster KAFKA_CLUSTER_NAME=NAME)
#   KAFKA_TOOL_HEAP      heap flags of run-class tools (default "-Xms32m -Xmx256m"; the
#                        benchmark gives its load generators more)
#   JAVA_HOME            Java to use (default: java on PATH); Java 17 or newer
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster_name=${KAFKA_CLUSTER_NAME:-default}
# Messages name a cluster other than default: kafka-cluster[b]: ..., "kafka cluster b ...".
tag=kafka-cluster
label="kafka cluster"
# How to run this script again for the same cluster, in hints.
self=$0
die() {
  echo "$tag: $*" >&2
  exit 1
}
say() { echo "$tag: $*" >&2; }

[[ $cluster_name =~ ^[A-Za-z0-9_-]+$ ]] ||
  die "KAFKA_CLUSTER_NAME must be letters, digits, '-' and '_', not '$cluster_name'"
if [[ $cluster_name == default ]]; then
  default_state=cluster
  default_base_port=39092
else
  default_state=cluster-$cluster_name
  default_base_port=40092
  tag="kafka-cluster[$cluster_name]"
  label="kafka cluster $cluster_name"
  self="KAFKA_CLUSTER_NAME=$cluster_name $0"
fi
version=${KAFKA_VERSION:-4.3.1}
log4j_version=${KAFKA_LOG4J_VERSION:-2.25.4}
cache=$(realpath -m "${FLOTILLA_CACHE:-$HOME/.cache/flotilla}")
dist=$cache/kafka-$version
libs=$dist/libs
state=$(realpath -m "${FLOTILLA_KAFKA_DIR:-$cache/$default_state}")
host=${KAFKA_HOST:-127.0.0.1}
base_port=${KAFKA_BASE_PORT:-$default_base_port}
start_timeout=${KAFKA_START_TIMEOUT:-120}
stop_timeout=${KAFKA_STOP_TIMEOUT:-30}
sasl_reauth_ms=${KAFKA_SASL_REAUTH_MS:-10000}
racks=${KAFKA_RACKS:-1}
tls_dir=$cache/tls
# The brokers' certificate is per address, since clusters on different KAFKA_HOSTs (the
# chaos harness's) share the cache.
broker_cert=broker-$host
nodes=(1 2 3)
# SASL users as name:password; `up` checks SCRAM logins as probe_user.
sasl_users=(flotilla:flotilla-secret alice:alice-secret bob:bob-secret)
probe_user=alice
if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then java=$JAVA_HOME/bin/java; else java=java; fi
# shellcheck source=scripts/lib/maven-fetch.sh
. "$here/lib/maven-fetch.sh"
# shellcheck source=scripts/lib/tls.sh
. "$here/lib/tls.sh"

# The highest port is added broker 9's SSL listener, BASE+308.
if ! [[ $base_port =~ ^[0-9]+$ ]] || ((base_port < 1 || base_port + 308 > 65535)); then
  die "KAFKA_BASE_PORT must be a port number (at most 65227), not '$base_port'"
fi
[[ $start_timeout =~ ^[0-9]+$ ]] || die "KAFKA_START_TIMEOUT must be a number of seconds"
[[ $stop_timeout =~ ^[0-9]+$ ]] || die "KAFKA_STOP_TIMEOUT must be a number of seconds"
[[ $sasl_reauth_ms =~ ^[0-9]+$ ]] || die "KAFKA_SASL_REAUTH_MS must be a number of milliseconds"
[[ $racks == [01] ]] || die "KAFKA_RACKS must be 1 (brokers in racks zone-1..3) or 0, not '$racks'"

broker_port() { echo $((base_port + $1 - 1)); }
controller_port() { echo $((base_port + 100 + $1 - 1)); }
sasl_ssl_port() { echo $((base_port + 200 + $1 - 1)); }
ssl_port() { echo $((base_port + 300 + $1 - 1)); }
# bootstrap_list [PORT_FUNCTION]: host:port of the 3 brokers (default: PLAINTEXT).
bootstrap_list() {
  local port=${1:-broker_port} list=() i
  for i in "${nodes[@]}"; do list+=("$host:$("$port" "$i")"); done
  (IFS=,; echo "${list[*]}")
}
# What `up` and `status` end with: the labelled TLS lists, then the PLAINTEXT list that
# other scripts and the tests take from the last line.
print_bootstrap_lists() {
  echo "SASL_SSL $(bootstrap_list sasl_ssl_port)"
  echo "SSL $(bootstrap_list ssl_port)"
  bootstrap_list
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
# TLS and SASL

# The brokers' subjectAltNames: KAFKA_HOST, and loopback by address and by name.
broker_sans() {
  local sans=(IP:127.0.0.1 DNS:localhost)
  if [[ $host =~ ^[0-9]+(\.[0-9]+){3}$ ]]; then
    [[ $host == 127.0.0.1 ]] || sans+=("IP:$host")
  elif [[ $host != localhost ]]; then
    sans+=("DNS:$host")
  fi
  (IFS=,; echo "${sans[*]}")
}

# The CA, the brokers' certificate and the client property files in $tls_dir, made when
# missing or due for renewal (scripts/lib/tls.sh); otherwise left as they are.
ensure_tls() {
  command -v openssl >/dev/null || die "openssl not found (run scripts/install-deps.sh)"
  tls_server_cert "$tls_dir" "$broker_cert" "$(broker_sans)" ||
    die "could not make the brokers' TLS certificate in $tls_dir"
  write_if_changed "$tls_dir/client-sasl-ssl-plain.properties" client_security PLAIN "$probe_user"
  write_if_changed "$tls_dir/client-sasl-ssl-scram512.properties" \
    client_security SCRAM-SHA-512 "$probe_user"
  write_if_changed "$tls_dir/client-ssl.properties" client_security SSL
}

# write_if_changed FILE COMMAND...: FILE becomes COMMAND's output, replaced whole (a client
# reading it never sees half a file) and only when that differs.
write_if_changed() {
  local file=$1 tmp
  shift
  tmp=$(mktemp "$file.XXXXXX")
  "$@" >"$tmp"
  if cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
  else
    chmod 644 "$tmp"
    mv "$tmp" "$file"
  fi
}

user_password() {
  local entry
  for entry in "${sasl_users[@]}"; do
    [[ ${entry%%:*} == "$1" ]] && { echo "${entry#*:}"; return; }
  done
  die "no SASL user '$1'"
}

# client_security PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 USER, or client_security SSL: a Java
# client's settings for the SASL_SSL listener as USER, or for the SSL listener.
client_security() {
  local mechanism=$1 user=${2:-} module=org.apache.kafka.common.security.plain.PlainLoginModule
  echo "# Written by scripts/kafka-cluster.sh: a Java client of the local Kafka cluster's"
  if [[ $mechanism == SSL ]]; then
    echo "# SSL listener (bootstrap: the SSL line of scripts/kafka-cluster.sh status)."
    echo "security.protocol=SSL"
  else
    echo "# SASL_SSL listener as $user (bootstrap: the SASL_SSL line of kafka-cluster.sh status)."
    [[ $mechanism == SCRAM-* ]] && module=org.apache.kafka.common.security.scram.ScramLoginModule
    printf '%s\n' "security.protocol=SASL_SSL" "sasl.mechanism=$mechanism" \
      "sasl.jaas.config=$module required username=\"$user\" password=\"$(user_password "$user")\";"
  fi
  printf '%s\n' "ssl.truststore.type=PEM" "ssl.truststore.location=$tls_dir/ca.pem"
}

# The brokers' side of the SASL_SSL and SSL listeners, for the node in directory $1.
tls_sasl_config() {
  local plain="org.apache.kafka.common.security.plain.PlainLoginModule required" entry
  local scram=org.apache.kafka.common.security.scram.ScramLoginModule
  for entry in "${sasl_users[@]}"; do plain+=" user_${entry%%:*}=\"${entry#*:}\""; done
  cat <<PROPS

# TLS for the SASL_SSL and SSL listeners: one PEM file with the key and the chain. The
# certificate's digest is here so that a renewed certificate is a changed configuration:
# $(sha256sum <"$tls_dir/$broker_cert.pem" | cut -c1-64)
ssl.keystore.type=PEM
ssl.keystore.location=$1/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls_dir/ca.pem
# SASL on SASL_SSL only. PLAIN checks the users listed here; SCRAM checks the credentials in
# the cluster metadata (made by \`kafka-storage format --add-scram\` or kafka-configs).
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram required;
# KIP-368: a client that does not re-authenticate within this many ms is disconnected.
listener.name.sasl_ssl.connections.max.reauth.ms=$sasl_reauth_ms
PROPS
}

# kafka-storage format arguments that put both SCRAM credentials of every SASL user into
# the new cluster's metadata, one per line.
scram_format_args() {
  local entry mechanism
  for entry in "${sasl_users[@]}"; do
    for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
      printf '%s\n' --add-scram "$mechanism=[name=${entry%%:*},password=${entry#*:}]"
    done
  done
}

# The SCRAM credentials of every SASL user, through the PLAINTEXT listener, for a cluster
# formatted without them. ConfigCommand alters one user per run, and a request may alter a
# user only once, so: a wave of parallel runs per mechanism.
add_scram_users() {
  local mechanism entry pids=() pid
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    for entry in "${sasl_users[@]}"; do
      java_tool kafka.admin.ConfigCommand --bootstrap-server "$(bootstrap_list)" --alter \
        --entity-type users --entity-name "${entry%%:*}" \
        --add-config "$mechanism=[password=${entry#*:}]" \
        >"$state/scram-${entry%%:*}-$mechanism.log" 2>&1 8>&- 9>&- &
      pids+=("$!")
    done
    for pid in "${pids[@]}"; do
      wait "$pid" || die "adding the SCRAM users failed (see $state/scram-*.log)"
    done
    pids=()
  done
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

# broker_registrations [sasl]: every broker the controllers know, one line each with its
# fenced state and its answer (or error), asked over PLAINTEXT, or with sasl over SASL_SSL
# as probe_user with SCRAM-SHA-512, which logs in to every broker.
broker_registrations() {
  local list props=$state/probe.properties
  list=$(bootstrap_list)
  if [[ ${1:-} == sasl ]]; then
    list=$(bootstrap_list sasl_ssl_port)
    props=$state/probe-sasl.properties
  fi
  timeout 30 "$java" -Xms32m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$dist/log4j2-tools.xml" -cp "$libs/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$list" \
    --command-config "$props" 2>/dev/null
}

# cluster_answers [sasl]: every broker is registered with the controllers, unfenced, and
# answers on the listener asked (a failed login or connection is "-> ERROR", not "-> (").
# A broker opens its listeners together, so an answer on SASL_SSL means PLAINTEXT too.
cluster_answers() {
  local out
  out=$(broker_registrations "${1:-}") || return 1
  [[ $(grep -c '(id: [0-9]* rack: .* isFenced: false) -> (' <<<"$out") -eq ${#nodes[@]} ]]
}

# Client settings of the checks: short timeouts, since they are retried. The SASL_SSL one
# allows a TLS handshake and a SCRAM exchange on a loaded machine.
write_probe_properties() {
  printf '%s\n' request.timeout.ms=5000 default.api.timeout.ms=10000 \
    socket.connection.setup.timeout.ms=1000 socket.connection.setup.timeout.max.ms=2000 \
    >"$state/probe.properties"
  {
    printf '%s\n' request.timeout.ms=5000 default.api.timeout.ms=10000 \
      socket.connection.setup.timeout.ms=5000 socket.connection.setup.timeout.max.ms=10000
    client_security SCRAM-SHA-512 "$probe_user"
  } >"$state/probe-sasl.properties"
}

# Serialises up and down on $state/.lock. `down` deletes the state directory, lock file
# included, so after the lock is won it must still be the file at that path; if not,
# lock the new one. Then the directory belongs to this cluster (check_owner), from now on.
lock_state() {
  while :; do
    mkdir -p "$state"
    exec 9>>"$state/.lock"
    if ! flock -n 9; then
      say "waiting for another kafka-cluster.sh ($state/.lock)"
      flock -w $((start_timeout + 900)) 9 || die "timed out waiting for $state/.lock"
    fi
    [[ /proc/self/fd/9 -ef $state/.lock ]] && break
    exec 9>&-
  done
  check_owner
  [[ -f $state/cluster-name ]] || echo "$cluster_name" >"$state/cluster-name"
}

# A state directory records the name of its cluster; one shared by mistake (an explicit
# FLOTILLA_KAFKA_DIR for two names) must not be restarted or deleted as another cluster.
# A directory from before names were recorded is taken as this cluster's.
check_owner() {
  local owner
  owner=$(cat "$state/cluster-name" 2>/dev/null || true)
  [[ -z $owner || $owner == "$cluster_name" ]] ||
    die "$state holds the cluster '$owner', not '$cluster_name'" \
      "(check KAFKA_CLUSTER_NAME and FLOTILLA_KAFKA_DIR)"
}

# write_config ID [broker]: a combined broker+controller node, or a broker-only node.
write_config() {
  local dir="$state/node$1"
  mkdir -p "$dir/data"
  node_config "$@" >"$dir/server.properties"
  (umask 077 && cat "$tls_dir/$broker_cert.key" "$tls_dir/$broker_cert.pem" >"$dir/keystore.pem")
}

# True when nodes 1 to 3 have the configuration this script writes now: not when an older
# version of it wrote theirs, nor after a change of KAFKA_HOST, KAFKA_SASL_REAUTH_MS,
# KAFKA_RACKS or the certificate.
configs_current() {
  local i
  for i in "${nodes[@]}"; do
    [[ $(node_config "$i") == "$(cat "$state/node$i/server.properties" 2>/dev/null)" ]] || return 1
  done
}

# node_config ID [broker]: the server.properties of write_config.
node_config() {
  local i=$1 dir="$state/node$1" voters=() j roles=broker,controller listeners advertised
  advertised="PLAINTEXT://$host:$(broker_port "$i"),SASL_SSL://$host:$(sasl_ssl_port "$i")"
  advertised+=",SSL://$host:$(ssl_port "$i")"
  listeners="$advertised,CONTROLLER://$host:$(controller_port "$i")"
  if [[ ${2:-} == broker ]]; then
    roles=broker
    listeners=$advertised
  fi
  for j in "${nodes[@]}"; do voters+=("$j@$host:$(controller_port "$j")"); done
  cat <<PROPS
# Written by scripts/kafka-cluster.sh; rewritten on every fresh start and when it changes.
node.id=$i
process.roles=$roles
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
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
  if [[ $racks == 1 ]]; then
    printf 'broker.rack=zone-%d\n' $(((i - 1) % 3 + 1))
    echo "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"
  fi
  tls_sasl_config "$dir"
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
  ensure_tls
  lock_state
  write_probe_properties
  if all_alive; then
    if configs_current && cluster_answers sasl; then
      say "$label already up"
      print_bootstrap_lists
      return
    fi
    if cluster_answers; then
      update_in_place
      print_bootstrap_lists
      return
    fi
    say "brokers are running but the cluster does not answer; starting it afresh"
  elif [[ -n $(find "$state" -mindepth 1 -maxdepth 1 -name 'node*' -print -quit) ]]; then
    say "found a stopped or partial cluster in $state; starting it afresh"
  fi
  start_afresh
  print_bootstrap_lists
}

# A new cluster: format, start, wait. Its metadata has the SCRAM users from the start.
start_afresh() {
  stop_all
  rm -rf "${state:?}"/node*
  local i started=$SECONDS cluster_id
  check_ports_free broker_port controller_port sasl_ssl_port ssl_port
  cluster_id=$(new_cluster_id)
  for i in "${nodes[@]}"; do write_config "$i"; done
  format_nodes "$cluster_id"
  for i in "${nodes[@]}"; do start_node "$i"; done
  say "starting Kafka $version: 3 brokers in $state (cluster id $cluster_id)"
  await_pids
  await_cluster cluster_answers sasl
  say "$label up in $((SECONDS - started))s"
}

# A running cluster that answers but has an older configuration (say, an older version of
# this script wrote it) or no SCRAM users: restart it with the current configuration,
# keeping its data, and add the users if their SCRAM logins fail. They must then work.
update_in_place() {
  local i started=$SECONDS
  if ! configs_current; then
    say "the running cluster's configuration is out of date; restarting it (data kept)"
    stop_all "${nodes[@]}"
    for i in "${nodes[@]}"; do
      write_config "$i"
      start_node "$i"
    done
    await_pids
    await_cluster cluster_answers
  fi
  if ! cluster_answers sasl; then
    say "adding the SASL users' SCRAM credentials"
    add_scram_users
    await_cluster cluster_answers sasl
  fi
  say "$label updated in $((SECONDS - started))s"
}

# check_ports_free PORT_FUNCTION...: no other process listens on these ports of nodes 1-3.
check_ports_free() {
  local i port_of port port_hint=
  if [[ $cluster_name != default && -z ${KAFKA_BASE_PORT:-} ]]; then
    port_hint=" (every cluster not named default has base port $default_base_port unless"
    port_hint+=" KAFKA_BASE_PORT gives it another, such as 41092)"
  fi
  for i in "${nodes[@]}"; do
    for port_of in "$@"; do
      port=$("$port_of" "$i")
      if port_in_use "$port"; then
        die "$host:$port is already in use by another process; set KAFKA_BASE_PORT or stop it$port_hint"
      fi
    done
  done
}

# Formats nodes 1-3 for cluster id $1, in parallel, with the SASL users' SCRAM credentials.
format_nodes() {
  local i formats=() scram
  mapfile -t scram < <(scram_format_args)
  for i in "${nodes[@]}"; do
    java_tool kafka.tools.StorageTool format -t "$1" -c "$state/node$i/server.properties" \
      "${scram[@]}" >"$state/node$i/format.log" 2>&1 8>&- 9>&- &
    formats+=("$!")
  done
  for i in "${!formats[@]}"; do
    wait "${formats[$i]}" || {
      cat "$state/node${nodes[$i]}/format.log" >&2
      die "formatting the storage of broker ${nodes[$i]} failed"
    }
  done
}

# Every node must have written its pid before anything else looks at it.
await_pids() {
  local i deadline=$((SECONDS + 10))
  for i in "${nodes[@]}"; do
    until [[ -n $(pid_of "$i") ]]; do
      ((SECONDS < deadline)) || die "broker $i did not start (no pid file)"
      sleep 0.05
    done
  done
}

# await_cluster CHECK...: waits up to KAFKA_START_TIMEOUT for the command CHECK to succeed;
# if a broker exits or time runs out, shows the logs, stops the brokers and fails.
await_cluster() {
  local i deadline=$((SECONDS + start_timeout))
  until "$@"; do
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
  ensure_tls
  lock_state
  all_alive || die "the cluster is not up (run: $self up)"
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
  check_owner
  for i in "${nodes[@]}"; do
    pid=$(pid_of "$i")
    if alive "$i"; then
      echo "broker $i $host:$(broker_port "$i") pid=$pid alive"
    else
      echo "broker $i $host:$(broker_port "$i") pid=${pid:--} dead"
      ok=1
    fi
  done
  print_bootstrap_lists
  return $ok
}

cmd_down() {
  if [[ ! -d $state ]]; then
    echo "no $label to stop ($state does not exist)"
    return
  fi
  lock_state
  local had=0 of_cluster=
  [[ $cluster_name == default ]] || of_cluster=" of cluster $cluster_name"
  any_alive && had=1
  stop_all
  rm -rf "$state"
  if ((had)); then
    echo "$label stopped; removed $state"
  else
    echo "no kafka brokers${of_cluster} were running; removed $state"
  fi
}

usage() {
  cat >&2 <<EOF
usage: $0 up | down | status | tls-dir | add-broker ID | remove-broker ID | libs |
       run-class CLASS [ARGS...]
(KAFKA_CLUSTER_NAME=NAME for a cluster other than default; see the top of this script)
EOF
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  tls-dir)
    ensure_tls
    echo "$tls_dir"
    ;;
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
