"""One Prefect task runs any processor through the run core, and one operation commits what it
built: partitions, feature checks and run lines together. The nightly commits each processor
from its task, within its deadline; a backfill commits a chunk at once.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import ContextVar
from dataclasses import replace
from datetime import date
from typing import Any, TypeVar

import polars as pl
from prefect import Task, allow_failure, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import opaque

from features import core, registry
from features.common import processed_now
from quality.schemas import ML_FEATURE_CHECKS, OUTPUT_TABLES, PROCESSOR_RUNS, Phase3Frames
from quality.success import RunLine, run_rows
from tasks import feature_checks
from tasks.freshness import run_inputs
from tasks.io import TRANSIENT_RETRIES, ProcessorTimeout
from tasks.readers import phase3_frames
from tasks.warehouse import Warehouse, open_warehouse
from tasks.warehouse.base import Replacement

# Set by the CLI's Ctrl-C: from then on nothing commits (the commit in progress completes or
# rolls back whole), and the CLI reports what `committed_listener` heard.
STOP = threading.Event()
CommitListener = Callable[[Sequence[RunLine]], None]
committed_listener: ContextVar[CommitListener | None] = ContextVar("phase4_committed", default=None)
# Commits under way (in task threads): a SIGTERM ends the flow at once, and the CLI waits for
# them (`commits_settled`) so its summary hears every commit that lands.
_UNDER_WAY = [0]
_SETTLED = threading.Condition()


def commits_settled(timeout: float) -> bool:
    with _SETTLED:
        return _SETTLED.wait_for(lambda: not _UNDER_WAY[0], timeout)


class DeadlinePassed(RuntimeError):
    """Raised right before the commit of a processor already stopped: nothing is written."""


class Interrupted(RuntimeError):
    """Raised right before a commit once Ctrl-C was pressed: nothing more is written."""


def commit_built(
    warehouse: Warehouse,
    built: Sequence[core.Built],
    lines: Sequence[RunLine],
    before_commit: Callable[[], None] | None = None,
) -> None:
    """ONE transaction: every built processor's partitions (P5's feature checks with them) and
    `lines`, so a partition never exists without its run line."""
    replacements = []
    for b in built:
        if not b.write_dates:
            continue
        replacements.append(Replacement(OUTPUT_TABLES[b.table], b.write_dates, b.rows_to_write()))
        if b.checks is not None:
            replacements.append(Replacement(ML_FEATURE_CHECKS, b.write_dates, b.checks))

    def guard() -> None:
        if STOP.is_set():
            raise Interrupted("interrupted: nothing more is written")
        if before_commit is not None:
            before_commit()

    with _SETTLED:
        _UNDER_WAY[0] += 1
    try:
        warehouse.commit(replacements, [(PROCESSOR_RUNS, run_rows(lines))], before_commit=guard)
        if listener := committed_listener.get():
            listener(lines)
    finally:
        with _SETTLED:
            _UNDER_WAY[0] -= 1
            _SETTLED.notify_all()


@task(name="build-processor", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def build_processor(
    table: str,
    run: dict[str, Any],
    phase3: dict[str, Any],
    upstream: dict[str, Any],
    warehouse_url: str | None = None,
) -> core.Built:
    """`core.build` in a worker thread, waited for until the deadline (twice the SPEC limit per
    date), then with `warehouse_url` (the nightly) its commit from the same thread.

    Past the deadline the task FAILs and the commit refuses; a commit already submitted is
    waited for and its line says WARN, never a FAIL line over written rows. Its own deadline,
    not Prefect's `timeout_seconds`, which stops only async tasks reliably. Prefect resolves
    the futures in `run` ({"ctx", "earlier": a backfill's previous P5}) and `phase3` and
    records them as dependencies (a failed read stops the task).
    """
    ctx = run["ctx"]
    if isinstance(earlier := run.get("earlier"), core.Built):  # the previous chunk's P5
        ctx = core.with_history(ctx, earlier)
    entry = registry.PROCESSORS[table]
    timeout = entry.timeout_seconds * len(ctx.dates)
    deadline = time.monotonic() + timeout
    gate = threading.Lock()
    state = {"stopped": False, "committing": False}
    ran = {t: u if isinstance(u, core.Built) else None for t, u in upstream.items()}

    def guard() -> None:
        with gate:
            if state["stopped"] or time.monotonic() >= deadline:
                raise DeadlinePassed(f"{table}: stopped by its time limit; nothing written")
            state["committing"] = True

    def work() -> core.Built:
        built = core.build(entry, ctx, ran)
        if warehouse_url is None:
            return built
        warehouse = open_warehouse(warehouse_url).with_labels(
            processor=table, slate_date=ctx.dates[0].isoformat(), flow_run_id=ctx.inputs.run_id
        )
        lines = list(built.lines)
        if warehouse.bills_bytes:
            processed, billed = warehouse.bytes_processed, warehouse.bytes_billed
            lines = [
                replace(line, bytes_processed=processed, bytes_billed=billed) for line in lines
            ]
        commit_built(warehouse, [built], lines, guard)
        late = time.monotonic() - deadline
        if late > 0:  # the commit job returned after the deadline: say so, never FAIL
            message = f"committed {late:.1f} s after its deadline (twice the SPEC limit)"
            lines = [_late(line, message) for line in lines]
            warehouse.append(PROCESSOR_RUNS, run_rows(lines))
        return replace(built, lines=tuple(lines))

    def stop() -> bool:
        """At the deadline: stop the thread's commit unless it was already submitted."""
        with gate:
            state["stopped"] = True
            return state["committing"]

    built = _within(work, timeout, f"build-{table}", stop)
    if built.checks is not None and len(ctx.dates) == 1:
        feature_checks.publish_artifact(built.checks)
    logger = get_run_logger()
    for line in built.lines:  # a backfill chunk's OK dates are in processor_runs, not logged
        if line.status != "OK" or len(built.lines) == 1:  # (0.3 ms a line: 0.3 s a season)
            logger.info("%s %s: %s %s", table, line.analysis_date, line.status, line.message)
    return built


def _late(line: RunLine, message: str) -> RunLine:
    """The line that follows a late commit's own (finished later, so it is the latest)."""
    status = "WARN" if line.status == "OK" else line.status
    message = f"{line.message}; {message}"
    return replace(line, status=status, message=message, finished_at=processed_now())


W = TypeVar("W")
BuiltFuture = PrefectFuture[core.Built]


def _within(work: Callable[[], W], timeout: float, name: str, stop: Callable[[], bool]) -> W:
    """`work()` in a daemon thread with this thread's context; ProcessorTimeout after `timeout`
    unless `stop()` says its commit is under way. An abandoned thread is never joined: a stuck
    computation cannot hold the flow or the process's exit."""
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
        if stop():
            return outcome.result()
        message = f"{name} timed out after {timeout:g} s (twice its SPEC limit)"
        raise ProcessorTimeout(message) from None


# P5's Phase 3 half starts when its run is prepared and runs beside P1 to P4 (`core.run` too).
EARLY = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phase4-early")


@task(name="prepare-run", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def prepare_run_task(
    warehouse_url: str,
    phase3: Phase3Frames | dict[str, Any],
    dates: list[date],
    processors: list[str],
    run_id: str,
    fingerprints: pl.DataFrame | None = None,
) -> core.Context:
    """The run's context; a failed read in `phase3` is empty (its readers fail on their own)."""
    frames = phase3 if isinstance(phase3, Phase3Frames) else phase3_frames(phase3)
    selected = registry.select(processors)
    warehouse = open_warehouse(warehouse_url)
    ctx = core.prepare(run_inputs(warehouse, frames, dates, selected, run_id, fingerprints))
    return core.start_early(ctx, selected, EARLY)


def submit_processors(
    ctx: Any,
    selected: Sequence[registry.Processor],
    reads: Mapping[str, Any],
    url: str | None,
    earlier: PrefectFuture[core.Built] | None = None,
) -> dict[str, PrefectFuture[core.Built]]:
    """Every selected processor as a task in the core's order (`core.schedule`); P5 waits for
    failed upstreams too (SPEC 8). `url`: each task commits its own (the nightly). `earlier`:
    the previous chunk's P5 (its rows join this chunk's drift reference). Prefect waits for an
    `opaque` future without walking the Context or Built it holds (~0.4 s of CPU a season)."""

    def submit(entry: registry.Processor, ups: dict[str, BuiltFuture]) -> BuiltFuture:
        wrap: Callable[[Any], Any] = allow_failure if entry.runs_if_upstream_failed else opaque
        upstream: dict[str, Any] = {t: wrap(f) for t, f in ups.items()}
        own = {k: reads[t] for k, t in entry.phase3.items() if t in reads}
        run: dict[str, Any] = {"ctx": opaque(ctx)}
        if entry.feature_checked and earlier is not None:
            run["earlier"] = allow_failure(earlier)
        named = named_task(build_processor, f"build-{entry.table}")  # the table's name in the UI
        return named.submit(entry.table, run, own, upstream, url)

    return core.schedule(selected, submit)


@functools.cache
def named_task(task: Task[..., Any], name: str) -> Task[..., Any]:
    """The task renamed, once per process (each copy reads its function's source, ~5-10 ms)."""
    return task.with_options(name=name)
