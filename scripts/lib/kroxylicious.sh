#!/usr/bin/env bash
# Kroxylicious (https://kroxylicious.io, the Java Kafka proxy) as a plain pass-through proxy
# with no filters, for benchmarking flotilla against it on the same machine.
#
#   scripts/lib/kroxylicious.sh fetch
#       fetch the proxy's jars once into $FLOTILLA_CACHE/kroxylicious-$KROXYLICIOUS_VERSION
#       and compile the launcher; prints the libs directory
#   scripts/lib/kroxylicious.sh start LISTEN_HOST BOOTSTRAP_PORT UPSTREAM_BOOTSTRAP STATE_DIR
#       write STATE_DIR/config.yaml and STATE_DIR/log4j2.xml, start the proxy in the
#       background (log: STATE_DIR/proxy.log, pid: STATE_DIR/pid), wait until all its ports
#       accept connections and print its pid. One virtual cluster, port per broker:
#       clients bootstrap at LISTEN_HOST:BOOTSTRAP_PORT and broker node N is advertised as
#       LISTEN_HOST:BOOTSTRAP_PORT+1+(N-first node id). UPSTREAM_BOOTSTRAP is host:port of a
#       broker of the real cluster (Kroxylicious uses only the first of a comma list).
#   scripts/lib/kroxylicious.sh stop STATE_DIR
#       stop the proxy started with that STATE_DIR (SIGTERM, then SIGKILL), by its pid
#   scripts/lib/kroxylicious.sh version
#       print the Kroxylicious version in use
#
# Kroxylicious binds its listeners on all interfaces (its port-per-broker gateway has no
# bind address setting in 0.12.0); LISTEN_HOST is only the address it advertises.
#
# Only io.kroxylicious:kroxylicious-runtime is on Maven Central, not the application module
# with the main class (kroxylicious-app), so the proxy runs through our own small launcher,
# scripts/lib/KroxyliciousLauncher.java, against the runtime's public API. The jars come
# through mvn (scripts/lib/kroxylicious-pom.xml); nothing else is downloaded.
#
# Environment:
#   KROXYLICIOUS_VERSION        Kroxylicious version (default 0.12.0: the newest
#                               kroxylicious-runtime on Maven Central)
#   KROXYLICIOUS_LOG4J_VERSION  log4j2 version of the logging binding (default 2.24.3, the
#                               version Kroxylicious 0.12.0 itself uses)
#   KROXYLICIOUS_NODE_IDS       the upstream brokers' node ids, FIRST-LAST (default 1-9:
#                               scripts/kafka-cluster.sh's 3 brokers and the 4 to 9 its
#                               add-broker may start). The proxy binds one port per id in
#                               this range at start-up, whether or not that broker exists,
#                               and fails every metadata request (closes the connection)
#                               while the cluster has a broker outside it
#   KROXYLICIOUS_HEAP           maximum heap (default 512m)
#   KROXYLICIOUS_START_TIMEOUT  seconds `start` waits for the ports (default 60)
#   KROXYLICIOUS_STOP_TIMEOUT   seconds `stop` waits after SIGTERM before SIGKILL (default 15)
#   FLOTILLA_CACHE              cache directory (default ~/.cache/flotilla)
#   JAVA_HOME                   Java to use (default: java on PATH); Java 17 or newer
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${KROXYLICIOUS_VERSION:-0.12.0}
log4j_version=${KROXYLICIOUS_LOG4J_VERSION:-2.24.3}
node_ids=${KROXYLICIOUS_NODE_IDS:-1-9}
heap=${KROXYLICIOUS_HEAP:-512m}
start_timeout=${KROXYLICIOUS_START_TIMEOUT:-60}
stop_timeout=${KROXYLICIOUS_STOP_TIMEOUT:-15}
cache=$(realpath -m "${FLOTILLA_CACHE:-$HOME/.cache/flotilla}")
dist=$cache/kroxylicious-$version
libs=$dist/libs
launcher_src=$here/KroxyliciousLauncher.java
if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
  java=$JAVA_HOME/bin/java
  javac=$JAVA_HOME/bin/javac
else
  java=java
  javac=javac
