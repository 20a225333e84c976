"""`phase4 features`: the slate's 60 features with quality, readiness and each feature's tag."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from phase4.cli import app
from quality.feature_contract import ALL_FEATURE_NAMES, FEATURE_NAMES
from quality.schemas import ML_FEATURE_STORE_V2
from tasks.io import ensure_tables
from tasks.readers import build_training_set
from tasks.warehouse import open_warehouse
from tests.builders import replace_partitions
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


def v3_columns(values: list[float | None], tags: list[str]) -> dict[str, object]:
    """One row's SPEC 16.1 value columns and feature_sources_json."""
    return {
        **{f"feature_{i}_value": v for i, v in enumerate(values)},
        "feature_sources_json": json.dumps({str(i): t for i, t in enumerate(tags)}),
    }


# ann: 0-24 phase4 (10 + i), 25-59 calculated (100 + i) but 26, 27, 47, 50 missing.
ANN_TAGS = ["phase4"] * 25 + ["calculated"] * 35
# bob: 0 and 21 defaulted (NULL values; features[] holds 20 + i / 4), 30 missing too.
BOB_TAGS = ["default"] + ["phase3"] * 20 + ["default"] + ["calculated"] * 38
for tags in (ANN_TAGS, BOB_TAGS):
    for i in (26, 27, 47, 50):
        tags[i] = "missing"
BOB_TAGS[30] = "missing"


def values_of(tags: list[str], value: Callable[[int], float]) -> list[float | None]:
    return [None if t in ("default", "missing") else value(i) for i, t in enumerate(tags)]


@pytest.fixture
def slate(warehouse_url: str) -> str:
    """Two players on D: `ann` without a required default, `bob` with 0, 21 and 30 defaulted."""
    ann = v3_columns(values_of(ANN_TAGS, lambda i: 10.0 + i if i < 25 else 100.0 + i), ANN_TAGS)
    bob = v3_columns(values_of(BOB_TAGS, lambda i: 20.0 + i / 4), BOB_TAGS)
    rows = rows_for(ML_FEATURE_STORE_V2, D, ["ann", "bob"]).with_columns(
        features=pl.Series(
            [[10.0 + i for i in range(25)], [20.0 + i / 4 for i in range(25)]],
            dtype=pl.List(pl.Float64),
        ),
        feature_sources=pl.Series([ANN_TAGS[:25], BOB_TAGS[:25]]),
        feature_quality_score=pl.Series([100.0, 73.4]),
        quality_tier=pl.Series(["excellent", "medium"]),
        data_source=pl.Series(["phase4", "phase3"]),
        default_feature_count=pl.Series([4, 7]),
        required_default_count=pl.Series([0, 3]),
        is_quality_ready=pl.Series([True, False]),
        is_training_ready=pl.Series([True, False]),
        opponent_team_abbr=pl.Series(["BOS", "NYK"]),
        feature_version=pl.lit("v2_60features"),
        **{
            name: pl.Series([ann[name], bob[name]], dtype=ML_FEATURE_STORE_V2.polars_schema[name])
            for name in ann
        },
    )
    warehouse = open_warehouse(warehouse_url)
    ensure_tables(warehouse)
    replace_partitions(warehouse, ML_FEATURE_STORE_V2, [D], rows.to_arrow())
    return warehouse_url


def cells(line: str, n: int = 5) -> list[str]:
    return [c.strip() for c in line.split("│")[1 : n + 1]]


def test_one_player_prints_his_60_features_and_tags(slate: str) -> None:
    code, printed = phase4("features", "--date", str(D), "--player", "bob")
    assert code == 0, printed
    assert (
        f"bob on {D} vs NYK: quality 73.4 (medium), data_source phase3, 7 defaulted "
        "(3 required), quality ready False, training ready False, v2_60features" in printed
    )
    lines = [line for line in printed.splitlines() if "│" in line]
    assert len(lines) == 60
    # Defaulted: the value is NULL, the array keeps its default.
    assert cells(lines[0]) == ["0", "points_avg_last_5", "NULL", "default", "20"]
    assert cells(lines[1]) == ["1", "points_avg_last_10", "20.25", "phase3", "20.25"]
    assert cells(lines[21]) == ["21", "pct_free_throw", "NULL", "default", "25.25"]
    assert cells(lines[24]) == ["24", "team_win_pct", "26", "calculated", "26"]
    # 25 to 59: no array value; NULL is 'missing'.
    assert cells(lines[25]) == ["25", "vegas_points_line", "26.25", "calculated", ""]
    assert cells(lines[26]) == ["26", "vegas_opening_line", "NULL", "missing", ""]
    assert cells(lines[30]) == ["30", "games_vs_opponent", "NULL", "missing", ""]
    assert cells(lines[59]) == ["59", "opponent_pace_mismatch", "34.75", "calculated", ""]
    code, printed = phase4("features", "--date", str(D), "--player", "ann")
    assert code == 0, printed
    lines = [line for line in printed.splitlines() if "│" in line]
    assert cells(lines[42]) == ["42", "implied_team_total", "142", "calculated", ""]
    assert cells(lines[47]) == ["47", "teammate_usage_available", "NULL", "missing", ""]


