"""Backfill tasks: read each Phase 3 table once per chunk of dates, build every date in memory.

Every date is still built strictly point in time: the processors filter `game_date < D`
themselves, so a frame read for a whole chunk gives the same rows as a read for D alone
(tests/test_backfill.py compares both on every date of a real season).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from features.common import Phase3Frames, processed_now, season_of
from features.nightly import build_outputs, calendar_for
from quality.schemas import OUTPUT_TABLES, PROCESSOR_RUNS
from quality.success import RunLine, SlateFacts, evaluate_output
from tasks.io import TRANSIENT_RETRIES, read_phase3_frames
from tasks.warehouse import Filter, open_warehouse

CHUNK_DAYS = 31
DONE_STATUSES = frozenset({"OK", "WARN", "NO_GAMES"})

# The CLI's progress bar listens here; the flow and its tasks share the caller's context.
ProgressListener = Callable[[date, int, str], None]
progress_listener: ContextVar[ProgressListener | None] = ContextVar(
    "phase4_backfill_progress", default=None
)


@dataclass(frozen=True)
class ChunkResult:
    dates: list[date]
    outputs: dict[str, pl.DataFrame]
    lines: list[RunLine]


def date_chunks(start: date, end: date, chunk_days: int = CHUNK_DAYS) -> list[list[date]]:
    """Consecutive dates, split where the season changes and every `chunk_days` dates."""
    if end < start:
        raise ValueError(f"end date {end} is before start date {start}")
    chunks: list[list[date]] = []
    day = start
    while day <= end:
        if (
            not chunks
            or len(chunks[-1]) >= chunk_days
            or season_of(chunks[-1][0]) != season_of(day)
        ):
            chunks.append([])
        chunks[-1].append(day)
        day += timedelta(days=1)
    return chunks


def slate_facts(phase3: Phase3Frames, analysis_date: date) -> SlateFacts:
    calendar = calendar_for(phase3, analysis_date)
    history = phase3.team_offense.filter(
        (pl.col("season_year") == calendar.season_year) & (pl.col("game_date") < analysis_date)
    )
    slate = phase3.player_context.filter(pl.col("game_date") == analysis_date)
    return SlateFacts(analysis_date, calendar.is_early_season, slate.height, history.height)


def build_date(
    phase3: Phase3Frames, analysis_date: date, processors: Sequence[str], run_id: str
) -> tuple[dict[str, pl.DataFrame], list[RunLine]]:
    """All selected processors for one date, timed one by one, with their status lines."""
    facts = slate_facts(phase3, analysis_date)
    outputs: dict[str, pl.DataFrame] = {}
    lines = []
    for table in OUTPUT_TABLES:
        if table not in processors:
            continue
        started, clock = processed_now(), time.perf_counter()
        outputs.update(build_outputs(phase3, analysis_date, started, [table], upstream=outputs))
        duration = time.perf_counter() - clock
        frame = outputs[table]
        status, message = evaluate_output(table, facts, frame, duration)
        lines.append(
            RunLine(
                run_id,
                table,
                analysis_date,
                status,
                frame.height,
                duration,
                started,
                processed_now(),
                message,
            )
        )
    return outputs, lines


@task(name="backfill-read-phase3", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def read_chunk_task(warehouse_url: str, first: date, last: date) -> Phase3Frames:
    return read_phase3_frames(open_warehouse(warehouse_url), first, last)


@task(name="backfill-completed-dates", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def completed_dates_task(
    warehouse_url: str, first: date, last: date, processors: Sequence[str]
) -> set[date]:
    """Dates whose latest run of every selected processor ended OK, WARN or NO_GAMES."""
    warehouse = open_warehouse(warehouse_url)
    if warehouse.table_schema(PROCESSOR_RUNS.full_name) is None:
        return set()
    runs = pl.from_arrow(
        warehouse.read(
            PROCESSOR_RUNS.full_name,
            ["analysis_date", "processor", "status", "finished_at"],
            [Filter("analysis_date", ">=", first), Filter("analysis_date", "<=", last)],
        )
    )
    assert isinstance(runs, pl.DataFrame)
    latest = (
        runs.filter(pl.col("processor").is_in(list(processors)))
        .sort("finished_at", nulls_last=False)
        .group_by("analysis_date", "processor")
        .agg(pl.col("status").last())
        .group_by("analysis_date")
        .agg(
            pl.len().alias("processors"),
            pl.col("status").is_in(list(DONE_STATUSES)).all().alias("done"),
        )
        .filter(pl.col("done") & (pl.col("processors") == len(processors)))
    )
    return set(latest["analysis_date"].to_list())


@task(name="backfill-build-chunk", cache_policy=NO_CACHE)
def build_chunk_task(
    phase3: Phase3Frames, dates: list[date], processors: list[str], run_id: str
) -> ChunkResult:
    per_table: dict[str, list[pl.DataFrame]] = {t: [] for t in processors}
    lines: list[RunLine] = []
    for day in dates:
        outputs, day_lines = build_date(phase3, day, processors, run_id)
        for table in processors:
            per_table[table].append(outputs[table])
        lines += day_lines
    return ChunkResult(dates, {t: pl.concat(fs) for t, fs in per_table.items()}, lines)


@task(name="backfill-write-chunk", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def write_chunk_task(warehouse_url: str, chunk: ChunkResult) -> int:
    """One transaction per table replaces every date of the chunk, then the run lines."""
    warehouse = open_warehouse(warehouse_url)
    written = 0
    for table, frame in chunk.outputs.items():
        written += warehouse.replace_partitions(OUTPUT_TABLES[table], chunk.dates, frame.to_arrow())
    lines = pl.DataFrame(
        [line.as_row() for line in chunk.lines], schema=PROCESSOR_RUNS.polars_schema
    )
    warehouse.append(PROCESSOR_RUNS, lines.to_arrow())
    if listener := progress_listener.get():  # the CLI's bar counts dates written, not built
        for day in chunk.dates:
            day_lines = [line for line in chunk.lines if line.analysis_date == day]
            listener(day, sum(line.rows or 0 for line in day_lines), date_status(day_lines))
    return written


STATUS_ORDER = ("FAIL", "WARN", "SKIPPED", "NO_GAMES", "OK")


def date_status(lines: Sequence[RunLine]) -> str:
    """The worst status among a date's lines."""
    statuses = {line.status for line in lines}
    return next((s for s in STATUS_ORDER if s in statuses), "OK")
