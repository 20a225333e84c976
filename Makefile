# The runbook: `make run` and `make test` do everything on a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PHASE4 := $(VENV)/bin/phase4
DEMO_DATE ?= 2025-01-15
QUIET_PIP := { grep -v -e 'WARNING: Location' -e '^$$' || true; }

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

PHASE4_WORK_POOL ?= phase4-cloud-run
export PHASE4_WORK_POOL

.PHONY: install run test lint bench deploy clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]' 2>&1 | $(QUIET_PIP)
	touch $@

install: $(VENV)/.installed

## Load demo data when the warehouse is empty, run the flow for the demo date, print the report.
run: install
	$(PHASE4) demo-data --if-empty
	$(PHASE4) run --date $(DEMO_DATE)

test: install
	$(PY) -m pytest -q

## ruff (lint + format) and mypy (settings and checked paths in pyproject.toml [tool.mypy]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) -m benchmarks.run

## Register the nightly and backfill deployments (see docs/deployment.md).
deploy: install
	$(VENV)/bin/prefect --no-prompt deploy --all

clean:
	rm -rf $(VENV) .venv-bqemulator .phase4
