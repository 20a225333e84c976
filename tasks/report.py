"""Turn the processors' final states into the run report, and publish it three ways.

The same lines go to nba_precompute.processor_runs, a Prefect table artifact on the flow run,
and a `phase4.completed` event that Phase 5 can trigger on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import partial
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.futures import PrefectFuture

from features import registry
from features.common import processed_now
from features.core import Built
from quality.schemas import PROCESSOR_RUNS
from quality.success import RUN_TIME_LIMIT_MINUTES, RunLine, RunReport, Status, run_rows
from tasks.io import TRANSIENT_RETRIES
from tasks.warehouse import open_warehouse

COMPLETED_EVENT = "phase4.completed"


def _error_of(future: PrefectFuture) -> str:
    state = future.state
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - the report shows whatever was raised
        return f"{type(exc).__name__}: {exc}"
    return state.message or state.name or "failed"


def run_lines(
    run_id: str,
    dates: Sequence[date],
    processors: Mapping[str, PrefectFuture[Any]],
    inputs: Mapping[str, Sequence[PrefectFuture[Any]]],
) -> list[RunLine]:
    """Every processor's lines, date by date: its own when it ran; else FAIL when one of its
    own inputs failed or it raised, SKIPPED when an upstream processor failed."""
    lines: list[RunLine] = []
    for table, future in processors.items():
        state = future.state
        result = state.result(raise_on_failure=False) if state.is_completed() else None
        if isinstance(result, Built):
            lines += result.lines
            continue
        failed_inputs = [f for f in inputs.get(table, ()) if f.state.is_failed()]
        status: Status
        if failed_inputs or state.is_failed():  # an input of its own that failed is named first
            status, message = "FAIL", _error_of((failed_inputs or [future])[0])
        else:
            blockers = [
                u
                for u in registry.PROCESSORS[table].upstream.values()
                if u in processors and not processors[u].state.is_completed()
            ]
            status = "SKIPPED"
            message = f"not run: upstream {', '.join(blockers) or 'input'} failed"
        at = processed_now()  # it never ran: no rows or duration; its time makes it D's latest
        never_ran = partial(RunLine, run_id=run_id, processor=table, status=status, finished_at=at)
        lines += [never_ran(analysis_date=d, message=message) for d in dates]
    return sorted(lines, key=lambda line: line.analysis_date)  # stable: run order within a date


@task(name="record-run", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def record_run_task(warehouse_url: str, report: RunReport, unrecorded: list[RunLine]) -> None:
    """Append the lines no commit carried, create the artifact, emit the completion event."""
    logger = get_run_logger()
    if unrecorded:
        open_warehouse(warehouse_url).append(PROCESSOR_RUNS, run_rows(unrecorded).to_arrow())
    day = report.analysis_date.isoformat()
    create_table_artifact(
        key="phase4-run-report",
        table=report.table_rows(),
        description=f"Phase 4 precompute for {report.analysis_date}: {report.status}",
    )
    emit_event(
        event=COMPLETED_EVENT,
        resource={"prefect.resource.id": f"phase4.slate.{day}", "phase4.analysis_date": day},
        payload={
            "analysis_date": day,
            "status": report.status,
            "run_id": report.run_id,
            "processors": {line.processor: line.status for line in report.lines},
            "rows": {line.processor: line.rows for line in report.lines},
        },
    )
    if report.too_slow:
        logger.warning(
            "the run took %.1f min (limit %d)", report.duration_seconds / 60, RUN_TIME_LIMIT_MINUTES
        )
    for line in report.lines:
        if line.status in ("WARN", "FAIL"):
            logger.warning("%s %s: %s", line.status, line.processor, line.message)
