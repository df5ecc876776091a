#!/usr/bin/env bash
# Consul v1.13.9 agent in -dev mode (in-memory server) on 127.0.0.1, built
# from source through the Go module proxy (no prebuilt binary download).
# `built` exits 0 when the cached binary is there and current.
#
# usage: consul.sh start|stop|restart|status|build|built
#        consul.sh cli ARGS...   the consul binary with CONSUL_HTTP_ADDR set
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ONEX_LOG_TAG=consul

CONSUL_BUILD_DIR="$ONEX_CACHE_DIR/consul-build"
CONSUL_BIN="$ONEX_CACHE_DIR/bin/consul-$ONEX_CONSUL_VERSION"
CONSUL_STATE="$ONEX_STATE_DIR/consul"
CONSUL_PID="$CONSUL_STATE/consul.pid"
CONSUL_LOG="$ONEX_STATE_DIR/consul.log"
CONSUL_START_TIMEOUT="${ONEX_CONSUL_START_TIMEOUT:-60}"
CONSUL_BUILD_TIMEOUT="${ONEX_CONSUL_BUILD_TIMEOUT:-3600}"
CONSUL_MARKER="-http-port=$ONEX_CONSUL_PORT"

# inputs_hash: identifies the wrapper module the binary was built from.
inputs_hash() {
  cat "$ONEX_INFRA_DIR/consul/go.mod.in" "$ONEX_INFRA_DIR/consul/go.sum.in" |
    sha256sum | cut -d' ' -f1
}

binary_ok() {
  [[ -x "$CONSUL_BIN" && -s "$CONSUL_BIN.inputs" ]] || return 1
  [[ "$(<"$CONSUL_BIN.inputs")" == "$(inputs_hash)" ]] || return 1
  local v
  v="$("$CONSUL_BIN" version 2>/dev/null)" || return 1
  [[ "${v%%$'\n'*}" == "Consul v$ONEX_CONSUL_VERSION" ]]
}

# build: go build github.com/hashicorp/consul@v1.13.9 via a wrapper module in
# the cache dir. Slow (several minutes on 2 cores); runs once.
build_consul() {
  if binary_ok; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "go not found (needed to build Consul $ONEX_CONSUL_VERSION)"
  local t0 hash pid last=0 out="$CONSUL_BIN.tmp.$$" blog="$CONSUL_BUILD_DIR/build.log"
  t0=$(now_s)
  hash="$(inputs_hash)"
  mkdir -p "$CONSUL_BUILD_DIR" "$(dirname "$CONSUL_BIN")"
  cp "$ONEX_INFRA_DIR/consul/go.mod.in" "$CONSUL_BUILD_DIR/go.mod"
  cp "$ONEX_INFRA_DIR/consul/go.sum.in" "$CONSUL_BUILD_DIR/go.sum"
  cat >"$CONSUL_BUILD_DIR/tools.go" <<'EOF'
//go:build tools

// Package tools keeps github.com/hashicorp/consul in go.mod.
package tools

import _ "github.com/hashicorp/consul"
EOF
  log "building Consul $ONEX_CONSUL_VERSION from source (first time only, takes ~5-10 min on 2 cores; log: $blog)"
  (
    cd "$CONSUL_BUILD_DIR"
    export GOWORK=off CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
    go version
    go build -trimpath -ldflags "-s -w" -o "$out" github.com/hashicorp/consul
  ) >"$blog" 2>&1 &
  pid=$!
  # Poll so a caller sees progress and a hung build is bounded.
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (($(now_s) - t0 >= CONSUL_BUILD_TIMEOUT)); then
      kill -- "$pid" 2>/dev/null || true
      rm -f "$out"
      die "Consul build exceeded ${CONSUL_BUILD_TIMEOUT}s; see $blog"
    fi
    if (($(now_s) - last >= 60)); then
      last=$(now_s)
      log "... still building Consul ($((last - t0))s)"
    fi
  done
  if ! wait "$pid"; then
    rm -f "$out"
    tail -n 30 "$blog" >&2 || true
    die "Consul build failed; see $blog"
  fi
  mv "$out" "$CONSUL_BIN"
  printf '%s\n' "$hash" >"$CONSUL_BIN.inputs"
  binary_ok || die "built $CONSUL_BIN but it does not report Consul v$ONEX_CONSUL_VERSION"
  log "built $CONSUL_BIN in $(($(now_s) - t0))s"
}

