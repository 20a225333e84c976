"""The repository's deployment files deployed to a real local Prefect server, as a user does.

One server, work pool, deployment and worker for the module (tests/support/prefect_server.py):

- `make deploy-local` exactly as docs/deployment.md tells a team with a self-hosted server:
  `prefect --no-prompt deploy --all --prefect-file prefect.local.yaml` into a *process* pool (no
  Docker, nothing edited), then the 01:00 deadline automation (phase4/deadline.py) notifying
  through a custom-webhook block that posts to a tiny HTTP server of the test.
- The warehouse is a DuckDB file loaded with the real 2023-24 season by `phase4 load-phase3`,
  named by PHASE4_WAREHOUSE at deploy time; the worker is started with no PHASE4_* setting at
  all: the deployments carry the warehouse and the checkout.
- `prefect deployment run 'phase4-precompute/nightly' --param analysis_date=... --watch`, then a
  `phase3.completed` event for another date, each must complete and write all five partitions
  (and, finishing inside the deadline window, notify nobody).
- A run held on its slate lock past the (shortened) deadline window is notified, once, though the
  automation is deployed again meanwhile; a run that fails before it starts is notified too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import duckdb
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.events.schemas.events import ReceivedEvent

from tests.conftest import SEASON_2023
from tests.support.prefect_server import (
    REPO_ROOT,
    Background,
    CliError,
    NotificationSink,
    PrefectServer,
    emit_event_argv,
    prefect_cli,
    run_cli,
    save_webhook_block_argv,
    start_background,
    venv_bin,
)

POOL = "phase4-e2e-process"
NIGHTLY = "phase4-precompute/nightly"
BACKFILL = "phase4-backfill/backfill"
RUN_DATE = date(2024, 1, 15)
EVENT_DATE = date(2024, 3, 1)
NEW_YORK = ZoneInfo("America/New_York")
SLOW_DATE = date(2024, 2, 1)
RUN_TIMEOUT_SECONDS = 600
# The deadline window, shortened from 120 minutes: four times what a normal run takes here
# (about 15 s), so a run held past it is told apart from the others within a minute.
DEADLINE_MINUTES = 1.0
DEADLINE_BLOCK = "custom-webhook/phase4-e2e-deadline"
# Each output table and its partition column (SPEC section 1).
PARTITIONS = {
    "nba_precompute.team_defense_zone_analysis": "analysis_date",
    "nba_precompute.player_shot_zone_analysis": "analysis_date",
    "nba_precompute.player_composite_factors": "game_date",
    "nba_precompute.player_daily_cache": "cache_date",
    "nba_predictions.ml_feature_store_v2": "game_date",
}


@dataclass
class Stack:
    server: PrefectServer
    warehouse_path: Path
    log_dir: Path
    sink: NotificationSink
    worker: Background | None = None
    scheduled_starts: list[datetime] = field(default_factory=list)
    scheduled_read_at: datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def warehouse_url(self) -> str:
        return f"duckdb://{self.warehouse_path}"

    def diagnostics(self) -> str:
        parts = [*self.notes, self.server.tail()]
        if self.worker is not None:
            parts.append(self.worker.tail(120))
        return "\n".join(parts)


def client_for(api_url: str) -> SyncPrefectClient:
    """A client of that server alone, whatever the test process's own settings say."""
    return SyncPrefectClient(api_url)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("deployment-e2e")
    server = PrefectServer(root / "prefect-home")
    stack = Stack(server, root / "warehouse.duckdb", root / "logs", NotificationSink())
    try:
        server.launch()
        # Load the warehouse while the server boots (migrations take a while on 2 cores).
        load_env = server.child_env(PHASE4_WAREHOUSE=stack.warehouse_url)
        run_cli([str(venv_bin("phase4")), "load-phase3", str(SEASON_2023)], env=load_env, cwd=root)
        server.wait_healthy()
        env = server.child_env()
        run_cli(
            save_webhook_block_argv(DEADLINE_BLOCK.split("/")[1], stack.sink.url), env=env, cwd=root
        )
        deployed = run_cli(
            ["make", "deploy-local"],
            env=server.child_env(
                PHASE4_WAREHOUSE=stack.warehouse_url,
                LOCAL_WORK_POOL=POOL,
                PHASE4_DEADLINE_BLOCK=DEADLINE_BLOCK,
                PHASE4_DEADLINE_MINUTES=f"{DEADLINE_MINUTES:g}",
            ),
            cwd=REPO_ROOT,
        )
        stack.notes.append(f"----- make deploy-local output -----\n{deployed.stdout[-3000:]}")
        stack.scheduled_read_at = datetime.now(NEW_YORK)
        stack.scheduled_starts = nightly_scheduled_starts(server.api_url)
        stack.worker = start_background(
            "worker",
            prefect_cli("worker", "start", "--pool", POOL),
            env=server.child_env(PREFECT_WORKER_QUERY_SECONDS="2"),
            cwd=root,
            log_dir=stack.log_dir,
        )
        yield stack
    except BaseException:
        print(stack.diagnostics())
        raise
    finally:
        if stack.worker is not None:
            stack.worker.stop()
        server.stop()
        stack.sink.stop()


