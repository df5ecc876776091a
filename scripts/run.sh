#!/usr/bin/env bash
# `make run`: the fleet on this machine against real local servers.
# Starts Kafka, PostgreSQL and Consul (those not running), provisions topics,
# starts the four services as separate processes and a simulated fleet of
# ONEX_RUN_NODES (50) nodes, and shows a live view (readiness, nodes per
# state in PostgreSQL and Consul, the newest transitions) until Ctrl-C,
# SIGTERM or SIGHUP (to this script, to make, or to the whole process group);
# then stops the nodes and services, and each server this script started.
# Servers that were running before it started are left running. A signal
# during start-up stops what was started so far; further signals are ignored
# while it stops (SIGKILL still works). The four services register themselves
# as ONEX nodes as well.
#
# Ports: the servers' come from scripts/infra/lib.sh (ONEX_KAFKA_PORT, ...);
# the services' are ONEX_RUN_PORT_BASE (8085) and the four after it:
# orchestrator +0, projector gRPC +1, reducer +2, projector +3,
# consul-effect +4.
set -euo pipefail
cd "$(dirname "$0")/.."
infra=scripts/infra

services=(registration-orchestrator reducer projector-effect consul-effect)
base=${ONEX_RUN_PORT_BASE:-8085}
[[ $base =~ ^[0-9]+$ ]] && ((base > 0 && base + 4 < 65536)) ||
  { echo "ONEX_RUN_PORT_BASE=$base is not a port number" >&2; exit 2; }
declare -A ports=([registration-orchestrator]=$base [reducer]=$((base + 2))
  [projector-effect]=$((base + 3)) [consul-effect]=$((base + 4)))
grpc_port=$((base + 1))
for p in "$base" "$grpc_port" "${ports[reducer]}" "${ports[projector-effect]}" "${ports[consul-effect]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is in use (another make run?); set ONEX_RUN_PORT_BASE to move the services' ports $base-$((base + 4))" >&2
    exit 1
  fi
done

# The servers this run starts, and so stops: every one not running now. A
# server that runs already (another make run, make infra-up) is left alone.
started=()
for s in postgres kafka consul; do
  "$infra/$s.sh" status >/dev/null 2>&1 || started+=("$s")
done
pids=() # the simulated fleet first, then the services

