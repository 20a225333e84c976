"""`phase4 status --date D --json` as a real process: plain state words a script can compare
(the grid's, never the table's marks) and D's feature checks (docs/cli.md, "status --json")."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from quality.schemas import ML_FEATURE_CHECKS, PROCESSOR_RUNS, TableSchema
from tasks.warehouse.duckdb_warehouse import DuckDBWarehouse
from tests.test_cli_errors import phase4

D = date(2024, 1, 15)
AT = datetime(2024, 1, 16, 5, 0, tzinfo=UTC)


def _append(warehouse: DuckDBWarehouse, schema: TableSchema, rows: list[dict[str, object]]) -> None:
    """Rows given by some columns, the others NULL, in the table's declared types."""
    frame = pl.DataFrame(rows, schema={c: schema.polars_schema[c] for c in rows[0]})
    warehouse.append(
        schema,
        frame.with_columns(
            pl.lit(None, dtype).alias(name)
            for name, dtype in schema.polars_schema.items()
            if name not in frame.columns
        ).select(schema.column_names),
    )


def test_date_json_holds_state_words_and_the_feature_checks(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    run = {"run_id": "r1", "analysis_date": D, "started_at": AT, "finished_at": AT}
    _append(
        warehouse,
        PROCESSOR_RUNS,
        [
            {**run, "processor": "team_defense_zone_analysis", "status": "FAIL", "message": "x"},
            {**run, "processor": "player_shot_zone_analysis", "status": "WARN", "message": "y"},
        ],
    )
    check = {"game_date": D, "rows": 200, "status": "OK", "run_id": "r1"}
    _append(
        warehouse,
        ML_FEATURE_CHECKS,
        [
            {**check, "feature_index": 1, "feature_name": "b", "default_rows": 3, "mean": 2.5},
            {**check, "feature_index": 0, "feature_name": "a", "default_rows": 0, "mean": None},
        ],
    )
    url = f"duckdb://{tmp_path / 'w.duckdb'}"

    result = phase4("status", "--date", str(D), "--json", warehouse=url, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["date"] == "2024-01-15"
    processors = printed["processors"]
    assert {p: v["state"] for p, v in processors.items()} == {
        "team_defense_zone_analysis": "FAIL",
        "player_shot_zone_analysis": "WARN",
        "player_composite_factors": "MISSING",  # never run: the grid's word
        "player_daily_cache": "MISSING",
        "ml_feature_store_v2": "MISSING",
    }
    assert processors["team_defense_zone_analysis"] == {
        "state": "FAIL",
        "rows": 0,
        "last_processed_at": None,
        "message": "x",
        "bytes_billed": None,
    }
    assert printed["feature_checks"] == [
        {
            "feature_index": 0,
            "feature_name": "a",
            "rows": 200,
            "default_rows": 0,
            "mean": None,
            "ref_mean": None,
            "status": "OK",
            "message": None,
        },
        {
            "feature_index": 1,
            "feature_name": "b",
            "rows": 200,
            "default_rows": 3,
            "mean": 2.5,
            "ref_mean": None,
            "status": "OK",
            "message": None,
        },
    ]
    table = phase4("status", "--date", str(D), warehouse=url, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "❌ FAIL" in table.stdout and "— never run" in table.stdout  # the table keeps marks
