"""prefect.yaml checked with Prefect's own models, made strict so a misspelt key fails.

`prefect deploy` validates prefect.yaml with the pydantic models in prefect.cli.deploy._models,
but they ignore unknown keys (a misspelt `schedules` silently deploys without a schedule), and
so do the deployment trigger models. Here the same models are subclassed with extra="forbid";
triggers, schedules and pull steps are checked against Prefect's trigger models, cron schedule
and step functions, and the Cloud Run job variables against prefect-gcp's cloud-run-v2 template.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import prefect.cli.deploy._models as prefect_yaml_models
import pytest
import yaml
from prefect.cli.deploy._models import (
    DeploymentConfig,
    PrefectYamlModel,
    RawScheduleConfig,
    WorkPoolConfig,
)
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.events.schemas.events import ResourceSpecification
from pydantic import ConfigDict, Field, ValidationError

REPO_ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = REPO_ROOT / "prefect.yaml"
NEW_YORK = ZoneInfo("America/New_York")
STEP_KEYS = {"id", "requires"}  # understood by prefect.deployments.steps.core.run_step


class StrictWorkPool(WorkPoolConfig):
    model_config = ConfigDict(extra="forbid")


class StrictTrigger(DeploymentEventTrigger):
    model_config = ConfigDict(extra="forbid")


class StrictDeployment(DeploymentConfig):
    model_config = ConfigDict(extra="forbid")

    work_pool: StrictWorkPool | None = None
    schedules: list[RawScheduleConfig] | None = None  # type: ignore[assignment]
    triggers: list[StrictTrigger] | None = None  # type: ignore[assignment]


class StrictPrefectYaml(PrefectYamlModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    # YAML anchors only; Prefect ignores the section (its docs use the same name).
    definitions: dict[str, Any] | None = None
    deployments: list[StrictDeployment] = Field(default_factory=list)  # type: ignore[assignment]


# Prefect's models annotate with names of their own module (ScheduleItem, ConcurrencyLimitSpec).
for _model in (StrictDeployment, StrictPrefectYaml):
    _model.model_rebuild(_types_namespace={**vars(prefect_yaml_models), **globals()})


def load_raw() -> dict[str, Any]:
    return yaml.safe_load(PREFECT_YAML.read_text())


def deployments(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in raw["deployments"]}


def step_function(name: str) -> Callable[..., Any] | None:
    """The step's function when its package is installed (prefect-docker is not, here)."""
    module_name, _, function = name.rpartition(".")
    try:
        module = __import__(module_name, fromlist=[function])
    except ModuleNotFoundError:
        return None
    return getattr(module, function)


def check_steps(steps: list[dict[str, Any]] | None) -> None:
    for step in steps or []:
        ((name, arguments),) = step.items()
        function = step_function(name)
        if function is None:
            continue
        kwargs = {k: v for k, v in (arguments or {}).items() if k not in STEP_KEYS}
        try:
            inspect.signature(function).bind(**kwargs)
        except TypeError as exc:
            raise ValueError(f"step {name}: {exc}") from exc


def cloud_run_v2_variables() -> dict[str, Any]:
    # prefect-gcp ships neither py.typed nor stubs.
    from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2  # type: ignore[import-untyped]

    return CloudRunWorkerV2.get_default_base_job_template()["variables"]


def check_job_variables(job_variables: dict[str, Any]) -> None:
    """Known to a cloud-run-v2 pool and valid against its schema (placeholders are strings)."""
    from prefect.utilities.schema_tools import ValidationError as SchemaError
    from prefect.utilities.schema_tools import validate

    schema = cloud_run_v2_variables()
    unknown = set(job_variables) - set(schema["properties"])
    if unknown:
        raise ValueError(f"not cloud-run-v2 job variables: {sorted(unknown)}")
    try:
        validate(job_variables, schema, raise_on_error=True, ignore_required=True)
    except SchemaError as exc:
        raise ValueError(f"cloud-run-v2 job variables: {exc}") from exc


