"""`before_commit`: a write whose guard raises leaves the previous partition (DuckDB)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from quality.schemas import TEAM_DEFENSE_ZONE_ANALYSIS
from tasks.io import ensure_tables, read_output
from tasks.processors import DeadlinePassed
from tasks.warehouse import Warehouse, open_warehouse
from tests.builders import p1_rows

D1 = date(2025, 1, 14)


def read_p1(warehouse: Warehouse, day: date) -> pl.DataFrame:
    rows = read_output(warehouse, TEAM_DEFENSE_ZONE_ANALYSIS.name, day)
    return rows.select("team_abbr", "defensive_rating_last_15").sort("team_abbr")


def test_a_guard_that_raises_rolls_the_replace_back(tmp_path: Path) -> None:
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    ensure_tables(warehouse)
    warehouse.replace_partitions(TEAM_DEFENSE_ZONE_ANALYSIS, [D1], p1_rows(D1, ["BOS", "NYK"]))
    calls: list[str] = []

    def refuse() -> None:
        calls.append("refused")
        raise DeadlinePassed("stopped by its time limit (forced by the test)")

    with pytest.raises(DeadlinePassed):
        warehouse.replace_partitions(
            TEAM_DEFENSE_ZONE_ANALYSIS, [D1], p1_rows(D1, ["LAL"], 99.0), before_commit=refuse
        )
    assert calls == ["refused"]
    assert read_p1(warehouse, D1).to_dicts() == [
        {"team_abbr": "BOS", "defensive_rating_last_15": 110.0},
        {"team_abbr": "NYK", "defensive_rating_last_15": 110.0},
    ]
    written = warehouse.replace_partitions(
        TEAM_DEFENSE_ZONE_ANALYSIS,
        [D1],
        p1_rows(D1, ["LAL"], 99.0),
        before_commit=lambda: calls.append("allowed"),
    )
    assert (written, calls) == (1, ["refused", "allowed"])
    assert read_p1(warehouse, D1).to_dicts() == [
        {"team_abbr": "LAL", "defensive_rating_last_15": 99.0}
    ]
