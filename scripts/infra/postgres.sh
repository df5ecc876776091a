#!/usr/bin/env bash
# PostgreSQL from Debian's packages, as a dedicated cluster "onex" (Debian's
# postgresql-common tools) listening on 127.0.0.1 only, with role onex and
# database omnibase_infra.
#
# ONEX_PG_SSL=1 makes the cluster TLS-only: a server certificate from the
# local test CA (tls.sh) and every TCP connection without TLS refused. up.sh
# runs such a second cluster with ONEX_INFRA_SECURE=1 (ONEX_PG_SECURE_*).
#
# usage: postgres.sh start|stop|restart|status|install|reset
#        postgres.sh psql ARGS...   psql connected with the project DSN
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ONEX_LOG_TAG=postgres

PG_START_TIMEOUT="${ONEX_PG_START_TIMEOUT:-60}"

# pg_version: the PostgreSQL major version to use (ONEX_PG_VERSION, else the
# newest server installed).
pg_version() {
  if [[ -n "${ONEX_PG_VERSION:-}" ]]; then
    printf '%s\n' "$ONEX_PG_VERSION"
    return
  fi
  local d v best=""
  for d in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x "$d" ]] || continue
    v="${d#/usr/lib/postgresql/}"
    v="${v%%/*}"
    if [[ -z "$best" ]] || ((${v%%.*} > ${best%%.*})); then
      best="$v"
    fi
  done
  [[ -n "$best" ]] || return 1
  printf '%s\n' "$best"
}

install_pg() {
  if command -v pg_createcluster >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 &&
    pg_version >/dev/null; then
    return 0
  fi
  local t0
  t0=$(now_s)
  log "installing PostgreSQL server from Debian packages (apt-get install postgresql)"
  apt_install postgresql postgresql-client
  pg_version >/dev/null || die "apt-get installed postgresql but no /usr/lib/postgresql/*/bin/postgres found"
  log "installed PostgreSQL $(pg_version) in $(($(now_s) - t0))s"
}

cluster_exists() {
  pg_lsclusters -h 2>/dev/null | awk -v v="$1" -v c="$ONEX_PG_CLUSTER" '$1 == v && $2 == c { f = 1 } END { exit !f }'
}

is_running() {
  local ver
  ver="$(pg_version 2>/dev/null)" || return 1
  cluster_exists "$ver" || return 1
  pg_ctlcluster "$ver" "$ONEX_PG_CLUSTER" status >/dev/null 2>&1
}

# as_postgres CMD...: run CMD as the postgres OS user (PostgreSQL refuses root).
as_postgres() {
  (cd / && runuser -u postgres -- "$@")
}

# ensure_conf VERSION NAME VALUE: set a postgresql.conf parameter when it differs;
# returns 0 when something changed.
ensure_conf() {
  local ver="$1" name="$2" value="$3" cur
  cur="$(pg_conftool -s "$ver" "$ONEX_PG_CLUSTER" show "$name" 2>/dev/null || true)"
  cur="${cur#\'}"
  cur="${cur%\'}"
  if [[ "$cur" != "$value" ]]; then
    log "setting $name = $value (was '${cur}')"
    pg_conftool "$ver" "$ONEX_PG_CLUSTER" set "$name" "$value" ||
      die "pg_conftool could not set $name"
    return 0
  fi
  return 1
}

wait_ready() {
  local t0="$1"
  until pg_isready -q -h 127.0.0.1 -p "$ONEX_PG_PORT" -t 2; do
    if (($(now_s) - t0 >= PG_START_TIMEOUT)); then
      die "PostgreSQL not ready on 127.0.0.1:$ONEX_PG_PORT after ${PG_START_TIMEOUT}s; see pg_lsclusters and /var/log/postgresql/postgresql-$(pg_version)-$ONEX_PG_CLUSTER.log"
    fi
    sleep 1
  done
}

# ensure_conf_d VERSION: settings pg_conftool cannot quote right (it writes
# listen_addresses = 127.0.0.1 unquoted, a syntax error) go to conf.d/, which
# Debian's postgresql.conf includes last; returns 0 when the file changed.
ensure_conf_d() {
  local ver="$1" f want
  f="/etc/postgresql/$ver/$ONEX_PG_CLUSTER/conf.d/onex.conf"
  want="# Written by scripts/infra/postgres.sh
listen_addresses = '127.0.0.1'"
  if [[ "$ONEX_PG_SSL" == 1 ]]; then
    want+="
ssl = on
ssl_cert_file = '/etc/postgresql/$ver/$ONEX_PG_CLUSTER/server.pem'
ssl_key_file = '/etc/postgresql/$ver/$ONEX_PG_CLUSTER/server.key'
ssl_min_protocol_version = 'TLSv1.2'"
  fi
  if [[ -f "$f" && "$(<"$f")" == "$want" ]]; then
    return 1
  fi
  log "writing $f"
  mkdir -p "$(dirname "$f")"
  printf '%s\n' "$want" >"$f" || die "cannot write $f"
  chown postgres:postgres "$f" 2>/dev/null || true
  return 0
}

# ensure_tls_files VERSION: the server certificate from the local test CA,
# copied where the server reads it (the key owned by postgres, mode 600, or
# it refuses to start); returns 0 when a file changed.
ensure_tls_files() {
  local ver="$1" dir crt f changed=1
  dir="/etc/postgresql/$ver/$ONEX_PG_CLUSTER"
  crt="$("$ONEX_INFRA_DIR/tls.sh" issue postgres-server localhost "DNS:localhost,IP:127.0.0.1" serverAuth)"
  for f in pem key; do
    if ! cmp -s "${crt%.pem}.$f" "$dir/server.$f"; then
      install -o postgres -g postgres -m 600 "${crt%.pem}.$f" "$dir/server.$f"
      changed=0
    fi
  done
  return "$changed"
}

