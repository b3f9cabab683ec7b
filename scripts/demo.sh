#!/usr/bin/env bash
# The demo behind `make run`:
#   1. validates the configuration (topology, registry, hub) and starts from
#      fresh demo state (the stores, logs and received files under var/ of
#      any earlier run are removed; var/pki and var/secrets are remade);
#   2. makes a development PKI (CA; certificates for the hub, each exchange,
#      each registry node and the registry's clients), starts the consent
#      and ISA registry (one node, or three with REGISTRY_NODES=3) and seeds
#      it with the demo's agreements and patient directives
#      (config/demo/policy.toml);
#   3. makes one broker user per exchange;
#   4. starts the hub (which follows the registry), two native adapters, and
#      an `adapter serve` for every exchange of kind hl7v2-mllp or fhir-r4
#      (those with uplink = "amqp" as their broker user), plus (with .venv)
#      a stand-in MLLP system for Barts and a FHIR system for London North
#      West, and waits until each is ready;
#   5. asks the registry to explain one permitted and one denied flow, then
#      sends both as discharge summaries from Imperial (RYJ, North West
#      London) to the Royal Free (RAL, North Central London), an HL7 v2 ADT
#      and a FHIR discharge summary to Barts, and a result no agreement
#      covers; waits for each outcome and checks it;
#   6. prints a summary, ending with "demo: all steps completed" only when
#      every step succeeded.
# Everything keeps running until `make stop`. If a step fails, the demo
# says which (and which log to read), stops everything it started and
# exits non-zero.
set -euo pipefail
config=${1:-config/demo/hub.toml}
nodes=${REGISTRY_NODES:-1}
bin=${CARGO_TARGET_DIR:-target}/debug  # where cargo builds (CARGO_TARGET_DIR if set)
var=var
started_at=$SECONDS
# How long to wait for anything to be ready or to arrive. Everything takes
# well under a second on an idle machine; the margin is for a loaded CI
# runner and debug builds.
patience=30

# --- Failing clearly --------------------------------------------------------

step="starting"   # the step under way, named if the demo fails
step_log=""       # the log that explains a failure of that step

say() { printf '\n== %s\n' "$*"; }
# step TITLE [LOG]: announces a step and remembers it for a failure message.
step() {
  step=$1
  step_log=${2:-}
  say "$1"
}
fail() {
  echo "demo: $*" >&2
  exit 1
}
on_exit() {
  local status=$?
  [ "$status" -eq 0 ] && return
  echo >&2
  echo "demo: FAILED at step: $step" >&2
  [ -z "$step_log" ] || echo "demo: see $step_log" >&2
  echo "demo: stopping what it started" >&2
  scripts/demo-stop.sh quiet
  exit "$status"
}
trap on_exit EXIT
# Ctrl-C (or a CI timeout) also stops what was started.
trap 'exit 130' INT TERM

# --- Waiting instead of sleeping ------------------------------------------

# wait_for SECONDS WHAT COMMAND [ARGS...]: runs COMMAND every 0.2 s until it
# succeeds; fails the step, naming WHAT, if it has not within SECONDS. (A
# fixed sleep is too short on a loaded machine and wasted on an idle one.)
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "still waiting after $seconds s for $what"
    fi
    sleep 0.2
  done
}

