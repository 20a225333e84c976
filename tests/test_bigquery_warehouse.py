"""The BigQuery warehouse through the real google-cloud-bigquery client and a local emulator.

bqemulator runs as a child process from its own virtualenv (tests/support/bq_emulator.py).
Each test gets its own project id, so tests share one emulator without seeing each other.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from google.cloud import bigquery

from phase4.loading import load_phase3_directory
from quality.schemas import DATASETS, OUTPUT_TABLES, TEAM_DEFENSE_ZONE_ANALYSIS
from tasks.io import ensure_tables, read_output
from tasks.warehouse import Filter, WarehouseError, open_warehouse
from tasks.warehouse.bigquery_warehouse import BigQueryWarehouse
from tests.conftest import SEASON_2023
from tests.support.bq_emulator import EmulatorProcess, start_emulator
from tests.test_duckdb_warehouse import p1_rows
from tests.test_flow_realdata import PHASE4_SOURCE_STAMPS, phase4

D = date(2024, 1, 15)
_projects = itertools.count()


@pytest.fixture(scope="session")
def bq_emulator() -> Iterator[EmulatorProcess]:
    with start_emulator(project="local") as emulator:
        yield emulator


@pytest.fixture
def bq_url(bq_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    """PHASE4_WAREHOUSE and PHASE4_BIGQUERY_ENDPOINT as a user sets them, a fresh project."""
    url = f"bigquery://phase4test{next(_projects)}"
    monkeypatch.setenv("PHASE4_WAREHOUSE", url)
    monkeypatch.setenv("PHASE4_BIGQUERY_ENDPOINT", bq_emulator.endpoint)
    return url


def bq() -> BigQueryWarehouse:
    warehouse = open_warehouse()
    assert isinstance(warehouse, BigQueryWarehouse)
    return warehouse


def test_warehouse_init_creates_datasets_and_tables_and_is_idempotent(bq_url: str) -> None:
    code, printed = phase4("warehouse", "init")
    assert code == 0, printed
    assert "created dataset nba_precompute" in printed
    assert "created nba_predictions.ml_feature_store_v2" in printed
    client = bq().client
    for dataset in ("nba_precompute", "nba_predictions"):
        client.get_dataset(f"{bq().project}.{dataset}")
    table = client.get_table(f"{bq().project}.nba_precompute.player_daily_cache")
    assert table.time_partitioning.type_ == bigquery.TimePartitioningType.DAY
    assert table.time_partitioning.field == "cache_date"
    assert table.clustering_fields == ["player_lookup"]
    assert table.description
    modes = {f.name: f.mode for f in table.schema}
    assert modes["player_lookup"] == "REQUIRED"
    features = client.get_table(f"{bq().project}.nba_predictions.ml_feature_store_v2")
    assert {f.name: f.mode for f in features.schema}["features"] == "REPEATED"
    code, printed = phase4("warehouse", "init")
    assert code == 0 and "already up to date" in printed


@pytest.fixture
def loaded_bq(bq_url: str) -> str:
    assert phase4("warehouse", "init")[0] == 0
    load_phase3_directory(bq(), SEASON_2023)
    return bq_url


def test_phase3_loads_round_trip(loaded_bq: str) -> None:
    rows = bq().read(
        "nba_analytics.player_game_summary",
        ["player_lookup", "game_date", "points"],
        [Filter("game_date", "=", date(2024, 1, 14))],
    )
    expected = pl.read_parquet(SEASON_2023 / "nba_analytics.player_game_summary.parquet").filter(
        pl.col("game_date") == date(2024, 1, 14)
    )
    assert rows.height == expected.height
    assert rows.to_arrow().schema.field("game_date").type == pa.date32()
    assert sum(rows["points"].to_list()) == expected["points"].sum()


def test_replace_partition_replaces_and_drops_its_staging_table(bq_url: str) -> None:
    warehouse = bq()
    ensure_tables(warehouse)
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    warehouse.replace_partition(schema, D, p1_rows(D, ["BOS", "LAL", "NYK"]))
    warehouse.replace_partition(schema, date(2024, 1, 16), p1_rows(date(2024, 1, 16), ["MIA"]))
    warehouse.replace_partition(schema, D, p1_rows(D, ["LAL"], rating=99.0))
    table = warehouse.read(
        schema.full_name,
        ["team_abbr", "defensive_rating_last_15"],
        [Filter("analysis_date", "=", D)],
    )
    assert table.to_dicts() == [{"team_abbr": "LAL", "defensive_rating_last_15": 99.0}]
    other = warehouse.read(
        schema.full_name, ["team_abbr"], [Filter("analysis_date", "=", date(2024, 1, 16))]
    )
    assert other["team_abbr"].to_list() == ["MIA"]
    leftovers = [
        t.table_id
        for t in warehouse.client.list_tables(f"{warehouse.project}.nba_precompute")
        if t.table_id.startswith("_staging_")
    ]
    assert leftovers == []


class BrokenStaging(BigQueryWarehouse):
    """Loads a staging table without one column: the INSERT fails after the DELETE ran."""

    def _load(self, rows, table_id, disposition, fields):  # type: ignore[no-untyped-def]
        if "_staging_" in table_id:
            rows = rows.drop_columns(["defensive_rating_last_15"])
            fields = [f for f in fields if f.name != "defensive_rating_last_15"]
        super()._load(rows, table_id, disposition, fields)


def test_a_failure_inside_the_transaction_leaves_the_old_partition(bq_url: str) -> None:
    warehouse = bq()
    ensure_tables(warehouse)
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    warehouse.replace_partition(schema, D, p1_rows(D, ["BOS", "LAL"]))
    broken = BrokenStaging(warehouse.client, warehouse.project, read_api="rest")
    with pytest.raises(WarehouseError, match="replacing partitions of"):
        broken.replace_partition(schema, D, p1_rows(D, ["NYK"]))
    table = warehouse.read(schema.full_name, ["team_abbr"], [Filter("analysis_date", "=", D)])
    assert sorted(table["team_abbr"].to_list()) == ["BOS", "LAL"]
    leftovers = [
        t.table_id
        for t in warehouse.client.list_tables(f"{warehouse.project}.nba_precompute")
        if t.table_id.startswith("_staging_")
    ]
    assert leftovers == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_full_run_matches_the_duckdb_run_row_for_row(
    loaded_bq: str, loaded_season: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    season_url = f"duckdb://{tmp_path / 'same_input.duckdb'}"
    shutil.copy(loaded_season, tmp_path / "same_input.duckdb")
    code, printed = phase4("run", "--date", str(D))
    assert code == 0, printed
    from_bigquery = {t: read_output(bq(), t, D) for t in OUTPUT_TABLES}
    monkeypatch.setenv("PHASE4_WAREHOUSE", season_url)
    code, printed = phase4("run", "--date", str(D))
    assert code == 0, printed
    for table, schema in OUTPUT_TABLES.items():
        from_duckdb = read_output(open_warehouse(), table, D)
        stamp = "created_at" if "created_at" in schema.column_names else "processed_at"
        moving = [stamp, *PHASE4_SOURCE_STAMPS.get(table, ())]
        key = list(schema.key)
        left = from_bigquery[table].drop(moving).sort(key)
        right = from_duckdb.drop(moving).sort(key)
        assert left.height == right.height > 0, table
        assert left.equals(right), table
    # A re-run replaces the partitions instead of adding to them.
    monkeypatch.setenv("PHASE4_WAREHOUSE", loaded_bq)
    assert phase4("run", "--date", str(D))[0] == 0
    for table in OUTPUT_TABLES:
        assert read_output(bq(), table, D).height == from_bigquery[table].height


def test_a_missing_dataset_says_to_run_warehouse_init(bq_url: str) -> None:
    with pytest.raises(WarehouseError, match="phase4 warehouse init"):
        bq().replace_partition(TEAM_DEFENSE_ZONE_ANALYSIS, D, p1_rows(D, ["BOS"]))


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_before_loading_phase3_names_the_missing_table(bq_url: str) -> None:
    assert phase4("warehouse", "init")[0] == 0
    code, printed = phase4("run", "--date", str(D))
    assert code == 1
    flat = " ".join(printed.split())
    assert "nba_analytics.team_defense_game_summary" in flat and "table is missing" in flat


def test_bad_warehouse_urls_say_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASE4_WAREHOUSE", "bigquery://")
    code, printed = phase4("warehouse", "init")
    assert code == 2
    assert "no project after bigquery://" in " ".join(printed.split())


def test_every_dataset_is_declared() -> None:
    assert set(DATASETS) == {"nba_analytics", "nba_precompute", "nba_predictions"}


def test_a_missing_table_is_named_with_its_project(bq_url: str) -> None:
    with pytest.raises(WarehouseError, match="does not exist in project phase4test"):
        bq().read(
            "nba_precompute.team_defense_zone_analysis",
            ["team_abbr"],
            [Filter("analysis_date", "=", D)],
        )


def test_a_permission_error_names_the_roles_needed() -> None:
    # The emulator grants everything, so the 403 BigQuery sends is built here, not received.
    from google.api_core.exceptions import Forbidden

    from tasks.warehouse.bigquery_warehouse import _explain

    message = str(_explain(Forbidden("Access Denied: Table p:nba_precompute.x"), "p", "writing x"))
    assert "permission denied writing x in project p" in message
    assert "roles/bigquery.jobUser" in message and "roles/bigquery.dataEditor" in message