is_running() { pid_running "$CONSUL_PID" "$CONSUL_MARKER"; }

leader() {
  local l
  l="$(http_get "http://$(onex_consul_addr)/v1/status/leader" 2>/dev/null)" || return 1
  [[ -n "$l" && "$l" != '""' ]] || return 1
  printf '%s\n' "$l"
}

start() {
  with_lock consul-build build_consul
  if is_running; then
    log "already running (pid $(<"$CONSUL_PID")) on http://$(onex_consul_addr)"
    return 0
  fi
  local port
  for port in "$ONEX_CONSUL_PORT" "$ONEX_CONSUL_SERVER_PORT" "$ONEX_CONSUL_SERF_LAN_PORT" \
    "$ONEX_CONSUL_SERF_WAN_PORT" "$ONEX_CONSUL_GRPC_PORT" "$ONEX_CONSUL_DNS_PORT"; do
    if port_in_use "$port"; then
      die "port $port is in use by another process (not our Consul); set the ONEX_CONSUL_*_PORT variables"
    fi
  done
  mkdir -p "$CONSUL_STATE"
  local t0 pid
  t0=$(now_s)
  log "starting Consul $ONEX_CONSUL_VERSION -dev on http://$(onex_consul_addr) (log: $CONSUL_LOG)"
  printf '\n=== %s starting Consul %s ===\n' "$(date -Is)" "$ONEX_CONSUL_VERSION" >>"$CONSUL_LOG"
  setsid nohup "$CONSUL_BIN" agent -dev \
    -node=onex-dev -datacenter=dc1 \
    -bind=127.0.0.1 -advertise=127.0.0.1 -client=127.0.0.1 \
    -http-port="$ONEX_CONSUL_PORT" \
    -dns-port="$ONEX_CONSUL_DNS_PORT" \
    -server-port="$ONEX_CONSUL_SERVER_PORT" \
    -serf-lan-port="$ONEX_CONSUL_SERF_LAN_PORT" \
    -serf-wan-port="$ONEX_CONSUL_SERF_WAN_PORT" \
    -grpc-port="$ONEX_CONSUL_GRPC_PORT" \
    -log-level=info \
    >>"$CONSUL_LOG" 2>&1 </dev/null 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$CONSUL_PID"
  until leader >/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$CONSUL_PID"
      tail -n 30 "$CONSUL_LOG" >&2 || true
      die "Consul exited during start-up; see $CONSUL_LOG"
    fi
    if (($(now_s) - t0 >= CONSUL_START_TIMEOUT)); then
      die "Consul has no leader after ${CONSUL_START_TIMEOUT}s (pid $pid); see $CONSUL_LOG"
    fi
    sleep 1
  done
  log "ready on http://$(onex_consul_addr), leader $(leader) (pid $pid, $(($(now_s) - t0))s)"
}

stop() {
  stop_pidfile consul "$CONSUL_PID" "$CONSUL_MARKER" "${ONEX_CONSUL_STOP_TIMEOUT:-30}"
}

status() {
  if is_running; then
    echo "consul: running (pid $(<"$CONSUL_PID")) version $ONEX_CONSUL_VERSION -dev http http://$(onex_consul_addr) leader $(leader || echo none) dns 127.0.0.1:$ONEX_CONSUL_DNS_PORT grpc 127.0.0.1:$ONEX_CONSUL_GRPC_PORT log $CONSUL_LOG"
  else
    echo "consul: stopped (version $ONEX_CONSUL_VERSION, http $(onex_consul_addr))"
    return 3
  fi
}

usage() {
  sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) with_lock consul start ;;
  stop) with_lock consul stop ;;
  restart) with_lock consul stop && with_lock consul start ;;
  status) status ;;
  build) with_lock consul-build build_consul ;;
  built) binary_ok ;;
  cli)
    with_lock consul-build build_consul
    CONSUL_HTTP_ADDR="$(onex_consul_addr)" exec "$CONSUL_BIN" "$@"
    ;;
  *) usage ;;
esac
