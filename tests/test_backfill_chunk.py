"""A chunk built in one pass gives each date the lines and rows of that date built alone, and
the CLI's progress listener hears of every date as its partitions are written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from features import registry
from quality.success import evaluate_output, slate_facts
from tasks.backfill import build_chunk, progress_listener, write_chunk_task
from tasks.io import ensure_tables, read_phase3_frames
from tasks.warehouse import open_warehouse

BUILT_AT = datetime(2026, 1, 1, tzinfo=UTC)
# Opening night, the early-season WARN days and Thanksgiving (NO_GAMES) in one chunk.
FIRST, LAST = date(2023, 10, 24), date(2023, 11, 24)
DATES = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


@pytest.mark.usefixtures("season_url")
def test_a_chunks_lines_and_rows_per_date_equal_the_per_date_build() -> None:
    warehouse = open_warehouse()
    chunk = build_chunk(read_phase3_frames(warehouse, FIRST, LAST), DATES, [], "chunk")
    assert chunk.dates == DATES
    assert [line.analysis_date for line in chunk.lines] == sorted(
        line.analysis_date for line in chunk.lines
    )
    got = {(line.analysis_date, line.processor): line for line in chunk.lines}
    assert len(got) == len(DATES) * len(registry.PROCESSORS)
    statuses = set()
    for day in DATES:
        alone = read_phase3_frames(warehouse, day, day)
        facts = slate_facts(day, alone)
        for table, frame in registry.build_outputs(alone, day, BUILT_AT).items():
            entry = registry.PROCESSORS[table]
            status, message = evaluate_output(entry, facts, frame, 0.0)
            line = got[(day, table)]
            assert (line.status, line.rows, line.message) == (status, frame.height, message)
            column = entry.schema.partition_column or ""
            assert chunk.outputs[table].filter(pl.col(column) == day).height == frame.height
            assert line.input_fingerprint is not None
            statuses.add(status)
    assert {"OK", "WARN", "NO_GAMES"} <= statuses  # the chunk covers every kind of date


@pytest.mark.usefixtures("season_url")
def test_progress_is_reported_date_by_date_as_partitions_are_written(
    warehouse_url: str,
) -> None:
    ensure_tables(open_warehouse())
    days = DATES[-5:]
    chunk = build_chunk(read_phase3_frames(open_warehouse(), days[0], days[-1]), days, [], "r")
    heard: list[tuple[date, int, str]] = []
    token = progress_listener.set(lambda day, rows, status: heard.append((day, rows, status)))
    try:
        _, lines = write_chunk_task.fn(warehouse_url, chunk)
    finally:
        progress_listener.reset(token)
    assert [day for day, _, _ in heard] == days
    for day, rows, _ in heard:
        assert rows == sum(line.rows or 0 for line in lines if line.analysis_date == day)
    assert any(rows > 0 for _, rows, _ in heard)
