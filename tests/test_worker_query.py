"""The newest prediction worker's batch query (SPEC 16.4), verbatim, on a date built in BigQuery.

The query template is read at test time from ../shared/clients (never copied here) and rendered
as the clients' README says. The date is built by `phase4 run` on the BigQuery emulator and,
from the same Phase 3 season, on DuckDB; the worker's rows must equal the DuckDB build's.
A plain google-cloud-bigquery client runs the queries, as the worker would.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from google.cloud import bigquery

from phase4.loading import load_phase3_directory
from quality.schemas import ML_FEATURE_STORE_V2, PREDICTIONS_DATASET
from tasks.readers import read_output
from tasks.warehouse import open_warehouse
from tests.conftest import SEASON_2024
from tests.support.bq_emulator import EmulatorProcess
from tests.support.season_2024 import phase4_cli

CLIENTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "clients"
TEMPLATE = CLIENTS / "phase5_worker_features_batch.sql.txt"
D = date(2024, 12, 13)  # 2024-25: the season with points lines, totals and spreads
PROJECT = "workerquery"
VALUE_COLUMNS = [f"feature_{i}_value" for i in range(60)]
# The worker's own version lookup (load_features_batch_for_date), 'v2_39features' with no row.
VERSION_QUERY = (
    "SELECT DISTINCT feature_version FROM `{project}.{dataset}.ml_feature_store_v2` "
    "WHERE game_date = @game_date LIMIT 1"
)
NO_ROW_VERSION = "v2_39features"
# SPEC 15's query of the older worker, unchanged since the 25-feature era.
SPEC15_QUERY = (
    "SELECT player_lookup, features, feature_names, feature_quality_score, data_source, "
    "days_rest, is_home, expected_games_count, actual_games_count, completeness_percentage, "
    "missing_games_count, is_production_ready, data_quality_issues, backfill_bootstrap_mode, "
    "processing_decision_reason FROM nba_predictions.ml_feature_store_v2 WHERE player_lookup IN "
    "UNNEST(@player_lookups) AND game_date = @game_date AND feature_version = @feature_version"
)
# SPEC 16.1's types as the BigQuery API reports them (legacy names); REPEATED for arrays.
EXPECTED_TYPES: dict[str, tuple[str, str]] = {
    "player_lookup": ("STRING", "NULLABLE"),
    **{c: ("FLOAT", "NULLABLE") for c in VALUE_COLUMNS},
    "feature_quality_score": ("FLOAT", "NULLABLE"),
    "data_source": ("STRING", "NULLABLE"),
    "days_rest": ("INTEGER", "NULLABLE"),
    "is_home": ("BOOLEAN", "NULLABLE"),
    "expected_games_count": ("INTEGER", "NULLABLE"),
    "actual_games_count": ("INTEGER", "NULLABLE"),
    "completeness_percentage": ("FLOAT", "NULLABLE"),
    "missing_games_count": ("INTEGER", "NULLABLE"),
    "is_production_ready": ("BOOLEAN", "NULLABLE"),
    "data_quality_issues": ("STRING", "REPEATED"),
    "backfill_bootstrap_mode": ("BOOLEAN", "NULLABLE"),
    "processing_decision_reason": ("STRING", "NULLABLE"),
    "matchup_data_status": ("STRING", "NULLABLE"),
    "feature_sources_json": ("STRING", "NULLABLE"),
    "is_quality_ready": ("BOOLEAN", "NULLABLE"),
    "quality_tier": ("STRING", "NULLABLE"),
    "quality_alert_level": ("STRING", "NULLABLE"),
    "matchup_quality_pct": ("FLOAT", "NULLABLE"),
    "player_history_quality_pct": ("FLOAT", "NULLABLE"),
    "vegas_quality_pct": ("FLOAT", "NULLABLE"),
    "game_context_quality_pct": ("FLOAT", "NULLABLE"),
    "default_feature_count": ("INTEGER", "NULLABLE"),
    "required_default_count": ("INTEGER", "NULLABLE"),
    "default_feature_indices": ("INTEGER", "REPEATED"),
    "is_training_ready": ("BOOLEAN", "NULLABLE"),
}
PYTHON_TYPES = {"STRING": str, "FLOAT": float, "INTEGER": int, "BOOLEAN": bool}


def rendered_template() -> str:
    """The template exactly as the worker renders it (clients/README.md)."""
    template = TEMPLATE.read_text(encoding="utf-8")
    return template.format(
        feature_value_columns=", ".join(f"feature_{i}_value" for i in range(60)),
        project=PROJECT,
        predictions_dataset=PREDICTIONS_DATASET,
    )


def run(client: bigquery.Client, sql: str, *params: Any) -> list[dict[str, Any]]:
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=list(params)))
    return [dict(row.items()) for row in job.result()]


def detected_version(client: bigquery.Client, day: date) -> str:
    rows = run(
        client,
        VERSION_QUERY.format(project=PROJECT, dataset=PREDICTIONS_DATASET),
        bigquery.ScalarQueryParameter("game_date", "DATE", day),
    )
    return str(rows[0]["feature_version"]) if rows else NO_ROW_VERSION


def slate_players(client: bigquery.Client, day: date) -> list[str]:
    sql = (
        f"SELECT DISTINCT player_lookup FROM `{PROJECT}.{PREDICTIONS_DATASET}."
        "ml_feature_store_v2` WHERE game_date = @game_date"
    )
    rows = run(client, sql, bigquery.ScalarQueryParameter("game_date", "DATE", day))
    return sorted(str(r["player_lookup"]) for r in rows)


def worker_batch(
    client: bigquery.Client, sql: str, players: list[str], day: date, version: str
) -> bigquery.table.RowIterator:
    job = client.query(
        sql,
        job_config=bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ArrayQueryParameter("player_lookups", "STRING", players),
                bigquery.ScalarQueryParameter("game_date", "DATE", day),
                bigquery.ScalarQueryParameter("feature_version", "STRING", version),
            ]
        ),
    )
    return job.result()


@pytest.fixture(scope="module")
def emulator(bq_emulator: EmulatorProcess) -> EmulatorProcess:
    return bq_emulator


@pytest.fixture(scope="module")
def built(
    emulator: EmulatorProcess,
    prefect_harness: None,
    loaded_season_2024: Path,
    tmp_path_factory: Any,
) -> Iterator[tuple[bigquery.Client, pl.DataFrame]]:
    """D built by `phase4 run` on the emulator and on DuckDB from the same 2024-25 season;
    yields a plain client on the emulator's project and DuckDB's P5 rows of D."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHASE4_BIGQUERY_ENDPOINT", emulator.endpoint)
        url = f"bigquery://{PROJECT}"
        assert phase4_cli(url, "warehouse", "init")[0] == 0
        load_phase3_directory(open_warehouse(url), SEASON_2024)
        code, printed = phase4_cli(url, "run", "--date", str(D))
        assert code == 0, printed
        duck = tmp_path_factory.mktemp("duck") / "same_input.duckdb"
        shutil.copy(loaded_season_2024, duck)
        code, printed = phase4_cli(f"duckdb://{duck}", "run", "--date", str(D))
        assert code == 0, printed
        expected = read_output(open_warehouse(f"duckdb://{duck}"), ML_FEATURE_STORE_V2.name, D)
        yield emulator.bigquery_client(PROJECT), expected


