"""Training sets (SPEC 13): hand-computed labels, then the real 2024-25 season end to end.

The real-data tests compare the training set with an independent join written in DuckDB SQL
over the Hive export and the season's own Parquet files, on DuckDB and on the BigQuery emulator.
"""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.ml_feature_store_v2 import FEATURE_NAMES
from features.training_set import (
    LABEL_COLUMNS,
    P5_COLUMNS,
    VALUE_COLUMNS,
    FeatureNamesError,
    training_set,
)
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
)
from tasks.readers import build_training_set, open_reader, read_p5
from tasks.warehouse import Filter, open_warehouse
from tasks.warehouse.base import SeasonRows
from tests.builders import replace_partitions
from tests.support.season_2024 import D1, D2, SEASON_2024, backfill, copy_of_week, phase4_cli

D = date(2025, 1, 10)
NAMES = [f"f{i}" for i in range(25)]


def p5_rows(players: list[str], **overrides: list[object]) -> pl.DataFrame:
    """Stored P5 rows for D with the columns a training set reads; feature i of row r is r+i/100
    (in `features` for i < 25 and in feature_<i>_value for all 60)."""
    n = len(players)
    tags = json.dumps({str(i): "phase4" if i < 25 else "calculated" for i in range(60)})
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
        **{f"feature_{i}_value": [r + i / 100 for r in range(n)] for i in range(60)},
        "feature_sources_json": [tags] * n,
        "matchup_quality_pct": [100.0] * n,
        "default_feature_count": [0] * n,
        "required_default_count": [0] * n,
        "is_quality_ready": [True] * n,
        "is_training_ready": [True] * n,
        "feature_version": ["v2_60features"] * n,
    }
    columns.update(overrides)
    return pl.DataFrame(
        columns,
        schema_overrides={
            "features": pl.List(pl.Float64),
            **{c: pl.Float64 for c in VALUE_COLUMNS},
        },
    ).select(P5_COLUMNS)


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
    got = training_set(p5_rows(players), box, None, all_rows=True)
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
    got = training_set(p5_rows(players), box, line, all_rows=True)
    assert dict(zip(got["player_lookup"], got["over_line"], strict=True)) == {
        "dnp_with_line": None,
        "no_line": None,
        "over": True,
        "push": None,
        "under": False,
    }
    assert dict(zip(got["player_lookup"], got["points_line"], strict=True))["push"] == 20.0


def test_features_become_named_float_columns_and_the_60_values_stay_as_stored() -> None:
    p5 = p5_rows(["a", "b", "c"], feature_30_value=[0.0, None, 2.3])
    box = box_scores([(p, True, False, 20.0, 10) for p in ("a", "b", "c")])
    every = training_set(p5, box, None, all_rows=True)
    assert every["player_lookup"].to_list() == ["a", "b", "c"]
    assert every.columns[6:31] == NAMES
    assert every.columns[31:91] == [f"feature_{i}_value" for i in range(60)]
    assert every.columns[91:100] == [
        "feature_quality_score",
        "quality_tier",
        "data_source",
        "default_feature_count",
        "required_default_count",
        "matchup_quality_pct",
        "is_quality_ready",
        "is_training_ready",
        "feature_version",
    ]
    assert every.columns[-5:] == list(LABEL_COLUMNS)
    assert all(every.schema[n] == pl.Float64 for n in (*NAMES, *VALUE_COLUMNS))
    # Row b is the second P5 row: feature i is 1 + i / 100; its feature 30 is NULL, kept NULL.
    b = every.row(1, named=True)
    assert (b["f7"], b["feature_7_value"], b["feature_59_value"]) == (1.07, 1.07, 1 + 59 / 100)
    assert every["feature_30_value"].to_list() == [0.0, None, 2.3]
    assert training_set(p5, box, None)["feature_30_value"].to_list() == [0.0, None, 2.3]


