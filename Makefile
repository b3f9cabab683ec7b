# London Health and Care Information Exchange hub.
#
#   make run     build and start the demo (see README.md); make stop ends it
#                (REGISTRY_NODES=3 make run: a three-node registry cluster)
#   make test    the whole test suite (starts RabbitMQ if it is not running)
#   make verify  formatting, lints, docs, unused dependencies, licences and
#                banned crates (make checks), then the tests: run before
#                every commit
#   make checks  the same without the tests (scripts/checks.sh)
#   make bench   every benchmark, one BENCH line per figure
#   make bench-scale  the registry with 12 million patients (about 15 min)
#
# Everything runs against RabbitMQ at 127.0.0.1:5672 (guest/guest).

SHELL := /bin/bash
CARGO ?= cargo
HUB_CONFIG ?= config/demo/hub.toml
REGISTRY_NODES ?= 1

.PHONY: run stop test verify checks fmt fmt-check clippy doc machete deny bench bench-scale broker build python browser

# Start RabbitMQ if it is not already running (installs it if absent).
broker:
	@scripts/ensure-rabbitmq.sh

build:
	$(CARGO) build --workspace --bins

# The Python environment of the third-party test clients (.venv).
python:
	@scripts/ensure-python.sh

# Chromium and playwright-core for the dashboard's browser test.
browser:
	@scripts/ensure-browser.sh

run: broker build python
	@REGISTRY_NODES=$(REGISTRY_NODES) scripts/demo.sh "$(HUB_CONFIG)"

# Stop what `make run` started.
stop:
	@scripts/demo-stop.sh

# cargo-nextest runs test binaries in parallel processes; plain cargo test
# is the fallback on a machine without it. The broker-restart test restarts
# the shared RabbitMQ, so it runs alone, after everything else.
test: broker build python browser
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace -E 'not binary(broker_restart)' && \
		$(CARGO) nextest run -p lhcie-integration-tests -E 'binary(broker_restart)'; \
	else \
		$(CARGO) test --workspace --no-fail-fast -- --skip broker_restart && \
		$(CARGO) test -p lhcie-integration-tests --test broker_restart; \
	fi
	$(CARGO) test --workspace --doc

fmt:
	$(CARGO) fmt --all

# The checks of the conventions live in one place, scripts/checks.sh (CI
# runs it after make test); each target below is one of its steps.
checks:
	@CARGO=$(CARGO) scripts/checks.sh

fmt-check:
	@CARGO=$(CARGO) scripts/checks.sh fmt

clippy:
	@CARGO=$(CARGO) scripts/checks.sh clippy

doc:
	@CARGO=$(CARGO) scripts/checks.sh doc

machete:
	@CARGO=$(CARGO) scripts/checks.sh machete

deny:
	@CARGO=$(CARGO) scripts/checks.sh deny

# The fast checks first, then the whole test suite.
verify: checks test

# Release builds, real processes, each reference measured in the same run;
# one BENCH line per figure (see BENCHMARKS.md). Criterion measures the
# hub's decisions first; lhcie-bench prints its figures with the rest.
bench: broker
	$(CARGO) build --release --workspace --bins
	$(CARGO) bench -p lhcie-registry-client --bench decide
	$(CARGO) bench -p lhcie-hl7v2 --bench parse_translate
	@target/release/lhcie-bench

# 12 million patients' directives in a three-node registry, a node restart
# and a hub's copy of it all (BENCHMARKS.md); about 25 GB of disk in /tmp.
bench-scale: broker
	$(CARGO) build --release --workspace --bins
	@target/release/lhcie-bench scale