def validate_prefect_yaml(raw: dict[str, Any]) -> StrictPrefectYaml:
    model = StrictPrefectYaml.model_validate(raw)
    for step_list in (model.build, model.push, model.pull):
        check_steps(step_list)  # type: ignore[arg-type]
    for deployment in model.deployments:
        check_steps(deployment.pull)  # type: ignore[arg-type]
        if deployment.work_pool is not None:
            check_job_variables(deployment.work_pool.job_variables)
    return model


def test_prefect_yaml_is_valid_for_strict_prefect_models() -> None:
    model = validate_prefect_yaml(load_raw())
    assert [d.name for d in model.deployments] == ["nightly", "backfill"]


def test_prefect_deploy_reads_both_deployments() -> None:
    """Prefect's own loader, the one `prefect deploy` uses, finds no error in the file."""
    from prefect.cli.deploy._config import _load_deploy_configs_and_actions
    from rich.console import Console

    console = Console(record=True, width=200)
    configs, actions = _load_deploy_configs_and_actions(PREFECT_YAML, console=console)
    assert console.export_text() == ""
    assert [c["name"] for c in configs] == ["nightly", "backfill"]
    assert actions["build"] and actions["push"] and actions["pull"]


def mutate(path: tuple[str | int, ...], new_key: str) -> Callable[[dict[str, Any]], None]:
    """Rename the last key of `path` (a misspelling)."""

    def apply(raw: dict[str, Any]) -> None:
        parent: Any = raw
        for part in path[:-1]:
            parent = parent[part]
        parent[new_key] = parent.pop(path[-1])

    return apply


MISSPELLINGS = {
    "top-level deployments": mutate(("deployments",), "deployment"),
    "deployment schedules": mutate(("deployments", 0, "schedules"), "schedule_list"),
    "deployment entrypoint": mutate(("deployments", 0, "entrypoint"), "entry_point"),
    "deployment concurrency_limit": mutate(("deployments", 0, "concurrency_limit"), "concurrency"),
    "schedule timezone": mutate(("deployments", 0, "schedules", 0, "timezone"), "time_zone"),
    "work_pool job_variables": mutate(("deployments", 0, "work_pool", "job_variables"), "vars"),
    "job variable memory": mutate(
        ("deployments", 0, "work_pool", "job_variables", "memory"), "memroy"
    ),
    "trigger expect": mutate(("deployments", 0, "triggers", 0, "expect"), "expects"),
    "trigger parameters": mutate(("deployments", 0, "triggers", 0, "parameters"), "params"),
    "pull step directory": mutate(
        ("pull", 0, "prefect.deployments.steps.set_working_directory", "directory"), "dir"
    ),
}


@pytest.mark.parametrize("mutation", MISSPELLINGS.values(), ids=MISSPELLINGS.keys())
def test_a_misspelt_key_fails_validation(mutation: Callable[[dict[str, Any]], None]) -> None:
    raw = load_raw()
    validate_prefect_yaml(copy.deepcopy(raw))
    mutation(raw)
    with pytest.raises((ValidationError, ValueError)):
        validate_prefect_yaml(raw)


def test_a_bad_job_variable_value_fails_validation() -> None:
    raw = load_raw()
    deployments(raw)["nightly"]["work_pool"]["job_variables"]["memory"] = "8 gigabytes"
    with pytest.raises(ValueError):
        validate_prefect_yaml(raw)


def test_nightly_runs_at_2300_new_york_all_year() -> None:
    from prefect.server.schemas.schedules import CronSchedule

    (schedule,) = deployments(load_raw())["nightly"]["schedules"]
    assert schedule["active"] is True
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    for start in (datetime(2025, 1, 10, tzinfo=NEW_YORK), datetime(2025, 7, 10, tzinfo=NEW_YORK)):
        dates = [d.astimezone(NEW_YORK) for d in _get_dates(cron, 3, start)]
        assert [(d.hour, d.minute) for d in dates] == [(23, 0)] * 3
        assert [d - dates[0] for d in dates] == [timedelta(days=i) for i in range(3)]


def _get_dates(cron: Any, n: int, start: datetime) -> list[datetime]:
    import asyncio

    return list(asyncio.run(cron.get_dates(n=n, start=start)))


