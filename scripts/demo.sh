#!/usr/bin/env bash
# The demo behind `make run`:
#   1. validates the configuration (topology, registry, hub);
#   2. starts the consent and ISA registry (one node, or three with
#      REGISTRY_NODES=3) with fresh data, and seeds it with the demo's
#      agreements and patient directives (config/demo/policy.toml);
#   3. makes a development PKI (CA, hub certificate, one client certificate
#      per exchange) and one broker user per exchange;
#   4. starts the hub (which follows the registry), two native adapters, and
#      an `adapter serve` for every exchange of kind hl7v2-mllp or fhir-r4
#      (those with uplink = "amqp" as their broker user), plus (with .venv)
#      a stand-in MLLP system for Barts and a FHIR system for London North
#      West;
#   5. asks the registry to explain one permitted and one denied flow, then
#      sends both as discharge summaries from Imperial (RYJ, North West
#      London) to the Royal Free (RAL, North Central London) and shows the
#      outcomes and the delivery receipt.
# Everything keeps running until `make stop`.
set -euo pipefail
config=${1:-config/demo/hub.toml}
nodes=${REGISTRY_NODES:-1}
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

case "$nodes" in
  1) registry_configs=(config/demo/registry.toml) ;;
  3) registry_configs=(config/demo/registry-cluster/node1.toml config/demo/registry-cluster/node2.toml config/demo/registry-cluster/node3.toml) ;;
  *) echo "REGISTRY_NODES is 1 or 3"; exit 1 ;;
esac
say "Starting the consent and ISA registry ($nodes node(s), API 127.0.0.1:5007x, fresh data in var/registry-*)"
rm -rf "$var"/registry-*
n=0
for registry_config in "${registry_configs[@]}"; do
  n=$((n + 1))
  "$bin/registry" check-config --config "$registry_config" >/dev/null
  LHCIE_LOG=info nohup "$bin/registry" serve --config "$registry_config" >"$var/log/registry-$n.out" 2>"$var/log/registry-$n.log" &
  echo $! >"$var/run/registry-$n.pid"
done
export LHCIE_REGISTRY=127.0.0.1:50071,127.0.0.1:50072,127.0.0.1:50073 LHCIE_ACTOR=demo-ig-officer
for _ in $(seq 1 100); do
  if "$bin/registry" status >/dev/null 2>&1; then break; fi
  sleep 0.1
done
"$bin/registry" status
say "Seeding the registry with the demo's agreements and directives (config/demo/policy.toml)"
"$bin/registry" seed --policy config/demo/policy.toml --topology config/demo/topology.toml
"$bin/registry" isa list

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

say "Starting an adapter for every exchange of kind hl7v2-mllp (MLLP on 127.0.0.1:261xx) and fhir-r4 (HTTP on 127.0.0.1:281xx)"
rm -rf "$var"/adapter-store-*
mkdir -p "$var/adapters"
exchanges_of() { # kind -> exchange ids
  awk -v kind="$1" '/^\[\[exchange\]\]/{id=""} /^id = /{gsub(/"/, "", $3); id=$3} $0 == "kind = \"" kind "\"" {print id}' config/demo/topology.toml
}
amqp_uplinks=$(awk '/^\[\[exchange\]\]/{id=""} /^id = /{gsub(/"/, "", $3); id=$3} /^uplink = "amqp"/{print id}' config/demo/topology.toml)
hl7_exchanges=$(exchanges_of hl7v2-mllp)
fhir_exchanges=$(exchanges_of fhir-r4)
started=""
metrics_port=9500 # each adapter's GET /metrics, in order from 9500
for id in $hl7_exchanges $fhir_exchanges; do
  broker=""
  if echo "$amqp_uplinks" | grep -qx "$id"; then
    if [ ! -s "$var/secrets/broker-users.toml" ]; then
      echo "($id uses the AMQP uplink but no broker users were created; not started)"
      continue
    fi
    broker="[broker]
url = \"amqp://127.0.0.1:5672/%2f\"
credentials = \"../secrets/broker-users.toml\""
  fi
  cat >"$var/adapters/$id.toml" <<EOT
