#!/usr/bin/env bash
# Checks that the demo works, and works again: `make run`, its output must
# end with "demo: all steps completed"; `make stop`; `make run` again (the
# second run is what once failed: state left in var/ by the first made its
# messages duplicates); `make stop`. Exits non-zero, saying which run failed
# and where its output is, if either does. Always stops the demo on exit.
#
# For CI (.ci/run, after `make test`, which has made .venv) and for anyone
# changing the demo. Each run's output is kept in var/demo-check/run-<n>.log
# (demo.sh clears var/log, so not there).
set -euo pipefail
cd "$(dirname "$0")/.."
out=var/demo-check
expected="demo: all steps completed"

trap 'scripts/demo-stop.sh quiet' EXIT
trap 'exit 130' INT TERM

fail() {
  echo "demo-check: FAILED: $*" >&2
  exit 1
}

# A demo this checkout left running holds the demo's ports: stop it (it is
# ours); anything else holding one is reported by port, before a build.
scripts/demo-stop.sh quiet
busy=$(REGISTRY_NODES=${REGISTRY_NODES:-1} scripts/demo-ports.sh --busy) ||
  fail "the demo's ports must be free:
$busy"
# The HL7 v2 and FHIR steps need .venv (quick when it is already made).
scripts/ensure-python.sh

mkdir -p "$out"
for run in 1 2; do
  # `make run` builds first; build here, timed on its own, so that the run's
  # time is the demo's (a no-op build in CI, after `make test`).
  echo "demo-check: run $run: make build"
  start=$SECONDS
  make build </dev/null >"$out/build-$run.log" 2>&1 ||
    fail "make build before run $run (output: $out/build-$run.log)"
  echo "demo-check: build took $((SECONDS - start)) s"
  echo "demo-check: run $run: make run"
  start=$SECONDS
  status=0
  # No stdin: as in CI. The output is shown and kept.
  make run </dev/null 2>&1 | tee "$out/run-$run.log" || status=$?
  took=$((SECONDS - start))
  last=$(tail -n 1 "$out/run-$run.log")
  if [ "$status" -ne 0 ] || [ "$last" != "$expected" ]; then
    fail "run $run after $took s (make run exit status $status; last line: \"$last\"); its output: $out/run-$run.log, logs: var/log/"
  fi
  echo "demo-check: run $run passed in $took s"
  echo "demo-check: run $run: make stop"
  make stop </dev/null
done
echo "demo-check: both runs passed"
