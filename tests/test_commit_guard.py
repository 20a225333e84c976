"""`before_commit`: a write whose guard raises leaves the previous partition (DuckDB); a
commit that lands after the deadline is recorded as late, never as FAIL over written rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from prefect import flow

from features import core
from features.core import RunInputs
from features.registry import PROCESSORS
from quality.schemas import PROCESSOR_RUNS, TEAM_DEFENSE_ZONE_ANALYSIS
from quality.success import RunLine
from tasks.io import ensure_tables
from tasks.processors import DeadlinePassed
from tasks.readers import read_output, read_phase3_frames
from tasks.warehouse import Filter, Warehouse, open_warehouse, warehouse_url
from tests.builders import p1_rows, replace_partitions

D1 = date(2025, 1, 14)
REAL_D = date(2024, 1, 15)  # a day of the real 2023-24 season


def read_p1(warehouse: Warehouse, day: date) -> pl.DataFrame:
    rows = read_output(warehouse, TEAM_DEFENSE_ZONE_ANALYSIS.name, day)
    return rows.select("team_abbr", "defensive_rating_last_15").sort("team_abbr")


def test_a_guard_that_raises_rolls_the_replace_back(tmp_path: Path) -> None:
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    ensure_tables(warehouse)
    replace_partitions(warehouse, TEAM_DEFENSE_ZONE_ANALYSIS, [D1], p1_rows(D1, ["BOS", "NYK"]))
    calls: list[str] = []

    def refuse() -> None:
        calls.append("refused")
        raise DeadlinePassed("stopped by its time limit (forced by the test)")

    with pytest.raises(DeadlinePassed):
        replace_partitions(
            warehouse,
            TEAM_DEFENSE_ZONE_ANALYSIS,
            [D1],
            p1_rows(D1, ["LAL"], 99.0),
            before_commit=refuse,
        )
    assert calls == ["refused"]
    assert read_p1(warehouse, D1).to_dicts() == [
        {"team_abbr": "BOS", "defensive_rating_last_15": 110.0},
        {"team_abbr": "NYK", "defensive_rating_last_15": 110.0},
    ]
    written = replace_partitions(
        warehouse,
        TEAM_DEFENSE_ZONE_ANALYSIS,
        [D1],
        p1_rows(D1, ["LAL"], 99.0),
        before_commit=lambda: calls.append("allowed"),
    )
    assert (written, calls) == (1, ["refused", "allowed"])
    assert read_p1(warehouse, D1).to_dicts() == [
        {"team_abbr": "LAL", "defensive_rating_last_15": 99.0}
    ]


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_a_commit_that_lands_after_the_deadline_is_a_warn_never_a_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard lets the commit through before the deadline, then the commit takes 4 s (a
    BigQuery script still running): the task waits for it and the latest line says so."""
    import tasks.processors as processors

    table = TEAM_DEFENSE_ZONE_ANALYSIS.name
    monkeypatch.setitem(PROCESSORS, table, replace(PROCESSORS[table], time_limit_minutes=1 / 60))
    real_commit = processors.commit_built

    def slow_commit(
        warehouse: Warehouse,
        built: Sequence[core.Built],
        lines: Sequence[RunLine],
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        def guard() -> None:
            assert before_commit is not None
            before_commit()
            time.sleep(4)  # past the 2 s deadline, inside the transaction

        real_commit(warehouse, built, lines, guard)

    monkeypatch.setattr(processors, "commit_built", slow_commit)
    warehouse = open_warehouse()
    ensure_tables(warehouse)
    ctx = core.prepare(RunInputs(read_phase3_frames(warehouse, REAL_D, REAL_D), (REAL_D,), "late"))

    @flow
    def one_processor() -> core.Built:
        return processors.build_processor(table, {"ctx": ctx}, {}, {}, warehouse_url())

    (line,) = one_processor().lines
    assert line.status == "WARN" and "after its deadline" in line.message, line
    assert read_output(warehouse, table, REAL_D).height == line.rows == 30
    runs = warehouse.read(PROCESSOR_RUNS.full_name, None, [Filter("analysis_date", "=", REAL_D)])
    assert runs.sort("finished_at")["status"].to_list() == ["OK", "WARN"]