def nightly_scheduled_starts(api_url: str, wait_seconds: float = 90.0) -> list[datetime]:
    """The nightly deployment's scheduled runs, then its schedule switched off.

    Read before the worker starts; switching the schedule off afterwards keeps a test that
    happens to run at 23:00 New York from starting a real nightly run beside the test's runs.
    """
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with client_for(api_url) as client:
        deployment = client.read_deployment_by_name(NIGHTLY)
        deadline = time.monotonic() + wait_seconds
        runs: list[Any] = []
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    )
                ),
                limit=10,
            )
            if runs:
                break
            time.sleep(1)
        for schedule in client.read_deployment_schedules(deployment.id):
            client.update_deployment_schedule(deployment.id, schedule.id, active=False)
    return sorted(run.expected_start_time for run in runs if run.expected_start_time)


def partition_rows(warehouse_path: Path, day: date) -> dict[str, int]:
    """Rows of each output partition for the day, read straight from the DuckDB file (none
    for a table no run has created yet: this test may run before the others of the module)."""
    counts: dict[str, int] = {}
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        for table, column in PARTITIONS.items():
            try:
                sql = f"SELECT count(*) FROM {table} WHERE {column} = ?"
                row = con.execute(sql, [day]).fetchone()
            except duckdb.CatalogException:
                row = None
            counts[table] = int(row[0]) if row else 0
    return counts