# ensure_hba_tls_only VERSION: a first pg_hba.conf line refusing TCP
# connections without TLS (local socket connections stay as they are);
# returns 0 when the file changed.
ensure_hba_tls_only() {
  local f line="hostnossl all all all reject # onex: TLS only (scripts/infra/postgres.sh)"
  f="/etc/postgresql/$1/$ONEX_PG_CLUSTER/pg_hba.conf"
  if grep -qxF "$line" "$f"; then
    return 1
  fi
  log "refusing TCP connections without TLS ($f)"
  { printf '%s\n' "$line"; cat "$f"; } >"$f.tmp" && chown postgres:postgres "$f.tmp" && mv "$f.tmp" "$f"
  return 0
}

# ensure_role_db: role + database, idempotent; the password is (re)set so the
# DSN always works.
ensure_role_db() {
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$ONEX_PG_PORT" -d postgres \
    -v user="$ONEX_PG_USER" -v pw="$ONEX_PG_PASSWORD" -v db="$ONEX_PG_DB" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'user') \gexec
SQL
}

start() {
  install_pg
  local ver t0 changed=0
  ver="$(pg_version)"
  t0=$(now_s)
  if ! cluster_exists "$ver"; then
    if port_in_use "$ONEX_PG_PORT"; then
      die "port $ONEX_PG_PORT is in use by another process; set ONEX_PG_PORT"
    fi
    log "creating cluster $ver/$ONEX_PG_CLUSTER on port $ONEX_PG_PORT"
    pg_createcluster "$ver" "$ONEX_PG_CLUSTER" -p "$ONEX_PG_PORT" >&2
  fi
  ensure_conf "$ver" port "$ONEX_PG_PORT" && changed=1
  ensure_conf_d "$ver" && changed=1
  if [[ "$ONEX_PG_SSL" == 1 ]]; then
    ensure_tls_files "$ver" && changed=1
    ensure_hba_tls_only "$ver" && changed=1
  fi
  if is_running; then
    if ((changed)); then
      log "configuration changed, restarting cluster $ver/$ONEX_PG_CLUSTER"
      pg_ctlcluster "$ver" "$ONEX_PG_CLUSTER" restart -m fast 9>&-
    else
      log "already running: cluster $ver/$ONEX_PG_CLUSTER on 127.0.0.1:$ONEX_PG_PORT"
    fi
  else
    if port_in_use "$ONEX_PG_PORT"; then
      die "port $ONEX_PG_PORT is in use by another process; set ONEX_PG_PORT"
    fi
    log "starting cluster $ver/$ONEX_PG_CLUSTER on 127.0.0.1:$ONEX_PG_PORT"
    pg_ctlcluster "$ver" "$ONEX_PG_CLUSTER" start 9>&- ||
      die "pg_ctlcluster start failed; see /var/log/postgresql/postgresql-$ver-$ONEX_PG_CLUSTER.log"
  fi
  wait_ready "$t0"
  ensure_role_db
  psql -X -q -At "$(onex_pg_dsn)" -c 'SELECT 1' >/dev/null ||
    die "cannot log in with $(onex_pg_dsn)"
  log "ready: $(onex_pg_dsn) (PostgreSQL $ver, $(($(now_s) - t0))s)"
}

stop() {
  local ver
  if ! is_running; then
    log "not running"
    return 0
  fi
  ver="$(pg_version)"
  log "stopping cluster $ver/$ONEX_PG_CLUSTER"
  pg_ctlcluster "$ver" "$ONEX_PG_CLUSTER" stop -m fast
  log "stopped"
}

status() {
  local ver line
  if ! ver="$(pg_version 2>/dev/null)"; then
    echo "postgres: not installed"
    return 3
  fi
  if is_running; then
    line="$(pg_lsclusters -h | awk -v v="$ver" -v c="$ONEX_PG_CLUSTER" '$1 == v && $2 == c { print $6 }')"
    echo "postgres: running version $ver cluster $ONEX_PG_CLUSTER on 127.0.0.1:$ONEX_PG_PORT data $line dsn $(onex_pg_dsn) log /var/log/postgresql/postgresql-$ver-$ONEX_PG_CLUSTER.log"
  else
    echo "postgres: stopped (version $ver cluster $ONEX_PG_CLUSTER, port $ONEX_PG_PORT)"
    return 3
  fi
}

# reset: drop the cluster (all data); the next start creates it afresh.
reset() {
  local ver
  ver="$(pg_version 2>/dev/null)" || return 0
  if cluster_exists "$ver"; then
    log "dropping cluster $ver/$ONEX_PG_CLUSTER (all data)"
    pg_dropcluster --stop "$ver" "$ONEX_PG_CLUSTER"
    # pg_dropcluster leaves files it did not create (our conf.d/onex.conf)
    rm -rf "/etc/postgresql/$ver/$ONEX_PG_CLUSTER"
  fi
}

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock postgres start ;;
  stop) with_lock postgres stop ;;
  restart) with_lock postgres stop && with_lock postgres start ;;
  status) status ;;
  install) with_lock postgres install_pg ;;
  reset) with_lock postgres reset ;;
  psql) exec psql "$(onex_pg_dsn)" "$@" ;;
  *) usage ;;
esac