http_get() { # host port path -> body (HTTP status on the first line)
  exec 3<>"/dev/tcp/$1/$2" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&3
  cat <&3
  exec 3<&-
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# alive NAME: the process started as var/run/NAME.pid is still running.
alive() { kill -0 "$(cat "$var/run/$1.pid" 2>/dev/null)" 2>/dev/null; }
# running NAME LOG...: fails the step at once if NAME has stopped (rather
# than waiting the full time for something it will never do), showing the
# end of its logs.
running() {
  local name=$1 log
  shift
  alive "$name" && return
  for log in "$@"; do
    [ -s "$log" ] && printf '== the end of %s\n%s\n' "$log" "$(tail -20 "$log")" >&2
  done
  fail "$name stopped (logs: $*)"
}

# --- Fresh state ----------------------------------------------------------

scripts/demo-stop.sh quiet

step "Checking the configuration ($config) and the demo's ports"
"$bin/hub" check-config "$config"
# A port something else holds would otherwise surface as a process that
# never became ready; name it instead.
busy=$(REGISTRY_NODES=$nodes scripts/demo-ports.sh --busy) || fail "$busy"

step "Starting from fresh demo state (var/)"
# The hub's store de-duplicates by message id, so a second run's messages
# were dropped as duplicates of the first run's; adapters' stores, the
# registry's data and the stand-in systems' received files would mix two
# runs too. The PKI and broker users are remade below, so they stay.
hub_store=$(awk -F'"' '/^\[store\]/ { s = 1 } s && /^path *=/ { print $2; exit }' "$config")
hub_store=$(realpath -m "$(dirname "$config")/$hub_store")
case "$hub_store" in
  "$(realpath -m "$var")"/*) rm -rf "$hub_store" ;;
  *) echo "(the hub's store $hub_store is outside $var/: kept)" ;;
esac
rm -rf "$var"/registry-* "$var"/adapter-store-* "$var/adapters" "$var"/received-* "$var/demo" "$var/log"
mkdir -p "$var/log" "$var/run" "$var/demo"
# Messages an earlier run left in the demo's broker queues (say a copy an
# interrupted run never delivered) would arrive in this run: purge them.
# Best effort, as rabbitmqctl needs root (or sudo without a password); the
# checks below match this run's own ids anyway.
prefix=$(awk -F'"' '/^prefix *=/ { print $2; exit }' "$config")
if [ "$(id -u)" -eq 0 ]; then
  rabbitmqctl=(rabbitmqctl)
elif sudo -n true 2>/dev/null; then
  rabbitmqctl=(sudo -n rabbitmqctl)
else
  rabbitmqctl=()
fi
if [ ${#rabbitmqctl[@]} -gt 0 ] && command -v rabbitmqctl >/dev/null 2>&1; then
  leftovers=$("${rabbitmqctl[@]}" -q list_queues --no-table-headers name messages 2>/dev/null |
    awk -v p="$prefix." 'index($1, p) == 1 && $2 > 0 { print $1 }') || leftovers=""
  for queue in $leftovers; do
    "${rabbitmqctl[@]}" -q purge_queue "$queue" >/dev/null && echo "purged what an earlier run left in $queue"
  done
else
  echo "(cannot run rabbitmqctl: messages an earlier run left in the $prefix.* queues are kept)"
fi
# This run's id: it makes the HL7 v2 control id and the FHIR message and
# document ids unique, so that nothing this run sends is a duplicate of an
# earlier run's, and the checks can tell this run's messages apart.
run_id=$(date +%y%m%d%H%M%S)$(printf '%02d' $((RANDOM % 100)))
echo "run $run_id"

# --- Registry ---------------------------------------------------------------

case "$nodes" in
  1) registry_configs=(config/demo/registry.toml) ;;
  3) registry_configs=(config/demo/registry-cluster/node1.toml config/demo/registry-cluster/node2.toml config/demo/registry-cluster/node3.toml) ;;
  *) fail "REGISTRY_NODES is 1 or 3" ;;
esac
# The development PKI first: the registry nodes need their certificates
# (var/pki/registry/node-<id>.pem), the hub and the registry CLI their
# service certificates (var/pki/services/{hub,registry-admin}.pem).
step "Development PKI (var/pki): CA, hub, exchanges, registry nodes, services" "$var/log/provision.log"
"$bin/hub" dev-pki "$config" "$var/pki"
step "Starting the consent and ISA registry ($nodes node(s), mutual TLS, API 127.0.0.1:5007x, fresh data in var/registry-*)" "$var/log/registry-1.log"
n=0
for registry_config in "${registry_configs[@]}"; do
  n=$((n + 1))
  "$bin/registry" check-config --config "$registry_config" >/dev/null
  LHCIE_LOG=info nohup "$bin/registry" serve --config "$registry_config" >"$var/log/registry-$n.out" 2>"$var/log/registry-$n.log" </dev/null &
  echo $! >"$var/run/registry-$n.pid"
done
export LHCIE_REGISTRY=127.0.0.1:50071,127.0.0.1:50072,127.0.0.1:50073 LHCIE_ACTOR=demo-ig-officer
# The registry CLI's client certificate: changes are recorded as made by
# urn:lhcie:service:registry-admin (LHCIE_ACTOR is a label only).
export LHCIE_REGISTRY_CA="$PWD/$var/pki/ca.pem" LHCIE_REGISTRY_CERT="$PWD/$var/pki/services/registry-admin.pem" LHCIE_REGISTRY_KEY="$PWD/$var/pki/services/registry-admin.key"
registry_ready() {
  for n in $(seq 1 "$nodes"); do running "registry-$n" "$var/log/registry-$n.log" "$var/log/registry-$n.out"; done
  "$bin/registry" status >/dev/null 2>&1
}
wait_for "$patience" "the registry answering (registry status)" registry_ready
"$bin/registry" status
step "Seeding the registry with the demo's agreements and directives (config/demo/policy.toml)" "$var/log/registry-1.log"
"$bin/registry" seed --policy config/demo/policy.toml --topology config/demo/topology.toml
"$bin/registry" isa list

step "Broker users (var/secrets)" "$var/log/provision.log"
# One credentials file per exchange (var/secrets/broker/<exchange-id>.toml),
# so that each adapter reads only its own. (Earlier versions wrote them all
# to one file, var/secrets/broker-users.toml: no longer used.)
rm -f "$var/secrets/broker-users.toml"
if ! "$bin/hub" provision-broker-users "$config" "$var/secrets/broker" 2>"$var/log/provision.log"; then
  echo "(broker users not created: $(tail -1 "$var/log/provision.log")); the demo uses gRPC and does not need them"
fi

# --- Hub and adapters -------------------------------------------------------

step "Starting the hub (gRPC 127.0.0.1:50051 with mutual TLS, admin http://127.0.0.1:9464)" "$var/log/hub.log"
LHCIE_LOG=info nohup "$bin/hub" serve "$config" >"$var/log/hub.out" 2>"$var/log/hub.log" </dev/null &
echo $! >"$var/run/hub.pid"
# Ready: following the registry, connected to the broker, serving gRPC.
# (The whole answer is read before it is looked at: under pipefail, a reader
# that stops early, like head, can fail the writer with SIGPIPE.)
hub_ready() {
  running hub "$var/log/hub.log" "$var/log/hub.out"
  local answer
  answer=$(http_get 127.0.0.1 9464 /readyz 2>/dev/null) || return 1
  [[ $answer == "HTTP/1.1 200 "* ]]
}
wait_for "$patience" "the hub ready (GET /readyz answering 200)" hub_ready
http_get 127.0.0.1 9464 /readyz | tail -1; echo

# The exchanges whose adapters the hub has heard from (GET /adapters: the
# adapters' heartbeats, the first sent as soon as one connects).
adapters_up() {
  http_get 127.0.0.1 9464 /adapters 2>/dev/null |
    grep -o '"exchange":"[^"]*"[^}]*"up":true' | sed 's/^"exchange":"\([^"]*\)".*/\1/' || true
}
# up EXCHANGE...: each one's adapter still running and heard from by the hub.
up() {
  local heard id
  heard=$(adapters_up)
  for id in "$@"; do
    running "adapter-$id" "$var/log/adapter-$id.log" "$var/log/adapter-$id.out"
    grep -qx "$id" <<<"$heard" || return 1
  done
}

