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

.PHONY: install run test lint bench bqemulator deploy deploy-local clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]' 2>&1 | $(QUIET_PIP)
	touch $@

## The project's own modules compiled to bytecode: pip compiles what it installs, not an editable
## project, and where bytecode is never written (PYTHONDONTWRITEBYTECODE, as in the image and in
## CI) every command compiled them again, ~0.2 s of CPU. Only changed files are recompiled.
PACKAGES := flows tasks features quality phase4 nba_calendar demo_data benchmarks
install: $(VENV)/.installed
	@$(PY) -m compileall -q $(PACKAGES)

## Load demo data when the warehouse is empty, run the flow for the demo date, print the report.
run: install
	$(PHASE4) demo-data --if-empty
	$(PHASE4) --quiet run --date $(DEMO_DATE)
	@echo "Data: a synthetic Phase 3 season (phase4 demo-data, unless the warehouse already held Phase 3 data) and its Phase 4 tables, in $${PHASE4_WAREHOUSE:-duckdb://$(CURDIR)/.phase4/warehouse.duckdb}"
	@echo "Next: $(PHASE4) status --date $(DEMO_DATE); $(PHASE4) export --date $(DEMO_DATE) --out out/; $(PHASE4) training-set --start 2024-12-01 --end $(DEMO_DATE) --out ts.parquet; $(PHASE4) server stop"

## Three workers (pytest-xdist) on two cores: much of the suite waits (the deployment test's
## deadline window, Prefect servers and the emulator starting, CLI subprocesses), and a third
## worker keeps both cores busy meanwhile. tests/conftest.py schedules them: the longest first,
## the tests of a module-scoped fixture on one worker.
test: install
	$(PY) -m pytest -q -n 3

## ruff (lint + format), mypy and import-linter (settings in pyproject.toml: [tool.mypy], and
## [tool.importlinter], the layers and the no-cycle contracts).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## The BigQuery emulator's own virtualenv, .venv-bqemulator, as the tests build it (README,
## "Production: BigQuery", starts the emulator from it by hand).
bqemulator: install
	$(PY) -c "from tests.support.bq_emulator import ensure_emulator_venv as e; print(e())"

bench: install
	$(PY) -m benchmarks.run

## Before a deploy: the Prefect API it writes to is set and answers (else one line, exit 2, not
## Prefect's 70-line traceback or a temporary server that forgets the deployments).
API_CHECK = $(PY) -c "import sys; from phase4.server import api_answers, configured_api_url; \
url, _ = configured_api_url() or ('', ''); why = api_answers(url) if url else ''; \
what = f'={url} does not answer ({why})' if url else ' is not set'; \
(why or not url) and sys.exit(print(f'error: PREFECT_API_URL{what}: start the Prefect server and export its API URL (docs/deployment.md)', file=sys.stderr) or 2)"
# The yaml files hold the schedules: a deploy restores them (a schedule paused in the UI resumes).
DEPLOY_ENV = PREFECT_DEPLOYMENTS_CLEAR_SCHEDULES_ON_EMPTY=true

## Register the nightly and backfill deployments, then the 01:00 deadline automation
## (see docs/deployment.md).
deploy: install
	@test -n "$$PHASE4_DEADLINE_BLOCK" || { echo "error: PHASE4_DEADLINE_BLOCK is not set: the notification block of the 01:00 deadline, e.g. slack-webhook/phase4-alerts (or none)" >&2; exit 2; }
	@test -n "$$PHASE4_IMAGE" || { echo "error: PHASE4_IMAGE is not set: the image repository to build and push, e.g. us-central1-docker.pkg.dev/PROJECT/phase4/phase4-precompute" >&2; exit 2; }
	@test -n "$$PHASE4_WAREHOUSE" || { echo "error: PHASE4_WAREHOUSE is not set: the flow runs' warehouse, e.g. bigquery://PROJECT?location=US" >&2; exit 2; }
	@$(API_CHECK)
	$(DEPLOY_ENV) $(VENV)/bin/prefect --no-prompt deploy --all
	$(PY) -m phase4.deadline

## Self-hosted Prefect server + process worker, no Docker (docs/deployment.md): both deployments
## from prefect.local.yaml, then the 01:00 New York deadline automation (phase4/deadline.py).
LOCAL_WORK_POOL ?= phase4-local
deploy-local: install
	@test -n "$$PHASE4_WAREHOUSE" || { echo "error: PHASE4_WAREHOUSE is not set: the flow runs' warehouse, e.g. duckdb:///srv/phase4/warehouse.duckdb" >&2; exit 2; }
	@test -n "$$PHASE4_DEADLINE_BLOCK" || { echo "error: PHASE4_DEADLINE_BLOCK is not set: the notification block of the 01:00 deadline, e.g. slack-webhook/phase4-alerts (or none)" >&2; exit 2; }
	@$(API_CHECK)
	$(VENV)/bin/phase4 -q warehouse init  # the flow runs' warehouse: a bad URL or folder stops here
	$(VENV)/bin/prefect work-pool inspect "$(LOCAL_WORK_POOL)" >/dev/null 2>&1 || $(VENV)/bin/prefect work-pool create "$(LOCAL_WORK_POOL)" --type process
	$(DEPLOY_ENV) PHASE4_WORK_POOL="$(LOCAL_WORK_POOL)" PHASE4_CODE_DIR="$(CURDIR)" $(VENV)/bin/prefect --no-prompt deploy --all --prefect-file prefect.local.yaml
	$(PY) -m phase4.deadline

clean:
	rm -rf $(VENV) .venv-bqemulator .phase4
