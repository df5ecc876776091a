#!/usr/bin/env bash
# `make run`: the fleet on this machine against real local servers.
# Starts Kafka, PostgreSQL and Consul (if not running), provisions topics,
# starts the four services as separate processes, and shows a live view
# (readiness, nodes per state, messages handled) until Ctrl-C; then stops the
# services, and the servers too if this script started them.
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
for s in registration-orchestrator reducer projector-effect consul-effect; do
  ONEX_HTTP_PORT=${ports[$s]} ONEX_GRPC_ADDR=127.0.0.1:8086 "bin/$s" >"$logs/$s.log" 2>&1 &
  pids+=($!)
  echo "started $s (pid $!, http :${ports[$s]}, log $logs/$s.log)"
done

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
  echo "nodes per state (reducer):"
  curl -sf http://127.0.0.1:8087/metrics 2>/dev/null | awk '/^onex_reducer_nodes\{/ {gsub(/.*state="/,"",$1); gsub(/"}/,"",$1); if ($2>0) printf "  %-22s %d\n", $1, $2}'
  echo
  echo "recent warnings and errors:"
  tail -q -n 200 "$logs"/*.log 2>/dev/null | grep -hE '"level":"(WARN|ERROR)"' | tail -5 | cut -c1-160 || true
done