adapter() { # exchange -> background receiver
  LHCIE_LOG=warn nohup "$bin/native-adapter" --hub https://127.0.0.1:50051 --pki "$var/pki" --exchange "$1" receive \
    >"$var/log/adapter-$1.log" 2>&1 </dev/null &
  echo $! >"$var/run/adapter-$1.pid"
}
step "Starting native adapters for nwl-imperial and ncl-royal-free" "$var/log/adapter-ncl-royal-free.log"
adapter nwl-imperial
adapter ncl-royal-free
wait_for "$patience" "nwl-imperial and ncl-royal-free connected to the hub (GET /adapters)" up nwl-imperial ncl-royal-free

step "Starting an adapter for every exchange of kind hl7v2-mllp (MLLP on 127.0.0.1:261xx) and fhir-r4 (HTTP on 127.0.0.1:281xx)" "$var/log/adapter-<exchange>.log"
mkdir -p "$var/adapters"
exchanges_of() { # kind -> exchange ids
  awk -v kind="$1" '/^\[\[exchange\]\]/{id=""} /^id = /{gsub(/"/, "", $3); id=$3} $0 == "kind = \"" kind "\"" {print id}' config/demo/topology.toml
}
listen_port_of() { # exchange id -> the port its adapter listens on
  awk -v want="$1" '/^\[\[exchange\]\]/{id=""} /^id = /{gsub(/"/, "", $3); id=$3} id == want && /^listen = /{gsub(/"/, "", $3); n = split($3, a, ":"); print a[n]}' config/demo/topology.toml
}
amqp_uplinks=$(awk '/^\[\[exchange\]\]/{id=""} /^id = /{gsub(/"/, "", $3); id=$3} /^uplink = "amqp"/{print id}' config/demo/topology.toml)
hl7_exchanges=$(exchanges_of hl7v2-mllp)
fhir_exchanges=$(exchanges_of fhir-r4)
started=""
metrics_port=9499 # each adapter's GET /metrics, in order from 9500 (as scripts/demo-ports.sh lists them)
for id in $hl7_exchanges $fhir_exchanges; do
  metrics_port=$((metrics_port + 1))
  broker=""
  if grep -qx "$id" <<<"$amqp_uplinks"; then
    if [ ! -s "$var/secrets/broker/$id.toml" ]; then
      echo "($id uses the AMQP uplink but no broker users were created; not started)"
      continue
    fi
    broker="[broker]
