#!/usr/bin/env bash
# Start the local ONEX fleet infrastructure: PostgreSQL, Kafka, Consul.
# Idempotent: what already runs is left alone. First run installs/builds
# (apt-get postgresql, mvn Kafka jars, go build Consul: ~10 min in all).
#
# usage: up.sh            then: eval "$(scripts/infra/env.sh)"
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
if [[ -n "$build_pid" ]] && ! wait "$build_pid"; then
  log "background Consul build failed (see $ONEX_STATE_DIR/consul-build.out); retrying in the foreground"
fi
"$here/consul.sh" start
log "all up in $(($(now_s) - t0))s"

echo
"$here/postgres.sh" status
"$here/kafka.sh" status
"$here/consul.sh" status
cat <<INFO

  Kafka       $(onex_kafka_bootstrap)
  PostgreSQL  $(onex_pg_dsn)
  Consul      http://$(onex_consul_addr)
  state       $ONEX_STATE_DIR   cache $ONEX_CACHE_DIR

  eval "\$($here/env.sh)"   # exports KAFKA_BOOTSTRAP_SERVERS, OMNIBASE_INFRA_DB_URL, CONSUL_HTTP_ADDR
INFO
