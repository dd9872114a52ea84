#!/usr/bin/env bash
# A local flotilla fleet in front of the local Kafka cluster (scripts/kafka-cluster.sh).
#
#   scripts/fleet.sh up [N] [--tls|--secure] [--clusters C]
#                              start N nodes (default 1), starting Kafka first if needed;
#                              --tls: clients may also connect over TLS (bootstrap 9193,
#                              identity ports 9300 and up) and the nodes reach Kafka over
#                              its SSL listener; --secure: TLS only, SASL terminated by the
#                              fleet (SCRAM/PLAIN users in Raft), Kafka reached over
#                              SASL_SSL as the service account, an admin token and mutual
#                              TLS between the nodes' Raft listeners; prints how clients
#                              connect; --clusters 2: a second backend cluster `b` as well
#                              (KAFKA_CLUSTER_NAME=b scripts/kafka-cluster.sh up, ports
#                              40092 and up), in every node's [backend.clusters.b] with its
#                              listener of the same kind (default 1: only `default`)
#   scripts/fleet.sh start ID  restart a stopped node with its data
#   scripts/fleet.sh stop ID   stop a node gracefully (SIGTERM: it hands its identities to
#                              the fleet and drains its clients), keeping its data
#   scripts/fleet.sh roll [--binary PATH] [--pause SECONDS]
#                              restart every node, one at a time, gracefully, waiting for
#                              each to be ready again and the fleet settled, then SECONDS
#                              more (default 10: librdkafka's reconnect.backoff.max.ms, so
#                              its clients' backoff resets between nodes); with --binary,
#                              switch every node to that build (a rolling upgrade)
#   scripts/fleet.sh status    one line per node, then the bootstrap list
#   scripts/fleet.sh down      stop the nodes this script started and remove their state;
#                              also stops Kafka cluster b if `up --clusters 2` started it
#                              (never the default cluster, nor a b that was already up)
#
# Node i listens on its own loopback host 127.0.0.i: bootstrap port 9192, identity ports
# 9200 and up, admin API on 9644, gossip on UDP 7946, Raft RPC on 7947. With N > 1 the
# nodes form a fleet: every node seeds from the others, nodes 1..min(N,3) create the Raft
# group. The last line of `up` and `status` is the comma-separated bootstrap list for
# clients. FLOTILLA_BIN overrides the binary (default: a release build, built on first
# use); FLOTILLA_TAKEOVER_AFTER sets cluster.takeover_after (default 2s);
# FLOTILLA_FLEET_FIRST_HOST moves node i to 127.0.0.(FIRST+i-1) so two fleets can run side
# by side (default 1); FLOTILLA_FLEET_DIR is the state directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
state=${FLOTILLA_FLEET_DIR:-${FLOTILLA_CACHE:-$HOME/.cache/flotilla}/fleet}
bootstrap_port=9192
identity_port_base=9200
tls_bootstrap_port=9193
tls_identity_port_base=9300
admin_port=9644
gossip_port=7946
raft_port=7947

die() { echo "fleet: $*" >&2; exit 1; }

first_host=${FLOTILLA_FLEET_FIRST_HOST:-1}
[[ $first_host =~ ^[1-9][0-9]*$ ]] || die "FLOTILLA_FLEET_FIRST_HOST must be a number from 1, not '$first_host'"

node_host() { echo "127.0.0.$((first_host + $1 - 1))"; }

# Whether the node in directory $1 runs: its recorded pid is a live (not zombie) process
# started with that node's config. A bare `kill -0` would also accept a reused pid, or a
# killed node that its parent has not reaped yet.
alive() {
  local dir=$1 pid state cmdline
  [[ -f $dir/pid ]] || return 1
  pid=$(cat "$dir/pid")
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ $state != Z && $state != X ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"--config $dir/node.toml"* ]]
}

