#!/usr/bin/env bash
# Test certificates for TLS and mTLS, made with openssl. Sourced by scripts/kafka-cluster.sh
# (which keeps the local cluster's in $FLOTILLA_CACHE/tls); also a command for tests:
#
#   scripts/lib/tls.sh ca|server|client|untrusted|expired DIR [ARGS...]
#
# runs tls_ca, tls_server_cert, ... below with DIR and ARGS.
#
#   tls_ca DIR            DIR/ca.pem and DIR/ca.key: the test CA, valid for 10 years
#   tls_server_cert DIR NAME SAN...
#                         DIR/NAME.pem (the certificate, then the CA's: the chain) and
#                         DIR/NAME.key (unencrypted PKCS#8 PEM), signed by DIR's CA, for
#                         serverAuth and clientAuth, with subjectAltNames SAN (one per
#                         argument or comma-separated: IP:127.0.0.1,DNS:localhost)
#   tls_client_cert DIR NAME CN
#                         a clientAuth certificate with subject CN=CN (an mTLS principal)
#   tls_untrusted_cert DIR NAME SAN...
#                         a server certificate signed by its own self-signed CA,
#                         DIR/NAME-ca.pem, that nothing trusts (for refusal tests)
#   tls_expired_cert DIR NAME SAN...
#                         a server certificate signed by DIR's CA whose validity ran from
#                         30 days ago to 1 day ago
#
# Idempotent: a certificate is reused while it is still what was asked for (NAME.spec
# records that), its key matches, it verifies against its CA and stays valid for more than
# a day; otherwise it is made afresh, and a renewed CA renews what it signed at the next
# call. Keys are EC P-256, readable by their owner only. Nothing is printed on stdout;
# openssl's messages go to stderr only when it fails. Functions return non-zero on failure.
# Callers on one DIR take turns on DIR/.lock.

tls_ca_days=3650
tls_leaf_days=365

tls_ca() { _tls_locked "$1" _tls_ca "$1"; }
tls_server_cert() { _tls_locked "$1" _tls_server_cert "$@"; }
tls_client_cert() { _tls_locked "$1" _tls_client_cert "$@"; }
tls_untrusted_cert() { _tls_locked "$1" _tls_untrusted_cert "$@"; }
tls_expired_cert() { _tls_locked "$1" _tls_expired_cert "$@"; }

# _tls_locked DIR COMMAND...: runs COMMAND holding DIR/.lock, with a scratch directory in
# $_tls_tmp that is removed afterwards. Not reentrant: a second flock on a new descriptor of
# the same file would wait for this one.
_tls_locked() {
  local dir=$1 rc=0
  shift
  [[ -n $dir ]] || { echo "tls: no directory given" >&2; return 2; }
  mkdir -p "$dir" || return 1
  {
    flock -w 120 7 || { echo "tls: timed out waiting for $dir/.lock" >&2; return 1; }
    _tls_tmp=$(mktemp -d "$dir/.tmp.XXXXXX") || return 1
    "$@" || rc=$?
    rm -rf "$_tls_tmp"
    return "$rc"
  } 7>>"$dir/.lock"
}

# openssl with its chatter kept back unless it fails.
_tls_run() {
  local err
  err=$(openssl "$@" 2>&1 >/dev/null) && return 0
  echo "tls: openssl $1 failed: $err" >&2
  return 1
}

