"""The nightly Phase 4 flow: the registry's processors as concurrent tasks ordered by futures.

Each processor starts when its upstreams are done (features/registry.py declares the graph);
P5 runs even when some of them failed. A processor left out of `processors` is replaced by a
read of its partition for D.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import Task, allow_failure, flow, get_run_logger
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run
from prefect.states import Failed, State

from features import registry
from features.registry import ProcessorName
from quality.schemas import PHASE3_TABLES
from tasks.io import ensure_tables, read_output_task, read_phase3_task
from tasks.processors import named_task, processor_task, slate_facts_task
from tasks.report import (
    RunReport,
    fingerprints_of,
    record_run_task,
    run_lines,
    with_fingerprints,
)
from tasks.warehouse import exclusive, open_warehouse, warehouse_url

SLATE_TIME_ZONE = ZoneInfo("America/New_York")
SLATE_LOCK_SECONDS = 2 * 60 * 60


def _read_task(table: str) -> Task[..., Any]:
    """The read of a Phase 3 table or of a Phase 4 partition, named after the table."""
    task = read_phase3_task if table in PHASE3_TABLES else read_output_task
    return named_task(task, f"read-{table}")


# Every task copy a run can use, made at import: a warm runner's commands then reuse them.
for _entry in registry.PROCESSORS.values():
    processor_task(_entry)
    _read_task(_entry.table)
for _table in PHASE3_TABLES:
    _read_task(_table)


def next_slate_date(now: datetime | None = None) -> date:
    """The nightly run at 23:00 New York prepares the next calendar day's games."""
    current = (now or datetime.now(SLATE_TIME_ZONE)).astimezone(SLATE_TIME_ZONE)
    return current.date() + timedelta(days=1)


def select_processors(processors: list[str] | None) -> list[str]:
    """Table names in run order; ids ('P3') are accepted too."""
    return [p.table for p in registry.select(processors)]


def run_name() -> str:
    """Scheduled runs carry no date: name them after the slate they will build."""
    day = flow_run.parameters.get("analysis_date") or next_slate_date()
    return f"phase4-{day}"


@flow(
    name="phase4-precompute",
    description="Build the Phase 4 tables for one slate date from the Phase 3 tables.",
    flow_run_name=run_name,
)
def phase4_precompute(
    analysis_date: date | None = None,
    processors: list[ProcessorName] | None = None,
) -> RunReport | State:
    """Phase 4 precompute for one slate date.

    Args:
        analysis_date: The slate date D. Empty: the next day in America/New_York.
        processors: Output tables to build. Empty: all of them, in dependency order.
    """
    started = time.monotonic()
    day = analysis_date or next_slate_date()
    selected = registry.select(list(processors) if processors else None)
    url = warehouse_url()
    warehouse = open_warehouse(url)
    # One open warehouse for the run's few dozen short operations, in every task thread.
    with warehouse.held_open():
        ensure_tables(warehouse)

        # One run per slate date at a time: a second run waits rather than interleave writes.
        with exclusive(warehouse, f"phase4-slate-{day.isoformat()}", SLATE_LOCK_SECONDS):
            reads = {
                t: _read_task(t).submit(url, t, day)
                for t in sorted(registry.phase3_tables(selected))
            }
            fact_reads = {k: reads[t] for k, t in registry.FACT_INPUTS.items()}
            facts = slate_facts_task.submit(
                day, **{k: allow_failure(f) for k, f in fact_reads.items()}
            )
            runs: dict[str, PrefectFuture[Any]] = {}

            def upstream(table: str) -> PrefectFuture[Any]:
                if table in runs:
                    return runs[table]
                return _read_task(table).submit(url, table, day)

            for entry in selected:
                ups: dict[str, Any] = {k: upstream(t) for k, t in entry.upstream.items()}
                if entry.runs_if_upstream_failed:
                    ups = {k: allow_failure(f) for k, f in ups.items()}
                runs[entry.table] = processor_task(entry).submit(
                    entry.table,
                    {"facts": facts},
                    url,
                    {k: reads[t] for k, t in entry.phase3.items()},
                    ups,
                )
            # The input fingerprints (SPEC 14) hash every row read: computed here while the
            # processors run. Reads too: a future's final state is only known once waited for.
            wait(list(reads.values()))
            read_ok = {t: f.result() for t, f in reads.items() if f.state.is_completed()}
            prints = fingerprints_of(read_ok, day, selected)
            wait([*runs.values(), facts])

        # A processor that never ran names the first of its own reads that failed (the slate
        # facts count a failed read as an empty table, so they never stop a processor).
        inputs = {p.table: [reads[t] for t in p.phase3.values()] for p in selected}
        run_id = str(flow_run.id or "local")
        lines = with_fingerprints(run_lines(run_id, day, facts, runs, inputs), prints)
        report = RunReport(run_id, day, lines, time.monotonic() - started)
        record_run_task(url, report)
    get_run_logger().info(report.summary())
    if report.failed:
        failed = [line.processor for line in report.lines if line.status == "FAIL"]
        return Failed(message=f"Phase 4 for {day} failed: {', '.join(failed)}", data=report)
    return report
