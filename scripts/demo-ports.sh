#!/usr/bin/env bash
# The TCP ports the demo (`make run`) listens on, one "port what" a line:
# the hub, the registry node(s) (REGISTRY_NODES, default 1), every adapter's
# listener and metrics endpoint (from config/demo/topology.toml), and the
# stand-in local systems.
#
#   scripts/demo-ports.sh          list them
#   scripts/demo-ports.sh --busy   list only those something already listens
#                                  on; exit 1 if there are any
#
# demo.sh and demo-check.sh use --busy so that a port taken by something
# else is reported by number at the start, rather than as an adapter that
# never became ready.
set -euo pipefail
cd "$(dirname "$0")/.."
topology=config/demo/topology.toml
nodes=${REGISTRY_NODES:-1}

ports() {
  echo "50051 hub gRPC"
  echo "9464 hub admin"
  echo "9465 hub dashboard"
  for n in $(seq 1 "$nodes"); do
    echo "$((50060 + n)) registry node $n Raft"
    echo "$((50070 + n)) registry node $n API"
    echo "$((9470 + n)) registry node $n metrics"
  done
  # Adapters: each hl7v2-mllp and fhir-r4 exchange's listener; demo.sh
  # gives them metrics ports from 9500 in this order (HL7 v2, then FHIR).
  local metrics=9500 kind
  for kind in hl7v2-mllp fhir-r4; do
    while read -r id port; do
      echo "$port adapter $id ($kind)"
      echo "$metrics adapter $id metrics"
      metrics=$((metrics + 1))
    done < <(awk -v kind="$kind" '
      /^\[\[exchange\]\]/ { id = ""; k = "" }
      /^id = / { gsub(/"/, "", $3); id = $3 }
      /^kind = / { gsub(/"/, "", $3); k = $3 }
      /^listen = / && k == kind { gsub(/"/, "", $3); n = split($3, a, ":"); print id, a[n] }
    ' "$topology")
  done
  echo "27108 stand-in MLLP system of nel-barts"
  echo "29116 stand-in FHIR system of nwl-lnwh"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "${1:-}" in
  "") ports ;;
  --busy)
    busy=0
    while read -r port what; do
      if listening "$port"; then
        holder=""
        if command -v ss >/dev/null 2>&1; then
          holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(([^)]*))' | head -1 || true)
        fi
        echo "port $port ($what) is already in use${holder:+ by $holder}"
        busy=1
      fi
    done < <(ports)
    exit $busy
    ;;
  *) echo "usage: $0 [--busy]" >&2; exit 2 ;;
esac
