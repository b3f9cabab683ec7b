#!/usr/bin/env bash
# Makes sure RabbitMQ is listening on 127.0.0.1:5672, so that a fresh machine
# needs only `make run` / `make test`:
#   1. already listening: nothing to do;
#   2. installed but stopped: start it detached;
#   3. not installed: install Debian's rabbitmq-server, then start it.
# Then waits until the node has fully booted.
set -euo pipefail

host=127.0.0.1
port=5672

listening() {
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if listening; then
  exit 0
fi

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "ensure-rabbitmq: rabbitmq-server is not installed; installing Debian's package" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server
  # The package may start the service itself where an init system runs.
  if listening; then exit 0; fi
fi

echo "ensure-rabbitmq: starting RabbitMQ (rabbitmq-server -detached)" >&2
as_root rabbitmq-server -detached

# `await_startup` fails at once while the node is not yet up at all, so
# retry it until the node answers, for up to two minutes.
deadline=$((SECONDS + 120))
until as_root rabbitmqctl await_startup --timeout 60 >/dev/null 2>&1; do
  if [ $SECONDS -ge $deadline ]; then
    echo "ensure-rabbitmq: RabbitMQ did not start within 120 s; see /var/log/rabbitmq/" >&2
    exit 1
  fi
  sleep 2
done

until listening; do
  if [ $SECONDS -ge $deadline ]; then
    echo "ensure-rabbitmq: RabbitMQ started but is not listening on $host:$port" >&2
    exit 1
  fi
  sleep 1
done
echo "ensure-rabbitmq: RabbitMQ is up on $host:$port" >&2
