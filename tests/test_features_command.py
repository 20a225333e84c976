"""`phase4 features`: the slate's 25 named features with quality, tier and per-feature source."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features.ml_feature_store_v2 import FEATURE_NAMES
from phase4.cli import app
from quality.schemas import ML_FEATURE_STORE_V2
from tasks.io import ensure_tables
from tasks.readers import build_training_set
from tasks.warehouse import open_warehouse
from tests.support.season_2024 import copy_of_week
from tests.test_cli_errors import PHASE4
from tests.test_export import D, rows_for


def phase4(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def phase4_json(*args: str) -> tuple[int, str]:
    """Standard output alone: what a script piping `--format json` reads."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


@pytest.fixture
def slate(warehouse_url: str) -> str:
    """Two players on D: `ann` all Phase 4, `bob` with features 0 and 21 defaulted."""
    rows = rows_for(ML_FEATURE_STORE_V2, D, ["ann", "bob"]).with_columns(
        features=pl.Series(
            [[10.0 + i for i in range(25)], [20.0 + i / 4 for i in range(25)]],
            dtype=pl.List(pl.Float64),
        ),
        feature_sources=pl.Series(
            [["phase4"] * 25, ["default"] + ["phase3"] * 20 + ["default"] + ["calculated"] * 3]
        ),
        feature_quality_score=pl.Series([100.0, 73.4]),
        quality_tier=pl.Series(["excellent", "medium"]),
        data_source=pl.Series(["phase4", "phase3"]),
        default_feature_count=pl.Series([0, 2]),
        is_quality_ready=pl.Series([True, False]),
        opponent_team_abbr=pl.Series(["BOS", "NYK"]),
    )
    warehouse = open_warehouse(warehouse_url)
    ensure_tables(warehouse)
    warehouse.replace_partition(ML_FEATURE_STORE_V2, D, rows.to_arrow())
    return warehouse_url


def test_one_player_prints_his_25_features_and_sources(slate: str) -> None:
    code, printed = phase4("features", "--date", str(D), "--player", "bob")
    assert code == 0, printed
    assert (
        f"bob on {D} vs NYK: quality 73.4 (medium), data_source phase3, 2 default, "
        "quality ready False" in printed
    )
    lines = [line for line in printed.splitlines() if "│" in line]
    assert len(lines) == 25
    assert [c.strip() for c in lines[0].split("│")[1:5]] == [
        "0",
        "points_avg_last_5",
        "20",
        "default",
    ]
    cells = [c.strip() for c in lines[21].split("│")[1:5]]
    assert cells == ["21", "pct_free_throw", "25.25", "default"]
    assert [c.strip() for c in lines[24].split("│")[1:5]] == [
        "24",
        "team_win_pct",
        "26",
        "calculated",
    ]


def test_the_slate_as_json_and_parquet(slate: str, tmp_path: Path) -> None:
    code, printed = phase4_json("features", "--date", str(D), "--format", "json")
    assert code == 0, printed
    players = json.loads(printed)
    assert [p["player_lookup"] for p in players] == ["ann", "bob"]
    ann = players[0]
    assert list(ann["features"]) == list(FEATURE_NAMES)
    assert ann["features"]["pace_score"] == {"value": 17.0, "source": "phase4"}
    assert players[1]["features"]["points_avg_last_5"] == {"value": 20.0, "source": "default"}
    assert (players[1]["quality_tier"], players[1]["is_quality_ready"]) == ("medium", False)
    out = tmp_path / "slate.parquet"
    code, printed = phase4("features", "--date", str(D), "--format", "parquet", "--out", str(out))
    assert code == 0, printed
    wide = pl.read_parquet(out)
    assert wide.height == 2
    assert wide.row(1, named=True)["pct_three"] == 25.0
    assert wide.row(1, named=True)["source__pct_three"] == "phase3"
    assert wide.row(0, named=True)["team_pace"] == 32.0
    assert {f"source__{n}" for n in FEATURE_NAMES} <= set(wide.columns)


