#!/usr/bin/env bash
# Measures whether a heartbeat's update of registration_projections is a HOT
# (heap-only tuple) update, and what a narrow liveness table would do
# instead: the measurement docs/performance.md cites ("HOT updates").
#
# It creates a scratch database next to the one in OMNIBASE_INFRA_DB_URL
# (default: the test servers'), applies migrations/*.up.sql, seeds ROWS
# active nodes, then updates every node's heartbeat columns ROUNDS times in
# batches of 1,000 (one transaction per batch, as the projector commits) on
#   - registration_projections, the schema as migrated (the Python schema's
#     indexes on liveness_deadline and updated_at, and change_xid), and
#   - registration_liveness, a table of just the heartbeat columns and the
#     primary key (fillfactor 80),
# and prints rows/s and the share of HOT updates for each. Both run in the
# same database on the same machine, so their ratio is what to compare.
# The scratch database is dropped at the end.
#
#   bench/scripts/hot-updates.sh
#   ROWS=50000 ROUNDS=3 OMNIBASE_INFRA_DB_URL=postgresql://u:p@host:5432/db bench/scripts/hot-updates.sh
set -euo pipefail

ROWS="${ROWS:-20000}"
ROUNDS="${ROUNDS:-5}"
BATCH=1000
URL="${OMNIBASE_INFRA_DB_URL:-postgresql://onex:onex@127.0.0.1:5456/omnibase_infra}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SCRATCH="onex_hot_$$"
BASE="${URL%/*}"
DB="$BASE/$SCRATCH"
WORK="$(mktemp -d)"
cleanup() {
  psql "$URL" -qAtc "DROP DATABASE IF EXISTS $SCRATCH" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql "$URL" -qAtc "CREATE DATABASE $SCRATCH" >/dev/null
for f in "$ROOT"/migrations/0*.up.sql; do
  psql "$DB" -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null 2>&1
done
psql "$DB" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO registration_projections (entity_id, current_state, node_type, last_applied_event_id,
  registered_at, updated_at, liveness_deadline, last_heartbeat_at, last_applied_sequence)
SELECT gen_random_uuid(), 'active', 'effect', gen_random_uuid(), now(), now(),
  now() + interval '90 s', now(), 1 FROM generate_series(1, $ROWS);
CREATE TABLE registration_liveness (
  entity_id uuid NOT NULL, domain varchar(128) NOT NULL DEFAULT 'registration',
  liveness_deadline timestamptz, last_heartbeat_at timestamptz,
  updated_at timestamptz NOT NULL, last_applied_sequence bigint,
  PRIMARY KEY (entity_id, domain)) WITH (fillfactor = 80);
INSERT INTO registration_liveness
SELECT entity_id, domain, liveness_deadline, last_heartbeat_at, updated_at, last_applied_sequence
FROM registration_projections;
CREATE TABLE ids AS SELECT row_number() OVER (ORDER BY entity_id) AS i, entity_id FROM registration_projections;
CREATE INDEX ON ids (i);
SQL
psql "$DB" -qc "VACUUM ANALYZE registration_projections, registration_liveness, ids" >/dev/null

for tbl in registration_projections registration_liveness; do
  : >"$WORK/$tbl.sql"
  for _ in $(seq "$ROUNDS"); do
    for k in $(seq 0 "$BATCH" $((ROWS - 1))); do
      echo "UPDATE $tbl t SET liveness_deadline = now() + interval '90 s', last_heartbeat_at = now(),
  updated_at = now(), last_applied_sequence = t.last_applied_sequence + 1
FROM ids WHERE ids.entity_id = t.entity_id AND ids.i > $k AND ids.i <= $k + $BATCH;" >>"$WORK/$tbl.sql"
    done
  done
done

printf '%-26s %12s %8s %10s\n' table rows/s hot% size
for tbl in registration_projections registration_liveness; do
  start=$(date +%s%N)
  psql "$DB" -q -v ON_ERROR_STOP=1 -f "$WORK/$tbl.sql" >/dev/null
  end=$(date +%s%N)
  sleep 1 # the statistics collector reports asynchronously
  read -r upd hot size < <(psql "$DB" -qAt -F ' ' -c "SELECT n_tup_upd, n_tup_hot_upd,
    pg_size_pretty(pg_total_relation_size(relid)) FROM pg_stat_user_tables WHERE relname = '$tbl'")
  rows=$((ROWS * ROUNDS))
  printf '%-26s %12d %8.1f %10s\n' "$tbl" $((rows * 1000000000 / (end - start))) \
    "$(echo "scale=3; 100 * $hot / ($upd + 0.0001)" | bc)" "$(echo "$size" | tr -d ' ')"
done