def test_the_slate_as_json_and_parquet(slate: str, tmp_path: Path) -> None:
    code, printed = phase4_json("features", "--date", str(D), "--format", "json")
    assert code == 0, printed
    players = json.loads(printed)
    assert [p["player_lookup"] for p in players] == ["ann", "bob"]
    ann, bob = players
    assert list(ann["features"]) == list(ALL_FEATURE_NAMES)
    assert ann["features"]["pace_score"] == {
        "index": 7,
        "value": 17.0,
        "source": "phase4",
        "array_value": 17.0,
    }
    assert ann["features"]["pts_slope_10g"] == {"index": 34, "value": 134.0, "source": "calculated"}
    assert bob["features"]["points_avg_last_5"] == {
        "index": 0,
        "value": None,
        "source": "default",
        "array_value": 20.0,
    }
    assert bob["features"]["multi_book_line_std"] == {
        "index": 50,
        "value": None,
        "source": "missing",
    }
    assert (bob["quality_tier"], bob["is_quality_ready"], bob["required_default_count"]) == (
        "medium",
        False,
        3,
    )
    assert bob["is_training_ready"] is False and bob["feature_version"] == "v2_60features"
    out = tmp_path / "slate.parquet"
    code, printed = phase4("features", "--date", str(D), "--format", "parquet", "--out", str(out))
    assert code == 0, printed
    wide = pl.read_parquet(out)
    assert wide.height == 2
    bob_row = wide.row(1, named=True)
    assert (bob_row["pct_three"], bob_row["feature_20_value"]) == (25.0, 25.0)
    assert bob_row["source__pct_three"] == "phase3"
    assert (bob_row["points_avg_last_5"], bob_row["feature_0_value"]) == (20.0, None)
    assert (bob_row["feature_30_value"], bob_row["source__games_vs_opponent"]) == (None, "missing")
    assert wide.row(0, named=True)["team_pace"] == 32.0
    assert wide.row(0, named=True)["feature_58_value"] == 158.0
    assert {f"source__{n}" for n in ALL_FEATURE_NAMES} <= set(wide.columns)
    assert {f"feature_{i}_value" for i in range(60)} <= set(wide.columns)


def test_the_slate_table_names_each_players_required_defaults(slate: str) -> None:
    code, printed = phase4("features", "--date", str(D))
    assert code == 0, printed
    bob = next(line for line in printed.splitlines() if "│ bob" in line)
    assert cells(bob, 10) == [
        "bob",
        "NYK",
        "73.4",
        "medium",
        "phase3",
        "7",
        "3",
        "no",
        "no",
        "points_avg_last_5, pct_free_throw, games_vs_opponent",
    ]
    ann = next(line for line in printed.splitlines() if "│ ann" in line)
    assert cells(ann, 10)[5:] == ["4", "0", "yes", "yes", ""]


def test_unknown_players_dates_and_warehouses_exit_2(
    slate: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, printed = phase4("features", "--date", str(D), "--player", "carl")
    assert code == 2
    assert f"'carl' is not on the {D} slate (2 players, e.g. ann, bob)" in printed
    code, printed = phase4("features", "--date", "2025-01-11")  # this warehouse has no Phase 3
    assert code == 2 and "the warehouse holds no Phase 3 season, so 2025-01-11 has" in printed
    assert "`phase4 load-phase3 DIR`" in printed
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
    replace_partitions(warehouse, ML_FEATURE_STORE_V2, [D], rows.to_arrow())
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
        f"error: '[/x]' is not on the {D} slate (2 players, e.g. {MARKUP}, bob); --player takes "
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
    code, printed = phase4("features", "--date", "2024-12-24")  # no game: no slate
    assert (
        code == 2
        and "2024-12-24 has no slate (no upcoming_player_game_context row): pick another date"
        in printed
    )
    code, printed = phase4("features", "--date", "2024-12-20")  # a slate, not built
    assert (
        code == 2 and "ml_feature_store_v2 has no rows for 2024-12-20: run `phase4 run" in printed
    )
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
    features = player["features"]
    assert {n: features[n]["array_value"] for n in FEATURE_NAMES} == {
        n: row[n] for n in FEATURE_NAMES
    }
    assert [f["value"] for f in features.values()] == [row[f"feature_{i}_value"] for i in range(60)]
    assert [f["value"] is None for f in features.values()] == [
        f["source"] in ("default", "missing") for f in features.values()
    ]
    for name in ("feature_quality_score", "required_default_count", "is_training_ready"):
        assert player[name] == row[name]
