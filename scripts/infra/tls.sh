#!/usr/bin/env bash
# The local CA of the secured servers (kafka-secure.sh, the secured
# PostgreSQL of postgres.sh with ONEX_PG_SSL=1): made once per state dir
# with openssl, in $ONEX_STATE_DIR/tls (mode 700). A test CA for loopback
# servers, never a CA for anything else.
#
# usage: tls.sh ca                    make the CA when missing; print the path of its certificate
#        tls.sh issue NAME CN SAN EKU  make NAME.key and NAME.pem signed by the CA when missing
#                                     (SAN e.g. "DNS:localhost,IP:127.0.0.1" or "", EKU e.g. "serverAuth,clientAuth");
#                                     print the certificate's path
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ONEX_LOG_TAG=tls

TLS_DIR="$ONEX_STATE_DIR/tls"

ensure_ca() {
  if [[ -s "$TLS_DIR/ca.pem" && -s "$TLS_DIR/ca.key" ]]; then
    return 0
  fi
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  command -v openssl >/dev/null 2>&1 || die "openssl not found (it makes the local test CA)"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  (
    cd "$TLS_DIR"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key.tmp -out ca.pem.tmp \
      -subj "/CN=ONEX fleet local test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    mv ca.key.tmp ca.key
    mv ca.pem.tmp ca.pem
  ) || die "openssl could not make the CA in $TLS_DIR"
  log "made the local test CA $TLS_DIR/ca.pem"
}

# issue NAME CN SAN EKU
issue() {
  local name="$1" cn="$2" san="$3" eku="$4"
  [[ "$name" =~ ^[a-z0-9-]+$ ]] || die "certificate name '$name' must be [a-z0-9-]+"
  ensure_ca
  if [[ -s "$TLS_DIR/$name.pem" && -s "$TLS_DIR/$name.key" ]]; then
    return 0
  fi
  (
    cd "$TLS_DIR"
    umask 077
    {
      [[ -z "$san" ]] || printf 'subjectAltName=%s\n' "$san"
      printf 'extendedKeyUsage=%s\n' "$eku"
      printf 'keyUsage=critical,digitalSignature,keyEncipherment\n'
    } >"$name.ext"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key.tmp" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
    openssl x509 -req -sha256 -days 825 -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out "$name.pem.tmp" -extfile "$name.ext" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
    mv "$name.key.tmp" "$name.key"
    mv "$name.pem.tmp" "$name.pem"
  ) || die "openssl could not issue $name in $TLS_DIR"
  log "issued $TLS_DIR/$name.pem (CN=$cn${san:+, $san})"
}

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  ca)
    with_lock tls ensure_ca
    printf '%s\n' "$TLS_DIR/ca.pem"
    ;;
  issue)
    [[ $# -eq 4 ]] || usage
    with_lock tls issue "$@"
    printf '%s\n' "$TLS_DIR/$1.pem"
    ;;
  *) usage ;;
esac