# (player, required_default_count, matchup_quality_pct, feature_quality_score, data_source,
#  box score: (is_active, is_dnp, minutes, points) or None for no row)
FILTER_ROWS: list[tuple[str, int, float, float, str, tuple[bool, bool, float, int | None] | None]]
FILTER_ROWS = [
    ("all_good", 0, 70.0, 80.0, "phase4", (True, False, 31.0, 20)),
    ("one_required_default", 1, 70.0, 80.0, "mixed", (True, False, 31.0, 20)),
    ("matchup_49_9", 0, 49.9, 80.0, "phase4", (True, False, 31.0, 20)),
    ("matchup_50", 0, 50.0, 80.0, "phase4", (True, False, 31.0, 20)),
    ("quality_70", 0, 70.0, 70.0, "mixed", (True, False, 31.0, 20)),
    ("quality_69_9", 0, 70.0, 69.9, "mixed", (True, False, 31.0, 20)),
    ("quality_55", 0, 70.0, 55.0, "phase3", (True, False, 31.0, 20)),
    ("placeholder", 0, 70.0, 80.0, "early_season", (True, False, 31.0, 20)),
    ("dnp", 0, 70.0, 80.0, "phase4", (True, True, 0.0, 0)),
    ("no_box_score", 0, 70.0, 80.0, "phase4", None),
    ("points_unknown", 0, 70.0, 80.0, "phase4", (True, False, 31.0, None)),
]


def filter_inputs() -> tuple[pl.DataFrame, pl.DataFrame]:
    players = [r[0] for r in FILTER_ROWS]
    p5 = p5_rows(
        players,
        required_default_count=[r[1] for r in FILTER_ROWS],
        matchup_quality_pct=[r[2] for r in FILTER_ROWS],
        feature_quality_score=[r[3] for r in FILTER_ROWS],
        data_source=[r[4] for r in FILTER_ROWS],
    )
    box = box_scores([(r[0], *r[5]) for r in FILTER_ROWS if r[5] is not None])  # type: ignore[misc]
    return p5, box


def test_the_default_rows_pass_the_old_systems_mandatory_training_filters() -> None:
    p5, box = filter_inputs()
    kept = training_set(p5, box, None)["player_lookup"].to_list()
    assert kept == ["all_good", "matchup_50", "quality_70"]
    every = training_set(p5, box, None, all_rows=True)
    assert every["player_lookup"].to_list() == sorted(r[0] for r in FILTER_ROWS)
    # SPEC 13's flag keeps every row, whatever p says.
    assert_frame_equal(training_set(p5, box, None, all_rows=True, min_quality=90.0), every)


@pytest.mark.parametrize(
    ("min_quality", "kept"),
    [
        (50.0, ["all_good", "matchup_50", "quality_55", "quality_69_9", "quality_70"]),
        (69.9, ["all_good", "matchup_50", "quality_69_9", "quality_70"]),
        (80.0, ["all_good", "matchup_50"]),
        (80.1, []),
        (100.0, []),  # the highest score: still a filter, not an input error
    ],
)
def test_the_quality_parameter_moves_only_the_score_filter(
    min_quality: float, kept: list[str]
) -> None:
    p5, box = filter_inputs()
    got = training_set(p5, box, None, min_quality=min_quality)
    assert got["player_lookup"].to_list() == kept


@pytest.mark.parametrize("min_quality", [49.9, 0.0, -10.0, float("nan")])
def test_a_quality_parameter_below_50_is_an_input_error(min_quality: float) -> None:
    p5, box = filter_inputs()
    with pytest.raises(ValueError, match=r"--min-quality .* is below 50: .* pass a value from 50"):
        training_set(p5, box, None, min_quality=min_quality)


@pytest.mark.parametrize("min_quality", [100.5, 1e9, float("inf")])
def test_a_quality_parameter_above_100_is_an_input_error(min_quality: float) -> None:
    p5, box = filter_inputs()
    with pytest.raises(ValueError, match=r"--min-quality .* is above 100, .* from 50 to 100"):
        training_set(p5, box, None, min_quality=min_quality)


def test_rows_of_two_feature_lists_or_versions_are_refused() -> None:
    other = [*NAMES[:-1], "renamed"]
    p5 = p5_rows(["a", "b"], feature_names=[NAMES, other], feature_version=["v1", "v2"])
    with pytest.raises(FeatureNamesError, match="feature_version v1, v2"):
        training_set(p5, box_scores([]), None, all_rows=True)
    # Same 25 names, two versions: the older rows would carry NULL for features 25 to 59.
    p5 = p5_rows(["a", "b"], feature_version=["v1_baseline_25", "v2_60features"])
    with pytest.raises(FeatureNamesError, match="rebuild the range with `phase4 backfill`"):
        training_set(p5, box_scores([]), None, all_rows=True)
    # Only rows of the 25-feature era (a table given the new columns later): refused too.
    p5 = p5_rows(["a", "b"], feature_version=["v1_baseline_25"] * 2)
    with pytest.raises(FeatureNamesError, match="feature_version v1_baseline_25, written before"):
        training_set(p5, box_scores([]), None, all_rows=True)


