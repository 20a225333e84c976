"""Backfill tasks: read each Phase 3 table once per chunk of dates, build every date in memory.

Every date is still built strictly point in time: the processors filter `game_date < D`
themselves, so a frame read for a whole chunk gives the same rows as a read for D alone
(tests/test_backfill.py compares both on every date of a real season).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from features import registry
from features.common import processed_now
from nba_calendar import season_of
from quality.freshness import input_fingerprints
from quality.schemas import (
    ML_FEATURE_CHECKS,
    ML_FEATURE_STORE_V2,
    OUTPUT_TABLES,
    PROCESSOR_RUNS,
    Phase3Frames,
)
from quality.success import RunLine, SlateFacts, evaluate_output
from quality.success import slate_facts_of as facts_of_dates
from tasks import feature_checks
from tasks.io import TRANSIENT_RETRIES, read_phase3_frames
from tasks.warehouse import open_warehouse

CHUNK_DAYS = 31

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


def build_chunk(
    phase3: Phase3Frames,
    dates: Sequence[date],
    processors: Sequence[str],
    run_id: str,
    fingerprints: pl.DataFrame | None = None,
) -> ChunkResult:
    """Every selected processor ONCE for all dates of the chunk (the many-date engine), then
    one status line per (date, processor) judged on that date's slice of the output.

    Duration: a processor's time for the chunk is shared evenly over the chunk's dates (the
    engine has no per-date cost to measure; an even share sums to the real time, and SPEC 9's
    per-date time limit is then judged on the mean date). Every line of a processor carries the
    chunk's started_at/finished_at. `fingerprints` (SPEC 14, `input_fingerprints` of these
    frames) are computed once per chunk by the caller, who also uses them to pick the dates.
    """
    days = sorted(set(dates))
    if fingerprints is None:
        fingerprints = input_fingerprints(phase3.by_table(), days, registry.select(processors))
    prints = {(d, p): f for d, p, f in fingerprints.iter_rows()}
    facts = slate_facts_of(days, phase3)
    calendar = registry.calendars_for(phase3, days)
    outputs: dict[str, pl.DataFrame] = {}
    lines: list[RunLine] = []
    for entry in registry.select(processors):
        started, clock = processed_now(), time.perf_counter()
        upstream = {k: outputs.get(t) for k, t in entry.upstream.items()}
        frame = registry.compute(
            entry, calendar, started, registry.phase3_inputs(entry, phase3), upstream
        )
        share = (time.perf_counter() - clock) / len(days)
        finished = processed_now()
        outputs[entry.table] = frame
        column = OUTPUT_TABLES[entry.table].partition_column
        assert column is not None, entry.table
        by_date = by_partition(frame, column)
        for day in days:
            part = by_date.get(day, frame.clear())
            status, message = evaluate_output(entry, facts[day], part, share)
            lines.append(
                RunLine(
                    run_id,
                    entry.table,
                    day,
                    status,
                    part.height,
                    share,
                    started,
                    finished,
                    message,
                    input_fingerprint=prints.get((day, entry.table)),
                )
            )
    lines.sort(key=lambda line: line.analysis_date)  # date by date, run order within a date
    return ChunkResult(list(days), outputs, lines)


def by_partition(frame: pl.DataFrame, column: str) -> dict[date, pl.DataFrame]:
    """A processor's many-date output split into each date's rows (one pass)."""
    if frame.is_empty():
        return {}
    parts = frame.partition_by(column, as_dict=True, maintain_order=True)
    return {key[0]: part for key, part in parts.items()}


FACT_COLUMNS = ("game_id", "game_date", "season_year", "team_abbr")


def slate_facts_of(dates: Sequence[date], phase3: Phase3Frames) -> dict[date, SlateFacts]:
    """Each date's slate facts (SPEC 9, 11), all in one pass (`quality.success.slate_facts_of`:
    each season's games dated once, then every date's facts read from those). The frames are
    narrowed first to the columns the facts read (docs/completeness.md) and the chunk's seasons."""
    seasons = sorted({season_of(d) for d in dates})

    def narrow(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(c for c in FACT_COLUMNS if c in frame.columns).filter(
            pl.col("season_year").is_in(seasons)
        )

    narrowed = Phase3Frames(*(narrow(getattr(phase3, f.name)) for f in fields(Phase3Frames)))
    return facts_of_dates(dates, narrowed)


@task(name="backfill-read-phase3", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def read_chunk_task(warehouse_url: str, first: date, last: date) -> Phase3Frames:
    return read_phase3_frames(open_warehouse(warehouse_url), first, last)


@task(name="backfill-build-chunk", cache_policy=NO_CACHE)
def build_chunk_task(
    phase3: Phase3Frames,
    dates: list[date],
    processors: list[str],
    run_id: str,
    fingerprints: pl.DataFrame | None = None,
) -> ChunkResult:
    return build_chunk(phase3, dates, processors, run_id, fingerprints)


@task(name="backfill-write-chunk", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def write_chunk_task(warehouse_url: str, chunk: ChunkResult) -> tuple[int, list[RunLine]]:
    """SPEC 12 checks on P5, then one transaction per table for every date of the chunk, then
    the run lines (returned, with the checks' outcomes folded into P5's lines).

    A date whose P5 fails its checks keeps its previous P5 partition, as in the nightly run.
    """
    warehouse = open_warehouse(warehouse_url)
    outputs, lines = dict(chunk.outputs), chunk.lines
    partitions = {table: list(chunk.dates) for table in outputs}
    p5 = ML_FEATURE_STORE_V2.name
    if p5 in outputs and chunk.lines:
        checks, outcomes = feature_checks.check_chunk(
            warehouse, outputs[p5], chunk.dates, chunk.lines[0].run_id
        )
        failed = [d for d, (status, _) in outcomes.items() if status == "FAIL"]
        outputs[p5] = outputs[p5].filter(~pl.col("game_date").is_in(failed))
        partitions[p5] = [d for d in chunk.dates if d not in failed]
        lines = [with_check_outcome(line, outcomes) for line in lines]
        outputs[ML_FEATURE_CHECKS.name] = checks
        partitions[ML_FEATURE_CHECKS.name] = partitions[p5]
    schemas = {**OUTPUT_TABLES, ML_FEATURE_CHECKS.name: ML_FEATURE_CHECKS}
    written = 0
    for table, frame in outputs.items():
        if partitions[table]:
            written += warehouse.replace_partitions(
                schemas[table], partitions[table], frame.to_arrow()
            )
    rows = pl.DataFrame([line.as_row() for line in lines], schema=PROCESSOR_RUNS.polars_schema)
    warehouse.append(PROCESSOR_RUNS, rows.to_arrow())
    if listener := progress_listener.get():  # the CLI's bar counts dates written, not built
        for day in chunk.dates:
            day_lines = [line for line in lines if line.analysis_date == day]
            listener(day, sum(line.rows or 0 for line in day_lines), date_status(day_lines))
    return written, lines


def with_check_outcome(line: RunLine, outcomes: dict[date, tuple[str, str]]) -> RunLine:
    """P5's line of a date gains its feature checks' worst status and message (SPEC 12)."""
    if line.processor != ML_FEATURE_STORE_V2.name or line.analysis_date not in outcomes:
        return line
    status, message = outcomes[line.analysis_date]
    if status == "FAIL":
        return replace(line, status="FAIL", rows=None, message=message)
    if status == "WARN":
        worse = "WARN" if line.status == "OK" else line.status
        return replace(line, status=worse, message=f"{line.message}; {message}")
    return line


STATUS_ORDER = ("FAIL", "WARN", "SKIPPED", "NO_GAMES", "OK")


def date_status(lines: Sequence[RunLine]) -> str:
    """The worst status among a date's lines."""
    statuses = {line.status for line in lines}
    return next((s for s in STATUS_ORDER if s in statuses), "OK")
