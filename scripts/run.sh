#!/usr/bin/env bash
# `make run`: the fleet on this machine against real local servers.
# Starts Kafka, PostgreSQL and Consul (if not running), provisions topics,
# starts the four services as separate processes and a simulated fleet of
# ONEX_RUN_NODES (50) nodes, and shows a live view (readiness, nodes per
# state in PostgreSQL and Consul, the newest transitions) until Ctrl-C; then
# stops the nodes and services, and the servers too if this script started
# them. The four services register themselves as ONEX nodes as well.
set -euo pipefail
cd "$(dirname "$0")/.."
infra=scripts/infra

was_running=1
for s in kafka postgres consul; do
  "$infra/$s.sh" status >/dev/null 2>&1 || was_running=0
done
"$infra/up.sh"
eval "$("$infra/env.sh")"
make -s build
bin/onexctl topics provision || echo "topic drift reported above (existing topics are never changed)"

logs="$ONEX_STATE_DIR/fleet-logs"
mkdir -p "$logs"
export ONEX_CONTRACTS_DIR="$PWD/contracts"
declare -A ports=([registration-orchestrator]=8085 [reducer]=8087 [projector-effect]=8088 [consul-effect]=8089)
pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping services..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ $was_running == 0 ]]; then
    echo "stopping the servers this run started..."
    "$infra/down.sh"
  else
    echo "servers were already running before; left running (make infra-down stops them)"
  fi
}
trap stop INT TERM EXIT
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export ONEX_NODE_HEARTBEAT_INTERVAL=${ONEX_NODE_HEARTBEAT_INTERVAL:-10s}
for s in registration-orchestrator reducer projector-effect consul-effect; do
  ONEX_HTTP_PORT=${ports[$s]} ONEX_GRPC_ADDR=127.0.0.1:8086 "bin/$s" >"$logs/$s.log" 2>&1 &
  pids+=($!)
  echo "started $s (pid $!, http :${ports[$s]}, log $logs/$s.log)"
done

for s in registration-orchestrator reducer projector-effect consul-effect; do
  for _ in $(seq 1 120); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[$s]}/readyz" || true) == 200 ]] && break
    sleep 0.5
  done
done
nodes=${ONEX_RUN_NODES:-50}
bin/onexctl simulate --nodes "$nodes" --rate 25 --heartbeat-interval 10s --seed make-run --report 5s \
  >"$logs/simulate.log" 2>&1 &
pids=("$!" "${pids[@]}")
echo "started onexctl simulate --nodes $nodes (log $logs/simulate.log)"

sql() { psql "$OMNIBASE_INFRA_DB_URL" -Atq -F ' ' -c "$1" 2>/dev/null || true; }
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
  printf "ONEX services in Consul: %s\n" "$(curl -sf "http://$CONSUL_HTTP_ADDR/v1/agent/services" 2>/dev/null | grep -o '"onex-node-id"' | wc -l)"
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