# ---------------------------------------------------------------------------------------------
# The real 2024-25 season, backfilled 2024-12-09..2024-12-15 (tests/support/season_2024.py).
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def week_url(prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = copy_of_week(tmp_path / "week.duckdb")
    monkeypatch.setenv("PHASE4_WAREHOUSE", url)
    return url


def independent_join(export: Path, start: date, end: date, where: str = "true") -> pl.DataFrame:
    """SPEC 13 / 16.5 written again in SQL over the Hive export and the season's Parquet files;
    `where` filters the labelled rows."""
    p5 = export / ML_FEATURE_STORE_V2.full_name / "*" / "*.parquet"
    box = SEASON_2024 / f"{PLAYER_GAME_SUMMARY.full_name}.parquet"
    ctx = SEASON_2024 / f"{UPCOMING_PLAYER_GAME_CONTEXT.full_name}.parquet"
    features = ", ".join(f"p5.features[{i + 1}] AS {n}" for i, n in enumerate(FEATURE_NAMES))
    values = ", ".join(f"feature_{i}_value" for i in range(60))
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
               is_home, {features}, {values}, feature_quality_score, quality_tier,
               data_source, default_feature_count, required_default_count,
               matchup_quality_pct, is_quality_ready, is_training_ready, feature_version, played,
               CASE WHEN played THEN points END AS actual_points,
               CASE WHEN played THEN minutes_played END AS actual_minutes,
               current_points_line AS points_line,
               CASE WHEN played AND points > current_points_line THEN true
                    WHEN played AND points < current_points_line THEN false END AS over_line
        FROM labelled AS p5
        WHERE {where}
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
    filters = (
        "required_default_count = 0 AND matchup_quality_pct >= 50 AND data_source <> "
        "'early_season' AND played AND points IS NOT NULL AND feature_quality_score >= "
    )
    assert_frame_equal(ready, independent_join(export, D1, D2, filters + "70"))
    assert_frame_equal(ready, expected.filter(pl.col("is_quality_ready"), pl.col("played")))
    assert 0 < ready.height < every.height
    # No required default leaves features 0-24 at 75 or more, so p below 75 changes nothing.
    assert_frame_equal(build_training_set(D1, D2, min_quality=50), ready)
    strict = build_training_set(D1, D2, min_quality=95)  # this week's ready rows score 94 or 97
    assert_frame_equal(strict, independent_join(export, D1, D2, filters + "95"))
    assert 0 < strict.height < ready.height
    # A range with no P5 row at all gives the columns of a full set, not 25 fewer.
    unbuilt = build_training_set(D2 + timedelta(days=30), D2 + timedelta(days=31))
    assert unbuilt.is_empty() and unbuilt.schema == every.schema
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


PARTLY_BUILT = (
    "warning: 3 of the 10 slate dates have no ml_feature_store_v2 rows (first 2024-12-16); "
    "`phase4 backfill --start 2024-12-09 --end 2024-12-20` builds them"
)


def test_cli_writes_parquet_and_csv_and_refuses_bad_ranges(week_url: str, tmp_path: Path) -> None:
    out = tmp_path / "ts.parquet"
    code, printed = phase4_cli(
        week_url, "training-set", "--start", str(D1), "--end", str(D2), "--out", str(out)
    )
    assert code == 0, printed
    written = pl.read_parquet(out)
    assert_frame_equal(written, build_training_set(D1, D2))
    assert set(FEATURE_NAMES) <= set(written.columns)
    assert f"{written.height} rows, 7 date(s) in {D1}..{D2}" in printed
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
    code, printed = phase4_cli(  # the built week and 3 slates after it (none on 17, 18): said
        week_url,
        *("training-set", "--start", str(D1), "--end", "2024-12-20"),
        *("--out", str(tmp_path / "short.parquet")),
    )
    assert code == 0, printed
    assert PARTLY_BUILT in " ".join(printed.split())
    low = tmp_path / "low.parquet"
    code, printed = phase4_cli(
        week_url,
        *("training-set", "--start", str(D1), "--end", str(D2), "--out", str(low)),
        *("--min-quality", "45"),
    )
    assert code == 2 and not low.exists()
    assert "--min-quality 45 is below 50: the training filter needs" in printed
    assert len([line for line in printed.splitlines() if "error" in line]) == 1


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
        seasons = changed["season_year"].unique().to_list()
        warehouse.replace_seasons_of([SeasonRows(schema.full_name, seasons, changed.to_arrow())])
    backfill(week_url, D1, D2, force=True)
    assert_frame_equal(build_training_set(D1, D2, all_rows=True), before)


_projects = itertools.count()


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
        seasons = rows["season_year"].unique().to_list()
        bq.replace_seasons_of([SeasonRows(schema.full_name, seasons, rows.to_arrow())])
    p5 = duck.read(ML_FEATURE_STORE_V2.full_name, None, in_range)
    days = sorted(p5["game_date"].unique())
    replace_partitions(bq, ML_FEATURE_STORE_V2, days, p5.to_arrow())
    got = build_training_set(D1, D2, all_rows=True, warehouse=bq)
    assert_frame_equal(got, expected)
    assert got["points_line"].is_not_null().sum() > 300


# SPEC 16.3, written again from the tags: optional features, weights, two categories.
OPTIONAL = {25, 26, 27, *range(37, 60)}
WEIGHT = {"phase4": 100, "phase3": 75, "calculated": 100, "default": 40, "missing": 0}
MATCHUP = (5, 6, 7, 8, 13, 14)
HISTORY = (0, 1, 2, 3, 4, *range(29, 38), 43, 44, 45, 46, 48, 49, 54, 55, 56, 58)


def readiness_from_tags(row: dict[str, object]) -> dict[str, object]:
    tags = json.loads(str(row["feature_sources_json"]))
    assert list(tags) == [str(i) for i in range(60)]
    defaulted = [i for i in range(60) if tags[str(i)] in ("default", "missing")]
    required = [i for i in defaulted if i not in OPTIONAL]
    matchup = sum(WEIGHT[tags[str(i)]] for i in MATCHUP) / len(MATCHUP)
    history = sum(WEIGHT[tags[str(i)]] for i in HISTORY) / len(HISTORY)
    q = row["feature_quality_score"]
    assert isinstance(q, float)
    return {
        "default_feature_count": len(defaulted),
        "required_default_count": len(required),
        "is_quality_ready": q >= 70 and matchup >= 50 and not required,
        "is_training_ready": q >= 85 and matchup >= 70 and history >= 80 and not required,
    }


def test_stored_readiness_columns_follow_their_definitions(week_url: str) -> None:
    """The counts and readiness flags a training set filters on equal SPEC 16.3 recomputed
    from feature_sources_json, and a stored NULL value is exactly a defaulted tag."""
    p5 = read_p5(open_reader(week_url), [Filter("game_date", ">=", D1)])
    assert p5.height == 524
    columns = list(readiness_from_tags(p5.row(0, named=True)))
    for row in p5.iter_rows(named=True):
        assert {c: row[c] for c in columns} == readiness_from_tags(row), row["player_lookup"]
        tags = json.loads(row["feature_sources_json"])
        nulls = [i for i in range(60) if row[f"feature_{i}_value"] is None]
        assert nulls == [i for i in range(60) if tags[str(i)] in ("default", "missing")]
    assert p5.select(pl.col("default_feature_count").min()).item() >= 4  # 26, 27, 47, 50
    assert 0 < p5["is_training_ready"].sum() <= p5["is_quality_ready"].sum() < p5.height


def test_a_feature_store_table_from_before_the_60_features_says_how_to_upgrade(
    week_url: str, tmp_path: Path
) -> None:
    with duckdb.connect(week_url.removeprefix("duckdb://")) as con:
        for column in ("feature_sources_json", "is_training_ready"):
            con.execute(f"ALTER TABLE nba_predictions.ml_feature_store_v2 DROP COLUMN {column}")
    out = tmp_path / "ts.parquet"
    code, printed = phase4_cli(
        week_url, "training-set", "--start", str(D1), "--end", str(D2), "--out", str(out)
    )
    assert code == 2 and not out.exists()
    assert (
        "nba_predictions.ml_feature_store_v2 has no column feature_sources_json (created by an "
        "older version): run `phase4 warehouse init` to add the new columns" in printed
    )
