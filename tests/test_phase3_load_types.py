"""`phase4 load-phase3` stores what the contract declares, whatever the file's own types, and
refuses what the declared types cannot hold (real CLI processes, a few hundred real rows)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from phase4.loading import load_phase3_frames
from quality.schemas import PHASE3_TABLES
from tasks.warehouse import open_warehouse
from tests.conftest import SEASON_2023, SEASON_2024
from tests.test_bigquery_warehouse import bq, bq_url  # noqa: F401 - fixtures
from tests.test_cli_errors import assert_one_line_exit_2, phase4

PGS = "player_game_summary"
TABLES = PHASE3_TABLES.items()
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
    return {
        t: warehouse.read(s.full_name, ["season_year"]).height for t, s in PHASE3_TABLES.items()
    }


def no_phase3_table(path: Path) -> bool:
    """Nothing was loaded into this DuckDB file (or it was never made)."""
    if not path.exists():
        return True
    warehouse = open_warehouse(f"duckdb://{path}", read_only=True)
    return all(warehouse.table_schema(s.full_name) is None for _, s in TABLES)


def test_a_folder_name_with_glob_characters_is_read_as_written(tmp_path: Path) -> None:
    """`s[1]` is a folder name, not a pattern matching the sibling `s1`."""
    small_season(tmp_path / "s1", rows=30)
    folder = small_season(tmp_path / "s[1]", rows=10)
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    result = phase4("load-phase3", str(folder), warehouse=url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(stored_heights(url).values()) == {10}


def floats_as(dtype: pl.DataType) -> Change:
    """Every Float64 column of a file as `dtype` (integers rounded first), as some exports do."""

    def change(_: str, frame: pl.DataFrame) -> pl.DataFrame:
        floats = [c for c, t in frame.schema.items() if t == pl.Float64]
        return frame.with_columns(pl.col(c).round(0).cast(dtype) for c in floats)

    return change


def load(url: str, folder: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return phase4("load-phase3", str(folder), warehouse=url, cwd=cwd)


def assert_refused(result: subprocess.CompletedProcess[str], problems: int, text: str) -> None:
    """Refused as the load contract says: exit 2, no traceback, the count, the problem named."""
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {problems} contract problem(s), nothing loaded")
    assert text in result.stderr, result.stderr


@pytest.mark.parametrize("dtype", [pl.Int64(), pl.Decimal(10, 1)], ids=["int64", "decimal"])
def test_a_first_load_of_whole_numbers_does_not_round_later_seasons(
    tmp_path: Path, dtype: pl.DataType
) -> None:
    """The first file's Int64/Decimal usage_rate is stored as the declared FLOAT64, so the
    next season's 12.565 stays 12.565 (it was stored as BIGINT, then loaded as 13)."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    first = small_season(tmp_path / "ints", change=floats_as(dtype))
    assert load(url, first, tmp_path).returncode == 0
    later = tmp_path / "later"
    later.mkdir()
    name = f"nba_analytics.{PGS}.parquet"
    expected = pl.read_parquet(SEASON_2024 / name).head(50)
    expected.write_parquet(later / name)
    result = load(url, later, tmp_path)
    assert result.returncode == 0, result.stderr
    warehouse = open_warehouse(url, read_only=True)
    stored = warehouse.table_schema(f"nba_analytics.{PGS}")
    assert stored is not None and stored.field("usage_rate").type == pa.float64()
    rows = warehouse.read(f"nba_analytics.{PGS}", ["game_id", "player_lookup", "usage_rate"])
    stored_rates = rows.filter(pl.col("game_id").is_in(expected["game_id"].implode()))
    assert stored_rates.sort("game_id", "player_lookup")["usage_rate"].to_list() == (
        expected.sort("game_id", "player_lookup")["usage_rate"].to_list()
    )


def with_column(name: str, value: pl.Expr) -> Change:
    return lambda _, frame: frame.with_columns(value.alias(name))


