#!/usr/bin/env bash
# Start the local ONEX fleet infrastructure: PostgreSQL, Kafka, Consul, and
# with ONEX_INFRA_SECURE=1 the secured servers too (kafka-secure.sh, the
# TLS-only PostgreSQL, consul-secure.sh).
# Idempotent: what already runs is left alone. First run installs/builds
# (apt-get postgresql, mvn Kafka jars, go build Consul: ~10 min in all).
#
# usage: [ONEX_INFRA_SECURE=1] up.sh      then: eval "$(scripts/infra/env.sh)"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
ONEX_LOG_TAG=up

t0=$(now_s)
# The Consul build (first run only, CPU-bound, minutes) overlaps with the
# PostgreSQL/Kafka installs; consul.sh start below waits for it (build lock).
build_pid=""
if ! "$here/consul.sh" built; then
  mkdir -p "$ONEX_STATE_DIR"
  log "building Consul in the background (log: $ONEX_STATE_DIR/consul-build.out)"
  "$here/consul.sh" build >"$ONEX_STATE_DIR/consul-build.out" 2>&1 &
  build_pid=$!
fi
"$here/postgres.sh" start
"$here/kafka.sh" start
if [[ "$ONEX_INFRA_SECURE" == 1 ]]; then
  # Before waiting for the Consul build: on a first run they start while
  # Consul compiles.
  "$here/kafka-secure.sh" start
  ONEX_PG_CLUSTER="$ONEX_PG_SECURE_CLUSTER" ONEX_PG_PORT="$ONEX_PG_SECURE_PORT" ONEX_PG_SSL=1 "$here/postgres.sh" start
fi
if [[ -n "$build_pid" ]] && ! wait "$build_pid"; then
  log "background Consul build failed (see $ONEX_STATE_DIR/consul-build.out); retrying in the foreground"
fi
"$here/consul.sh" start
if [[ "$ONEX_INFRA_SECURE" == 1 ]]; then
  # After the plaintext Consul: the same binary, built by then.
  "$here/consul-secure.sh" start
fi
log "all up in $(($(now_s) - t0))s"

echo
"$here/postgres.sh" status
"$here/kafka.sh" status
if [[ "$ONEX_INFRA_SECURE" == 1 ]]; then
  "$here/kafka-secure.sh" status
  ONEX_PG_CLUSTER="$ONEX_PG_SECURE_CLUSTER" ONEX_PG_PORT="$ONEX_PG_SECURE_PORT" "$here/postgres.sh" status
fi
"$here/consul.sh" status
if [[ "$ONEX_INFRA_SECURE" == 1 ]]; then
  "$here/consul-secure.sh" status
fi
cat <<INFO

  Kafka       $(onex_kafka_bootstrap)
  PostgreSQL  $(onex_pg_dsn)
  Consul      http://$(onex_consul_addr)
  state       $ONEX_STATE_DIR   cache $ONEX_CACHE_DIR

  eval "\$($here/env.sh)"   # exports KAFKA_BOOTSTRAP_SERVERS, OMNIBASE_INFRA_DB_URL, CONSUL_HTTP_ADDR
INFO
