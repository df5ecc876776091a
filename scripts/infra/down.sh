#!/usr/bin/env bash
# Stop the local ONEX fleet infrastructure, the secured servers too when
# they run. Data is kept (Kafka topics in $ONEX_STATE_DIR/kafka, the PostgreSQL
# cluster); Consul runs in -dev mode and keeps nothing. Each script's `reset`
# command deletes its data.
#
# usage: down.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

rc=0
"$here/consul.sh" stop || rc=1
if [[ "$ONEX_INFRA_SECURE" == 1 || -e "$ONEX_STATE_DIR/consul-secure/consul.pid" ]]; then
  "$here/consul-secure.sh" stop || rc=1
fi
if [[ "$ONEX_INFRA_SECURE" == 1 || -e "$ONEX_STATE_DIR/kafka-secure/kafka.pid" ]]; then
  "$here/kafka-secure.sh" stop || rc=1
fi
secure_pg() { ONEX_PG_CLUSTER="$ONEX_PG_SECURE_CLUSTER" ONEX_PG_PORT="$ONEX_PG_SECURE_PORT" "$here/postgres.sh" "$@"; }
if [[ "$ONEX_INFRA_SECURE" == 1 ]] || secure_pg status >/dev/null 2>&1; then
  secure_pg stop || rc=1
fi
"$here/kafka.sh" stop || rc=1
"$here/postgres.sh" stop || rc=1
exit "$rc"
