#!/usr/bin/env bash
# The demo behind `make run`:
#   1. validates the configuration (topology, policy, hub);
#   2. makes a development PKI (CA, hub certificate, one client certificate
#      per exchange) and one broker user per exchange;
#   3. starts the hub and two native adapters in the background;
#   4. sends a discharge summary from Imperial (RYJ, North West London) to
#      the Royal Free (RAL, North Central London), and one the policy denies,
#      and shows the routes, the outcomes and the delivery receipt.
# Everything keeps running until `make stop`.
set -euo pipefail
config=${1:-config/demo/hub.toml}
bin=target/debug
var=var
mkdir -p "$var/log" "$var/run"

say() { printf '\n== %s\n' "$*"; }

http_get() { # host port path -> body (HTTP status on the first line)
  exec 3<>"/dev/tcp/$1/$2" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&3
  cat <&3
  exec 3<&-
}

scripts/demo-stop.sh quiet

say "Checking the configuration ($config)"
"$bin/hub" check-config "$config"

say "Development PKI (var/pki) and broker users (var/secrets)"
"$bin/hub" dev-pki "$config" "$var/pki"
if ! "$bin/hub" provision-broker-users "$config" "$var/secrets/broker-users.toml" 2>"$var/log/provision.log"; then
  echo "(broker users not created: $(tail -1 "$var/log/provision.log")); the demo uses gRPC and does not need them"
fi

say "Starting the hub (gRPC 127.0.0.1:50051 with mutual TLS, admin http://127.0.0.1:9464)"
LHCIE_LOG=info nohup "$bin/hub" serve "$config" >"$var/log/hub.out" 2>"$var/log/hub.log" &
echo $! >"$var/run/hub.pid"
for _ in $(seq 1 100); do
  if http_get 127.0.0.1 9464 /readyz 2>/dev/null | head -1 | grep -q ' 200 '; then break; fi
  if ! kill -0 "$(cat "$var/run/hub.pid")" 2>/dev/null; then
    echo "the hub stopped; its log:"; tail -20 "$var/log/hub.log"; exit 1
  fi
  sleep 0.1
done
http_get 127.0.0.1 9464 /readyz | tail -1; echo

adapter() { # exchange -> background receiver
  LHCIE_LOG=warn nohup "$bin/native-adapter" --hub https://127.0.0.1:50051 --pki "$var/pki" --exchange "$1" receive \
    >"$var/log/adapter-$1.log" 2>&1 &
  echo $! >"$var/run/adapter-$1.pid"
}
say "Starting native adapters for nwl-imperial and ncl-royal-free"
adapter nwl-imperial
adapter ncl-royal-free
sleep 1

send() { "$bin/native-adapter" --hub https://127.0.0.1:50051 --pki "$var/pki" --exchange nwl-imperial send "$@"; }
say "Sending a discharge summary from Imperial (RYJ, NWL) to the Royal Free (RAL, NCL)"
send --example discharge-summary --from RYJ --to RAL
say "Sending one for a patient who has told the Royal Free it may not receive their records"
send --example discharge-summary --from RYJ --to RAL --nhs-number 9000000009
sleep 2

say "At the Royal Free's adapter (var/log/adapter-ncl-royal-free.log)"
cat "$var/log/adapter-ncl-royal-free.log"
say "At Imperial's adapter: the delivery receipt and the hub's negative acknowledgement (var/log/adapter-nwl-imperial.log)"
cat "$var/log/adapter-nwl-imperial.log"

cat <<EOT

Running now:
  hub                      pid $(cat "$var/run/hub.pid"), gRPC 127.0.0.1:50051 (mutual TLS), admin http://127.0.0.1:9464
                           (/readyz, /adapters, /audit/messages/<id>, /audit/patients/<nhs-number>); log var/log/hub.log
  native adapters          nwl-imperial, ncl-royal-free (logs var/log/adapter-*.log)
Try:
  $bin/native-adapter --exchange nwl-imperial send --example care-event --from RYJ
  curl -s http://127.0.0.1:9464/audit/patients/9000000009
Stop everything with:  make stop
EOT