def test_nightly_has_no_date_parameter_and_one_run_at_a_time() -> None:
    nightly = deployments(load_raw())["nightly"]
    assert nightly["parameters"] == {}
    assert nightly["concurrency_limit"] == 1
    assert nightly["tags"] and nightly["description"]


def test_backfill_is_never_scheduled() -> None:
    backfill = deployments(load_raw())["backfill"]
    assert backfill["schedules"] == []
    assert backfill["entrypoint"] == "flows/phase4_backfill.py:phase4_backfill"


def test_phase3_completed_event_maps_its_date_to_analysis_date() -> None:
    import jinja2
    from prefect.events.schemas.events import Resource

    (trigger,) = deployments(load_raw())["nightly"]["triggers"]
    parsed = StrictTrigger.model_validate(trigger)
    assert parsed.expect == {"phase3.completed"}
    assert parsed.enabled
    # Shaped like the flow's own phase4.completed event (resource phase4.slate.<date>).
    assert isinstance(parsed.match, ResourceSpecification)
    assert parsed.match.matches(Resource({"prefect.resource.id": "phase3.slate.2024-03-01"}))
    assert not parsed.match.matches(Resource({"prefect.resource.id": "phase4.slate.2024-03-01"}))
    assert set(parsed.parameters or {}) == {"analysis_date"}
    template = jinja2.Template(parsed.parameters["analysis_date"])  # type: ignore[index]
    event = {"payload": {"analysis_date": "2024-03-01"}}
    assert template.render(event=event) == "2024-03-01"


def test_work_pool_and_flow_environment_come_from_env_vars() -> None:
    for deployment in deployments(load_raw()).values():
        work_pool = deployment["work_pool"]
        assert work_pool["name"] == "{{ $PHASE4_WORK_POOL }}"
        env = work_pool["job_variables"]["env"]
        assert env == {
            "PHASE4_WAREHOUSE": "{{ $PHASE4_WAREHOUSE }}",
            "PHASE4_GCP_CREDENTIALS_BLOCK": "{{ $PHASE4_GCP_CREDENTIALS_BLOCK }}",
        }
        assert {"image", "region", "cpu", "memory", "timeout"} <= set(work_pool["job_variables"])


def test_pull_step_runs_the_code_where_the_image_puts_it() -> None:
    (step,) = load_raw()["pull"]
    assert step == {
        "prefect.deployments.steps.set_working_directory": {"directory": "{{ $PHASE4_CODE_DIR }}"}
    }
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "PHASE4_CODE_DIR=/opt/phase4 " in dockerfile.replace("\n", " ")
    assert re.search(r"^WORKDIR /opt/phase4$", dockerfile, re.MULTILINE)


def test_the_image_holds_every_package_the_project_installs() -> None:
    """The Dockerfile cannot be built here: check it copies each package pyproject.toml
    installs, and .dockerignore lets each in (a package left out fails only in the cloud)."""
    import tomllib

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    allowed = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert len(packages) >= 7, packages
    compiled = next(line for line in dockerfile if "compileall" in line).split()
    for package in packages:
        assert f"COPY {package}/ {package}/" in dockerfile, package
        assert f"!{package}/" in allowed, package
        assert package in compiled, package  # else its modules compile at every flow run


def test_make_install_compiles_every_package_the_project_installs() -> None:
    """`make install` compiles the project's modules (where bytecode is never written, every
    command compiled them again): each package pyproject.toml installs is in PACKAGES."""
    import tomllib

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    makefile = (REPO_ROOT / "Makefile").read_text()
    (listed,) = re.findall(r"^PACKAGES := (.+)$", makefile, re.MULTILINE)
    assert set(packages) <= set(listed.split())
    assert "$(PY) -m compileall -q $(PACKAGES)" in makefile


