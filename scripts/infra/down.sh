#!/usr/bin/env bash
# Stop the local ONEX fleet infrastructure. Data is kept (Kafka topics in
# $ONEX_STATE_DIR/kafka, the PostgreSQL cluster); Consul runs in -dev mode
# and keeps nothing. Each script's `reset` command deletes its data.
#
# usage: down.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

rc=0
"$here/consul.sh" stop || rc=1
"$here/kafka.sh" stop || rc=1
"$here/postgres.sh" stop || rc=1
exit "$rc"