def test_the_template_is_read_from_the_clients_folder_and_renders_60_columns() -> None:
    sql = rendered_template()
    assert sql.startswith("\n") and "{" not in sql and "}" not in sql
    assert f"FROM `{PROJECT}.nba_predictions.ml_feature_store_v2`" in sql
    assert "feature_0_value, feature_1_value" in sql and "feature_59_value," in sql
    assert "feature_60_value" not in sql
    assert sql.count("@player_lookups") == sql.count("@game_date") == 1


def test_the_newest_worker_reads_one_typed_row_per_slate_player(
    built: tuple[bigquery.Client, pl.DataFrame],
) -> None:
    client, expected = built
    assert detected_version(client, D) == "v2_60features"
    players = slate_players(client, D)
    assert players == sorted(expected["player_lookup"]) and len(players) > 100
    result = worker_batch(
        client, rendered_template(), [*players, "nobody_at_all"], D, detected_version(client, D)
    )
    # Types as declared; REQUIRED or NULLABLE is the table's business, REPEATED is the type's.
    schema = {f.name: (f.field_type, f.mode == "REPEATED") for f in result.schema}
    assert list(schema) == list(EXPECTED_TYPES)
    assert schema == {c: (t, m == "REPEATED") for c, (t, m) in EXPECTED_TYPES.items()}
    rows = {row["player_lookup"]: dict(row.items()) for row in result}
    assert sorted(rows) == players  # one row per slate player, none for the unknown one

    # Every value the worker reads has its SPEC 16.1 Python type (or is NULL where allowed).
    for row in rows.values():
        assert isinstance(row["feature_quality_score"], float)  # the worker calls float()
        for name, (bq_type, mode) in EXPECTED_TYPES.items():
            value = row[name]
            if mode == "REPEATED":
                assert isinstance(value, list)
                assert all(isinstance(v, PYTHON_TYPES[bq_type]) for v in value)
            elif value is not None:
                assert type(value) is PYTHON_TYPES[bq_type], (name, value)
        tags = json.loads(row["feature_sources_json"])
        assert list(tags) == [str(i) for i in range(60)]
        assert row["feature_sources_json"] == json.dumps(tags)
        nulls = [i for i in range(60) if row[f"feature_{i}_value"] is None]
        assert nulls == [i for i in range(60) if tags[str(i)] in ("default", "missing")]
        assert row["default_feature_indices"] == nulls
        assert row["default_feature_count"] == len(nulls)

    # Values equal the DuckDB build of the same date, column for column, row for row.
    by_player = {r["player_lookup"]: r for r in expected.iter_rows(named=True)}
    for player, row in rows.items():
        assert row == {c: by_player[player][c] for c in EXPECTED_TYPES}, player
    # Spot values: features read straight from the Phase 3 context of D, and two derived ones.
    context = pl.read_parquet(SEASON_2024 / "nba_analytics.upcoming_player_game_context.parquet")
    with_line = context.filter(
        pl.col("game_date") == D, pl.col("current_points_line").is_not_null()
    )
    assert with_line.height > 50
    for phase3 in with_line.head(20).iter_rows(named=True):
        row = rows[phase3["player_lookup"]]
        assert row["feature_25_value"] == phase3["current_points_line"]
        assert row["feature_28_value"] == 1.0
        assert row["feature_37_value"] == phase3["star_teammates_out"]
        assert row["feature_39_value"] == phase3["days_rest"]
        assert row["feature_40_value"] == phase3["minutes_in_last_7_days"]
        if row["feature_2_value"] is not None:
            assert row["feature_53_value"] == row["feature_25_value"] - row["feature_2_value"]
    # The real seasons carry no game_total or game_spread: 38, 41 and 42 are NULL ('missing').
    for index in (38, 41, 42):
        assert {r[f"feature_{index}_value"] for r in rows.values()} == {None}
        assert {json.loads(r["feature_sources_json"])[str(index)] for r in rows.values()} == {
            "missing"
        }
    assert {r["feature_26_value"] for r in rows.values()} == {None}  # not in Phase 3
    assert any(r["required_default_count"] > 0 for r in rows.values())
    assert any(r["is_training_ready"] for r in rows.values())


def test_a_date_without_rows_finds_the_workers_fallback_version_and_no_rows(
    built: tuple[bigquery.Client, pl.DataFrame],
) -> None:
    client, _ = built
    empty = date(2024, 1, 16)
    assert detected_version(client, empty) == NO_ROW_VERSION
    result = worker_batch(client, rendered_template(), ["anyone"], empty, NO_ROW_VERSION)
    assert list(result) == []


def test_the_spec_15_query_still_runs_with_the_new_version(
    built: tuple[bigquery.Client, pl.DataFrame],
) -> None:
    client, expected = built
    players = slate_players(client, D)
    rows = {
        row["player_lookup"]: dict(row.items())
        for row in worker_batch(client, SPEC15_QUERY, players, D, "v2_60features")
    }
    assert sorted(rows) == players
    by_player = {r["player_lookup"]: r for r in expected.iter_rows(named=True)}
    for player, row in rows.items():
        assert row == {c: by_player[player][c] for c in row}, player
        assert len(row["features"]) == len(row["feature_names"]) == 25
    # The version the older worker asked for finds nothing now: every row is v2_60features.
    assert list(worker_batch(client, SPEC15_QUERY, players, D, "v1_baseline_25")) == []