def test_entrypoints_load_and_parameters_render_as_pickers() -> None:
    """The UI shows a date picker and a processor multi-select, each with a description."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    from flows import DAY

    entrypoints = {d["name"]: d["entrypoint"] for d in load_raw()["deployments"]}
    nightly: Any = load_flow_from_entrypoint(str(REPO_ROOT / entrypoints["nightly"]))
    backfill: Any = load_flow_from_entrypoint(str(REPO_ROOT / entrypoints["backfill"]))
    assert (nightly.name, backfill.name) == ("phase4-precompute", "phase4-backfill")

    properties = parameter_schema(nightly).model_dump()["properties"]
    analysis_date = properties["analysis_date"]
    assert {"type": "string", "format": "date", "pattern": DAY} in analysis_date["anyOf"]
    processors = next(s for s in properties["processors"]["anyOf"] if s["type"] == "array")
    assert len(processors["items"]["enum"]) == 5
    assert analysis_date["description"] and properties["processors"]["description"]

    backfill_schema = parameter_schema(backfill).model_dump()
    assert set(backfill_schema["required"]) == {"start_date", "end_date"}
    for name in ("start_date", "end_date"):
        assert backfill_schema["properties"][name]["format"] == "date"
        assert backfill_schema["properties"][name]["description"]
    # What the server checks a new run's parameters with: a malformed date starts no run (the
    # schema's `format: date` alone let `2024-13-45` through, to fail in the worker).
    nightly_schema = parameter_schema(nightly).model_dump()
    for value, valid in [("2024-01-15", True), ("2024-13-45", False), ("03/03/2024", False)]:
        assert server_accepts({"analysis_date": value}, nightly_schema) == valid, value
        dates = {"start_date": value, "end_date": "2024-04-14"}
        assert server_accepts(dates, backfill_schema) == valid, value


def server_accepts(parameters: dict[str, Any], schema: dict[str, Any]) -> bool:
    """The check the Prefect server runs on a new flow run's parameters (it skips formats)."""
    from prefect.utilities.schema_tools import validation

    try:
        validation.validate(parameters, schema, raise_on_error=True)
    except validation.ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    "parameters",
    [
        {"analysis_date": date(2024, 1, 15), "processors": None},
        {"analysis_date": None, "processors": ["player_composite_factors", "ml_feature_store_v2"]},
        {"start_date": date(2023, 10, 24), "end_date": date(2024, 4, 7), "force": True},
        {"analysis_date": object(), "processors": ("team_defense_zone_analysis",)},
    ],
)
def test_flow_runs_record_their_parameters_as_prefect_would(parameters: dict[str, Any]) -> None:
    """The flows record their parameters without FastAPI's encoder, to the same JSON."""
    from prefect import Flow

    from flows.phase4_backfill import phase4_backfill
    from flows.phase4_precompute import phase4_precompute

    flows: list[Flow[..., Any]] = [phase4_precompute, phase4_backfill]
    for flow in flows:
        recorded = flow.serialize_parameters(parameters)
        assert recorded == Flow.serialize_parameters(flow, parameters)
        assert all(isinstance(v, str | bool | list | None) for v in recorded.values())


PREFECT_LOCAL_YAML = REPO_ROOT / "prefect.local.yaml"


def load_local() -> dict[str, Any]:
    return yaml.safe_load(PREFECT_LOCAL_YAML.read_text())


def process_variables() -> dict[str, Any]:
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()["variables"]


def validate_local_yaml(raw: dict[str, Any]) -> StrictPrefectYaml:
    """prefect.local.yaml: the same strict models; job variables of a *process* pool."""
    model = StrictPrefectYaml.model_validate(raw)
    for step_list in (model.build, model.push, model.pull):
        check_steps(step_list)  # type: ignore[arg-type]
    for deployment in model.deployments:
        assert deployment.work_pool is not None
        unknown = set(deployment.work_pool.job_variables) - set(process_variables()["properties"])
        if unknown:
            raise ValueError(f"not process job variables: {sorted(unknown)}")
    return model


def test_prefect_local_yaml_is_valid_and_builds_nothing() -> None:
    raw = load_local()
    model = validate_local_yaml(raw)
    assert [d.name for d in model.deployments] == ["nightly", "backfill"]
    assert raw["build"] is None and raw["push"] is None  # no Docker
    assert raw["pull"] == load_raw()["pull"]
    bad = load_local()
    deployments(bad)["nightly"]["work_pool"]["job_variables"]["memory"] = "8Gi"
    with pytest.raises(ValueError, match="memory"):
        validate_local_yaml(bad)