# Waits until the node in $1 is gone, for at most $2 seconds.
wait_gone() {
  local dir=$1 deadline=$((SECONDS + $2))
  while alive "$dir"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

binary() {
  if [[ -n ${FLOTILLA_BIN:-} ]]; then echo "$FLOTILLA_BIN"; return; fi
  (cd "$root" && cargo build --release --quiet --bin flotilla --bin proxyctl >&2) ||
    die "building flotilla failed"
  echo "$root/target/release/flotilla"
}

# proxyctl from the same build as the node binary, else the release build.
proxyctl() {
  local bin
  [[ $(mode) != secure ]] || export FLOTILLA_TOKEN="${FLOTILLA_TOKEN:-$(cat "$(token_file)")}"
  bin="$(dirname "$(binary)")/proxyctl"
  if [[ ! -x $bin ]]; then
    (cd "$root" && cargo build --release --quiet --bin proxyctl >&2) || die "building proxyctl failed"
    bin="$root/target/release/proxyctl"
  fi
  "$bin" "$@"
}

# The security mode `up` was given (plain, tls or secure), kept for status and clients.
mode() { cat "$state/mode" 2>/dev/null || echo plain; }

# toml_list HOST:PORT,...: a TOML array of those strings.
toml_list() { echo "[$(echo "$1" | sed 's/[^,]*/"&"/g; s/,/, /g')]"; }

# write_config ID DIR BACKEND COUNT [BACKEND_B]: node ID's node.toml, with the backend
# cluster b's bootstrap list BACKEND_B (up --clusters 2) after [backend].
write_config() {
  local id=$1 dir=$2 backend=$3 count=$4 backend_b=${5:-} host
  host=$(node_host "$id")
  {
    write_node_config "$id" "$dir" "$host" "$(toml_list "$backend")"
    [[ -z $backend_b ]] || printf '\n[backend.clusters.b]\nbootstrap_servers = %s\n' \
      "$(toml_list "$backend_b")"
  } >"$dir/node.toml"
  [[ $(mode) == plain ]] || write_tls_config "$id" "$host" >>"$dir/node.toml"
  [[ $(mode) != secure ]] || write_secure_config "$id" >>"$dir/node.toml"
  [[ -z $backend_b || $(mode) == plain ]] || write_cluster_b_security >>"$dir/node.toml"
  if ((count > 1)) || [[ $(mode) == secure ]]; then
    write_cluster_config "$id" "$dir" "$host" "$count" >>"$dir/node.toml"
  fi
  return 0
}

# --secure: SASL terminated by the fleet, Kafka reached as the service account over
# SASL_SSL, an admin token, mutual TLS between the Raft listeners (the same certificate).
write_secure_config() {
  local id=$1 tls host
  tls=$("$here/kafka-cluster.sh" tls-dir)
  host=$(node_host "$id")
  cat <<TOML

[backend.sasl]
mechanism = "SCRAM-SHA-512"
username = "flotilla"
password = "flotilla-secret"

[sasl]
listeners = ["tls"]

[admin]
tokens = [{ name = "fleet-admin", scope = "admin", sha256 = "$(token_hash)" }]
TOML
  # [cluster.tls] goes with the [cluster] table, after it.
  echo "$tls" >"$state/tls-dir"
}

# The fleet's admin token (made once per `up`) and its SHA-256, which is all a node keeps.
token_file() { echo "$state/admin-token"; }
token_hash() {
  [[ -s $(token_file) ]] || (umask 077; openssl rand -hex 32 >"$(token_file)")
  printf %s "$(cat "$(token_file)")" | sha256sum | cut -d' ' -f1
}

# TLS for clients (a certificate for the node's host from scripts/lib/tls.sh's CA, the
# one the local Kafka cluster's certificates come from) and towards Kafka.
write_tls_config() {
  local id=$1 host=$2 tls
  tls=$("$here/kafka-cluster.sh" tls-dir)
  # DNS:node-ID names the node to its Raft peers (cluster.tls) as well.
  "$here/lib/tls.sh" server "$tls" "node-$host" "IP:$host,DNS:node-$id" >&2
  cat <<TOML

[tls]
bootstrap_port = $tls_bootstrap_port
identity_port_base = $tls_identity_port_base
cert = "$tls/node-$host.pem"
key = "$tls/node-$host.key"

[backend.tls]
ca = "$tls/ca.pem"
TOML
}

# Cluster b is reached as the default cluster is: the same CA, and with --secure the same
# service account (both clusters have it).
write_cluster_b_security() {
  local tls
  tls=$("$here/kafka-cluster.sh" tls-dir)
  printf '\n[backend.clusters.b.tls]\nca = "%s/ca.pem"\n' "$tls"
  [[ $(mode) != secure ]] || cat <<TOML

[backend.clusters.b.sasl]
mechanism = "SCRAM-SHA-512"
username = "flotilla"
password = "flotilla-secret"
TOML
}

write_cluster_config() {
  local id=$1 dir=$2 host=$3 count=$4 seeds=() members=() j
  for ((j = 1; j <= count; j++)); do
    ((j != id)) && seeds+=("\"$(node_host "$j"):$gossip_port\"")
    ((j <= 3)) && members+=("$j")
  done
  cat <<TOML

[cluster]
id = "local"
zone = "zone-$(( (id - 1) % 3 + 1 ))"
gossip_listen = "$host:$gossip_port"
seeds = [$(IFS=,; echo "${seeds[*]}")]
raft_listen = "$host:$raft_port"
data_dir = "$dir/data"
initial_members = [$(IFS=,; echo "${members[*]}")]
takeover_after = "${FLOTILLA_TAKEOVER_AFTER:-2s}"
TOML
  if [[ $(mode) == secure ]]; then
    local tls
    tls=$(cat "$state/tls-dir")
    printf '\n[cluster.tls]\nca = "%s"\ncert = "%s"\nkey = "%s"\n' \
      "$tls/ca.pem" "$tls/node-$host.pem" "$tls/node-$host.key"
  fi
}

write_node_config() {
  local id=$1 dir=$2 host=$3 servers=$4
  cat <<TOML
[node]
id = $id
advertised_host = "$host"
bootstrap_port = $bootstrap_port
identity_port_base = $identity_port_base
admin_listen = "$host:$admin_port"
$([[ $(mode) != secure ]] || echo "plaintext = false")

[backend]
bootstrap_servers = $servers
TOML
}

wait_ready() {
  local id=$1 dir=$2 deadline=$((SECONDS + 60))
  local url
  url="http://$(node_host "$id"):$admin_port/readyz"
  until curl -fsS "$url" >/dev/null 2>&1; do
    alive "$dir" || { tail -20 "$dir/node.log" >&2; die "node $id exited during start-up"; }
    ((SECONDS < deadline)) || { tail -20 "$dir/node.log" >&2; die "node $id not ready within 60s"; }
    sleep 0.2
  done
}

print_status() {
  local list=() any=0 dir id host
  for dir in "$state"/node-*; do
    [[ -d $dir ]] || continue
    any=1
    id=${dir##*-}
    host=$(node_host "$id")
    if alive "$dir"; then
      echo "node $id $host pid=$(cat "$dir/pid") admin=http://$host:$admin_port"
      if [[ $(mode) == plain ]]; then list+=("$host:$bootstrap_port"); else list+=("$host:$tls_bootstrap_port"); fi
    else
      echo "node $id $host dead"
    fi
  done
  ((any)) || { echo "no fleet is running"; return 1; }
  (IFS=,; echo "${list[*]}")
}

launch() {
  local id=$1 bin=$2 dir="$state/node-$1"
  nohup "$bin" --config "$dir/node.toml" >>"$dir/node.log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 10))
  echo "$pid" >"$dir/pid"
  echo "$bin" >"$dir/binary"
  # Until it has exec'd, the child is a copy of this shell, which `alive` does not take
  # for the node: wait for the exec (or the exit).
  until alive "$dir" || ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); do
    sleep 0.05
  done
}

# SIGTERM, then the node hands off and drains (at most shutdown.handoff_timeout plus
# shutdown.drain_timeout, 20 s by default); SIGKILL only if it is still there after 60 s.
stop_node() {
  local id=$1 dir="$state/node-$1"
  alive "$dir" || { echo "node $id is not running" >&2; return 0; }
  kill -TERM "$(cat "$dir/pid")"
  if ! wait_gone "$dir" 60; then
    echo "fleet: node $id did not stop within 60s of SIGTERM; killing it" >&2
    kill -KILL "$(cat "$dir/pid")" 2>/dev/null || true
    wait_gone "$dir" 10 || die "node $id survived SIGKILL"
  fi
}

stop() {
  local id=${1:-}
  [[ $id =~ ^[1-9][0-9]*$ ]] || die "stop takes a node id"
  [[ -d $state/node-$id ]] || die "node $id was never started by 'up'"
  stop_node "$id"
  echo "node $id stopped"
}

roll() {
  local bin="" pause=10 dir id started first=1
  while (($#)); do
    case $1 in
      --binary) bin=${2:-}; [[ -x $bin ]] || die "roll --binary needs an executable, got '$bin'"; shift 2 ;;
      --pause) pause=${2:-}; [[ $pause =~ ^[0-9]+$ ]] || die "roll --pause needs seconds, got '$pause'"; shift 2 ;;
      *) die "usage: $0 roll [--binary PATH] [--pause SECONDS]" ;;
    esac
  done
  for dir in "$state"/node-*; do
    [[ -d $dir ]] || continue
    id=${dir##*-}
    ((first)) || sleep "$pause" # the roll's pace, not a wait for a state
    first=0
    started=$SECONDS
    stop_node "$id"
    launch "$id" "${bin:-$(cat "$dir/binary" 2>/dev/null || binary)}"
    wait_ready "$id" "$dir"
    # The next node stops only once this one has its share of identities back.
    proxyctl --endpoint "http://$(node_host "$id"):$admin_port" cluster wait --timeout 60s >/dev/null ||
      die "the fleet did not settle after node $id restarted"
    echo "node $id restarted in $((SECONDS - started))s"
  done
  print_status
}

up() {
  local count=1 mode=plain clusters=1
  while (($#)); do
    case $1 in
      --tls) mode=tls ;;
      --secure) mode=secure ;;
      --clusters)
        clusters=${2:-}
        [[ $clusters == [12] ]] || die "--clusters takes 1 or 2, not '$clusters'"
        shift
        ;;
      *) [[ $1 =~ ^[1-9][0-9]*$ ]] || die "usage: $0 up [N] [--tls|--secure] [--clusters C], got '$1'"; count=$1 ;;
    esac
    shift
  done
  (( first_host + count - 1 <= 254 )) || die "at most $((255 - first_host)) nodes from 127.0.0.$first_host (one loopback host each)"
  [[ ! -f $state/mode || $(mode) == "$mode" ]] || die "a $(mode) fleet is up; 'down' it first"
  local backend backend_b="" b_was_up=1 bin
  backend=$(kafka_listener "$mode")
  if ((clusters == 2)); then
    KAFKA_CLUSTER_NAME=b "$here/kafka-cluster.sh" status >/dev/null 2>&1 || b_was_up=0
    backend_b=$(kafka_listener "$mode" b)
  fi
  bin=$(binary)
  mkdir -p "$state"
  echo "$mode" >"$state/mode"
  # `down` stops cluster b only if this started it.
  ((b_was_up)) || touch "$state/started-kafka-b"
  for ((id = 1; id <= count; id++)); do
    local dir="$state/node-$id"
    mkdir -p "$dir"
    if alive "$dir"; then
      echo "node $id already running" >&2
      continue
    fi
    write_config "$id" "$dir" "$backend" "$count" "$backend_b"
    launch "$id" "$bin"
  done
  for ((id = 1; id <= count; id++)); do wait_ready "$id" "$state/node-$id"; done
  [[ $mode != secure ]] || add_client_user
  print_status
}

