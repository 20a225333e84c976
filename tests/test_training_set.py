"""Training sets (SPEC 13): hand-computed labels, then the real 2024-25 season end to end.

The real-data tests compare the training set with an independent join written in DuckDB SQL
over the Hive export and the season's own Parquet files, on DuckDB and on the BigQuery emulator.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.ml_feature_store_v2 import FEATURE_NAMES
from features.training_set import (
    LABEL_COLUMNS,
    FeatureNamesError,
    training_set,
)
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
)
from tasks.readers import (
    build_training_set,
    default_feature_count,
    is_quality_ready,
    open_reader,
    read_p5,
)
from tasks.warehouse import Filter, open_warehouse
from tests.support.season_2024 import D1, D2, SEASON_2024, backfill, copy_of_week, phase4_cli

D = date(2025, 1, 10)
NAMES = [f"f{i}" for i in range(25)]


def p5_rows(players: list[str], **overrides: list[object]) -> pl.DataFrame:
    """Stored P5 rows for D with the columns a training set reads; feature i of row r is r+i/100."""
    n = len(players)
    columns: dict[str, list[object]] = {
        "player_lookup": list(players),
        "universal_player_id": [f"{p}_1" for p in players],
        "game_date": [D] * n,
        "game_id": ["G1"] * n,
        "opponent_team_abbr": ["BOS"] * n,
        "is_home": [True] * n,
        "features": [[r + i / 100 for i in range(25)] for r in range(n)],
        "feature_names": [NAMES] * n,
        "feature_sources": [["phase4"] * 25] * n,
        "feature_quality_score": [100.0] * n,
        "quality_tier": ["excellent"] * n,
        "data_source": ["phase4"] * n,
        "default_feature_count": [0] * n,
        "is_quality_ready": [True] * n,
        "feature_version": ["v1_baseline_25"] * n,
    }
    columns.update(overrides)
    return pl.DataFrame(columns, schema_overrides={"features": pl.List(pl.Float64)})


def box_scores(rows: list[tuple[str, bool, bool | None, float, int]]) -> pl.DataFrame:
    """(player, is_active, is_dnp, minutes_played, points) on game G1 dated D."""
    return pl.DataFrame(
        {
            "player_lookup": [r[0] for r in rows],
            "game_id": ["G1"] * len(rows),
            "game_date": [D] * len(rows),
            "is_active": [r[1] for r in rows],
            "is_dnp": [r[2] for r in rows],
            "minutes_played": [r[3] for r in rows],
            "points": [r[4] for r in rows],
        },
        schema_overrides={"is_dnp": pl.Boolean, "points": pl.Int64},
    )


def lines(rows: list[tuple[str, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "player_lookup": [r[0] for r in rows],
            "game_date": [D] * len(rows),
            "current_points_line": [r[1] for r in rows],
        },
        schema_overrides={"current_points_line": pl.Float64},
    )


def test_labels_of_played_dnp_inactive_zero_minutes_and_absent_players() -> None:
    players = ["played", "dnp", "inactive", "zero_min", "absent"]
    box = box_scores(
        [
            ("played", True, False, 30.5, 22),
            ("dnp", True, True, 0.0, 0),
            ("inactive", False, None, 0.0, 0),
            ("zero_min", True, None, 0.0, 0),
        ]
    )
    got = training_set(p5_rows(players), box, None)
    assert got["player_lookup"].to_list() == sorted(players)
    by_player = {r["player_lookup"]: r for r in got.iter_rows(named=True)}
    assert by_player["played"]["played"] is True
    assert by_player["played"]["actual_points"] == 22
    assert by_player["played"]["actual_minutes"] == 30.5
    for player in ("dnp", "inactive", "zero_min", "absent"):
        row = by_player[player]
        assert (row["played"], row["actual_points"], row["actual_minutes"]) == (False, None, None)
    assert got.schema["actual_points"] == pl.Int64
    assert got.schema["actual_minutes"] == pl.Float64
    # No line data at all: the line columns exist and are NULL.
    assert got["points_line"].null_count() == got["over_line"].null_count() == 5


def test_over_line_is_null_on_a_push_and_when_either_side_is_missing() -> None:
    players = ["over", "push", "under", "no_line", "dnp_with_line"]
    box = box_scores(
        [
            ("over", True, False, 30.0, 22),
            ("push", True, False, 30.0, 20),
            ("under", True, False, 30.0, 18),
            ("no_line", True, False, 30.0, 25),
            ("dnp_with_line", True, True, 0.0, 0),
        ]
    )
    line = lines(
        [("over", 21.5), ("push", 20.0), ("under", 19.5), ("no_line", None), ("dnp_with_line", 9.5)]
    )
    got = training_set(p5_rows(players), box, line)
    assert dict(zip(got["player_lookup"], got["over_line"], strict=True)) == {
        "dnp_with_line": None,
        "no_line": None,
        "over": True,
        "push": None,
        "under": False,
    }
    assert dict(zip(got["player_lookup"], got["points_line"], strict=True))["push"] == 20.0


def test_features_become_named_float_columns_and_only_ready_rows_by_default() -> None:
    p5 = p5_rows(["a", "b", "c"], is_quality_ready=[True, False, True])
    box = box_scores([("a", True, False, 20.0, 10), ("b", True, False, 20.0, 12)])
    ready = training_set(p5, box, None)
    assert ready["player_lookup"].to_list() == ["a", "c"]
    every = training_set(p5, box, None, all_rows=True)
    assert every["player_lookup"].to_list() == ["a", "b", "c"]
    assert every.columns[6:31] == NAMES
    assert all(every.schema[n] == pl.Float64 for n in NAMES)
    # Row b is the second P5 row: feature i is 1 + i / 100.
    assert every.row(1, named=True)["f7"] == 1.07
    assert every.columns[-5:] == list(LABEL_COLUMNS)


def test_rows_of_two_feature_lists_are_refused() -> None:
    other = [*NAMES[:-1], "renamed"]
    p5 = p5_rows(["a", "b"], feature_names=[NAMES, other], feature_version=["v1", "v2"])
    with pytest.raises(FeatureNamesError, match="feature_version v1, v2"):
        training_set(p5, box_scores([]), None, all_rows=True)


# ---------------------------------------------------------------------------------------------
# The real 2024-25 season, backfilled 2024-12-09..2024-12-15 (tests/support/season_2024.py).
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def week_url(prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = copy_of_week(tmp_path / "week.duckdb")
    monkeypatch.setenv("PHASE4_WAREHOUSE", url)
    return url


def independent_join(export: Path, start: date, end: date) -> pl.DataFrame:
    """SPEC 13 written again in SQL over the Hive export and the season's Parquet files."""
    p5 = export / ML_FEATURE_STORE_V2.full_name / "*" / "*.parquet"
    box = SEASON_2024 / f"{PLAYER_GAME_SUMMARY.full_name}.parquet"
    ctx = SEASON_2024 / f"{UPCOMING_PLAYER_GAME_CONTEXT.full_name}.parquet"
    features = ", ".join(f"p5.features[{i + 1}] AS {n}" for i, n in enumerate(FEATURE_NAMES))
    sql = f"""
        WITH labelled AS (
            SELECT p5.*, box.points, box.minutes_played, ctx.current_points_line,
                   coalesce(box.is_active AND NOT coalesce(box.is_dnp, false)
                            AND box.minutes_played > 0, false) AS played
            FROM read_parquet('{p5}', hive_partitioning = true) AS p5
            LEFT JOIN read_parquet('{box}') AS box
              ON box.player_lookup = p5.player_lookup AND box.game_id = p5.game_id
            LEFT JOIN read_parquet('{ctx}') AS ctx
              ON ctx.player_lookup = p5.player_lookup AND ctx.game_date = p5.game_date
            WHERE p5.game_date BETWEEN DATE '{start}' AND DATE '{end}'
        )
        SELECT player_lookup, universal_player_id, game_date, game_id, opponent_team_abbr,
               is_home, {features}, feature_quality_score, quality_tier, data_source,
               default_feature_count, is_quality_ready, feature_version, played,
               CASE WHEN played THEN points END AS actual_points,
               CASE WHEN played THEN minutes_played END AS actual_minutes,
               current_points_line AS points_line,
               CASE WHEN played AND points > current_points_line THEN true
                    WHEN played AND points < current_points_line THEN false END AS over_line
        FROM labelled AS p5
        ORDER BY game_date, player_lookup
    """
    relation = duckdb.sql(sql)
    assert relation is not None
    return relation.pl()