def wait_for_run(api_url: str, deployment_name: str, day: date, timeout: float) -> Any:
    """The deployment's flow run for analysis_date=day, once it reaches a final state."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + timeout
    with client_for(api_url) as client:
        deployment = client.read_deployment_by_name(deployment_name)
        seen: Any = None
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
            matching = [
                run for run in runs if str(run.parameters.get("analysis_date")) == day.isoformat()
            ]
            if matching:
                seen = matching[0]
                if seen.state is not None and seen.state.is_final():
                    return seen
            time.sleep(2)
    state = seen.state.name if seen is not None and seen.state else None
    raise AssertionError(
        f"no final flow run of {deployment_name} for {day} after {timeout:.0f}s "
        f"(last seen: {seen.name if seen else None}, state {state})"
    )


def check(stack: Stack, condition: bool, message: str) -> None:
    if not condition:
        pytest.fail(f"{message}\n{stack.diagnostics()}")


def test_deployments_carry_the_prefect_yaml_settings(stack: Stack) -> None:
    with client_for(stack.server.api_url) as client:
        nightly = client.read_deployment_by_name(NIGHTLY)
        backfill = client.read_deployment_by_name(BACKFILL)
        automations = client.read_automations_by_name("phase4-nightly-on-phase3-completed")
    check(stack, nightly.work_pool_name == POOL, f"nightly pool {nightly.work_pool_name}")
    check(stack, {"phase4", "nightly"} <= set(nightly.tags), f"nightly tags {nightly.tags}")
    check(stack, nightly.description is not None, "nightly has no description")
    limit = nightly.global_concurrency_limit
    check(stack, limit is not None and limit.limit == 1, f"nightly concurrency {limit}")
    check(stack, nightly.parameters == {}, f"nightly default parameters {nightly.parameters}")
    (schedule,) = nightly.schedules
    check(
        stack,
        (getattr(schedule.schedule, "cron", None), getattr(schedule.schedule, "timezone", None))
        == ("0 23 * * *", NEW_YORK.key),
        f"nightly schedule {schedule.schedule}",
    )
    check(stack, backfill.schedules == [], f"backfill schedules {backfill.schedules}")
    required = set((backfill.parameter_openapi_schema or {}).get("required", []))
    check(stack, required == {"start_date", "end_date"}, f"backfill required {required}")
    properties = (nightly.parameter_openapi_schema or {})["properties"]
    date_formats = [s.get("format") for s in properties["analysis_date"]["anyOf"]]
    check(stack, "date" in date_formats, f"analysis_date schema {properties['analysis_date']}")
    # A process pool's job variables: only the flow runs' environment, read at deploy time.
    for deployment in (nightly, backfill):
        job_variables = deployment.job_variables or {}
        check(
            stack,
            job_variables == {"env": {"PHASE4_WAREHOUSE": stack.warehouse_url}},
            f"{deployment.name} job variables {job_variables}",
        )
        pull = deployment.pull_steps or []
        check(
            stack,
            pull
            == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}],
            f"{deployment.name} pull steps {pull}",
        )
    check(stack, len(automations) == 1, f"automations of nightly: {automations}")
    automation = automations[0]
    check(
        stack,
        set(automation.trigger.expect) == {"phase3.completed"}  # type: ignore[union-attr]
        and [getattr(a, "deployment_id", None) for a in automation.actions] == [nightly.id],
        f"nightly automation {automation}",
    )


def test_nightly_schedule_next_run_is_2300_new_york(stack: Stack) -> None:
    starts = stack.scheduled_starts
    check(stack, bool(starts), "the nightly deployment has no scheduled flow runs")
    local = [start.astimezone(NEW_YORK) for start in starts]
    check(
        stack,
        all((t.hour, t.minute) == (23, 0) for t in local),
        f"scheduled starts in New York: {[t.isoformat() for t in local]}",
    )
    deployed = stack.scheduled_read_at
    assert deployed is not None
    check(
        stack,
        deployed - timedelta(minutes=5) < local[0] <= deployed + timedelta(days=1, hours=1),
        f"next run {local[0].isoformat()} is not the next 23:00 after {deployed.isoformat()}",
    )


def test_nightly_run_for_a_date_completes_and_writes_five_partitions(stack: Stack) -> None:
    try:
        result = run_cli(
            prefect_cli(
                "deployment",
                "run",
                NIGHTLY,
                "--param",
                f"analysis_date={RUN_DATE.isoformat()}",
                "--watch",
                "--watch-timeout",
                str(RUN_TIMEOUT_SECONDS),
            ),
            env=stack.server.child_env(),
            cwd=stack.log_dir,
            timeout=RUN_TIMEOUT_SECONDS + 60,
        )
    except CliError as exc:
        pytest.fail(f"{exc}\n{stack.diagnostics()}")
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", result.stdout)
    check(stack, match is not None, f"no flow run id in:\n{result.stdout}")
    assert match is not None
    with client_for(stack.server.api_url) as client:
        run = client.read_flow_run(UUID(match.group(1)))
    check(stack, run.state is not None and run.state.is_completed(), f"state {run.state}")
    check(
        stack,
        str(run.parameters.get("analysis_date")) == RUN_DATE.isoformat(),
        f"parameters {run.parameters}",
    )
    rows = partition_rows(stack.warehouse_path, RUN_DATE)
    check(stack, all(n > 0 for n in rows.values()), f"rows for {RUN_DATE}: {rows}")
    completed = phase4_completed_events(stack.server.api_url, RUN_DATE)
    check(stack, len(completed) >= 1, f"no phase4.completed event for {RUN_DATE}")
    payload = completed[0].payload
    check(stack, payload["status"] in ("OK", "WARN"), f"phase4.completed payload {payload}")
    check(stack, len(payload["processors"]) == 5, f"phase4.completed payload {payload}")


def phase4_completed_events(api_url: str, day: date) -> list[ReceivedEvent]:
    """The events Phase 5 would trigger on: `phase4.completed` for resource phase4.slate.D."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    deadline = time.monotonic() + 30
    while True:
        with client_for(api_url) as client:
            page = client.read_events(
                EventFilter(
                    event=EventNameFilter(name=["phase4.completed"]),
                    resource=EventResourceFilter(id=[f"phase4.slate.{day.isoformat()}"]),
                ),
                limit=10,
            )
        if page.events or time.monotonic() > deadline:
            return page.events
        time.sleep(1)  # events are stored asynchronously after the run