# A SASL user for clients of a --secure fleet, made once, and how to connect as it.
add_client_user() {
  local password_file="$state/client-password" endpoint deadline=$((SECONDS + 60))
  [[ -s $password_file ]] || (umask 077; openssl rand -hex 16 >"$password_file")
  endpoint="http://$(node_host 1):$admin_port"
  # Users need the fleet's feature level 2, which the leader raises shortly after start.
  until proxyctl --endpoint "$endpoint" user add client --mechanism SCRAM-SHA-512 \
    --password-stdin <"$password_file" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "could not add the client user"
    sleep 0.5
  done
  proxyctl --endpoint "$endpoint" user add client --mechanism SCRAM-SHA-256 \
    --password-stdin <"$password_file" >/dev/null
  cat >&2 <<TEXT
secure fleet: clients connect over SASL_SSL as user 'client', for example
  kcat -b $(node_host 1):$tls_bootstrap_port -X security.protocol=SASL_SSL \\
    -X ssl.ca.location=$(cat "$state/tls-dir")/ca.pem -X sasl.mechanisms=PLAIN \\
    -X sasl.username=client -X sasl.password=$(cat "$password_file") -L
  (SCRAM-SHA-256 and SCRAM-SHA-512 work too; the password is in $password_file)
admin token (scope admin) in $(token_file):
  FLOTILLA_TOKEN=\$(cat $(token_file)) proxyctl --endpoint $endpoint cluster status
TEXT
}

