"""The embedded warehouse: filtered reads, atomic partition replacement, idempotent set-up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from quality.schemas import OUTPUT_TABLES, PROCESSOR_RUNS, TEAM_DEFENSE_ZONE_ANALYSIS
from tasks.io import ensure_tables
from tasks.warehouse import Filter, WarehouseError, open_warehouse, warehouse_url
from tasks.warehouse.base import SeasonRows
from tasks.warehouse.duckdb_warehouse import DuckDBWarehouse
from tests.builders import p1_rows, replace_partitions

D1, D2 = date(2025, 1, 14), date(2025, 1, 15)


def read_p1(warehouse: DuckDBWarehouse, day: date) -> pl.DataFrame:
    table = warehouse.read(
        TEAM_DEFENSE_ZONE_ANALYSIS.full_name,
        ["team_abbr", "defensive_rating_last_15"],
        [Filter("analysis_date", "=", day)],
    )
    return table.sort("team_abbr")


def test_default_url_is_the_file_under_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHASE4_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert warehouse_url() == f"duckdb://{tmp_path}/.phase4/warehouse.duckdb"


@pytest.mark.parametrize("url", ["postgres://x", "duckdb://", "bigquery://"])
def test_bad_urls_say_what_is_expected(url: str) -> None:
    with pytest.raises(WarehouseError, match="PHASE4_WAREHOUSE"):
        open_warehouse(url)


def test_ensure_tables_is_idempotent(warehouse: DuckDBWarehouse) -> None:
    assert ensure_tables(warehouse) == []
    schema = warehouse.table_schema(PROCESSOR_RUNS.full_name)
    assert schema is not None and schema.names == PROCESSOR_RUNS.column_names
    for table in OUTPUT_TABLES.values():
        assert warehouse.table_schema(table.full_name) is not None


def test_replace_partition_replaces_only_that_date(warehouse: DuckDBWarehouse) -> None:
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    replace_partitions(warehouse, schema, [D1], p1_rows(D1, ["BOS", "LAL"]))
    replace_partitions(warehouse, schema, [D2], p1_rows(D2, ["BOS", "LAL", "NYK"]))
    replace_partitions(warehouse, schema, [D2], p1_rows(D2, ["LAL"], rating=99.0))
    assert read_p1(warehouse, D1)["team_abbr"].to_list() == ["BOS", "LAL"]
    assert read_p1(warehouse, D2).to_dicts() == [
        {"team_abbr": "LAL", "defensive_rating_last_15": 99.0}
    ]


def row_groups(path: Path, full_name: str) -> tuple[int, int]:
    """(row groups, rows stored, deleted ones included) of a table in the closed file."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        segments = f"pragma_storage_info('{full_name}') WHERE column_id = 0"
        query = f"SELECT count(DISTINCT row_group_id), sum(count) FROM {segments}"
        return con.sql(f"{query} AND segment_type <> 'VALIDITY'").fetchall()[0]


@pytest.mark.parametrize(("chunk_days", "groups"), [(1, 1), (2, 3)])
def test_chunks_of_dates_keep_their_row_groups_and_leave_no_deleted_rows(
    warehouse: DuckDBWarehouse, chunk_days: int, groups: int
) -> None:
    """A backfill's chunks skip DuckDB's vacuum: each stays a row group of its own, freed
    whole when the same dates are rebuilt; a single date's commit (a nightly run) merges."""
    schema, teams = TEAM_DEFENSE_ZONE_ANALYSIS, ["ATL", "BOS", "LAL", "NYK", "MIA", "DEN"]
    days = [date(2025, 1, day) for day in range(1, 7)]
    for _ in range(2):  # built, then rebuilt
        for i in range(0, len(days), chunk_days):
            chunk = days[i : i + chunk_days]
            rows = pa.concat_tables(p1_rows(day, teams) for day in chunk)
            replace_partitions(warehouse, schema, chunk, rows)
    assert row_groups(warehouse.path, schema.full_name) == (groups, 36)
    assert read_p1(warehouse, days[-1])["team_abbr"].to_list() == sorted(teams)
    replace_partitions(warehouse, schema, days[:1], p1_rows(days[0], teams))  # a nightly run
    assert row_groups(warehouse.path, schema.full_name) == (1, 36)  # merges what waited


