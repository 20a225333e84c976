"""The reads behind SPEC 14 freshness (`phase4 status`, the backfill's choice of dates) and SPEC
17 subsets (`run_inputs`); the logic (fingerprints, states) is pure, in quality/freshness.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from itertools import groupby

import polars as pl

from features import registry
from features.core import RunInputs
from features.registry import Processor
from nba_calendar import season_of
from quality.freshness import freshness_grid, input_fingerprints
from quality.schemas import PHASE3_TABLES, PROCESSOR_RUNS, Phase3Frames
from tasks.feature_checks import read_reference
from tasks.readers import read_output, read_phase3_frames
from tasks.warehouse import Filter, Warehouse

CHUNK_DAYS = 56  # a season in three chunks: less fixed cost per date, peak RSS ~0.8 GB

RUN_COLUMNS = [
    "analysis_date",
    "processor",
    "status",
    "started_at",
    "finished_at",
    "input_fingerprint",
]


def date_chunks(start: date, end: date, chunk_days: int = CHUNK_DAYS) -> list[list[date]]:
    """Consecutive dates, split where the season changes and every `chunk_days` dates."""
    if end < start:
        raise ValueError(f"end date {end} is before start date {start}")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    chunks: list[list[date]] = []
    for _, group in groupby(days, key=season_of):
        season = list(group)
        chunks += [season[i : i + chunk_days] for i in range(0, len(season), chunk_days)]
    return chunks


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
    return PROCESSOR_RUNS.typed(runs, RUN_COLUMNS)


def read_phase3_for(warehouse: Warehouse, first: date, last: date) -> dict[str, pl.DataFrame]:
    """Every Phase 3 row a build of first..last (one season) reads; an absent table reads as
    empty (its dates then show what was built against what is there: nothing)."""
    present = [
        t for t, s in PHASE3_TABLES.items() if warehouse.table_schema(s.full_name) is not None
    ]
    return read_phase3_frames(warehouse, first, last, present).by_table()


def status_grid(
    warehouse: Warehouse, first: date, last: date, fingerprints: pl.DataFrame | None = None
) -> pl.DataFrame:
    """analysis_date, processor, state, reason of every date; `fingerprints` if already hashed."""
    processors = list(registry.PROCESSORS.values())
    if fingerprints is None:  # one read per table per season
        fingerprints = pl.concat(
            input_fingerprints(read_phase3_for(warehouse, days[0], days[-1]), days, processors)
            for days in date_chunks(first, last, chunk_days=366)
        )
    return freshness_grid(
        read_runs(warehouse, first, last),
        fingerprints,
        [d for chunk in date_chunks(first, last) for d in chunk],
        processors,
    )


def run_inputs(
    warehouse: Warehouse,
    phase3: Phase3Frames,
    dates: Sequence[date],
    selected: Sequence[Processor],
    run_id: str,
    fingerprints: pl.DataFrame | None = None,
) -> RunInputs:
    """What a run of `dates` reads besides Phase 3 (SPEC 17): the stored partitions of the
    unselected upstreams with their state per date, the P5 drift reference (SPEC 12), and the
    input fingerprints (SPEC 14; computed here from `phase3` unless given)."""
    days = sorted(dates)
    judged = registry.upstream_closure(selected)
    if fingerprints is None:
        fingerprints = input_fingerprints(phase3.by_table(), days, [*selected, *judged])
    stored, states = {}, {}
    if judged:
        grid = freshness_grid(read_runs(warehouse, days[0], days[-1]), fingerprints, days, judged)
        chosen = {p.table for p in selected}
        for table in {u for p in selected for u in p.upstream.values()} - chosen:
            column = registry.PROCESSORS[table].schema.date_column
            rows = read_output(warehouse, table, days[0], days[-1])
            stored[table] = rows.filter(pl.col(column).is_in(days))
            own = grid.filter(pl.col("processor") == table)
            states[table] = dict(zip(own["analysis_date"], own["state"], strict=True))
    return RunInputs(
        phase3=phase3,
        dates=tuple(days),
        run_id=run_id,
        stored=stored,
        upstream_states=states,
        reference=read_reference(warehouse, days[0])
        if any(p.feature_checked for p in selected)
        else None,
        fingerprints={(d, p): f for d, p, f in fingerprints.iter_rows()},
    )
