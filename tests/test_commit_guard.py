"""`before_commit`: a write whose guard raises leaves the previous partition (DuckDB)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from quality.schemas import TEAM_DEFENSE_ZONE_ANALYSIS
from tasks.io import ensure_tables, read_output
from tasks.processors import DeadlinePassed
from tasks.warehouse import Warehouse, open_warehouse
from tests.builders import frame

D1 = date(2025, 1, 14)


def p1_rows(day: date, teams: list[str], rating: float = 110.0) -> pa.Table:
    rows = [
        {
            "team_abbr": team,
            "analysis_date": day,
            "season_year": 2024,
            "games_in_sample": 15,
            "league_paint_pct": 0.58,
            "league_mid_range_pct": 0.41,
            "league_three_pt_pct": 0.355,
            "defensive_rating_last_15": rating,
            "data_quality_tier": "high",
            "early_season_flag": False,
            "data_hash": "0" * 16,
            "processed_at": datetime(2025, 1, 1, tzinfo=UTC),
        }
        for team in teams
    ]
    return frame(TEAM_DEFENSE_ZONE_ANALYSIS, rows).to_arrow()


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