def test_prefect_deploy_reads_the_local_file() -> None:
    from prefect.cli.deploy._config import _load_deploy_configs_and_actions
    from rich.console import Console

    console = Console(record=True, width=200)
    configs, actions = _load_deploy_configs_and_actions(PREFECT_LOCAL_YAML, console=console)
    assert console.export_text() == ""
    assert [c["name"] for c in configs] == ["nightly", "backfill"]
    assert not actions["build"] and not actions["push"] and actions["pull"]


def test_local_deployments_equal_the_cloud_run_ones_but_for_the_work_pool() -> None:
    """One set of deployments, two targets: only work_pool.job_variables may differ."""
    cloud = deployments(load_raw())
    local = deployments(load_local())
    assert set(cloud) == set(local)
    for name, deployment in local.items():
        expected = copy.deepcopy(cloud[name])
        expected["work_pool"]["job_variables"] = {
            "env": {"PHASE4_WAREHOUSE": "{{ $PHASE4_WAREHOUSE }}"}
        }
        assert deployment == expected, name


def test_deadline_automation_expects_completion_within_two_hours_of_start() -> None:
    """01:00 New York is two hours after the 23:00 schedule; the block is the user's."""
    from uuid import uuid4

    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import Resource

    from phase4.deadline import DEFAULT_WINDOW_MINUTES, deadline_automation

    (schedule,) = deployments(load_raw())["nightly"]["schedules"]
    start = datetime(2025, 1, 10, 23, 0, tzinfo=NEW_YORK)
    assert (schedule["cron"], start + timedelta(minutes=DEFAULT_WINDOW_MINUTES)) == (
        "0 23 * * *",
        datetime(2025, 1, 11, 1, 0, tzinfo=NEW_YORK),
    )
    deployment_id, block_id = uuid4(), uuid4()
    automation = deadline_automation(deployment_id, block_id, timedelta(minutes=120))
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.posture == Posture.Proactive
    assert trigger.within == timedelta(hours=2)
    assert trigger.for_each == {"prefect.resource.id"}
    assert isinstance(trigger, EventTrigger) and isinstance(trigger.match, ResourceSpecification)
    assert trigger.match.matches(Resource({"prefect.resource.id": "prefect.flow-run.abc"}))
    (action,) = automation.actions
    assert isinstance(action, SendNotification) and action.block_document_id == block_id
    assert "within 120 min of a worker picking it up" in action.body
    assert "{{ flow_run.name }}" in action.subject and "state" not in action.body.lower()
    # The watch starts when a worker picks the run up, before it can crash or fail.
    assert trigger.after == {
        "prefect.flow-run.Pending",
        "prefect.flow-run.Submitting",
        "prefect.flow-run.Running",
        "prefect.flow-run.Late",
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--block", "phase4-alerts"], "write BLOCK_TYPE/NAME, e.g. slack-webhook/phase4-alerts"),
        (["--block", "slack-webhook/a", "--minutes", "0"], "PHASE4_DEADLINE_MINUTES=0: expected"),
        # inf overflowed timedelta, nan failed to convert, each with a traceback.
        (["--block", "slack-webhook/a", "--minutes", "inf"], "MINUTES=inf: expected 0 to 1440"),
        (["--block", "slack-webhook/a", "--minutes", "nan"], "MINUTES=nan: expected 0 to 1440"),
        (["--block", "slack-webhook/a", "--minutes", "1441"], "MINUTES=1441: expected 0 to"),
    ],
)
def test_deadline_command_rejects_bad_settings_in_one_line(argv: list[str], message: str) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "phase4.deadline", *argv],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 2, result
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_deadline_command_with_none_creates_nothing() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "phase4.deadline", "--block", "none"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result
    assert result.stdout.strip() == "PHASE4_DEADLINE_BLOCK=none: no deadline automation"