def test_an_extra_column_of_nulls_is_stored_as_string_and_later_files_follow_its_type(
    tmp_path: Path,
) -> None:
    """Decided in docs/cli.md: an extra column keeps its file's type (NULLs only: STRING); a
    later file may fill it, leave it out or add another one; a later file giving it another
    type is refused by name, nothing written."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    nulls = small_season(tmp_path / "nulls", rows=20, change=with_column("notes", pl.lit(None)))
    assert load(url, nulls, tmp_path).returncode == 0
    texts = small_season(tmp_path / "texts", rows=20, change=with_column("notes", pl.lit("hi")))
    result = load(url, texts, tmp_path)
    assert result.returncode == 0, result.stderr
    warehouse = open_warehouse(url, read_only=True)
    assert warehouse.read(f"nba_analytics.{PGS}", ["notes"])["notes"].unique().to_list() == ["hi"]
    numbers = small_season(tmp_path / "numbers", rows=5, change=with_column("notes", pl.lit(3)))
    result = load(url, numbers, tmp_path)
    assert_refused(
        result,
        5,
        f"{numbers / f'nba_analytics.{PGS}.parquet'}: invalid input nba_analytics.{PGS}; "
        "column notes; rule: the warehouse stores this column as STRING and this file INT64: "
        "write the column as STRING, or leave it out of the file",
    )
    assert set(stored_heights(url).values()) == {20}
    other = small_season(tmp_path / "other", rows=10, change=with_column("memo", pl.lit(1.5)))
    result = load(url, other, tmp_path)  # without notes, with a new extra column
    assert result.returncode == 0, result.stderr
    stored = open_warehouse(url, read_only=True).read(f"nba_analytics.{PGS}", ["notes", "memo"])
    assert stored["notes"].null_count() == 10 and stored["memo"].to_list() == [1.5] * 10


def test_a_table_an_earlier_version_typed_from_its_file_is_named(tmp_path: Path) -> None:
    """A warehouse loaded before the cast holds usage_rate as BIGINT: a load says which table to
    drop rather than round the new values into it."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA nba_analytics")
        frame = pl.read_parquet(SEASON_2023 / f"nba_analytics.{PGS}.parquet").head(5)
        old = floats_as(pl.Int64())(PGS, frame).to_arrow()  # noqa: F841 - read by DuckDB below
        con.execute(f"CREATE TABLE nba_analytics.{PGS} AS SELECT * FROM old")
    folder = small_season(tmp_path / "season", rows=5)
    result = load(f"duckdb://{path}", folder, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        "column usage_rate; rule: the warehouse stores this column as INT64 (an earlier load's "
        f"type, not the declared one): drop nba_analytics.{PGS}, then load every season again"
    ) in result.stderr


def test_a_categorical_string_column_loads_as_strings(tmp_path: Path) -> None:
    """pandas' "category" (Polars' Categorical, a dictionary in Parquet) holds strings."""

    def categories(table: str, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("^team_abbr$").cast(pl.Categorical))

    folder = small_season(tmp_path / "cat", rows=20, change=categories)
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    result = load(url, folder, tmp_path)
    assert result.returncode == 0, result.stderr
    stored = open_warehouse(url, read_only=True).read(f"nba_analytics.{PGS}", ["team_abbr"])
    expected = pl.read_parquet(SEASON_2023 / f"nba_analytics.{PGS}.parquet").head(20)
    assert stored.schema["team_abbr"] == pl.String
    assert sorted(stored["team_abbr"].to_list()) == sorted(expected["team_abbr"].to_list())