url = \"amqp://127.0.0.1:5672/%2f\"
credentials = \"../secrets/broker/$id.toml\""
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
  "$bin/adapter" check-config --config "$var/adapters/$id.toml" >/dev/null
  LHCIE_LOG=info nohup "$bin/adapter" serve --config "$var/adapters/$id.toml" \
    >"$var/log/adapter-$id.out" 2>"$var/log/adapter-$id.log" </dev/null &
  echo $! >"$var/run/adapter-$id.pid"
  started="$started $id"
done
echo "$(echo $hl7_exchanges | wc -w) HL7 v2 adapters: $(echo $hl7_exchanges)"
echo "$(echo $fhir_exchanges | wc -w) FHIR R4 adapters: $(echo $fhir_exchanges)"
# Ready: heard from by the hub, and listening for their local systems.
listening_adapters() {
  local id
  for id in $started; do listening "$(listen_port_of "$id")" || return 1; done
}
wait_for "$patience" "every adapter connected to the hub (GET /adapters)" up $started
wait_for "$patience" "every adapter listening for its local system (MLLP 261xx, HTTP 281xx)" listening_adapters
echo "all $(echo $started | wc -w) ready (connected to the hub, listening)"

# The HL7 v2 and FHIR steps need the Python clients and stand-in systems
# (.venv, made by `make test` or scripts/ensure-python.sh) and Barts'
# adapter (AMQP uplink: needs its broker user).
formats=""
if [ ! -x .venv/bin/python ]; then
  formats_skipped="no .venv: run scripts/ensure-python.sh"
elif ! grep -qw nel-barts <<<"$started"; then
  formats_skipped="Barts' adapter not started: no broker users"
else
  formats=yes
  step "Starting the stand-in local systems of Barts (MLLP 127.0.0.1:27108) and London North West (FHIR 127.0.0.1:29116)" "$var/log/mllp-nel-barts.log"
  # Barts' (nel-barts, R1H) local system: answers AA, records what arrives.
  nohup .venv/bin/python integration-tests/python/mllp_server.py --port 27108 \
    --out "$var/received-nel-barts.hex" >"$var/log/mllp-nel-barts.log" 2>&1 </dev/null &
  echo $! >"$var/run/mllp-nel-barts.pid"
  # London North West's (nwl-lnwh, R1K) FHIR system: takes the responses
  # its messages earn, validates and records them.
  nohup .venv/bin/python integration-tests/python/fhir_server.py --port 29116 \
    --out "$var/received-nwl-lnwh" >"$var/log/fhir-nwl-lnwh.log" 2>&1 </dev/null &
  echo $! >"$var/run/fhir-nwl-lnwh.pid"
  stand_ins_ready() {
    running mllp-nel-barts "$var/log/mllp-nel-barts.log"
    running fhir-nwl-lnwh "$var/log/fhir-nwl-lnwh.log"
    listening 27108 && listening 29116
  }
  wait_for "$patience" "the stand-in systems listening on 27108 and 29116" stand_ins_ready
  echo "ready"
fi

# --- The flows --------------------------------------------------------------

