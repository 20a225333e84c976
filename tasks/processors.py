"""One Prefect task runs any processor of the registry: compute in Polars, replace D's partition.

The flow configures it per processor (`processor_task`): the task run is named
`build-<table>` and stopped at twice the SPEC limit. Each run hands its frame to dependents in
memory through its future; a dependent run alone reads the partition from the warehouse.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import polars as pl
from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features import registry
from features.common import processed_now
from quality.schemas import PHASE3_TABLES, Phase3Frames
from quality.success import SlateFacts, slate_facts
from tasks import feature_checks
from tasks.io import TRANSIENT_RETRIES, ProcessorTimeout, write_partition
from tasks.warehouse import open_warehouse


class DeadlinePassed(RuntimeError):
    """Raised inside the write transaction of a processor already stopped: it rolls back."""


@dataclass(frozen=True)
class ProcessorResult:
    """What a processor produced for D: its frame for dependents and figures for the report."""

    table: str
    frame: pl.DataFrame
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    notes: tuple[str, ...] = ()
    bytes_processed: int | None = None  # BigQuery bytes of this processor's own jobs
    bytes_billed: int | None = None

    @property
    def rows(self) -> int:
        return self.frame.height


def upstream_frame(upstream: object) -> pl.DataFrame | None:
    """A dependent receives a result, a frame read from the warehouse, or (P5) a failure."""
    if isinstance(upstream, ProcessorResult):
        return upstream.frame
    if isinstance(upstream, pl.DataFrame):
        return upstream
    return None


@task(name="slate-facts", cache_policy=NO_CACHE)
def slate_facts_task(analysis_date: date, **frames: object) -> SlateFacts:
    """The calendar, slate size and completeness of D, from frames the run read anyway.

    A read that failed its contract arrives as an exception: it counts as an empty table here,
    and the processors that read it fail on their own.
    """
    phase3 = Phase3Frames(
        **{
            keyword: frame
            if isinstance(frame, pl.DataFrame)
            else PHASE3_TABLES[registry.PHASE3_KEYWORDS[keyword]].empty_frame()
            for keyword, frame in frames.items()
        }
    )
    return slate_facts(analysis_date, phase3)


def _commit_guard(stopped: threading.Event, deadline: float, table: str) -> None:
    """Refuse to commit once the task was stopped or its timeout is due."""
    if stopped.is_set() or time.monotonic() >= deadline:
        raise DeadlinePassed(f"{table}: stopped by its time limit; the write was rolled back")


@task(name="build-processor", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def build_processor(
    table: str,
    slate: dict[str, SlateFacts],
    warehouse_url: str,
    phase3: dict[str, pl.DataFrame],
    upstream: dict[str, Any],
) -> ProcessorResult:
    """Compute and write in a worker thread the task waits for until the processor's deadline
    (twice its SPEC limit); the thread cannot be stopped, so its commit checks the deadline
    and rolls back.

    A sync task with its own deadline rather than Prefect's `timeout_seconds`: Prefect stops
    only async tasks reliably, and each async task run opens its own API client (~30 ms of
    TLS setup each, 5 per run). `slate` is {"facts": the slate facts}: the flow passes that
    future inside a dict, as it passes the others. Prefect resolves it and records the
    dependency all the same, but a future given as a parameter of its own costs a GET of that
    task run in every processor's thread before it starts.
    """
    facts = slate["facts"]
    entry = registry.PROCESSORS[table]
    timeout = entry.timeout_seconds
    deadline = time.monotonic() + timeout
    stopped = threading.Event()
    frames = {keyword: upstream_frame(value) for keyword, value in upstream.items()}
    missing = tuple(sorted(k for k, frame in frames.items() if frame is None))

    run_id = feature_checks.current_run_id()

    def work() -> tuple[ProcessorResult, pl.DataFrame | None]:
        started_at, clock = processed_now(), time.perf_counter()
        calendar = facts.calendar
        warehouse = open_warehouse(warehouse_url).with_labels(
            processor=table, slate_date=calendar.analysis_date.isoformat(), flow_run_id=run_id
        )
        frame = registry.compute(entry, calendar, started_at, phase3, frames)
        # SPEC 12 between building and writing: a FAIL raises here, so nothing is written.
        checks = (
            feature_checks.check_partition(warehouse, frame, calendar, run_id)
            if entry.feature_checked
            else None
        )
        write_partition(
            warehouse,
            table,
            calendar.analysis_date,
            frame,
            before_commit=lambda: _commit_guard(stopped, deadline, table),
        )
        if checks is not None:
            feature_checks.write_checks(warehouse, calendar.analysis_date, checks)
        duration = time.perf_counter() - clock
        notes = (
            *(f"upstream missing: {m}" for m in missing),
            *(feature_checks.report_notes(checks) if checks is not None else ()),
        )
        result = ProcessorResult(
            table,
            frame,
            started_at,
            processed_now(),
            duration,
            notes,
            warehouse.bytes_processed if warehouse.bills_bytes else None,
            warehouse.bytes_billed if warehouse.bills_bytes else None,
        )
        return result, checks

    try:
        result, checks = _within(work, timeout, f"build-{table}")
    except BaseException:
        stopped.set()  # past the deadline (or interrupted): the thread must not commit after it
        raise
    logger = get_run_logger()
    logger.info(
        "%s: %d rows for %s in %.2fs",
        table,
        result.rows,
        facts.analysis_date,
        result.duration_seconds,
    )
    if missing:
        logger.warning("%s ran without %s", table, ", ".join(missing))
    if checks is not None:
        feature_checks.publish_artifact(checks)
    return result


W = TypeVar("W")


def _within(work: Callable[[], W], timeout: float, name: str) -> W:
    """`work()` in a daemon thread (with this thread's context: run logger, warehouse labels);
    ProcessorTimeout if it has not returned after `timeout` seconds. The thread is abandoned
    then, never joined: a stuck computation cannot hold the flow or the process's exit."""
    outcome: Future[W] = Future()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome.set_result(context.run(work))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting task as is
            outcome.set_exception(exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    try:
        return outcome.result(timeout)
    except FutureTimeout:
        if outcome.done():  # the work itself raised a TimeoutError
            raise
        raise ProcessorTimeout(
            f"{name} timed out after {timeout:g} s (twice its SPEC limit)"
        ) from None


def processor_task(entry: registry.Processor) -> Task[..., Any]:
    """The generic task named after the table (it stops itself at twice the SPEC limit)."""
    return named_task(build_processor, f"build-{entry.table}")


@functools.cache
def named_task(task: Task[..., Any], name: str) -> Task[..., Any]:
    """The task under another name in the UI, made once per process: each copy reads its
    function's source for its key (~5-10 ms), and a warm runner's commands reuse it."""
    return task.with_options(name=name)