# stop_pid PID NAME: SIGTERM, up to 20 s for it to exit, then SIGKILL.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$2 (pid $pid) did not exit within 20s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleaned=0
cleanup() {
  ((cleaned)) && return 0
  cleaned=1
  # Finish the stop even on a second Ctrl-C (the children started from here
  # inherit the ignored signals too).
  trap '' INT TERM HUP
  set +e
  echo
  if ((${#pids[@]})); then
    echo "stopping the simulated fleet and the services..."
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do stop_pid "$p" "fleet process"; done
  fi
  local i s
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    s=${started[i]}
    echo "stopping $s (started by this run)..."
    "$infra/$s.sh" stop
  done
  if ((${#started[@]} < 3)); then
    echo "servers running before this run were left running (make infra-down stops them)"
  fi
}
on_signal() {
  cleanup
  # Die of the signal, as the caller (make, a shell) expects.
  trap - "$1" EXIT
  kill -s "$1" $$
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP
trap cleanup EXIT

"$infra/up.sh"
eval "$("$infra/env.sh")"
make -s build
bin/onexctl topics provision || echo "topic drift reported above (existing topics are never changed)"

logs="$ONEX_STATE_DIR/fleet-logs"
mkdir -p "$logs"
export ONEX_CONTRACTS_DIR="$PWD/contracts"
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export ONEX_NODE_HEARTBEAT_INTERVAL=${ONEX_NODE_HEARTBEAT_INTERVAL:-10s}
for s in "${services[@]}"; do
  ONEX_HTTP_PORT=${ports[$s]} ONEX_GRPC_ADDR=127.0.0.1:$grpc_port "bin/$s" >"$logs/$s.log" 2>&1 &
  pids+=($!)
  echo "started $s (pid $!, http :${ports[$s]}, log $logs/$s.log)"
done

ready=0
for s in "${services[@]}"; do
  for _ in $(seq 1 120); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[$s]}/readyz" || true) == 200 ]]; then
      ready=$((ready + 1))
      break
    fi
    sleep 0.5
  done
done
nodes=${ONEX_RUN_NODES:-50}
bin/onexctl simulate --nodes "$nodes" --rate 25 --heartbeat-interval 10s --seed make-run --report 5s \
  >"$logs/simulate.log" 2>&1 &
pids=("$!" "${pids[@]}")
echo "started onexctl simulate --nodes $nodes (pid $!, log $logs/simulate.log)"
echo "fleet up: $ready of ${#services[@]} services ready"

sql() { psql "$OMNIBASE_INFRA_DB_URL" -Atq -F ' ' -c "$1" 2>/dev/null || true; }
consul_checks() { # consul_checks STATUS: ONEX liveness checks in that state
  curl -sf "http://$CONSUL_HTTP_ADDR/v1/health/state/$1" 2>/dev/null | grep -o '"onex-liveness:' | wc -l
}
metric() { # metric PORT NAME: sum of a Prometheus series
  curl -sf "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v n="$2" '$1 ~ "^"n"({|$)" {s+=$2} END {printf "%d", s}'
}
while true; do
  sleep 2
  clear 2>/dev/null || true
  echo "ONEX registration fleet — Ctrl-C to stop     $(date -u +%H:%M:%S)"
  echo
  printf "%-28s %-8s %s\n" SERVICE READY "MESSAGES HANDLED"
  for s in registration-orchestrator reducer projector-effect consul-effect; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[$s]}/readyz" || true)
    ready=no; [[ $code == 200 ]] && ready=yes
    series=onex_messages_consumed_total
    [[ $s == reducer ]] && series=onex_reducer_inputs_total # the reducer consumes transactionally, outside pkg/bus
    printf "%-28s %-8s %s\n" "$s" "$ready" "$(metric "${ports[$s]}" "$series")"
  done
  echo
  echo "nodes of this run per state (PostgreSQL; simulated nodes and the fleet's own services):"
  sql "SELECT current_state, count(*) FROM registration_projections WHERE updated_at >= '$started_at' GROUP BY 1 ORDER BY 1" |
    awk '{printf "  %-22s %d\n", $1, $2}'
  echo "fleet services registered as ONEX nodes:"
  sql "SELECT node_name, current_state FROM registration_projections WHERE node_name LIKE 'node_registration_%' AND updated_at >= '$started_at' ORDER BY 1" |
    awk '{printf "  %-38s %s\n", $1, $2}'
  if [[ ${ONEX_CONSUL_REGISTRATION_MODE:-catalog} == agent ]]; then
    printf "ONEX services in Consul (agent mode, on the agent): %s\n" \
      "$(curl -sf "http://$CONSUL_HTTP_ADDR/v1/agent/services" 2>/dev/null | grep -o '"onex-node-id"' | wc -l)"
  else
    # Catalog mode: external services, one liveness check each whose status
    # the fleet writes (passing = ACTIVE, warning = awaiting its ack).
    printf "ONEX services in Consul (catalog): %s passing, %s awaiting ack, %s critical\n" \
      "$(consul_checks passing)" "$(consul_checks warning)" "$(consul_checks critical)"
  fi
  echo
  echo "newest transitions:"
  sql "SELECT to_char(updated_at, 'HH24:MI:SS'), coalesce(node_name, entity_id::text), current_state FROM registration_projections WHERE updated_at >= '$started_at' ORDER BY updated_at DESC LIMIT 5" |
    awk '{printf "  %s %-38s %s\n", $1, $2, $3}'
  echo
  echo "simulated fleet: $(tail -n 1 "$logs/simulate.log" 2>/dev/null | cut -c1-150)"
  echo
  echo "recent warnings and errors:"
  tail -q -n 200 "$logs"/*.log 2>/dev/null | grep -hE '"level":"(WARN|ERROR)"' | tail -5 | cut -c1-160 || true
done