# Needs at least one argument, so a forgotten SAN or CN fails here, not in openssl.
_tls_need() {
  (($# > 1)) && return 0
  echo "tls: $1 needs more arguments" >&2
  return 2
}

_tls_ca() {
  _tls_self_signed_ca "$1/ca" "flotilla test CA"
}

_tls_server_cert() {
  local dir=$1 name=$2 san
  _tls_need "tls_server_cert DIR NAME SAN..." "${@:3}" || return
  _tls_ca "$dir" || return
  san=$(IFS=,; echo "${*:3}")
  _tls_leaf "$dir/$name" "$dir/ca" "/CN=$name" "$(_tls_server_ext "$san")" "server $san"
}

_tls_client_cert() {
  local dir=$1 name=$2 cn=${3:-}
  _tls_need "tls_client_cert DIR NAME CN" "${@:3}" || return
  _tls_ca "$dir" || return
  _tls_leaf "$dir/$name" "$dir/ca" "/CN=$cn" "$(_tls_ext clientAuth)" "client CN=$cn"
}

_tls_untrusted_cert() {
  local dir=$1 name=$2 san
  _tls_need "tls_untrusted_cert DIR NAME SAN..." "${@:3}" || return
  san=$(IFS=,; echo "${*:3}")
  _tls_self_signed_ca "$dir/$name-ca" "flotilla untrusted CA for $name" || return
  _tls_leaf "$dir/$name" "$dir/$name-ca" "/CN=$name" "$(_tls_server_ext "$san")" "untrusted $san"
}

_tls_expired_cert() {
  local dir=$1 name=$2 san
  _tls_need "tls_expired_cert DIR NAME SAN..." "${@:3}" || return
  _tls_ca "$dir" || return
  san=$(IFS=,; echo "${*:3}")
  _tls_leaf "$dir/$name" "$dir/ca" "/CN=$name" "$(_tls_server_ext "$san")" "expired $san" \
    "-30 days" "-1 day"
}

# Extensions of a leaf certificate for the given extended key usages.
_tls_ext() {
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=$1" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid"
}
# rustls (webpki) ignores the CN: a server certificate needs its names as subjectAltNames.
_tls_server_ext() {
  _tls_ext serverAuth,clientAuth
  echo "subjectAltName=$1"
}

# _tls_reusable PREFIX SPEC CA [expired]: PREFIX.pem can be kept (see the header). An
# expired certificate is checked for everything but its dates.
_tls_reusable() {
  local prefix=$1 spec=$2 ca=$3 expired=${4:-}
  [[ -s $prefix.pem && -s $prefix.key && -f $prefix.spec ]] || return 1
  [[ $(<"$prefix.spec") == "$spec" ]] || return 1
  [[ $(openssl x509 -in "$prefix.pem" -noout -pubkey 2>/dev/null) == \
    "$(openssl pkey -in "$prefix.key" -pubout 2>/dev/null)" ]] || return 1
  if [[ -n $expired ]]; then
    openssl verify -no_check_time -CAfile "$ca" "$prefix.pem" >/dev/null 2>&1
  else
    openssl x509 -in "$prefix.pem" -noout -checkend 86400 >/dev/null 2>&1 &&
      openssl verify -CAfile "$ca" "$prefix.pem" >/dev/null 2>&1
  fi
}

# A new EC P-256 key, unencrypted PKCS#8 PEM (what genpkey writes), owner-only.
_tls_key() {
  (umask 077 && _tls_run genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1")
}

# _tls_self_signed_ca PREFIX CN: PREFIX.pem and PREFIX.key, unless they can be kept.
_tls_self_signed_ca() {
  local prefix=$1 cn=$2 spec="ca CN=$2"
  _tls_reusable "$prefix" "$spec" "$prefix.pem" && return
  rm -f "$prefix.spec"
  printf '%s\n' "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign" \
    "subjectKeyIdentifier=hash" >"$_tls_tmp/ca.ext"
  _tls_key "$_tls_tmp/ca.key" &&
    _tls_run x509 -new -subj "/CN=$cn" -key "$_tls_tmp/ca.key" -days "$tls_ca_days" \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$_tls_tmp/ca.ext" -out "$_tls_tmp/ca.pem" &&
    mv "$_tls_tmp/ca.key" "$prefix.key" && mv "$_tls_tmp/ca.pem" "$prefix.pem" &&
    echo "$spec" >"$prefix.spec"
}

# _tls_leaf PREFIX CA SUBJECT EXTENSIONS SPEC [FROM UNTIL]: PREFIX.key and PREFIX.pem (the
# certificate, then CA.pem) signed by CA.key, valid from FROM to UNTIL (date(1) offsets;
# default from an hour ago, for clocks a little behind, to tls_leaf_days from now), unless
# they can be kept. `openssl ca` rather than `x509`: openssl 3.0's x509 cannot backdate.
_tls_leaf() {
  local prefix=$1 ca=$2 subject=$3 ext=$4 spec=$5 expired=
  local from=${6:--1 hour} until=${7:-+$tls_leaf_days days} t=$_tls_tmp
  [[ -n ${6:-} ]] && expired=expired
  _tls_reusable "$prefix" "$spec" "$ca.pem" "$expired" && return
  rm -f "$prefix.spec"
  printf '%s\n' "$ext" >"$t/leaf.ext"
  printf '%s\n' "[req]" "distinguished_name=dn" "prompt=no" "[dn]" \
    "[ca]" "default_ca=test" "[test]" "database=$t/index" "serial=$t/serial" \
    "new_certs_dir=$t" "default_md=sha256" "policy=any" "unique_subject=no" \
    "[any]" "commonName=supplied" >"$t/openssl.cnf"
  : >"$t/index"
  _tls_key "$t/leaf.key" &&
    _tls_run req -new -config "$t/openssl.cnf" -key "$t/leaf.key" -subj "$subject" \
      -out "$t/leaf.csr" &&
    _tls_run ca -batch -config "$t/openssl.cnf" -cert "$ca.pem" -keyfile "$ca.key" \
      -in "$t/leaf.csr" -out "$t/leaf.pem" -notext -rand_serial -extfile "$t/leaf.ext" \
      -startdate "$(_tls_date "$from")" -enddate "$(_tls_date "$until")" &&
    cat "$t/leaf.pem" "$ca.pem" >"$t/chain.pem" &&
    mv "$t/leaf.key" "$prefix.key" && mv "$t/chain.pem" "$prefix.pem" &&
    echo "$spec" >"$prefix.spec"
}

# An ASN.1 UTCTime (what `openssl ca -startdate` takes) for a date(1) offset from now.
_tls_date() { date -u -d "$1" +%y%m%d%H%M%SZ; }

# As a command: scripts/lib/tls.sh ca|server|client|untrusted|expired DIR [ARGS...]
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  command -v openssl >/dev/null || { echo "tls: openssl not found" >&2; exit 1; }
  case ${1:-} in
    ca | server | client | untrusted | expired)
      fn=tls_${1}_cert
      [[ $1 != ca ]] || fn=tls_ca
      shift
      "$fn" "$@"
      ;;
    *)
      echo "usage: $0 ca|server|client|untrusted|expired DIR [NAME SAN...|NAME CN]" >&2
      exit 2
      ;;
  esac
fi
