"""Backfill tasks: read each Phase 3 table once per season, commit each chunk at once.

Still point in time: the processors filter `game_date < D` themselves, so a season's frame
gives the same rows as a read for D alone (tests/test_backfill.py compares both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import date

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from features import registry
from features.core import Built
from quality.freshness import dates_to_build, freshness_grid
from quality.success import RunLine, date_status, lines_by_date
from tasks.freshness import read_runs
from tasks.io import TRANSIENT_RETRIES
from tasks.processors import commit_built
from tasks.readers import SeasonInputs, season_inputs
from tasks.warehouse import open_warehouse

# The CLI's progress bar listens here; the flow and its tasks share the caller's context.
ProgressListener = Callable[[date, int, str], None]
progress_listener: ContextVar[ProgressListener | None] = ContextVar(
    "phase4_backfill_progress", default=None
)


@task(name="backfill-read-phase3", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def read_chunk_task(warehouse_url: str, first: date, last: date, tables: list[str]) -> SeasonInputs:
    return season_inputs(warehouse_url, first, last, tables)


@task(name="backfill-write-chunk", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def write_chunk_task(warehouse_url: str, built: list[Built], lines: list[RunLine]) -> None:
    """One transaction; a date whose line forbids a write keeps its previous partition."""
    commit_built(open_warehouse(warehouse_url), built, lines)
    if listener := progress_listener.get():  # the CLI's bar counts dates written, not built
        for day, day_lines in lines_by_date(lines).items():
            listener(day, sum(line.rows or 0 for line in day_lines), date_status(day_lines))


@task(name="backfill-dates-to-build", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def dates_to_build_task(
    warehouse_url: str, current: pl.DataFrame, dates: list[date], processors: Sequence[str]
) -> list[date]:
    """The chunk's dates where a selected processor is missing, failed or stale (SPEC 14)."""
    runs = read_runs(open_warehouse(warehouse_url), dates[0], dates[-1])
    grid = freshness_grid(runs, current, dates, list(registry.PROCESSORS.values()))
    return dates_to_build(grid, processors)
