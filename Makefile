# KPI Pulse — every workflow is one target. Run `make help` for the list.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install lint test test-unit run simulate infra-up infra-down stack-up stack-down clean bench bench-ingest bench-scoring bench-alerts bench-e2e bench-catalog

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create the virtual environment and install (pinned by constraints.txt)

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check shared services tests bench
	$(BIN)/mypy --strict shared services tests bench

infra-up: $(STAMP) ## start Kafka and PostgreSQL, create topics, migrate (idempotent)
	deploy/local/infra.sh up

infra-down: ## stop Kafka and PostgreSQL
	deploy/local/infra.sh down

stack-up: infra-up ## infra-up, then the three services in the background (logs in .cache/logs)
	deploy/local/stack.sh up

stack-down: ## stop the services, then Kafka and PostgreSQL
	deploy/local/stack.sh down
	deploy/local/infra.sh down

run: $(STAMP) ## the whole platform in one process on http://127.0.0.1:8000 (SQLite + embedded log)
	$(BIN)/kpipulse dev

simulate: $(STAMP) ## post 14 simulated days of events to `make run`, ending in a complaints spike
	$(BIN)/kpipulse simulate --days 14 --minutes 1 --scenario complaints_spike

test-unit: $(STAMP) ## unit tests only (no Kafka, no PostgreSQL)
	$(BIN)/pytest -q tests/unit

test: install lint ## install, lint, start the infrastructure, run every test, stop it again
	deploy/local/test.sh

clean: ## remove the virtual environment and caches (keeps downloaded Kafka)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

bench-ingest: $(STAMP) ## ingest events/s per CPU-second beside a bare HTTP endpoint and raw aiokafka (needs wrk)
	deploy/local/tools.sh wrk
	$(BIN)/python -m bench.ingest

bench-scoring: $(STAMP) ## scorer events/s per CPU-second beside raw consumption, and its latency
	$(BIN)/python -m bench.scoring
	$(BIN)/python -m bench.evaluator_windows

bench-alerts: $(STAMP) ## alert latency: breaching event accepted by ingest -> email at SMTP
	$(BIN)/python -m bench.alerts_latency

bench-catalog: $(STAMP) ## scoring's costs at 10..10,000 KPIs before/after BASELINE (a commit), and the stack's footprint (needs wrk, and Go for vegeta)
	deploy/local/tools.sh wrk vegeta
	$(BIN)/python -m bench.catalog $(if $(BASELINE),--baseline $(BASELINE))
	$(BIN)/python -m bench.footprint
	$(BIN)/python -m bench.report_catalog

bench-e2e: infra-up ## the whole stack under vegeta (needs Go) at 100/1,000/5,000 events/s: POST->200, POST->KPI value visible, harness CPU; then the report
	deploy/local/tools.sh vegeta
	$(BIN)/python -m bench.e2e
	$(BIN)/python -m bench.report

bench: infra-up ## every benchmark on the real stack, then docs/benchmarks.md and docs/latency.png
	$(MAKE) bench-ingest bench-scoring bench-alerts
	deploy/local/tools.sh vegeta
	$(BIN)/python -m bench.e2e
	$(BIN)/python -m bench.report

.PHONY: chaos
chaos: install ## fault injection, longer run: kill -9 each service, stop Kafka, restart Postgres; 3 brokers: kill one and an instance of scoring and alerts
	KPIPULSE_CHAOS_SCALE=$${KPIPULSE_CHAOS_SCALE:-5} deploy/local/test.sh chaos

.PHONY: fuzz
fuzz: infra-up ## longer schemathesis and hostile-input runs (KPIPULSE_FUZZ_EXAMPLES, default 200; KPIPULSE_HOSTILE_EXAMPLES, default 400)
	KPIPULSE_FUZZ_EXAMPLES=$${KPIPULSE_FUZZ_EXAMPLES:-200} \
	KPIPULSE_HOSTILE_EXAMPLES=$${KPIPULSE_HOSTILE_EXAMPLES:-400} \
	$(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_fuzz.py tests/e2e/test_hostile.py