def test_bigquery_stores_the_declared_types_too(bq_url: str) -> None:  # noqa: F811
    """Before, a decimal FLOAT64 column had no BigQuery type ("no BigQuery type for Arrow
    decimal128(10, 1)"), nor a column of NULLs; now both warehouses store the same types.
    (The emulator's table metadata omits columns added by ALTER TABLE, and it casts an INT64
    into a STRING column, so the refusal of a later INT64 `notes` is tested on DuckDB only.)"""
    frame = pl.read_parquet(SEASON_2023 / f"nba_analytics.{PGS}.parquet").head(20)
    first = floats_as(pl.Decimal(10, 1))(PGS, frame).with_columns(notes=pl.lit(None))
    load_phase3_frames(bq(), {PGS: first})
    stored = bq().table_schema(f"nba_analytics.{PGS}")
    assert stored is not None and stored.field("usage_rate").type == pa.float64()
    rows = bq().read(f"nba_analytics.{PGS}", ["usage_rate", "notes"])
    assert rows.schema == pl.Schema({"usage_rate": pl.Float64, "notes": pl.String})
    assert rows["usage_rate"].sort().to_list() == frame["usage_rate"].round(0).sort().to_list()


def test_an_unsigned_integer_above_int64_is_refused_by_name(tmp_path: Path) -> None:
    """It used to load, then every read failed: `conversion from u64 to i64 failed`."""

    def too_large(table: str, frame: pl.DataFrame) -> pl.DataFrame:
        if table != PGS:
            return frame
        first = pl.int_range(pl.len()) == 0
        points = pl.col("points").cast(pl.UInt64)
        return frame.with_columns(pl.when(first).then(points + 2**63).otherwise(points))

    folder = small_season(tmp_path / "u64", rows=20, change=too_large)
    result = load(f"duckdb://{tmp_path / 'w.duckdb'}", folder, tmp_path)
    assert_refused(  # and a count above a game's limit (SPEC 2's counts, checked as read)
        result,
        2,
        f"{folder / f'nba_analytics.{PGS}.parquet'}: invalid input nba_analytics.{PGS}; "
        "column points; rule: value does not fit INT64 (at most 9223372036854775807); "
        "correct it or write NULL; e.g. player_lookup=",
    )
    assert no_phase3_table(tmp_path / "w.duckdb")


def test_a_game_date_outside_the_dates_phase4_takes_is_refused(tmp_path: Path) -> None:
    """Dates 977 years on (season_year with them) used to load; every range command then
    refused the season it had just loaded."""

    def far_future(_: str, frame: pl.DataFrame) -> pl.DataFrame:
        later = pl.col("game_date").dt.offset_by("977y")
        return frame.with_columns(later, pl.col("season_year") + 977)

    folder = small_season(tmp_path / "future", rows=5, change=far_future)
    result = load(f"duckdb://{tmp_path / 'w.duckdb'}", folder, tmp_path)
    assert_refused(
        result,
        5,
        "column game_date; rule: date outside 1900-01-01 to 2999-12-31, the dates phase4 "
        "takes; correct it; e.g. player_lookup=",
    )
    assert no_phase3_table(tmp_path / "w.duckdb")


def test_an_empty_file_says_it_replaced_nothing_and_an_empty_folder_is_refused(
    tmp_path: Path,
) -> None:
    """Decided in docs/cli.md: some empty files load the others (exit 0, one plain line each);
    a folder of empty files only is refused, nothing written. It used to print `replaced
    player_game_summary season(s) : 0 -> 0 rows` and exit 0."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    some = small_season(tmp_path / "some", rows=5, change=lambda t, f: f.head(0 if t == PGS else 5))
    result = load(url, some, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        f"{PGS}: the file holds no rows; nothing replaced, the table stays as it was"
        in result.stdout
    )
    assert "season(s) :" not in result.stdout
    empty = small_season(tmp_path / "empty", rows=0)
    result = load(f"duckdb://{tmp_path / 'w2.duckdb'}", empty, tmp_path)
    assert_one_line_exit_2(
        result, f"every Phase 3 file in {empty} holds no rows: nothing to load; re-export"
    )
    assert no_phase3_table(tmp_path / "w2.duckdb")