fi
# shellcheck source=scripts/lib/maven-fetch.sh
. "$here/maven-fetch.sh"

die() {
  echo "kroxylicious: $*" >&2
  exit 1
}
say() { echo "kroxylicious: $*" >&2; }

[[ $start_timeout =~ ^[0-9]+$ ]] || die "KROXYLICIOUS_START_TIMEOUT must be a number of seconds"
[[ $stop_timeout =~ ^[0-9]+$ ]] || die "KROXYLICIOUS_STOP_TIMEOUT must be a number of seconds"
if ! [[ $node_ids =~ ^([0-9]+)-([0-9]+)$ ]] || ((10#${BASH_REMATCH[1]} > 10#${BASH_REMATCH[2]})); then
  die "KROXYLICIOUS_NODE_IDS must be FIRST-LAST, e.g. 1-3, not '$node_ids'"
fi
first_node=$((10#${BASH_REMATCH[1]}))
last_node=$((10#${BASH_REMATCH[2]}))

# ---------------------------------------------------------------------------------------
# Fetching Kroxylicious

pom_text() {
  [[ -f $here/kroxylicious-pom.xml ]] || die "missing $here/kroxylicious-pom.xml"
  sed -e "s/@KROXYLICIOUS_VERSION@/$version/g" -e "s/@LOG4J_VERSION@/$log4j_version/g" \
    "$here/kroxylicious-pom.xml"
}

# Identifies what a complete fetch contains: a change to the pom or the launcher fetches
# (and compiles) again.
fetch_stamp() {
  [[ -f $launcher_src ]] || die "missing $launcher_src"
  { pom_text; cat "$launcher_src"; } | sha256sum | cut -c1-32
}

# The launcher is compiled once, so the proxy's JVM does not carry the compiler that
# java's single-file source mode would load into it.
compile_launcher() {
  mkdir -p "$1/launcher"
  "$javac" -nowarn -d "$1/launcher" -cp "$1/*" "$launcher_src" >>"$dist/fetch.log" 2>&1
}

fetch() {
  command -v "$javac" >/dev/null || die "javac not found (a JDK 17 or newer is needed)"
  maven_fetch "Kroxylicious $version" "$dist" "$(fetch_stamp)" pom_text compile_launcher \
    "kroxylicious-runtime-$version.jar"
}

# ---------------------------------------------------------------------------------------
# Configuration

# config_yaml LISTEN_HOST BOOTSTRAP_PORT UPSTREAM_BOOTSTRAP
config_yaml() {
  cat <<YAML
# Written by scripts/lib/kroxylicious.sh: a pass-through proxy, no filters.
virtualClusters:
  - name: bench
    targetCluster:
      bootstrapServers: $3
    gateways:
      - name: plain
        portIdentifiesNode:
          bootstrapAddress: $1:$2
          nodeIdRanges:
            - name: brokers
              start: $first_node
              end: $last_node
    logNetwork: false
    logFrames: false
YAML
}

# Warnings and errors only (nothing per connection or request), to proxy.log through
# stdout.
log_config() {
  cat <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/lib/kroxylicious.sh: logging of the Kroxylicious proxy. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="STDOUT"/></Root>
  </Loggers>
</Configuration>
XML
}

# ---------------------------------------------------------------------------------------
# Processes

pid_of() {
  local pid
  pid=$(cat "$1/pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
  return 0
}

# True if STATE_DIR $1's pid file names a live proxy started with that directory's config,
# so a reused pid never counts (and is never signalled).
alive() {
  local pid cmd
  pid=$(pid_of "$1")
  [[ -n $pid ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *" KroxyliciousLauncher $1/config.yaml"* ]]
}

# True when process $1 is gone, or only its zombie main thread is left.
exited() {
  local tasks
  [[ -e /proc/$1 ]] || return 0
  [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]] || return 1
  tasks=$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  ((tasks <= 1))
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

check_port() {
  if ! [[ $1 =~ ^[0-9]+$ ]] || ((10#$1 < 1 || 10#$1 > 65535)); then die "not a port number: '$1'"; fi
}

cmd_start() {
  (($# == 4)) || die "usage: $0 start LISTEN_HOST BOOTSTRAP_PORT UPSTREAM_BOOTSTRAP STATE_DIR"
  local host=$1 port=$2 upstream=$3 state p ports=() deadline
  check_port "$port"
  port=$((10#$port))
  [[ -n $host && $host != *[[:space:]:]* ]] || die "LISTEN_HOST must be a host name or IPv4 address, not '$host'"
  [[ $upstream =~ ^[^[:space:]]+:[0-9]+(,[^[:space:]]+:[0-9]+)*$ ]] ||
    die "UPSTREAM_BOOTSTRAP must be host:port[,host:port...], not '$upstream'"
  state=$(realpath -m "$4")
  ports=("$port")
  for ((p = port + 1; p <= port + 1 + last_node - first_node; p++)); do ports+=("$p"); done
  check_port "${ports[-1]}"
  fetch
  mkdir -p "$state"
  alive "$state" && die "a proxy from $state is already running (pid $(pid_of "$state"))"
  for p in "${ports[@]}"; do
    port_open "$host" "$p" && die "$host:$p is already in use by another process"
  done
  config_yaml "$host" "$port" "$upstream" >"$state/config.yaml"
  log_config >"$state/log4j2.xml"
  rm -f "$state/pid"
  # setsid: the proxy outlives this script and the caller's terminal or process group.
  # The inner shell writes its own pid, which exec hands to the JVM.
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$1" && shift && exec "$@"' kroxylicious "$state/pid" \
    "$java" -Xms64m -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$state/log4j2.xml" \
    -cp "$libs/launcher:$libs/*" KroxyliciousLauncher "$state/config.yaml" \
    </dev/null >"$state/proxy.log" 2>&1 8>&- &
  deadline=$((SECONDS + 10))
  until [[ -n $(pid_of "$state") ]]; do
    ((SECONDS < deadline)) || die "the proxy did not start (no pid file in $state)"
    sleep 0.05
  done
  deadline=$((SECONDS + start_timeout))
  for p in "${ports[@]}"; do
    until port_open "$host" "$p"; do
      if ! alive "$state"; then
        tail -n 25 "$state/proxy.log" >&2 || true
        die "the proxy exited during start-up (log above, in $state/proxy.log)"
      fi
      if ((SECONDS >= deadline)); then
        tail -n 25 "$state/proxy.log" >&2 || true
        cmd_stop "$state"
        die "the proxy did not listen on $host:$p within ${start_timeout}s"
      fi
      sleep 0.1
    done
  done
  say "Kroxylicious $version proxying $upstream at $host:$port (node ports ${ports[1]}-${ports[-1]})"
  pid_of "$state"
}

cmd_stop() {
  (($# == 1)) || die "usage: $0 stop STATE_DIR"
  local state pid deadline
  state=$(realpath -m "$1")
  if ! alive "$state"; then
    rm -f "$state/pid"
    say "no proxy running from $state"
    return
  fi
  pid=$(pid_of "$state")
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + stop_timeout))
  while alive "$state"; do
    if ((SECONDS >= deadline)); then
      say "proxy (pid $pid) did not stop in ${stop_timeout}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while alive "$state"; do
        ((SECONDS < deadline)) || die "proxy (pid $pid) survives SIGKILL"
        sleep 0.1
      done
      break
    fi
    sleep 0.1
  done
  # Its command line goes before its sockets close: wait until every thread of it is gone
  # (the main thread can be a zombie while others still hold the sockets), so its ports
  # are free when this returns.
  deadline=$((SECONDS + 10))
  until exited "$pid"; do
    ((SECONDS < deadline)) || break
    sleep 0.05
  done
  rm -f "$state/pid"
  say "proxy (pid $pid) stopped"
}

usage() {
  cat >&2 <<EOF
usage: $0 fetch | start LISTEN_HOST BOOTSTRAP_PORT UPSTREAM_BOOTSTRAP STATE_DIR | stop STATE_DIR | version
EOF
}

case ${1:-} in
  fetch)
    fetch
    echo "$libs"
    ;;
  start)
    shift
    cmd_start "$@"
    ;;
  stop)
    shift
    cmd_stop "$@"
    ;;
  version) echo "$version" ;;
  -h | --help | help) usage ;;
  *)
    usage
    exit 2
    ;;
esac
