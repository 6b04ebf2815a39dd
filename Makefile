# KPI Pulse — every workflow is one target. Run `make help` for the list.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install lint test test-unit run simulate infra-up infra-down stack-up stack-down clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

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
