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
	$(PHASE4) --quiet run --date $(DEMO_DATE)
	@echo "Data: a synthetic Phase 3 season (phase4 demo-data, unless the warehouse already held Phase 3 data) and its Phase 4 tables, in $${PHASE4_WAREHOUSE:-duckdb://$(CURDIR)/.phase4/warehouse.duckdb}"
	@echo "Next: $(PHASE4) status --date $(DEMO_DATE); $(PHASE4) export --date $(DEMO_DATE) --out out/; $(PHASE4) training-set --start 2024-12-01 --end $(DEMO_DATE) --out ts.parquet; $(PHASE4) server stop"

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) -m benchmarks.run

## Register the nightly and backfill deployments (see docs/deployment.md).
deploy: install
	$(VENV)/bin/prefect --no-prompt deploy --all

clean:
	rm -rf $(VENV) .venv-bqemulator .phase4
