"""Backfill: every date of a range, in order, each strictly point in time.

Each chunk of dates goes through the run core as the nightly's date does (each processor once
for all its dates), then commits in one transaction. The next chunk is built while a chunk
commits (two in flight: the machine's cores); commits stay in date order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import groupby
from typing import Any

import polars as pl
from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run
from prefect.states import Failed, State
from prefect.utilities.annotations import quote

from features import registry
from features.core import Built, Context
from features.registry import Processor, ProcessorName
from flows import Day, flow
from nba_calendar import season_of
from quality.contracts import InputContractError
from quality.schemas import ML_FEATURE_STORE_V2
from quality.success import BackfillSummary, RunFailed, RunLine
from tasks.backfill import dates_to_build_task, read_chunk_task, write_chunk_task
from tasks.freshness import date_chunks
from tasks.io import ensure_tables
from tasks.processors import STOP, prepare_run_task, submit_processors
from tasks.report import run_lines
from tasks.report_reads import publish_report_artifact
from tasks.warehouse import open_warehouse, warehouse_url


def seasons_of(chunks: list[list[date]]) -> list[list[list[date]]]:
    """The chunks grouped by season (`date_chunks` never lets a chunk straddle two)."""
    return [list(season) for _, season in groupby(chunks, key=lambda c: season_of(c[0]))]


@flow(
    name="phase4-backfill",
    description="Rebuild the Phase 4 tables for every date of a range, point in time.",
    flow_run_name="phase4-backfill-{start_date}-{end_date}",
)
def phase4_backfill(
    start_date: Day,
    end_date: Day,
    processors: list[ProcessorName] | None = None,
    force: bool = False,
) -> BackfillSummary | State:
    """Backfill Phase 4 for a date range.

    Args:
        start_date: First slate date to build.
        end_date: Last slate date to build (inclusive).
        processors: Output tables to build. Empty: all five.
        force: Rebuild every date. Otherwise only dates that are missing, failed or stale
            for a selected processor (SPEC 14) are built.
    """
    if end_date < start_date:  # a deployment's parameters: the CLI refuses them itself
        return Failed(message=f"end_date {end_date} is before start_date {start_date}")
    selected = registry.select(list(processors) if processors else None)
    url = warehouse_url()
    summary = BackfillSummary(start_date, end_date)
    # One open warehouse for every task thread's reads and writes (DuckDBWarehouse.held_open)
    # and the report's reads of what was written (each chunk checkpointed as it committed).
    with open_warehouse(url).held_open():
        try:
            prints = _backfill(url, summary, selected, force)
        except InputContractError as exc:  # bad Phase 3 input: a message, not a traceback
            return Failed(message=str(exc), data=exc)
        create_table_artifact(
            key="phase4-backfill-report",
            table=summary.per_date(),
            description=f"Phase 4 backfill {start_date}..{end_date}: {summary.counts()}",
        )
        if not STOP.is_set():
            publish_report_artifact(url, start_date, end_date, pl.concat(prints))
    get_run_logger().info("backfill %s..%s: %s", start_date, end_date, summary.counts())
    if summary.failed_dates:
        failed = summary.failed_dates
        message = f"backfill failed on {len(failed)} date(s), first {failed[0]}"
        return Failed(message=message, data=RunFailed(message, summary))
    return summary


def _backfill(
    url: str, summary: BackfillSummary, selected: list[Processor], force: bool
) -> list[pl.DataFrame]:
    """Every chunk built and committed, in order; the fingerprints of every season."""
    ensure_tables(open_warehouse(url))
    run_id = str(flow_run.id or "local")
    tables = [p.table for p in selected]
    prints: list[pl.DataFrame] = []
    in_flight: Chunk | None = None  # built while the previous chunk commits
    for season in seasons_of(date_chunks(summary.start_date, summary.end_date)):
        # Each Phase 3 table read once per season; its rows and their SPEC 14 fingerprints
        # (hashed once) serve the choice of dates, the build of every chunk and the report.
        read = sorted(registry.phase3_tables(selected))
        frames, hashed = read_chunk_task(url, season[0][0], season[-1][-1], read)
        prints.append(hashed)
        every = [d for dates in season for d in dates]
        todo = set(every if force else dates_to_build_task(url, prints[-1], every, tables))
        summary.skipped_dates += [d for d in every if d not in todo]
        for dates in season:
            chosen = [d for d in dates if d in todo]
            if not chosen or STOP.is_set():  # Ctrl-C: nothing more is built or written
                continue
            chunk_prints = prints[-1].filter(pl.col("analysis_date").is_in(chosen))
            ctx = prepare_run_task.submit(url, frames, chosen, tables, run_id, chunk_prints)
            earlier = in_flight.runs.get(ML_FEATURE_STORE_V2.name) if in_flight else None
            runs = submit_processors(ctx, selected, {}, None, earlier)
            if in_flight:
                summary.lines += in_flight.commit(url, run_id)
            in_flight = Chunk(chosen, ctx, runs)
    if in_flight:
        summary.lines += in_flight.commit(url, run_id)
    return prints


@dataclass
class Chunk:
    """A chunk's processor tasks, submitted; `commit` waits for them and writes it all."""

    dates: list[date]
    ctx: PrefectFuture[Context]
    runs: dict[str, PrefectFuture[Built]]

    def commit(self, url: str, run_id: str) -> list[RunLine]:
        wait(list(self.runs.values()))
        lines = run_lines(run_id, self.dates, self.runs, {t: [self.ctx] for t in self.runs})
        built = [f.result() for f in self.runs.values() if f.state.is_completed()]
        # Quoted: Prefect would walk every line and frame for futures (~0.1 s of CPU a chunk).
        quoted: dict[str, Any] = {"built": quote(built), "lines": quote(lines)}
        # A task thread: a SIGTERM, raised in the main one, cannot cut it from its report.
        write_chunk_task.submit(url, **quoted).result()
        return lines
