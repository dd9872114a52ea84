#!/usr/bin/env bash
# Installs what flotilla's scripts and tests need beyond a Rust toolchain: Java 17 and
# Maven (to fetch and run Apache Kafka), kcat, iproute2, openssl (test certificates), a C
# toolchain for the bundled librdkafka with OpenSSL, and promtool (Debian's prometheus
# package) to check and unit-test the shipped alert rules. Idempotent: installs only what is
# missing.
set -euo pipefail

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kcat >/dev/null || need+=(kcat)
command -v ip >/dev/null || need+=(iproute2)
command -v cc >/dev/null || need+=(build-essential)
command -v curl >/dev/null || need+=(curl)
command -v shellcheck >/dev/null || need+=(shellcheck)
# librdkafka's TLS and SCRAM (the rdkafka crate's `ssl` feature) link the system OpenSSL;
# the TLS tests ask `openssl s_client` which certificate a node presents.
command -v openssl >/dev/null || need+=(openssl)
command -v pkg-config >/dev/null || need+=(pkg-config)
[[ -e /usr/include/openssl/ssl.h ]] || need+=(libssl-dev)

# Without its recommends: only promtool is wanted, not a node exporter.
lean=()
command -v promtool >/dev/null || lean+=(prometheus)

if ((${#need[@]} + ${#lean[@]})); then
  echo "installing: ${need[*]} ${lean[*]}" >&2
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq >&2
  if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
  fi
  if ((${#lean[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${lean[@]}" >&2
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "install-deps: no Rust toolchain (cargo) on PATH; install Rust 1.86 or newer" >&2
  exit 1
fi
