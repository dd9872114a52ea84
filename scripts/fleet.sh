#!/usr/bin/env bash
# A local flotilla fleet in front of the local Kafka cluster (scripts/kafka-cluster.sh).
#
#   scripts/fleet.sh up [N]    start N nodes (default 1), starting Kafka first if needed
#   scripts/fleet.sh start ID  restart a stopped node with its data
#   scripts/fleet.sh status    one line per node, then the bootstrap list
#   scripts/fleet.sh down      stop the nodes this script started and remove their state
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
admin_port=9644
gossip_port=7946
raft_port=7947

die() { echo "fleet: $*" >&2; exit 1; }

first_host=${FLOTILLA_FLEET_FIRST_HOST:-1}
[[ $first_host =~ ^[1-9][0-9]*$ ]] || die "FLOTILLA_FLEET_FIRST_HOST must be a number from 1, not '$first_host'"

node_host() { echo "127.0.0.$((first_host + $1 - 1))"; }

alive() { [[ -f $1/pid ]] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

binary() {
  if [[ -n ${FLOTILLA_BIN:-} ]]; then echo "$FLOTILLA_BIN"; return; fi
  (cd "$root" && cargo build --release --quiet --bin flotilla >&2) || die "building flotilla failed"
  echo "$root/target/release/flotilla"
}

write_config() {
  local id=$1 dir=$2 backend=$3 count=$4 host
  host=$(node_host "$id")
  local servers
  servers=$(echo "$backend" | sed 's/[^,]*/"&"/g; s/,/, /g')
  write_node_config "$id" "$dir" "$host" "$servers" >"$dir/node.toml"
  ((count > 1)) && write_cluster_config "$id" "$dir" "$host" "$count" >>"$dir/node.toml"
  return 0
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

[backend]
bootstrap_servers = [$servers]
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
      list+=("$host:$bootstrap_port")
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
  echo $! >"$dir/pid"
}

up() {
  local count=${1:-1}
  [[ $count =~ ^[1-9][0-9]*$ ]] || die "up takes a node count, got '$count'"
  (( first_host + count - 1 <= 254 )) || die "at most $((255 - first_host)) nodes from 127.0.0.$first_host (one loopback host each)"
  local backend bin
  backend=$("$here/kafka-cluster.sh" up | tail -1)
  bin=$(binary)
  mkdir -p "$state"
  for ((id = 1; id <= count; id++)); do
    local dir="$state/node-$id"
    mkdir -p "$dir"
    if alive "$dir"; then
      echo "node $id already running" >&2
      continue
    fi
    write_config "$id" "$dir" "$backend" "$count"
    launch "$id" "$bin"
  done
  for ((id = 1; id <= count; id++)); do wait_ready "$id" "$state/node-$id"; done
  print_status
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
      pid=$(cat "$dir/pid")
      kill "$pid"
      local deadline=$((SECONDS + 10))
      while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$state"
  ((any)) && echo "fleet stopped" || echo "no fleet was running"
}

case ${1:-} in
  up) up "${2:-1}" ;;
  start) start "${2:-}" ;;
  status) print_status ;;
  down) down ;;
  *) die "usage: $0 up [N] | start ID | status | down" ;;
esac
