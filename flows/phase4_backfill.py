"""Backfill: every date of a range, in order, each strictly point in time.

Each Phase 3 table is read once per season and its rows fingerprinted once (SPEC 14); the
season's chunks of dates are built concurrently (two at a time: the machine's cores), each in
one pass of the many-date engine; writes stay in date order, one transaction per table per
chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Failed, State

from features.registry import ProcessorName
from flows.phase4_precompute import select_processors
from nba_calendar import season_of
from quality.success import RunLine
from tasks.backfill import (
    ChunkResult,
    build_chunk_task,
    date_chunks,
    date_status,
    read_chunk_task,
    write_chunk_task,
)
from tasks.freshness import chunk_fingerprints, dates_to_build_task
from tasks.io import ensure_tables
from tasks.report_reads import publish_report_artifact
from tasks.warehouse import open_warehouse, warehouse_url

MAX_CHUNKS_IN_FLIGHT = 2


@dataclass
class BackfillSummary:
    start_date: date
    end_date: date
    lines: list[RunLine] = field(default_factory=list)
    skipped_dates: list[date] = field(default_factory=list)
    rows_written: int = 0

    def per_date(self) -> list[dict[str, object]]:
        by_date: dict[date, list[RunLine]] = {}
        for line in self.lines:
            by_date.setdefault(line.analysis_date, []).append(line)
        rows = [
            {
                "date": d.isoformat(),
                "status": date_status(ls),
                "rows": sum(line.rows or 0 for line in ls),
                "message": "; ".join(
                    f"{line.processor}: {line.message}"
                    for line in ls
                    if line.status in ("WARN", "FAIL")
                ),
            }
            for d, ls in sorted(by_date.items())
        ]
        rows += [
            {"date": d.isoformat(), "status": "SKIPPED", "rows": 0, "message": "up to date"}
            for d in self.skipped_dates
        ]
        return sorted(rows, key=lambda r: str(r["date"]))

    @property
    def failed_dates(self) -> list[date]:
        return sorted({line.analysis_date for line in self.lines if line.status == "FAIL"})

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.per_date():
            counts[str(row["status"])] = counts.get(str(row["status"]), 0) + 1
        return counts


def seasons_of(chunks: list[list[date]]) -> list[list[list[date]]]:
    """The chunks grouped by season (`date_chunks` never lets a chunk straddle two)."""
    seasons: list[list[list[date]]] = []
    for chunk in chunks:
        if seasons and season_of(seasons[-1][0][0]) == season_of(chunk[0]):
            seasons[-1].append(chunk)
        else:
            seasons.append([chunk])
    return seasons


@flow(
    name="phase4-backfill",
    description="Rebuild the Phase 4 tables for every date of a range, point in time.",
    flow_run_name="phase4-backfill-{start_date}-{end_date}",
)
def phase4_backfill(
    start_date: date,
    end_date: date,
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
    selected = select_processors(list(processors) if processors else None)
    url = warehouse_url()
    warehouse = open_warehouse(url)
    # One open warehouse for the backfill's reads and writes, in every task thread (each
    # DuckDB open costs 30-100 ms; see DuckDBWarehouse.held_open).
    with warehouse.held_open():
        return _backfill(url, start_date, end_date, selected, force)


def _backfill(
    url: str, start_date: date, end_date: date, selected: list[str], force: bool
) -> BackfillSummary | State:
    ensure_tables(open_warehouse(url))
    run_id = str(flow_run.id or "local")
    summary = BackfillSummary(start_date, end_date)
    in_flight: list[PrefectFuture] = []

    def drain(keep: int) -> None:
        while len(in_flight) > keep:
            chunk: ChunkResult = in_flight.pop(0).result()
            written, lines = write_chunk_task(url, chunk)
            summary.rows_written += written
            summary.lines.extend(lines)

    for season in seasons_of(date_chunks(start_date, end_date)):
        # Each Phase 3 table read once per season; its rows and their SPEC 14 fingerprints
        # (hashed once) serve the freshness check and the build of every chunk of the season.
        frames = read_chunk_task(url, season[0][0], season[-1][-1])
        season_prints = chunk_fingerprints(frames, [d for dates in season for d in dates])
        for dates in season:
            prints = season_prints.filter(pl.col("analysis_date").is_in(dates))
            todo = dates if force else dates_to_build_task(url, prints, dates, selected)
            summary.skipped_dates += [d for d in dates if d not in todo]
            if not todo:
                continue
            in_flight.append(build_chunk_task.submit(frames, todo, selected, run_id, prints))
            drain(keep=MAX_CHUNKS_IN_FLIGHT - 1)
    drain(keep=0)

    create_table_artifact(
        key="phase4-backfill-report",
        table=summary.per_date(),
        description=f"Phase 4 backfill {start_date}..{end_date}: {summary.counts()}",
    )
    publish_report_artifact(url, start_date, end_date)
    get_run_logger().info("backfill %s..%s: %s", start_date, end_date, summary.counts())
    if summary.failed_dates:
        return Failed(
            message=f"backfill failed on {len(summary.failed_dates)} date(s), first "
            f"{summary.failed_dates[0]}",
            data=summary,
        )
    return summary
