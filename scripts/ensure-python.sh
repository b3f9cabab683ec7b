#!/usr/bin/env bash
# Makes the Python environment the integration tests' third-party clients
# run in (.venv, with integration-tests/python/requirements.txt), installing
# Debian's python3 and python3-venv first if a fresh machine lacks them.
set -euo pipefail
venv=.venv
requirements=integration-tests/python/requirements.txt
stamp=$venv/.installed

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ -f "$stamp" ] && [ "$stamp" -nt "$requirements" ]; then
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv
fi
if ! python3 -m venv "$venv" 2>/dev/null; then
  echo "ensure-python: python3 -m venv failed; installing Debian's python3-venv" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
touch "$stamp"
