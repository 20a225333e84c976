"""A chunk built in one pass of the run core gives each date the lines and rows of that date
built alone, and its one commit writes every partition with its line, date by date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from features import core, registry
from features.core import RunInputs
from quality.schemas import ML_FEATURE_STORE_V2, OUTPUT_TABLES, PROCESSOR_RUNS
from tasks.backfill import progress_listener, write_chunk_task
from tasks.io import ensure_tables
from tasks.readers import read_output, read_phase3_frames
from tasks.warehouse import open_warehouse

BUILT_AT = datetime(2026, 1, 1, tzinfo=UTC)
# Opening night, the early-season WARN days and Thanksgiving (NO_GAMES) in one chunk.
FIRST, LAST = date(2023, 10, 24), date(2023, 11, 24)
DATES = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
P5 = ML_FEATURE_STORE_V2.name


@pytest.mark.usefixtures("season_url")
def test_a_chunks_lines_and_rows_per_date_equal_the_per_date_build() -> None:
    warehouse = open_warehouse()
    inputs = RunInputs(read_phase3_frames(warehouse, FIRST, LAST), tuple(DATES), "chunk")
    chunk = core.run(inputs, None, BUILT_AT)
    got = {(line.analysis_date, line.processor): line for b in chunk.values() for line in b.lines}
    assert len(got) == len(DATES) * len(registry.PROCESSORS)
    statuses = set()
    with warehouse.held_open():  # one open file for the dates' reads, as a flow holds it
        for day in DATES:
            alone_inputs = RunInputs(read_phase3_frames(warehouse, day, day), (day,), "alone")
            for table, built in core.run(alone_inputs, None, BUILT_AT).items():
                (alone,) = built.lines
                line = got[(day, table)]
                column = registry.PROCESSORS[table].schema.partition_column or ""
                assert chunk[table].frame.filter(pl.col(column) == day).height == built.frame.height
                assert line.rows == alone.rows and line.input_fingerprint is None
                if table != P5:  # P5's drift reference holds the chunk's earlier dates
                    assert (line.status, line.message) == (alone.status, alone.message)
                statuses.add(alone.status)
    assert {"OK", "WARN", "NO_GAMES"} <= statuses  # the chunk covers every kind of date


@pytest.mark.usefixtures("season_url")
def test_one_commit_writes_every_partition_with_its_line_and_reports_progress(
    warehouse_url: str,
) -> None:
    warehouse = open_warehouse()
    ensure_tables(warehouse)
    days = DATES[-5:]
    inputs = RunInputs(read_phase3_frames(warehouse, days[0], days[-1]), tuple(days), "r")
    built = list(core.run(inputs, None, BUILT_AT).values())
    lines = sorted((line for b in built for line in b.lines), key=lambda line: line.analysis_date)
    heard: list[tuple[date, int, str]] = []
    token = progress_listener.set(lambda day, rows, status: heard.append((day, rows, status)))
    try:
        write_chunk_task.fn(warehouse_url, built, lines)
    finally:
        progress_listener.reset(token)
    assert [day for day, _, _ in heard] == days
    for day, rows, _ in heard:
        assert rows == sum(line.rows or 0 for line in lines if line.analysis_date == day)
    assert any(rows > 0 for _, rows, _ in heard)
    stored = warehouse.read(PROCESSOR_RUNS.full_name, ["processor", "analysis_date", "rows"])
    assert stored.height == len(days) * len(OUTPUT_TABLES)
    for processor, day, rows in stored.iter_rows():
        assert read_output(warehouse, processor, day).height == rows, (processor, day)
