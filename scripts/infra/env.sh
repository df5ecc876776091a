#!/usr/bin/env bash
# Print export lines for the local ONEX fleet infrastructure:
#   eval "$(scripts/infra/env.sh)"
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

printf 'export %s=%q\n' \
  KAFKA_BOOTSTRAP_SERVERS "$(onex_kafka_bootstrap)" \
  OMNIBASE_INFRA_DB_URL "$(onex_pg_dsn)" \
  CONSUL_HTTP_ADDR "$(onex_consul_addr)" \
  ONEX_KAFKA_SECURE_ENV "$ONEX_STATE_DIR/kafka-secure/client.env" \
  ONEX_CONSUL_SECURE_ENV "$ONEX_STATE_DIR/consul-secure/client.env" \
  ONEX_PG_SECURE_URL "$(onex_pg_secure_dsn)" \
  ONEX_INFRA_CA_FILE "$ONEX_STATE_DIR/tls/ca.pem" \
  ONEX_STATE_DIR "$ONEX_STATE_DIR" \
  ONEX_CACHE_DIR "$ONEX_CACHE_DIR"
