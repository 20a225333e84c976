"""`phase4 load-phase3` stores what the contract declares, whatever the file's own types, and
refuses what the declared types cannot hold (real CLI processes, a few hundred real rows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from quality.schemas import PHASE3_TABLES
from tasks.warehouse import open_warehouse
from tests.conftest import SEASON_2023
from tests.test_cli_errors import phase4

PGS = "player_game_summary"
Change = Callable[[str, pl.DataFrame], pl.DataFrame]


def small_season(folder: Path, rows: int = 200, change: Change | None = None) -> Path:
    """The first `rows` rows of every real 2023-24 file, each changed by `change(table, frame)`."""
    folder.mkdir(parents=True)
    for table in PHASE3_TABLES:
        name = f"nba_analytics.{table}.parquet"
        frame = pl.read_parquet(SEASON_2023 / name).head(rows)
        (change(table, frame) if change else frame).write_parquet(folder / name)
    return folder


def stored_heights(url: str) -> dict[str, int]:
    warehouse = open_warehouse(url, read_only=True)
    return {t: warehouse.read(s.full_name, ["season_year"]).height for t, s in PHASE3_TABLES.items()}


def test_a_folder_name_with_glob_characters_is_read_as_written(tmp_path: Path) -> None:
    """`s[1]` is a folder name, not a pattern matching the sibling `s1`."""
    small_season(tmp_path / "s1", rows=30)
    folder = small_season(tmp_path / "s[1]", rows=10)
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    result = phase4("load-phase3", str(folder), warehouse=url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(stored_heights(url).values()) == {10}
