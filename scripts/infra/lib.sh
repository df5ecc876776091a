# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file
# Common settings and helpers for the local ONEX fleet infrastructure
# (Kafka + PostgreSQL + Consul) run as real processes on this machine.
#
# Sourced by kafka.sh, postgres.sh, consul.sh, the secured servers' scripts,
# up.sh, down.sh, env.sh.
# Every value below can be overridden from the environment.

# --- locations -------------------------------------------------------------
ONEX_INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Downloads and builds (kept across runs, outside the repo).
ONEX_CACHE_DIR="${ONEX_CACHE_DIR:-${HOME:-/root}/.cache/onex-fleet}"
# Runtime state: data dirs, logs, pid files.
ONEX_STATE_DIR="${ONEX_STATE_DIR:-/tmp/onex-fleet}"

# --- versions --------------------------------------------------------------
ONEX_KAFKA_VERSION="${ONEX_KAFKA_VERSION:-4.1.1}"
# Consul is pinned: 1.13.x is the last MPL-2.0 line. Never use a newer one.
ONEX_CONSUL_VERSION="1.13.9"

# --- ports (all on 127.0.0.1) ----------------------------------------------
ONEX_KAFKA_PORT="${ONEX_KAFKA_PORT:-19092}"
ONEX_KAFKA_CONTROLLER_PORT="${ONEX_KAFKA_CONTROLLER_PORT:-19093}"
ONEX_PG_PORT="${ONEX_PG_PORT:-5436}"
ONEX_CONSUL_PORT="${ONEX_CONSUL_PORT:-18500}"            # HTTP API
ONEX_CONSUL_DNS_PORT="${ONEX_CONSUL_DNS_PORT:-18600}"
ONEX_CONSUL_SERVER_PORT="${ONEX_CONSUL_SERVER_PORT:-18300}"  # server RPC
ONEX_CONSUL_SERF_LAN_PORT="${ONEX_CONSUL_SERF_LAN_PORT:-18301}"
ONEX_CONSUL_SERF_WAN_PORT="${ONEX_CONSUL_SERF_WAN_PORT:-18302}"
ONEX_CONSUL_GRPC_PORT="${ONEX_CONSUL_GRPC_PORT:-18502}"
# The secured Kafka (kafka-secure.sh): SASL_SSL, then SSL, SASL_PLAINTEXT and
# its controller on the next three ports.
ONEX_KAFKA_SECURE_PORT="${ONEX_KAFKA_SECURE_PORT:-19094}"
ONEX_KAFKA_SECURE_SSL_PORT="${ONEX_KAFKA_SECURE_SSL_PORT:-$((ONEX_KAFKA_SECURE_PORT + 1))}"
ONEX_KAFKA_SECURE_SASL_PLAINTEXT_PORT="${ONEX_KAFKA_SECURE_SASL_PLAINTEXT_PORT:-$((ONEX_KAFKA_SECURE_PORT + 2))}"
ONEX_KAFKA_SECURE_CONTROLLER_PORT="${ONEX_KAFKA_SECURE_CONTROLLER_PORT:-$((ONEX_KAFKA_SECURE_PORT + 3))}"

# The secured Consul agent (consul-secure.sh): HTTPS, then its server RPC,
# serf LAN and serf WAN ports (no DNS, no gRPC). The default follows
# ONEX_CONSUL_PORT (18510 next to 18500, 38510 next to the test servers'
# 38500), so every set of servers gets its own without saying so.
ONEX_CONSUL_SECURE_PORT="${ONEX_CONSUL_SECURE_PORT:-$((ONEX_CONSUL_PORT + 10))}"
ONEX_CONSUL_SECURE_SERVER_PORT="${ONEX_CONSUL_SECURE_SERVER_PORT:-$((ONEX_CONSUL_SECURE_PORT + 1))}"
ONEX_CONSUL_SECURE_SERF_LAN_PORT="${ONEX_CONSUL_SECURE_SERF_LAN_PORT:-$((ONEX_CONSUL_SECURE_PORT + 2))}"
ONEX_CONSUL_SECURE_SERF_WAN_PORT="${ONEX_CONSUL_SECURE_SERF_WAN_PORT:-$((ONEX_CONSUL_SECURE_PORT + 3))}"

# --- PostgreSQL ------------------------------------------------------------
ONEX_PG_CLUSTER="${ONEX_PG_CLUSTER:-onex}"
# ONEX_PG_SSL=1: the cluster is TLS-only (postgres.sh). The secured cluster
# up.sh adds with ONEX_INFRA_SECURE=1 is this one:
ONEX_PG_SSL="${ONEX_PG_SSL:-0}"
ONEX_PG_SECURE_CLUSTER="${ONEX_PG_SECURE_CLUSTER:-onexsecure}"
ONEX_PG_SECURE_PORT="${ONEX_PG_SECURE_PORT:-5437}"
ONEX_PG_USER="${ONEX_PG_USER:-onex}"
ONEX_PG_PASSWORD="${ONEX_PG_PASSWORD:-onex}"
ONEX_PG_DB="${ONEX_PG_DB:-omnibase_infra}"

