"""The reads behind SPEC 14 freshness: run history and the Phase 3 rows of a date range.

`phase4 status --start/--end` and the backfill's choice of dates both come from here; the
logic (fingerprints, states) is pure, in quality/freshness.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from features import registry
from quality.freshness import dates_to_build, freshness_grid, input_fingerprints
from quality.schemas import PHASE3_TABLES, PROCESSOR_RUNS, Phase3Frames
from tasks.backfill import date_chunks
from tasks.io import TRANSIENT_RETRIES, read_phase3
from tasks.warehouse import Filter, Warehouse, open_warehouse

RUN_COLUMNS = [
    "analysis_date",
    "processor",
    "status",
    "started_at",
    "finished_at",
    "input_fingerprint",
]


def read_runs(warehouse: Warehouse, first: date, last: date) -> pl.DataFrame:
    """processor_runs lines of the range; none (typed) when the table does not exist yet."""
    schema = warehouse.table_schema(PROCESSOR_RUNS.full_name)
    if schema is None:
        return PROCESSOR_RUNS.empty_frame().select(RUN_COLUMNS)
    runs = warehouse.read(
        PROCESSOR_RUNS.full_name,
        [c for c in RUN_COLUMNS if c in schema.names],
        [Filter("analysis_date", ">=", first), Filter("analysis_date", "<=", last)],
    )
    if "input_fingerprint" not in runs.columns:  # history older than the column
        runs = runs.with_columns(pl.lit(None, pl.String).alias("input_fingerprint"))
    return runs.select(RUN_COLUMNS).cast({c: PROCESSOR_RUNS.polars_schema[c] for c in RUN_COLUMNS})


def read_phase3_for(warehouse: Warehouse, first: date, last: date) -> dict[str, pl.DataFrame]:
    """Every Phase 3 row a build of a date in first..last (one season) reads; an absent table
    reads as empty (its dates then show what was built against what is there: nothing)."""
    frames = {}
    for table, schema in PHASE3_TABLES.items():
        if warehouse.table_schema(schema.full_name) is None:
            frames[table] = schema.empty_frame()
        else:
            frames[table] = read_phase3(warehouse, table, first, last)
    return frames


def current_fingerprints(warehouse: Warehouse, first: date, last: date) -> pl.DataFrame:
    """Fingerprints of every processor for every date, one read per table per season."""
    parts = []
    for dates in date_chunks(first, last, chunk_days=366):
        frames = read_phase3_for(warehouse, dates[0], dates[-1])
        parts.append(input_fingerprints(frames, dates, registry.PROCESSORS.values()))
    return pl.concat(parts)


def dates_between(first: date, last: date) -> list[date]:
    return [d for chunk in date_chunks(first, last) for d in chunk]


def status_grid(warehouse: Warehouse, first: date, last: date) -> pl.DataFrame:
    """analysis_date, processor, state, reason for every date of the range (read-only)."""
    return freshness_grid(
        read_runs(warehouse, first, last),
        current_fingerprints(warehouse, first, last),
        dates_between(first, last),
        list(registry.PROCESSORS.values()),
    )


@task(name="backfill-dates-to-build", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def dates_to_build_task(
    warehouse_url: str, current: pl.DataFrame, dates: list[date], processors: Sequence[str]
) -> list[date]:
    """The chunk's dates where a selected processor is missing, failed or stale (SPEC 14);
    `current` holds every processor's fingerprints of the chunk's dates, computed once by the
    backfill from the frames it read for the build (`chunk_fingerprints`), and its run lines
    reuse them."""
    runs = read_runs(open_warehouse(warehouse_url), dates[0], dates[-1])
    grid = freshness_grid(runs, current, dates, list(registry.PROCESSORS.values()))
    return dates_to_build(grid, processors)


def chunk_fingerprints(phase3: Phase3Frames, dates: Sequence[date]) -> pl.DataFrame:
    """SPEC 14 fingerprints of every processor for every date of a chunk, from its frames."""
    return input_fingerprints(phase3.by_table(), dates, registry.PROCESSORS.values())