def test_training_set_equals_an_independent_join_of_the_export(
    week_url: str, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    code, printed = phase4_cli(
        week_url, "export", "--start", str(D1), "--end", str(D2), "--out", str(export)
    )
    assert code == 0, printed
    expected = independent_join(export, D1, D2)
    every = build_training_set(D1, D2, all_rows=True)
    assert every.height == 524
    assert every["game_date"].n_unique() == 7
    assert_frame_equal(every, expected)
    ready = build_training_set(D1, D2)
    assert_frame_equal(ready, expected.filter(pl.col("is_quality_ready")))
    assert 0 < ready.height < every.height
    # The season's DNP row: trendonwatford, inactive and DNP on 2024-12-13.
    dnp = every.filter(
        pl.col("player_lookup") == "trendonwatford", pl.col("game_date") == date(2024, 12, 13)
    )
    assert dnp.select("played", "actual_points", "actual_minutes", "over_line").row(0) == (
        False,
        None,
        None,
        None,
    )
    pushes = every.filter(pl.col("actual_points").cast(pl.Float64) == pl.col("points_line"))
    assert pushes.height > 0 and pushes["over_line"].null_count() == pushes.height
    assert every["played"].sum() == every.height - 1
    assert every["points_line"].is_not_null().mean() > 0.4  # type: ignore[operator]


def test_cli_writes_parquet_and_csv_and_refuses_bad_ranges(week_url: str, tmp_path: Path) -> None:
    out = tmp_path / "ts.parquet"
    code, printed = phase4_cli(
        week_url, "training-set", "--start", str(D1), "--end", str(D2), "--out", str(out)
    )
    assert code == 0, printed
    written = pl.read_parquet(out)
    assert_frame_equal(written, build_training_set(D1, D2))
    assert set(FEATURE_NAMES) <= set(written.columns)
    assert f"{written.height} rows, 7 dates" in printed
    csv = tmp_path / "ts.csv"
    code, printed = phase4_cli(
        week_url,
        *("training-set", "--start", str(D1), "--end", str(D2)),
        *("--out", str(csv), "--format", "csv", "--all-rows"),
    )
    assert code == 0, printed
    assert pl.read_csv(csv).height == build_training_set(D1, D2, all_rows=True).height
    code, printed = phase4_cli(
        week_url, "training-set", "--start", str(D2), "--end", str(D1), "--out", str(out)
    )
    assert code == 2 and "--end 2024-12-09 is before --start 2024-12-15" in printed
    code, printed = phase4_cli(
        week_url,
        *("training-set", "--start", "2025-01-01", "--end", "2025-01-02"),
        *("--out", str(tmp_path / "empty.parquet")),  # ts.parquet exists: refused without --force
    )
    assert code == 2 and "run `phase4 backfill --start 2025-01-01" in printed
    assert not (tmp_path / "empty.parquet").exists()


def test_later_games_do_not_change_the_training_set(week_url: str) -> None:
    before = build_training_set(D1, D2, all_rows=True)
    warehouse = open_warehouse(week_url)
    for schema, change in (
        (PLAYER_GAME_SUMMARY, {"points": pl.col("points") * 2 + 7, "minutes_played": 47.0}),
        (UPCOMING_PLAYER_GAME_CONTEXT, {"current_points_line": pl.lit(99.5)}),
    ):
        table = warehouse.read(schema.full_name)
        later = pl.col("game_date") > D2
        changed = table.with_columns(
            **{
                name: pl.when(later).then(expr).otherwise(pl.col(name))
                for name, expr in change.items()
            }
        )
        assert changed.filter(later).height > 1000
        warehouse.replace_table(schema.full_name, changed.to_arrow())
    backfill(week_url, D1, D2, force=True)
    assert_frame_equal(build_training_set(D1, D2, all_rows=True), before)


_projects = itertools.count()


@pytest.fixture(scope="module")
def bq_emulator() -> Iterator[object]:
    from tests.support.bq_emulator import start_emulator

    with start_emulator(project="local") as emulator:
        yield emulator


def test_bigquery_emulator_gives_the_same_training_set(
    week_url: str, bq_emulator: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.io import ensure_tables

    expected = build_training_set(D1, D2, all_rows=True)
    duck = open_reader(week_url)
    monkeypatch.setenv("PHASE4_BIGQUERY_ENDPOINT", bq_emulator.endpoint)  # type: ignore[attr-defined]
    bq = open_warehouse(f"bigquery://readers{next(_projects)}")
    ensure_tables(bq)
    in_range = [Filter("game_date", ">=", D1), Filter("game_date", "<=", D2)]
    for schema in (PLAYER_GAME_SUMMARY, UPCOMING_PLAYER_GAME_CONTEXT):
        rows = duck.read(schema.full_name, None, in_range)
        bq.replace_table(schema.full_name, rows.to_arrow())
    p5 = duck.read(ML_FEATURE_STORE_V2.full_name, None, in_range)
    days = sorted(p5["game_date"].unique())
    bq.replace_partitions(ML_FEATURE_STORE_V2, days, p5.to_arrow())
    got = build_training_set(D1, D2, all_rows=True, warehouse=bq)
    assert_frame_equal(got, expected)
    assert got["points_line"].is_not_null().sum() > 300


def test_stored_quality_columns_follow_their_definitions(week_url: str) -> None:
    """default_feature_count and is_quality_ready as P5 stores them equal SPEC 12 recomputed."""
    p5 = read_p5(open_reader(week_url), [Filter("game_date", ">=", D1)])
    assert p5.height == 524
    recomputed = p5.select(
        default_feature_count=default_feature_count(), is_quality_ready=is_quality_ready()
    )
    assert_frame_equal(p5.select("default_feature_count", "is_quality_ready"), recomputed)
    assert p5["default_feature_count"].sum() > 0 and not p5["is_quality_ready"].all()