start() {
  local id=${1:-} dir
  [[ $id =~ ^[1-9][0-9]*$ ]] || die "start takes a node id"
  dir="$state/node-$id"
  [[ -f $dir/node.toml ]] || die "node $id was never started by 'up'"
  alive "$dir" && die "node $id is already running (pid $(cat "$dir/pid"))"
  launch "$id" "$(binary)"
  wait_ready "$id" "$dir"
  print_status
}

down() {
  local dir pid any=0
  for dir in "$state"/node-*; do
    [[ -d $dir ]] || continue
    any=1
    if alive "$dir"; then
      # The whole fleet goes: no one is left to hand identities to, so do not wait for it.
      kill -KILL "$(cat "$dir/pid")"
      wait_gone "$dir" 10 || true
    fi
  done
  if [[ -f $state/started-kafka-b ]]; then
    KAFKA_CLUSTER_NAME=b "$here/kafka-cluster.sh" down || echo "fleet: could not stop Kafka cluster b" >&2
  fi
  rm -rf "$state"
  ((any)) && echo "fleet stopped" || echo "no fleet was running"
}

# kafka_listener MODE [CLUSTER]: the bootstrap list of the Kafka listener a fleet of MODE
# uses, of the local cluster CLUSTER (default: default), starting it if needed.
kafka_listener() {
  local listing
  listing=$(KAFKA_CLUSTER_NAME=${2:-default} "$here/kafka-cluster.sh" up) ||
    die "could not start Kafka cluster ${2:-default}"
  case $1 in
    plain) tail -1 <<<"$listing" ;;
    tls) sed -n 's/^SSL //p' <<<"$listing" ;;
    secure) sed -n 's/^SASL_SSL //p' <<<"$listing" ;;
  esac
}

case ${1:-} in
  up) shift; up "$@" ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  roll) shift; roll "$@" ;;
  status) print_status ;;
  down) down ;;
  *) die "usage: $0 up [N] [--tls|--secure] [--clusters 1|2] | start ID | stop ID | roll [--binary PATH] [--pause SECONDS] | status | down" ;;
esac