topology = "../../config/demo/topology.toml"
exchange = "$id"
[hub]
endpoint = "https://127.0.0.1:50051"
[hub.tls]
ca = "../pki/ca.pem"
cert = "../pki/exchanges/$id.pem"
key = "../pki/exchanges/$id.key"
[store]
path = "../adapter-store-$id"
[metrics]
listen = "127.0.0.1:$metrics_port"
$broker
EOT
  metrics_port=$((metrics_port + 1))
  "$bin/adapter" check-config --config "$var/adapters/$id.toml" >/dev/null
  LHCIE_LOG=info nohup "$bin/adapter" serve --config "$var/adapters/$id.toml" \
    >"$var/log/adapter-$id.out" 2>"$var/log/adapter-$id.log" &
  echo $! >"$var/run/adapter-$id.pid"
  started="$started $id"
done
echo "$(echo $hl7_exchanges | wc -w) HL7 v2 adapters: $(echo $hl7_exchanges)"
echo "$(echo $fhir_exchanges | wc -w) FHIR R4 adapters: $(echo $fhir_exchanges)"
if [ -x .venv/bin/python ]; then
  # Barts' (nel-barts, R1H) local system: answers AA, records what arrives.
  rm -f "$var/received-nel-barts.hex"
  nohup .venv/bin/python integration-tests/python/mllp_server.py --port 27108 \
    --out "$var/received-nel-barts.hex" >"$var/log/mllp-nel-barts.log" 2>&1 &
  echo $! >"$var/run/mllp-nel-barts.pid"
  # London North West's (nwl-lnwh, R1K) FHIR system: takes the responses
  # its messages earn, validates and records them.
  rm -rf "$var/received-nwl-lnwh"
  nohup .venv/bin/python integration-tests/python/fhir_server.py --port 29116 \
    --out "$var/received-nwl-lnwh" >"$var/log/fhir-nwl-lnwh.log" 2>&1 &
  echo $! >"$var/run/fhir-nwl-lnwh.pid"
fi
sleep 1

say "What the registry decides, and why"
echo "\$ registry decide --nhs 9434765919 --sender RYJ --recipient RAL --category discharge-summary"
"$bin/registry" decide --nhs 9434765919 --sender RYJ --recipient RAL --category discharge-summary
echo "\$ registry decide --nhs 9000000009 --sender RYJ --recipient RAL --category discharge-summary"
"$bin/registry" decide --nhs 9000000009 --sender RYJ --recipient RAL --category discharge-summary

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

if [ -x .venv/bin/mllp_send ]; then
  say "Sending an HL7 v2 ADT^A01 with python-hl7's mllp_send from the Whittington (RKE, MLLP 26103) to Barts (R1H)"
  echo "\$ .venv/bin/mllp_send --loose --port 26103 --file config/demo/hl7v2/adt_a01_rke_to_r1h.hl7 127.0.0.1"
  .venv/bin/mllp_send --loose --port 26103 --file config/demo/hl7v2/adt_a01_rke_to_r1h.hl7 127.0.0.1 | tr '\r' '\n'
  sleep 2
  say "At Barts' local MLLP system (var/received-nel-barts.hex, one message per line): the MSH as sent"
  head -1 "$var/received-nel-barts.hex" 2>/dev/null | xxd -r -p | tr '\r' '\n' | head -1

  say "Posting a FHIR discharge summary from London North West (R1K, FHIR) to Barts (R1H, HL7 v2)"
  echo "\$ curl -s -X POST -H 'content-type: application/fhir+json' --data-binary @config/demo/fhir/discharge_summary_r1k_to_r1h.json 'http://127.0.0.1:28116/\$process-message'"
  curl -s -X POST -H 'content-type: application/fhir+json' \
    --data-binary @config/demo/fhir/discharge_summary_r1k_to_r1h.json \
    'http://127.0.0.1:28116/$process-message' | .venv/bin/python -c '
import json, sys
bundle = json.load(sys.stdin)
for entry in bundle.get("entry", []):
    resource = entry["resource"]
    if resource["resourceType"] == "MessageHeader":
        print("MessageHeader.response:", json.dumps(resource.get("response", {}).get("code")),
              "answering", resource.get("response", {}).get("identifier"))
    if resource["resourceType"] == "OperationOutcome":
        print("OperationOutcome:", json.dumps(resource["issue"][0].get("details")))