# --- Kafka -----------------------------------------------------------------
ONEX_KAFKA_HEAP_OPTS="${ONEX_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
ONEX_KAFKA_SECURE_HEAP_OPTS="${ONEX_KAFKA_SECURE_HEAP_OPTS:--Xms128m -Xmx384m}"
# ONEX_INFRA_SECURE=1: up.sh also starts the secured Kafka (kafka-secure.sh),
# the TLS-only PostgreSQL and the secured Consul (consul-secure.sh).
ONEX_INFRA_SECURE="${ONEX_INFRA_SECURE:-0}"

export ONEX_CACHE_DIR ONEX_STATE_DIR

# --- derived values --------------------------------------------------------
onex_kafka_bootstrap() { printf '127.0.0.1:%s\n' "$ONEX_KAFKA_PORT"; }
onex_pg_dsn() {
  printf 'postgresql://%s:%s@127.0.0.1:%s/%s\n' \
    "$ONEX_PG_USER" "$ONEX_PG_PASSWORD" "$ONEX_PG_PORT" "$ONEX_PG_DB"
}
onex_consul_addr() { printf '127.0.0.1:%s\n' "$ONEX_CONSUL_PORT"; }
onex_pg_secure_dsn() {
  printf 'postgresql://%s:%s@127.0.0.1:%s/%s\n' \
    "$ONEX_PG_USER" "$ONEX_PG_PASSWORD" "$ONEX_PG_SECURE_PORT" "$ONEX_PG_DB"
}

# --- helpers ---------------------------------------------------------------
log() { printf '[%s] %s\n' "${ONEX_LOG_TAG:-infra}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${ONEX_LOG_TAG:-infra}" "$*" >&2
  exit 1
}

# now_s: seconds since the epoch.
now_s() { date +%s; }

# pid_running PIDFILE MARKER: true when PIDFILE names a live process whose
# command line contains MARKER (guards against a stale pid reused by another
# process).
pid_running() {
  local pidfile="$1" marker="$2" pid cmdline
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")" || return 1
  [[ "$cmdline" == *"$marker"* ]]
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT (TCP).
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# stop_pidfile NAME PIDFILE MARKER [GRACE_SECONDS]: SIGTERM, wait, SIGKILL.
stop_pidfile() {
  local name="$1" pidfile="$2" marker="$3" grace="${4:-60}" pid deadline
  if ! pid_running "$pidfile" "$marker"; then
    log "$name is not running"
    rm -f "$pidfile"
    return 0
  fi
  pid="$(<"$pidfile")"
  log "stopping $name (pid $pid, SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(($(now_s) + grace))
  while kill -0 "$pid" 2>/dev/null; do
    if (($(now_s) >= deadline)); then
      log "$name did not exit within ${grace}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 1
  done
  rm -f "$pidfile"
  log "$name stopped"
}

# http_get URL: print the body, fail on non-2xx. Uses curl when present,
# plain bash otherwise (a fresh machine may lack curl).
http_get() {
  local url="$1"
  if command -v curl >/dev/null 2>&1; then
    curl -sf --max-time 5 "$url"
    return
  fi
  local rest host port path status
  rest="${url#http://}"
  host="${rest%%/*}"
  path="/${rest#*/}"
  port="${host##*:}"
  host="${host%%:*}"
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
  IFS= read -r -t 5 status <&3 || { exec 3<&-; return 1; }
  if [[ ! "$status" =~ ^HTTP/[0-9.]+\ 2 ]]; then
    exec 3<&-
    return 1
  fi
  # skip headers, print body
  sed '1,/^\r\{0,1\}$/d' <&3
  exec 3<&-
}

# with_lock NAME CMD...: serialise concurrent runs of CMD (e.g. two up.sh).
# The lock is fd 9: daemons started under it must be launched with 9>&-,
# or they would hold the lock for their whole life.
with_lock() {
  local name="$1"
  shift
  mkdir -p "$ONEX_STATE_DIR"
  if command -v flock >/dev/null 2>&1; then
    (
      if ! flock -n 9; then
        log "waiting for another run holding $ONEX_STATE_DIR/.$name.lock"
        flock -w "${ONEX_LOCK_TIMEOUT:-3900}" 9 ||
          die "could not lock $ONEX_STATE_DIR/.$name.lock"
      fi
      "$@"
    ) 9>"$ONEX_STATE_DIR/.$name.lock"
  else
    "$@"
  fi
}

# apt_install PKG...: install Debian packages non-interactively; runs
# 'apt-get update' first only once per machine (stamp in the cache dir).
apt_install() {
  local stamp="$ONEX_CACHE_DIR/.apt-updated"
  [[ "$(id -u)" == 0 ]] || die "installing $* needs root (apt-get)"
  mkdir -p "$ONEX_CACHE_DIR"
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -e "$stamp" ]] || ! apt-get install -y -q --no-install-recommends "$@" >&2; then
    apt-get update -q >&2
    touch "$stamp"
    apt-get install -y -q --no-install-recommends "$@" >&2
  fi
}
