#!/usr/bin/env bash
# The demo behind `make run`: validates the configuration, declares the
# broker topology, and says what it did. It grows as the hub, registry and
# adapters land.
set -euo pipefail
config=${1:-config/demo/hub.toml}
hub=target/debug/hub

echo "== Checking the configuration ($config)"
"$hub" check-config "$config"
echo
echo "== Declaring the broker topology on RabbitMQ (127.0.0.1:5672)"
"$hub" bootstrap-broker "$config"
echo
echo "Done. Nothing is left running: at this stage the demo validates the"
echo "London topology and prepares the broker. Inspect the queues with:"
echo "  rabbitmqctl list_queues name type arguments | grep '^lhcie\.'"
