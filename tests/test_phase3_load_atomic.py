"""`phase4 load-phase3` replaces the seasons of all its tables in one all-or-nothing step, on
DuckDB (one transaction) and on BigQuery (staging tables, then one transaction script);
column names are quoted (a column named `order` loads) or refused by the input contract."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import polars as pl
import pytest

from phase4.loading import Phase3LoadError, load_phase3_directory
from quality.schemas import PHASE3_TABLES
from tasks.warehouse import WarehouseError, open_warehouse
from tasks.warehouse.base import SeasonRows
from tests.conftest import SEASON_2023
from tests.test_bigquery_warehouse import bq, bq_url  # noqa: F401 - fixtures
from tests.test_cli_errors import assert_one_line_exit_2, phase4

LAST = "upcoming_team_game_context"  # the last file of a folder, in load order
PGS = "player_game_summary"


def season_with(tmp_path: Path, name: str, **columns: object) -> Path:
    """A copy of the real 2023-24 folder whose LAST file has extra constant columns."""
    folder = tmp_path / name
    shutil.copytree(SEASON_2023, folder)
    path = folder / f"nba_analytics.{LAST}.parquet"
    frame = pl.read_parquet(path)
    frame.with_columns(**{c: pl.lit(v) for c, v in columns.items()}).write_parquet(path)
    return folder


def counts(url: str) -> dict[str, int]:
    warehouse = open_warehouse(url, read_only=True)
    return {
        t: warehouse.read(s.full_name, ["season_year"]).height for t, s in PHASE3_TABLES.items()
    }


def test_a_column_named_order_loads_and_a_failing_last_table_leaves_all_five_as_they_were(
    tmp_path: Path,
) -> None:
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    first = season_with(tmp_path, "first", order=1)
    result = phase4("load-phase3", str(first), warehouse=url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stored = open_warehouse(url, read_only=True).read(f"nba_analytics.{LAST}", ["order"])
    assert stored.get_column("order").to_list() == [1] * 2460
    # The second load's player_game_summary keeps 100 rows, its last file's `order` (an integer,
    # as stored, so the contract lets it through) is too large for the stored INTEGER column:
    # the warehouse refuses it and no table moves.
    second = season_with(tmp_path, "second", order=2**40)
    pgs = second / f"nba_analytics.{PGS}.parquet"
    pl.read_parquet(pgs).head(100).write_parquet(pgs)
    before = counts(url)
    result = phase4("load-phase3", str(second), warehouse=url, cwd=tmp_path)
    line = assert_one_line_exit_2(result, "every table left as it was", "order")
    assert "nba_analytics.player_game_summary" in line
    assert (
        counts(url)
        == before
        == {
            PGS: 25143,
            "team_defense_game_summary": 2460,
            "team_offense_game_summary": 2460,
            "upcoming_player_game_context": 25143,
            LAST: 2460,
        }
    )


@pytest.mark.parametrize(
    ("column", "rule"),
    [
        ("my col", "column name must be letters, digits and underscores"),
        ("3pt", "column name must be letters, digits and underscores"),
        ("GAME_ID", "column name repeats another one ignoring case"),
    ],
)
def test_column_names_no_warehouse_can_hold_are_refused_by_the_contract(
    tmp_path: Path, column: str, rule: str
) -> None:
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    folder = season_with(tmp_path, "bad", **{column: 1})
    result = phase4("load-phase3", str(folder), warehouse=url, cwd=tmp_path)
    assert result.returncode == 2
    assert f"column {column!r}; rule: {rule}" in result.stderr
    if (tmp_path / "w.duckdb").exists():
        warehouse = open_warehouse(url, read_only=True)
        assert all(warehouse.table_schema(s.full_name) is None for s in PHASE3_TABLES.values())


def test_bigquery_loads_all_tables_or_none_and_quotes_keywords(bq_url: str) -> None:  # noqa: F811
    warehouse = bq()
    frames = {t: pl.read_parquet(SEASON_2023 / f"nba_analytics.{t}.parquet") for t in PHASE3_TABLES}
    frames[LAST] = frames[LAST].with_columns(order=pl.lit(1))
    loads = [SeasonRows(PHASE3_TABLES[t].full_name, [2023], f) for t, f in frames.items()]
    assert warehouse.replace_seasons_of(loads) == 25143 * 2 + 2460 * 3
    table = warehouse.client.get_table(f"{warehouse.project}.nba_analytics.{PGS}")
    # Created from its declaration (quality/schemas.py): its description and partitioning.
    assert table.description == PHASE3_TABLES[PGS].description
    assert table.time_partitioning.field == "game_date"
    stored = warehouse.read(f"nba_analytics.{LAST}", ["order"])
    assert stored.get_column("order").unique().to_list() == [1]
    # A failing last table: the first four keep their rows.
    broken = [
        SeasonRows(load.full_name, [2023], frames[PGS].head(100))
        if load.full_name.endswith(PGS)
        else load
        for load in loads[:-1]
    ] + [SeasonRows(loads[-1].full_name, [2023], frames[LAST].with_columns(order=pl.lit("x")))]
    with pytest.raises(WarehouseError):
        warehouse.replace_seasons_of(broken)
    assert warehouse.read(f"nba_analytics.{PGS}", ["season_year"]).height == 25143
    leftovers = [
        t.table_id
        for t in warehouse.client.list_tables(f"{warehouse.project}.nba_analytics")
        if t.table_id.startswith("_staging")
    ]
    assert leftovers == []


def test_bigquery_two_first_loads_of_different_seasons_both_stay(bq_url: str) -> None:  # noqa: F811
    """Before, the first load into a missing table was a WRITE_TRUNCATE: one season was lost."""
    frame = pl.read_parquet(SEASON_2023 / "nba_analytics.team_offense_game_summary.parquet")
    table = PHASE3_TABLES["team_offense_game_summary"].full_name
    seasons = {2023: frame, 2024: frame.with_columns(season_year=pl.lit(2024, pl.Int64))}
    errors: dict[int, BaseException] = {}

    def load(season: int) -> None:
        try:
            bq().replace_seasons_of([SeasonRows(table, [season], seasons[season])])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors[season] = exc

    threads = [threading.Thread(target=load, args=(s,)) for s in seasons]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for season, exc in errors.items():  # an aborted concurrent transaction: run it again
        assert "aborted" in str(exc).lower(), exc
        bq().replace_seasons_of([SeasonRows(table, [season], seasons[season])])
    stored = bq().read(table, ["season_year"]).group_by("season_year").len().sort("season_year")
    assert stored.rows() == [(2023, 2460), (2024, 2460)]


def test_a_load_with_a_bad_file_writes_nothing_on_bigquery(bq_url: str, tmp_path: Path) -> None:  # noqa: F811
    folder = season_with(tmp_path, "bad", **{"my col": 1})
    with pytest.raises(Phase3LoadError):
        load_phase3_directory(bq(), folder)
    assert bq().table_schema(f"nba_analytics.{PGS}") is None