class FailsAfterDelete(DuckDBWarehouse):
    """Injects a real DuckDB error between the DELETE and the INSERT of the transaction."""

    def _in_transaction(self, con: Any, statements: Sequence[str], *args: Any, **kw: Any) -> None:
        forced = [statements[0], "SELECT error('forced failure mid-write')", *statements[1:]]
        super()._in_transaction(con, forced, *args, **kw)


def test_a_failure_in_the_middle_of_a_write_keeps_the_old_partition(
    warehouse: DuckDBWarehouse,
) -> None:
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    replace_partitions(warehouse, schema, [D2], p1_rows(D2, ["BOS", "LAL"]))
    failing = FailsAfterDelete(warehouse.path)
    with pytest.raises(Exception, match="forced failure mid-write"):
        replace_partitions(failing, schema, [D2], p1_rows(D2, ["NYK", "MIA"]))
    assert read_p1(warehouse, D2)["team_abbr"].to_list() == ["BOS", "LAL"]


class EndsTheTransactionThenFails(DuckDBWarehouse):
    """A transaction ended under the write, as a query interrupted by a signal ends it."""

    def _in_transaction(self, con: Any, statements: Sequence[str], *args: Any, **kw: Any) -> None:
        ended = [*statements, "COMMIT", "SELECT error('interrupted mid-write')"]
        super()._in_transaction(con, ended, *args, **kw)


def test_a_rollback_that_finds_no_transaction_does_not_hide_the_error(
    warehouse: DuckDBWarehouse,
) -> None:
    failing = EndsTheTransactionThenFails(warehouse.path)
    with pytest.raises(Exception, match="interrupted mid-write"):
        replace_partitions(failing, TEAM_DEFENSE_ZONE_ANALYSIS, [D1], p1_rows(D1, ["BOS"]))


def test_rows_that_break_the_declared_schema_are_refused_before_writing(
    warehouse: DuckDBWarehouse,
) -> None:
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    replace_partitions(warehouse, schema, [D2], p1_rows(D2, ["BOS"]))
    broken = p1_rows(D2, ["NYK"])
    index = broken.schema.get_field_index("data_hash")
    broken = broken.set_column(index, "data_hash", pa.array([None], pa.string()))
    with pytest.raises(ValueError, match="data_hash"):
        replace_partitions(warehouse, schema, [D2], broken)
    lacking = p1_rows(D2, ["NYK"]).drop_columns(["data_hash"])
    with pytest.raises(ValueError, match=f"rows for {schema.full_name} do not fit its schema"):
        replace_partitions(warehouse, schema, [D2], lacking)
    assert read_p1(warehouse, D2)["team_abbr"].to_list() == ["BOS"]


def test_reads_push_filters_and_columns_down(warehouse: DuckDBWarehouse) -> None:
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    replace_partitions(warehouse, schema, [D1], p1_rows(D1, ["BOS"]))
    replace_partitions(warehouse, schema, [D2], p1_rows(D2, ["LAL"]))
    table = warehouse.read(schema.full_name, ["team_abbr"], [Filter("analysis_date", "<", D2)])
    assert table.columns == ["team_abbr"]
    assert table["team_abbr"].to_list() == ["BOS"]


def test_reading_a_missing_table_names_it(warehouse: DuckDBWarehouse) -> None:
    assert warehouse.table_schema("nba_analytics.player_game_summary") is None
    with pytest.raises(WarehouseError, match="nba_analytics.player_game_summary"):
        warehouse.read("nba_analytics.player_game_summary")


def test_identifiers_are_validated(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError, match="invalid identifier"):
        warehouse.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr; DROP TABLE x"])


