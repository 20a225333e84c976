"""The nightly Phase 4 flow: the run core over one date. The Phase 3 reads, the run's context,
then one task per processor in the core's order (P5 last, even when some failed), each
committing its partition with its run line.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect import allow_failure, get_run_logger
from prefect.futures import wait
from prefect.runtime import flow_run
from prefect.states import Failed, State

from features import registry
from features.registry import ProcessorName
from flows import Day, flow
from quality.success import RunFailed, RunReport
from tasks.io import ensure_tables, read_phase3_task
from tasks.processors import STOP, named_task, prepare_run_task, submit_processors
from tasks.report import record_run_task, run_lines
from tasks.warehouse import exclusive, open_warehouse, warehouse_url

SLATE_TIME_ZONE = ZoneInfo("America/New_York")
SLATE_LOCK_SECONDS = 2 * 60 * 60


def next_slate_date(now: datetime | None = None) -> date:
    """The nightly run at 23:00 New York prepares the next calendar day's games."""
    current = (now or datetime.now(SLATE_TIME_ZONE)).astimezone(SLATE_TIME_ZONE)
    return current.date() + timedelta(days=1)


def slate_date(analysis_date: date | None) -> date:
    """The date a run builds: the one given, else the next slate (the one default)."""
    return analysis_date or next_slate_date()


def run_name() -> str:
    """Scheduled runs carry no date: name them after the slate they will build."""
    return f"phase4-{slate_date(flow_run.parameters.get('analysis_date'))}"


@flow(
    name="phase4-precompute",
    description="Build the Phase 4 tables for one slate date from the Phase 3 tables.",
    flow_run_name=run_name,
)
def phase4_precompute(
    analysis_date: Day | None = None,
    processors: list[ProcessorName] | None = None,
) -> RunReport | State:
    """Phase 4 precompute for one slate date.

    Args:
        analysis_date: The slate date D. Empty: the next day in America/New_York.
        processors: Output tables to build. Empty: all of them, in dependency order.
    """
    started = time.monotonic()
    day = slate_date(analysis_date)
    selected = registry.select(list(processors) if processors else None)
    url = warehouse_url()
    warehouse = open_warehouse(url)
    run_id = str(flow_run.id or "local")
    # One open warehouse for the run's few dozen short operations, in every task thread.
    with warehouse.held_open():
        ensure_tables(warehouse)

        # One run per slate date at a time: a second run waits rather than interleave writes.
        with exclusive(warehouse, f"phase4-slate-{day.isoformat()}", SLATE_LOCK_SECONDS):
            reads = {  # each read named after its table
                t: named_task(read_phase3_task, f"read-{t}").submit(url, t, day)
                for t in sorted(registry.phase3_tables(selected))
            }
            phase3 = {t: allow_failure(f) for t, f in reads.items()}
            tables = [p.table for p in selected]
            ctx = prepare_run_task.submit(url, phase3, [day], tables, run_id)
            # Each processor commits its partition with its line from its own task.
            runs = submit_processors(ctx, selected, reads, url)
            wait(list(runs.values()))

        inputs = {p.table: [*(reads[t] for t in p.phase3.values()), ctx] for p in selected}
        lines = run_lines(run_id, [day], runs, inputs)
        report = RunReport(
            run_id=run_id,
            analysis_date=day,
            lines=lines,
            duration_seconds=time.monotonic() - started,
        )
        unrecorded = [line for line in lines if line.started_at is None]
        if not STOP.is_set():  # after Ctrl-C nothing more is written
            record_run_task(url, report, unrecorded)
    get_run_logger().info(report.summary())
    if report.failed:
        failed = [line.processor for line in report.lines if line.status == "FAIL"]
        message = f"Phase 4 for {day} failed: {', '.join(failed)}"
        return Failed(message=message, data=RunFailed(message, report))
    return report
