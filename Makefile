# Nexo — the README's commands. Needs only python3 and make: uv is bootstrapped when missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never

# uv: the one on PATH, else a private copy in a venv outside the repo (a plain
# `pip install --user` can be refused by PEP 668 on Debian's python3)
TOOLS ?= $(HOME)/.cache/nexo/tools
UV ?= $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
ARGS ?=
PYTEST_ARGS ?=

.PHONY: help uv sync run run-distributed test lint format bench chaos infra-up infra-down infra-status up down backup restore

help:
	@echo "make run         whole system in one process (gateway + services, SQLite, durable event log)"
	@echo "make run-distributed   real Kafka + PostgreSQL, each service and the gateway its own process"
	@echo "                (REPLICAS=2: two of each; logs in var/log/; Ctrl-C stops everything)"
	@echo "make backup      online backup of the embedded mode's databases + event log (backups/<time>)"
	@echo "make restore BACKUP=backups/<time>   put a backup back (system stopped)"
	@echo "make test        full test suite (ARGS='-k kafka' to pass pytest arguments)"
	@echo "make lint        ruff check + ruff format --check + mypy"
	@echo "make format      ruff format + ruff check --fix"
	@echo "make bench       every bench/<name>/run.py"
	@echo "make chaos       kill -9 / broker / database faults under load; audits nothing lost or doubled"
	@echo "make infra-up    real Kafka + PostgreSQL as local processes (no Docker); infra-down stops them"
	@echo "                 TRACING=1 also starts Jaeger (built from the Go module proxy, cached)"
	@echo "make up          docker compose up --build (machines with Docker)"

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS) || { python3 -m pip install --user --quiet uv && mkdir -p $(TOOLS)/bin && ln -sf "$$(python3 -m site --user-base)/bin/uv" $(TOOLS)/bin/uv; }
	[ -x $(TOOLS)/bin/uv ] || $(TOOLS)/bin/python -m pip install --quiet "uv>=0.13"

uv: $(UV)

sync: uv
	$(UV) sync --all-packages --frozen

run: sync
	$(UV) run python -m gateway $(ARGS)

REPLICAS ?= 1
run-distributed: sync
	$(UV) run python -m deploy.local run --replicas $(REPLICAS) $(ARGS)

backup: sync
	$(UV) run python -m gateway.backup create $(ARGS)

restore: sync
	@[ -n "$(BACKUP)" ] || { echo "usage: make restore BACKUP=backups/<time>"; exit 2; }
	$(UV) run python -m gateway.backup restore "$(BACKUP)"

test: sync
	$(UV) run pytest $(ARGS)

lint: sync
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: sync
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

bench: sync
	@failed=""; found=0; \
	for run in bench/*/run.py; do \
		[ -f "$$run" ] || continue; found=1; \
		echo "== $$run"; $(UV) run python "$$run" $(ARGS) || failed="$$failed $$run"; \
	done; \
	[ $$found = 1 ] || echo "no benchmarks in bench/"; \
	if [ -n "$$failed" ]; then echo "benchmark runs that failed:$$failed"; exit 1; fi

# Bounded: 10 min on a 2-core machine (ARGS='kill-sales poison' runs only those scenarios)
CHAOS_TIMEOUT ?= 600
chaos: sync
	timeout --kill-after=30 $(CHAOS_TIMEOUT) $(UV) run python -m chaos $(ARGS)

infra-up: sync
	$(UV) run python -m deploy.local up
	@if [ "$(TRACING)" = "1" ]; then $(UV) run python -m deploy.local.jaeger up; fi

infra-down: uv
	$(UV) run python -m deploy.local.jaeger down
	$(UV) run python -m deploy.local down

infra-status: uv
	$(UV) run python -m deploy.local status

up:
	docker compose up --build $(ARGS)

down:
	docker compose down $(ARGS)