def test_phase3_completed_event_runs_nightly_for_its_date(stack: Stack) -> None:
    check(
        stack,
        partition_rows(stack.warehouse_path, EVENT_DATE) == dict.fromkeys(PARTITIONS, 0),
        f"{EVENT_DATE} already has rows before the event",
    )
    try:
        run_cli(
            emit_event_argv(
                "phase3.completed",
                {"prefect.resource.id": f"phase3.slate.{EVENT_DATE.isoformat()}"},
                {"analysis_date": EVENT_DATE.isoformat()},
            ),
            env=stack.server.child_env(),
            cwd=stack.log_dir,
            timeout=120,
        )
        run = wait_for_run(stack.server.api_url, NIGHTLY, EVENT_DATE, RUN_TIMEOUT_SECONDS)
    except (CliError, AssertionError) as exc:
        pytest.fail(f"{exc}\n{stack.diagnostics()}")
    check(stack, run.state.is_completed(), f"{run.name}: {run.state}")
    created_by = run.created_by
    check(
        stack,
        created_by is not None
        and (created_by.type, created_by.display_value)
        == ("AUTOMATION", "phase4-nightly-on-phase3-completed"),
        f"{run.name} was created by {created_by}, not the phase3.completed trigger",
    )
    rows = partition_rows(stack.warehouse_path, EVENT_DATE)
    check(stack, all(n > 0 for n in rows.values()), f"rows for {EVENT_DATE}: {rows}")


def test_the_deadline_automation_watches_nightly_runs(stack: Stack) -> None:
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    from phase4.deadline import AUTOMATION_NAME

    with client_for(stack.server.api_url) as client:
        nightly = client.read_deployment_by_name(NIGHTLY)
        (automation,) = client.read_automations_by_name(AUTOMATION_NAME)
        block = client.read_block_document_by_name(
            DEADLINE_BLOCK.split("/")[1], DEADLINE_BLOCK.split("/")[0]
        )
    trigger = automation.trigger
    check(stack, isinstance(trigger, EventTrigger), f"deadline trigger {trigger}")
    assert isinstance(trigger, EventTrigger)
    check(
        stack,
        (trigger.posture, trigger.expect, trigger.after, trigger.within)
        == (
            Posture.Proactive,
            {"prefect.flow-run.Completed"},
            {f"prefect.flow-run.{s}" for s in ("Pending", "Submitting", "Running", "Late")},
            timedelta(minutes=DEADLINE_MINUTES),
        ),
        f"deadline trigger {trigger}",
    )
    related = trigger.match_related
    specs = related if isinstance(related, list) else [related]
    related_ids = [getattr(spec, "root", spec).get("prefect.resource.id") for spec in specs]
    check(stack, related_ids == [f"prefect.deployment.{nightly.id}"], f"match_related {related}")
    (action,) = automation.actions
    check(
        stack,
        isinstance(action, SendNotification) and action.block_document_id == block.id,
        f"deadline action {action}",
    )