def test_replace_seasons_keeps_other_seasons_adds_columns_and_refuses_strays(
    warehouse_url: str,
) -> None:
    warehouse = open_warehouse()
    table = "nba_analytics.team_offense_game_summary"
    rows = pl.DataFrame(
        {"season_year": [2023, 2023, 2024], "game_id": ["a", "b", "c"], "points_scored": [1, 2, 3]}
    )
    # The first load creates the table.
    assert warehouse.replace_seasons_of([SeasonRows(table, [2023, 2024], rows)]) == 3
    newer = pl.DataFrame({"season_year": [2024, 2024], "game_id": ["d", "e"], "pace": [99.5, 1.0]})
    assert warehouse.replace_seasons_of([SeasonRows(table, [2024], newer)]) == 2
    stored = warehouse.read(table).sort("game_id")
    assert stored.rows() == [
        (2023, "a", 1, None),
        (2023, "b", 2, None),
        (2024, "d", None, 99.5),
        (2024, "e", None, 1.0),
    ]
    with pytest.raises(ValueError, match="season 2024 outside the seasons replaced"):
        warehouse.replace_seasons_of([SeasonRows(table, [2023], newer)])
    with pytest.raises(ValueError, match=f"{table}: no seasons to replace"):
        warehouse.replace_seasons_of([SeasonRows(table, [], newer)])
    with pytest.raises(ValueError, match=f"{table}: rows have no season_year column"):
        warehouse.replace_seasons_of([SeasonRows(table, [2024], newer.drop("season_year"))])
    assert warehouse.read(table).height == 4


def test_held_open_shares_one_connection_across_threads_and_releases_the_file(
    warehouse: DuckDBWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import duckdb

    opened: list[str] = []
    connect = duckdb.connect

    def counting(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        opened.append(str(args[0]))
        return connect(*args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", counting)
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    reader = open_warehouse(f"duckdb://{warehouse.path}", read_only=True)
    with warehouse.held_open(), warehouse.held_open():  # nested: the outer one keeps it
        writers = [
            threading.Thread(
                target=replace_partitions, args=(warehouse, schema, [day], p1_rows(day, ["BOS"]))
            )
            for day in (D1, D2)
        ]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        failing = FailsAfterDelete(warehouse.path)
        with pytest.raises(Exception, match="forced failure mid-write"):
            replace_partitions(failing, schema, [D2], p1_rows(D2, ["NYK"]))
        assert read_p1(warehouse, D2)["team_abbr"].to_list() == ["BOS"]  # rolled back
        assert reader.table_schema(schema.full_name) is not None  # reads through the kept one
        with pytest.raises(WarehouseError, match="read-only"):
            replace_partitions(reader, schema, [D1], p1_rows(D1, ["LAL"]))
    assert opened == [str(warehouse.path)]
    # Released: the file opens with another configuration, as another process would need.
    duckdb.connect(str(warehouse.path), read_only=True).close()
    assert read_p1(warehouse, D1)["team_abbr"].to_list() == ["BOS"]


def test_a_held_block_ended_by_an_error_while_a_thread_reads_raises_that_error(
    warehouse: DuckDBWarehouse,
) -> None:
    """A flow ended by an error (or SIGTERM) while a task thread still reads: DuckDB refuses to
    close the kept connection until the read ends, and that refusal ("connection is busy")
    replaced the flow's own error."""
    import threading
    import time

    import duckdb

    started, sums = threading.Event(), []

    def read() -> None:
        with warehouse._reading() as con:
            started.set()
            sums.extend(con.execute("SELECT sum(i) FROM range(200000000) t(i)").fetchall())

    reader = threading.Thread(target=read)
    with pytest.raises(KeyError, match="the flow's own error"), warehouse.held_open():
        reader.start()
        started.wait()
        time.sleep(0.2)  # the read under way
        raise KeyError("the flow's own error")
    reader.join()
    assert sums == [(19999999900000000,)]
    duckdb.connect(str(warehouse.path), read_only=True).close()  # closed: the file is free