def test_the_slate_table_names_each_players_defaulted_features(slate: str) -> None:
    code, printed = phase4("features", "--date", str(D))
    assert code == 0, printed
    bob = next(line for line in printed.splitlines() if "│ bob" in line)
    assert [c.strip() for c in bob.split("│")[1:9]] == [
        "bob",
        "NYK",
        "73.4",
        "medium",
        "phase3",
        "2",
        "no",
        "points_avg_last_5, pct_free_throw",
    ]


def test_unknown_players_dates_and_warehouses_exit_2(
    slate: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, printed = phase4("features", "--date", str(D), "--player", "carl")
    assert code == 2
    assert f"carl is not on the {D} slate (2 players, e.g. ann, bob)" in printed
    code, printed = phase4("features", "--date", "2025-01-11")
    assert code == 2 and "ml_feature_store_v2 has no rows for 2025-01-11" in printed
    code, printed = phase4("features", "--date", str(D), "--format", "parquet")
    assert code == 2 and "--format parquet needs --out FILE" in printed
    missing = tmp_path / "none" / "warehouse.duckdb"
    monkeypatch.setenv("PHASE4_WAREHOUSE", f"duckdb://{missing}")
    code, printed = phase4("features", "--date", str(D))
    assert code == 2 and f"no warehouse at {missing}" in printed
    assert not missing.parent.exists()


MARKUP = "[red]ann[/red]:thumbs_up:[/x]"


def test_names_from_data_and_users_print_literally(warehouse_url: str, tmp_path: Path) -> None:
    """Rich markup and emoji codes in a player_lookup or in --player are text, not markup."""
    rows = rows_for(ML_FEATURE_STORE_V2, D, [MARKUP, "bob"]).with_columns(
        quality_tier=pl.lit("[bold]medium")
    )
    warehouse = open_warehouse(warehouse_url)
    ensure_tables(warehouse)
    warehouse.replace_partition(ML_FEATURE_STORE_V2, D, rows.to_arrow())
    env = {**os.environ, "PHASE4_WAREHOUSE": warehouse_url}
    table = subprocess.run(
        [PHASE4, "-q", "features", "--date", str(D)], env=env, capture_output=True, text=True
    )
    assert table.returncode == 0, table.stderr
    assert MARKUP in table.stdout and "[bold]medium" in table.stdout
    one = subprocess.run(
        [PHASE4, "-q", "features", "--date", str(D), "--player", MARKUP],
        env=env,
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith(f"{MARKUP} on {D} vs ")
    missing = subprocess.run(
        [PHASE4, "-q", "features", "--date", str(D), "--player", "[/x]"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        f"error: [/x] is not on the {D} slate (2 players, e.g. {MARKUP}, bob); --player takes "
        f"a player_lookup (warehouse {warehouse_url})"
    ]


def test_parquet_out_is_replaced_only_with_force(slate: str, tmp_path: Path) -> None:
    out = tmp_path / "slate.parquet"
    out.write_text("older")
    code, printed = phase4("features", "--date", str(D), "--format", "parquet", "--out", str(out))
    assert code == 2 and "exists: pass --force to replace it" in printed
    assert out.read_text() == "older"
    code, printed = phase4(
        "features", "--date", str(D), "--format", "parquet", "--out", str(out), "--force"
    )
    assert code == 0, printed
    assert pl.read_parquet(out).height == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_real_slate_player_reads_as_in_the_training_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = copy_of_week(tmp_path / "week.duckdb")
    monkeypatch.setenv("PHASE4_WAREHOUSE", url)
    code, printed = phase4_json(
        "features", "--date", "2024-12-13", "--player", "trendonwatford", "--format", "json"
    )
    assert code == 0, printed
    (player,) = json.loads(printed)
    row = (
        build_training_set(date(2024, 12, 13), date(2024, 12, 13), all_rows=True)
        .filter(pl.col("player_lookup") == "trendonwatford")
        .row(0, named=True)
    )
    assert {n: f["value"] for n, f in player["features"].items()} == {
        n: row[n] for n in FEATURE_NAMES
    }
    assert player["feature_quality_score"] == row["feature_quality_score"]