def test_a_run_past_the_deadline_notifies_and_runs_within_it_do_not(stack: Stack) -> None:
    """Held on its slate lock (the flow's per-date lock), the run outlives the window; the
    automation deployed again meanwhile keeps watching it (it was deleted and recreated, which
    dropped the watch). A run that fails before it starts (a date the flow cannot parse) is
    notified too: the watch began at Running, which such a run never reaches."""
    from phase4.deadline import AUTOMATION_NAME
    from tasks.warehouse import exclusive, open_warehouse

    slow_name = f"phase4-{SLOW_DATE.isoformat()}"
    window = DEADLINE_MINUTES * 60
    with client_for(stack.server.api_url) as client:
        (before,) = client.read_automations_by_name(AUTOMATION_NAME)
        nightly = client.read_deployment_by_name(NIGHTLY)
    with exclusive(open_warehouse(stack.warehouse_url), f"phase4-slate-{SLOW_DATE}", 60):
        started = time.time()
        try:
            run_cli(
                prefect_cli(
                    "deployment",
                    "run",
                    NIGHTLY,
                    "--param",
                    f"analysis_date={SLOW_DATE.isoformat()}",
                    "--param",
                    'processors=["team_defense_zone_analysis"]',
                ),
                env=stack.server.child_env(),
                cwd=stack.log_dir,
            )
            with client_for(stack.server.api_url) as client:
                unparsable = client.create_flow_run_from_deployment(
                    nightly.id, parameters={"analysis_date": "2024-02-30"}
                )
            wait_for_state(stack, slow_name, "Running")
            redeployed = run_cli(
                [str(venv_bin("python")), "-m", "phase4.deadline"],
                env=stack.server.child_env(
                    PHASE4_DEADLINE_BLOCK=DEADLINE_BLOCK,
                    PHASE4_DEADLINE_MINUTES=f"{DEADLINE_MINUTES:g}",
                ),
                cwd=REPO_ROOT,
            )
        except CliError as exc:
            pytest.fail(f"{exc}\n{stack.diagnostics()}")
        check(stack, str(before.id) in redeployed.stdout, f"redeployed: {redeployed.stdout}")
        notified = stack.sink.wait_for(slow_name, timeout=window + 180)
    check(
        stack,
        notified is not None,
        f"no deadline notification for {slow_name}: {stack.sink.received}",
    )
    assert notified is not None
    elapsed = float(notified["at"]) - started  # type: ignore[arg-type]
    check(stack, elapsed >= window, f"notified {elapsed:.0f}s after the run, window {window:.0f}s")
    body = str(notified["body"])
    check(stack, f"within {DEADLINE_MINUTES:g} min of a worker" in body, f"body {body}")
    check(stack, SLOW_DATE.isoformat() in body, f"body {body}")  # its parameters
    never_started = stack.sink.wait_for(unparsable.name, timeout=120)
    check(stack, never_started is not None, f"{unparsable.name}: {stack.sink.received}")
    with client_for(stack.server.api_url) as client:
        failed = client.read_flow_run(unparsable.id)
    check(stack, failed.state is not None and failed.state.is_failed(), f"{failed.state}")
    # Released, the run completes; the runs that completed inside their windows stay silent.
    run = wait_for_run(stack.server.api_url, NIGHTLY, SLOW_DATE, RUN_TIMEOUT_SECONDS)
    check(stack, run.state.is_completed(), f"{run.name}: {run.state}")
    time.sleep(10)  # a second firing for the same run would come at the next evaluation
    subjects = sorted(str(message["subject"]) for message in stack.sink.received)
    expected = sorted(f"Phase 4 deadline missed: {n}" for n in (slow_name, unparsable.name))
    check(stack, subjects == expected, f"notifications: {stack.sink.received}")


def wait_for_state(stack: Stack, run_name: str, state: str, timeout: float = 120) -> None:
    """Until the nightly run of that name is in `state`."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout
    with client_for(stack.server.api_url) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name]))
            )
            if runs and runs[0].state is not None and runs[0].state.name == state:
                return
            time.sleep(1)
    pytest.fail(f"{run_name} not {state} after {timeout:.0f}s\n{stack.diagnostics()}")