'

  sleep 2
  say "At Barts' local MLLP system: the same document as HL7 v2 MDM^T02 (segment names and types)"
  sed -n 2p "$var/received-nel-barts.hex" 2>/dev/null | xxd -r -p | tr '\r' '\n' | cut -c1-60 | grep -E '^(MSH|TXA|OBX)' | head -8
fi

say "Sending a test result from Imperial (RYJ, NWL) to Barts (R1H, NEL): no agreement covers results between NWL and NEL, so the hub withholds it and keeps it for an operator"
send --example result --from RYJ --to R1H
sleep 1
printf 'demo-operator-password\n' > "$var/secrets/ops-operator.password"
chmod 600 "$var/secrets/ops-operator.password"
echo "\$ hub dead-letters --user ops-operator --password-file var/secrets/ops-operator.password list"
"$bin/hub" dead-letters --user ops-operator --password-file "$var/secrets/ops-operator.password" list || true

cat <<EOT

Running now:
  registry                 $nodes node(s), API 127.0.0.1:5007x (registry status; logs var/log/registry-*.log)
  hub                      pid $(cat "$var/run/hub.pid"), gRPC 127.0.0.1:50051 (mutual TLS), admin http://127.0.0.1:9464
                           (/readyz, /metrics, /adapters, /audit/messages/<id>, /audit/patients/<nhs-number>); log var/log/hub.log
  dashboard                http://127.0.0.1:9465  (demo users: ops-viewer / demo-viewer-password,
                           ops-operator / demo-operator-password, ops-admin / demo-admin-password)
  metrics                  hub :9464/metrics, registry :9471/metrics
  native adapters          nwl-imperial, ncl-royal-free (logs var/log/adapter-*.log)
  HL7 v2 adapters          $(echo $hl7_exchanges) (configs var/adapters/, logs var/log/adapter-*.log)
  FHIR R4 adapters         $(echo $fhir_exchanges) (POST http://127.0.0.1:281xx/\$process-message)
Try:
  $bin/registry directive set --id DIR-DEMO-9 --nhs 9434765919 --deny-organisation RAL --from 2026-01-01 --source patient-account
  $bin/registry decide --nhs 9434765919 --sender RYJ --recipient RAL --category discharge-summary
  $bin/registry isa list     (LHCIE_REGISTRY and LHCIE_ACTOR as set by this script, or --registry/--actor)
  $bin/native-adapter --exchange nwl-imperial send --example care-event --from RYJ
  curl -s http://127.0.0.1:9464/audit/patients/9000000009
  Replay the withheld result once an agreement covers it (open http://127.0.0.1:9465 as ops-operator, or):
  $bin/registry isa draft --id ISA-DEMO-RESULTS --title "NWL-NEL results" --party region:NWL --party region:NEL --purpose direct-care --category result --legal-basis "UK GDPR 6(1)(e), 9(2)(h)" --from 2026-01-01
  $bin/registry isa sign --id ISA-DEMO-RESULTS --version 1 --party region:NWL --signer "Dr A" --role "Caldicott Guardian" --organisation RYJ
  $bin/registry isa sign --id ISA-DEMO-RESULTS --version 1 --party region:NEL --signer "Dr B" --role "Caldicott Guardian" --organisation R1H
  $bin/hub dead-letters --user ops-operator --password-file var/secrets/ops-operator.password replay --destination nel-barts --dry-run
  $bin/hub dead-letters --user ops-operator --password-file var/secrets/ops-operator.password replay --destination nel-barts
  .venv/bin/mllp_send --loose --port 26103 --file config/demo/hl7v2/adt_a01_rke_to_r1h.hl7 127.0.0.1
  curl -s -X POST -H 'content-type: application/fhir+json' --data-binary @config/demo/fhir/discharge_summary_r1k_to_r1h.json 'http://127.0.0.1:28116/\$process-message'
Stop everything with:  make stop
EOT