step "What the registry decides, and why" "$var/log/registry-1.log"
echo "\$ registry decide --nhs 9434765919 --sender RYJ --recipient RAL --category discharge-summary"
"$bin/registry" decide --nhs 9434765919 --sender RYJ --recipient RAL --category discharge-summary
echo "\$ registry decide --nhs 9000000009 --sender RYJ --recipient RAL --category discharge-summary"
"$bin/registry" decide --nhs 9000000009 --sender RYJ --recipient RAL --category discharge-summary

send() { "$bin/native-adapter" --hub https://127.0.0.1:50051 --pki "$var/pki" --exchange nwl-imperial send "$@"; }
# The message id in what `native-adapter send` printed ("sent <category> <id> ...").
sent_id() { awk '/^sent / { print $3; exit }' <<<"$1"; }
# in_log FILE TEXT: FILE has a line containing TEXT.
in_log() { grep -qF -- "$2" "$1" 2>/dev/null; }

step "Sending a discharge summary from Imperial (RYJ, NWL) to the Royal Free (RAL, NCL)" "$var/log/hub.log"
out=$(send --example discharge-summary --from RYJ --to RAL)
echo "$out"
grep -q 'RAL via exchange ncl-royal-free: forwarded' <<<"$out" || fail "the hub did not forward it to the Royal Free"
permitted_id=$(sent_id "$out")
step "Sending one for a patient who has told the Royal Free it may not receive their records" "$var/log/hub.log"
out=$(send --example discharge-summary --from RYJ --to RAL --nhs-number 9000000009)
echo "$out"
grep -q 'RAL via exchange ncl-royal-free: NOT PERMITTED' <<<"$out" || fail "the hub did not refuse it"

step "At the Royal Free's adapter (var/log/adapter-ncl-royal-free.log)" "$var/log/adapter-ncl-royal-free.log"
royal_free_log=$var/log/adapter-ncl-royal-free.log
wait_for "$patience" "the discharge summary $permitted_id delivered at the Royal Free" in_log "$royal_free_log" "$permitted_id"
# Its delivery receipt: the receipt line that follows the delivery.
receipt_of() { awk -v id="$1" 'index($0, id) { found = 1 } found && /delivery receipt/ { print $3; exit }' "$royal_free_log"; }
receipt_sent() { [ -n "$(receipt_of "$permitted_id")" ]; }
wait_for "$patience" "the Royal Free's delivery receipt for $permitted_id" receipt_sent
receipt_id=$(receipt_of "$permitted_id")
cat "$royal_free_log"
step "At Imperial's adapter: the delivery receipt and the hub's negative acknowledgement (var/log/adapter-nwl-imperial.log)" "$var/log/adapter-nwl-imperial.log"
imperial_log=$var/log/adapter-nwl-imperial.log
wait_for "$patience" "the delivery receipt $receipt_id back at Imperial" in_log "$imperial_log" "$receipt_id"
wait_for "$patience" "the hub's negative acknowledgement (from LHCIE) at Imperial" in_log "$imperial_log" "from LHCIE to RYJ"
cat "$imperial_log"

if [ -n "$formats" ]; then
  # barts_message SEGMENT FIELD VALUE: prints, one segment a line, the
  # message Barts' stand-in recorded (one hex-encoded message a line) whose
  # SEGMENT-FIELD (first component) is VALUE; fails if there is none yet.
  # Matching this run's own id, rather than taking line 1 or 2, keeps a
  # message an earlier run left on its way from being shown as this one.
  barts_message() {
    .venv/bin/python - "$var/received-nel-barts.hex" "$@" <<'EOF'
import sys

path, segment, field, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
try:
    lines = open(path).read().split()
except FileNotFoundError:
    sys.exit(1)
for line in lines:
    try:
        message = bytes.fromhex(line).decode("utf-8", "replace")
    except ValueError:  # a line still being written
        continue
    segments = [s for s in message.split("\r") if s]
    for s in segments:
        fields = s.split("|")
        # MSH-1 is the field separator itself, so MSH-n is fields[n - 1].
        n = field - 1 if fields[0] == "MSH" else field
        if fields[0] == segment and len(fields) > n and fields[n].split("^")[0] == value:
            print("\n".join(segments))
            sys.exit(0)
sys.exit(1)
EOF
  }
  at_barts() { barts_message "$@" >/dev/null; }

  # This run's copy of the ADT, with its own control id (MSH-10), so that
  # the adapter and the hub do not take it for the last run's.
  control_id=DEMO$run_id
  adt=$var/demo/adt_a01_rke_to_r1h.hl7
  awk -v id="$control_id" 'BEGIN { FS = OFS = "|" } NR == 1 && $1 == "MSH" { $10 = id } { print }' \
    config/demo/hl7v2/adt_a01_rke_to_r1h.hl7 >"$adt"
  step "Sending an HL7 v2 ADT^A01 with python-hl7's mllp_send from the Whittington (RKE, MLLP 26103) to Barts (R1H)" "$var/log/adapter-ncl-whittington.log"
  echo "(config/demo/hl7v2/adt_a01_rke_to_r1h.hl7 with MSH-10 $control_id: $adt)"
  echo "\$ .venv/bin/mllp_send --loose --port 26103 --file $adt 127.0.0.1"
  ack=$(.venv/bin/mllp_send --loose --port 26103 --file "$adt" 127.0.0.1 | tr '\r' '\n')
  echo "$ack"
  grep -q "^MSA|AA|$control_id" <<<"$ack" || fail "the Whittington's adapter did not answer AA for $control_id"
  step "At Barts' local MLLP system (var/received-nel-barts.hex, one message per line): the MSH as sent" "$var/log/adapter-nel-barts.log"
  wait_for "$patience" "the ADT^A01 $control_id at Barts' MLLP system" at_barts MSH 10 "$control_id"
  adt_at_barts=$(barts_message MSH 10 "$control_id")
  head -1 <<<"$adt_at_barts"

  # This run's copy of the FHIR message: new MessageHeader and Bundle ids
  # (the adapter derives the message id from the MessageHeader id, and
  # answers a known one as a duplicate) and document id (TXA-12 at Barts).
  document_id=DS-$run_id
  bundle=$var/demo/discharge_summary_r1k_to_r1h.json
  .venv/bin/python - config/demo/fhir/discharge_summary_r1k_to_r1h.json "$bundle" "$document_id" <<'EOF'
import json, sys, uuid

source, target, document_id = sys.argv[1:4]
bundle = json.load(open(source))
bundle["id"] = bundle["identifier"]["value"] = str(uuid.uuid4())
for entry in bundle["entry"]:
    resource = entry["resource"]
    if resource["resourceType"] == "MessageHeader":
        resource["id"] = str(uuid.uuid4())
        entry["fullUrl"] = "urn:uuid:" + resource["id"]
    if resource["resourceType"] == "Composition":
        resource["identifier"]["value"] = document_id
json.dump(bundle, open(target, "w"), indent=2)
EOF
  step "Posting a FHIR discharge summary from London North West (R1K, FHIR) to Barts (R1H, HL7 v2)" "$var/log/adapter-nwl-lnwh.log"
  echo "(config/demo/fhir/discharge_summary_r1k_to_r1h.json with new ids and document id $document_id: $bundle)"
  echo "\$ curl -s -X POST -H 'content-type: application/fhir+json' --data-binary @$bundle 'http://127.0.0.1:28116/\$process-message'"
  curl -s --max-time "$patience" -X POST -H 'content-type: application/fhir+json' \
    --data-binary @"$bundle" -o "$var/demo/fhir-answer.json" \
    'http://127.0.0.1:28116/$process-message'
  answer=$(.venv/bin/python - "$var/demo/fhir-answer.json" <<'EOF'
import json, sys

bundle = json.load(open(sys.argv[1]))
for entry in bundle.get("entry", []):
    resource = entry["resource"]
    if resource["resourceType"] == "MessageHeader":
        print("MessageHeader.response:", json.dumps(resource.get("response", {}).get("code")),
              "answering", resource.get("response", {}).get("identifier"))
    if resource["resourceType"] == "OperationOutcome":
        print("OperationOutcome:", json.dumps(resource["issue"][0].get("details")))
EOF
  ) || fail "the answer is not a FHIR message Bundle: $(head -c 300 "$var/demo/fhir-answer.json")"
  echo "$answer"
  grep -q 'MessageHeader.response: "ok"' <<<"$answer" || fail "London North West's adapter did not answer ok"

  step "At Barts' local MLLP system: the same document as HL7 v2 MDM^T02 (segment names and types)" "$var/log/adapter-nel-barts.log"
  wait_for "$patience" "the MDM^T02 with TXA-12 $document_id at Barts' MLLP system" at_barts TXA 12 "$document_id"
  mdm=$(barts_message TXA 12 "$document_id")
  head -1 <<<"$mdm" | cut -d'|' -f9 | grep -q '^MDM^T02' || fail "the message with TXA-12 $document_id is not an MDM^T02: $(head -1 <<<"$mdm")"
  awk '/^(MSH|TXA|OBX)/ && n++ < 8 { print substr($0, 1, 60) }' <<<"$mdm"
fi

step "Sending a test result from Imperial (RYJ, NWL) to Barts (R1H, NEL): no agreement covers results between NWL and NEL, so the hub withholds it and keeps it for an operator" "$var/log/hub.log"
out=$(send --example result --from RYJ --to R1H)
echo "$out"
result_id=$(sent_id "$out")
printf 'demo-operator-password\n' > "$var/secrets/ops-operator.password"
chmod 600 "$var/secrets/ops-operator.password"
dead_letters() { "$bin/hub" dead-letters --user ops-operator --password-file "$var/secrets/ops-operator.password" list "$@"; }
withheld() {
  local listed
  listed=$(dead_letters --destination nel-barts 2>/dev/null) || return 1
  grep -qF -- "$result_id" <<<"$listed"
}
wait_for "$patience" "the result $result_id listed as a dead letter for nel-barts" withheld
echo "\$ hub dead-letters --user ops-operator --password-file var/secrets/ops-operator.password list"
dead_letters

# --- Summary ----------------------------------------------------------------

step="the summary"
step_log=""
cat <<EOT

Running now:
  registry                 $nodes node(s), API 127.0.0.1:5007x (registry status; logs var/log/registry-*.log)
  hub                      pid $(cat "$var/run/hub.pid"), gRPC 127.0.0.1:50051 (mutual TLS), admin http://127.0.0.1:9464
                           (/readyz, /metrics, /adapters, /registry; audit and trace: the dashboard); log var/log/hub.log
  dashboard                http://127.0.0.1:9465  (demo users: ops-viewer / demo-viewer-password,
                           ops-operator / demo-operator-password, ops-admin / demo-admin-password)
  metrics                  hub :9464/metrics, registry :9471/metrics
  native adapters          nwl-imperial, ncl-royal-free (logs var/log/adapter-*.log)
  HL7 v2 adapters          $(echo $hl7_exchanges) (configs var/adapters/, logs var/log/adapter-*.log)
  FHIR R4 adapters         $(echo $fhir_exchanges) (POST http://127.0.0.1:281xx/\$process-message)
Try:
  $bin/registry directive set --id DIR-DEMO-9 --nhs 9434765919 --deny-organisation RAL --from 2026-01-01 --source patient-account
  $bin/registry decide --nhs 9434765919 --sender RYJ --recipient RAL --category discharge-summary
  $bin/registry isa list     (LHCIE_REGISTRY and LHCIE_REGISTRY_CA/_CERT/_KEY as set by this script, or --registry/--ca/--cert/--key)
  $bin/native-adapter --exchange nwl-imperial send --example care-event --from RYJ
  curl -s -u ops-viewer:demo-viewer-password 'http://127.0.0.1:9465/api/trace?nhs_number=9000000009'
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

say "Summary (run $run_id, $((SECONDS - started_at)) s)"
echo "  ok       Imperial (RYJ) -> Royal Free (RAL): discharge summary $permitted_id delivered, receipt back at Imperial"
echo "  ok       patient 9000000009 -> Royal Free: not permitted; Imperial told by the hub"
if [ -n "$formats" ]; then
  echo "  ok       HL7 v2 ADT^A01 Whittington (RKE) -> Barts (R1H): delivered as sent (MSH-10 $control_id)"
  echo "  ok       FHIR London North West (R1K) -> Barts (R1H): delivered as MDM^T02 (TXA-12 $document_id)"
else
  echo "  skipped  HL7 v2 and FHIR to Barts ($formats_skipped)"
fi
echo "  ok       result Imperial (RYJ) -> Barts (R1H): withheld, listed as a dead letter"
if [ -n "$formats" ]; then
  echo "demo: all steps completed"
else
  echo "demo: completed without the HL7 v2 and FHIR steps ($formats_skipped)"
fi
