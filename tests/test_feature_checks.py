"""SPEC 12 feature checks: each rule on hand-built frames, thresholds, the run, real seasons."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from features.core import (
    REFERENCE_COLUMNS,
    Built,
    Context,
    RunInputs,
    build_outputs,
    check_dates,
    feature_checked,
    run,
)
from quality.contracts import conform_input
from quality.feature_checks import (
    check_features,
    checks_markdown,
    reference_dates,
    summary,
)
from quality.feature_contract import (
    ARRAY_FEATURE_COUNT,
    BY_NAME,
    DEFAULT,
    FEATURE_CONTRACT,
    FEATURE_NAMES,
    data_dictionary,
)
from quality.schemas import (
    ML_FEATURE_CHECKS,
    ML_FEATURE_STORE_V2,
    PHASE3_TABLES,
    Phase3Frames,
    all_tables,
)
from quality.stable import stable_mean, stable_std
from quality.success import RunLine
from tasks.feature_checks import feature_checks_of, read_reference
from tasks.io import ensure_tables
from tasks.processors import commit_built
from tasks.warehouse import Filter, Warehouse, open_warehouse
from tasks.warehouse.base import SeasonRows
from tests.conftest import SEASON_2023, SEASON_2024, write_partition
from tests.support.bq_emulator import EmulatorProcess

D = date(2024, 1, 15)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "features.md"
IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}


# --- hand-built P5 frames ----------------------------------------------------------------------


def spread(index: int, i: int, n: int) -> float:
    """A valid, varied value of a feature for player i of n (the middle half of its range)."""
    spec = FEATURE_CONTRACT[index]
    if spec.allowed:
        return (0.0, 1.0)[i % 2]
    return spec.low + (spec.high - spec.low) * (0.25 + 0.5 * i / max(n - 1, 1))


def p5_rows(
    n: int,
    game_date: date = D,
    override: Mapping[str, Callable[[int], float | None]] | None = None,
    default_where: Mapping[str, Callable[[int], bool]] | None = None,
    players: Callable[[int], str] = lambda i: f"p{i:03d}",
) -> pl.DataFrame:
    """n P5 rows: every feature varied and in range, sources 'phase4' unless told 'default'."""
    override, default_where = override or {}, default_where or {}
    rows = []
    for i in range(n):
        values: list[float | None] = [spread(f, i, n) for f in range(ARRAY_FEATURE_COUNT)]
        sources = ["phase4"] * ARRAY_FEATURE_COUNT
        for name, value in override.items():
            values[IDX[name]] = value(i)
        for name, is_default in default_where.items():
            if is_default(i):
                sources[IDX[name]] = DEFAULT
                values[IDX[name]] = BY_NAME[name].default
        rows.append(
            {
                "player_lookup": players(i),
                "game_date": game_date,
                "data_source": "phase4",
                "features": values,
                "feature_sources": sources,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "player_lookup": pl.String,
            "game_date": pl.Date,
            "data_source": pl.String,
            "features": pl.List(pl.Float64),
            "feature_sources": pl.List(pl.String),
        },
    )


def placeholders(n: int, game_date: date = D) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "player_lookup": [f"early{i}" for i in range(n)],
            "game_date": [game_date] * n,
            "data_source": ["early_season"] * n,
            "features": [[None] * ARRAY_FEATURE_COUNT] * n,
            "feature_sources": [[DEFAULT] * ARRAY_FEATURE_COUNT] * n,
        },
        schema=p5_rows(1).schema,
    )


NO_REFERENCE = p5_rows(0)


def check(
    p5: pl.DataFrame, reference: pl.DataFrame = NO_REFERENCE, early_season: bool = False
) -> pl.DataFrame:
    return check_features(p5, reference, D, early_season=early_season, run_id="run-1")


def status_of(checks: pl.DataFrame, name: str) -> tuple[str, str | None]:
    row = checks.row(IDX[name], named=True)
    assert row["feature_name"] == name
    return row["status"], row["message"]


def not_ok(checks: pl.DataFrame) -> list[str]:
    return checks.filter(pl.col("status") != "OK")["feature_name"].to_list()


# --- the contract and its data dictionary ------------------------------------------------------


def test_the_contract_follows_the_spec_tables() -> None:
    assert ARRAY_FEATURE_COUNT == 25 and [f.index for f in FEATURE_CONTRACT] == list(range(60))
    assert [f.name for f in FEATURE_CONTRACT if f.drift_check] == [
        "points_avg_last_5",
        "points_avg_last_10",
        "points_avg_season",
        "points_std_last_10",
        "usage_spike_score",
        "pct_paint",
        "pct_mid_range",
        "pct_three",
        "pct_free_throw",
    ]
    no_constant = [f.name for f in FEATURE_CONTRACT[:25] if not f.constant_check]
    assert no_constant == [
        "rest_advantage",
        "injury_risk",
        "recent_trend",
        "minutes_change",
        "home_away",
        "back_to_back",
        "playoff_game",
    ]
    assert BY_NAME["team_pace"].chain == ("phase4", "phase3", "default")
    assert BY_NAME["fatigue_score"].chain == ("phase4", "default")
    assert BY_NAME["home_away"].chain == ("phase3", "default")
    assert BY_NAME["team_win_pct"].chain == ("calculated", "default")
    assert (BY_NAME["pct_free_throw"].low, BY_NAME["pct_free_throw"].high) == (0, 0.5)
    assert BY_NAME["back_to_back"].range_text == "{0, 0.5, 1}"
    assert BY_NAME["shot_zone_mismatch_score"].range_text == "[-10, 10]"
    assert [f.default for f in FEATURE_CONTRACT][:5] == [10.0, 10.0, 10.0, 5.0, 3.0]


def test_docs_features_md_is_generated_from_the_contract() -> None:
    """Regenerate with: python -m quality.feature_contract > docs/features.md"""
    assert DOCS.read_text() == data_dictionary()
    assert "| 22 | team_pace | yes | team_context | phase4 → phase3 → default |" in (
        DOCS.read_text()
    )
    assert "| 55 | over_rate_last_10 | no | player_history | calculated → missing |" in (
        DOCS.read_text()
    )


def test_the_checks_table_is_declared_and_created_with_the_others() -> None:
    assert ML_FEATURE_CHECKS in all_tables()
    assert ML_FEATURE_CHECKS.full_name == "nba_predictions.ml_feature_checks"
    assert ML_FEATURE_CHECKS.partition_column == "game_date"
    assert ML_FEATURE_CHECKS.column_names == [
        "game_date",
        "feature_index",
        "feature_name",
        "rows",
        "default_rows",
        "min",
        "max",
        "mean",
        "std",
        "ref_mean",
        "ref_std",
        "status",
        "message",
        "run_id",
    ]


# --- figures and the OK case -------------------------------------------------------------------


def test_a_healthy_slate_is_ok_with_its_figures() -> None:
    p5 = p5_rows(4, override={"points_avg_last_5": lambda i: [10.0, 20.0, 30.0, 40.0][i]})
    checks = check(p5)
    assert checks.schema == ML_FEATURE_CHECKS.polars_schema
    assert checks.height == 60 and not_ok(checks) == []
    row = checks.row(0, named=True)
    assert row == {
        "game_date": D,
        "feature_index": 0,
        "feature_name": "points_avg_last_5",
        "rows": 4,
        "default_rows": 0,
        "min": 10.0,
        "max": 40.0,
        "mean": 25.0,
        "std": pytest.approx(12.909944487358056, abs=1e-12),
        "ref_mean": None,
        "ref_std": None,
        "status": "OK",
        "message": None,
        "run_id": "run-1",
    }
    assert summary(checks) == ("OK", "feature checks OK (60 features)")


def test_mean_and_std_are_the_stable_ones_whatever_the_row_order() -> None:
    """The figures add the sorted values in order (quality/stable.py): the same bits checked
    alone or in a chunk, whatever order the rows come in."""
    scores = [10 + (i * 37 % 100) / 7 for i in range(100)]  # 10 + 0/7 .. 10 + 99/7, shuffled
    p5 = p5_rows(100, override={"points_avg_last_5": lambda i: scores[i]})
    row = check(p5).row(0, named=True)
    expected = pl.DataFrame({"v": scores}).select(
        stable_mean(pl.col("v")).alias("mean"), stable_std(pl.col("v")).alias("std")
    )
    assert (row["mean"], row["std"]) == expected.row(0)
    assert row["mean"] == pytest.approx(10 + 4950 / 700, abs=1e-12)
    assert row["std"] == pytest.approx(
        math.sqrt(sum(i * i for i in range(100)) - 4950**2 / 100) / 7 / math.sqrt(99), abs=1e-12
    )
    reversed_row = check(p5.reverse()).row(0, named=True)
    assert (reversed_row["mean"], reversed_row["std"]) == (row["mean"], row["std"])


def test_an_empty_slate_has_no_checks() -> None:
    assert check(p5_rows(0)).height == 0


def test_placeholder_rows_are_not_checked() -> None:
    checks = check(pl.concat([p5_rows(3), placeholders(5)]), early_season=True)
    assert not_ok(checks) == []
    assert checks["rows"].to_list() == [3] * 25 + [0] * 35  # these frames have no 25 to 59
    only_placeholders = check(placeholders(5), early_season=True)
    assert only_placeholders["rows"].to_list() == [0] * 60
    assert only_placeholders["mean"].null_count() == 60


# --- ranges: FAIL ------------------------------------------------------------------------------


def test_an_out_of_range_value_fails_naming_feature_player_value_range_and_rows() -> None:
    p5 = p5_rows(60, override={"team_pace": lambda i: 500.0 if i == 7 else 100.0 + i / 10})
    checks = check(p5)
    assert status_of(checks, "team_pace") == (
        "FAIL",
        "team_pace is 500 for p007, outside [80, 120] (1 row out of range)",
    )
    assert not_ok(checks) == ["team_pace"]
    assert summary(checks) == (
        "FAIL",
        "feature checks FAIL: team_pace is 500 for p007, outside [80, 120] (1 row out of range)",
    )


def test_several_rows_out_of_range_are_counted_and_the_first_player_named() -> None:
    low = {"pct_free_throw": lambda i: [0.51, 0.1, -0.2, 0.2][i]}
    assert status_of(check(p5_rows(4, override=low)), "pct_free_throw") == (
        "FAIL",
        "pct_free_throw is 0.51 for p000, outside [0, 0.5] (2 rows out of range)",
    )


@pytest.mark.parametrize(
    ("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
def test_nan_and_infinity_are_always_out_of_range(value: float, shown: str) -> None:
    p5 = p5_rows(3, override={"points_avg_season": lambda i: value if i == 2 else 20.0 + i})
    assert status_of(check(p5), "points_avg_season") == (
        "FAIL",
        f"points_avg_season is {shown} for p002, outside [0, 70] (1 row out of range)",
    )


def test_flags_take_only_0_half_and_1_and_the_range_ends_are_valid() -> None:
    edges = check(
        p5_rows(
            3,
            override={
                "home_away": lambda i: [0.0, 0.5, 1.0][i],
                "points_avg_last_10": lambda i: [0.0, 70.0, 35.0][i],
                "shot_zone_mismatch_score": lambda i: [-10.0, 10.0, 0.0][i],
            },
        )
    )
    assert not_ok(edges) == []
    flag = check(p5_rows(3, override={"back_to_back": lambda i: [0.0, 0.25, 1.0][i]}))
    assert status_of(flag, "back_to_back") == (
        "FAIL",
        "back_to_back is 0.25 for p001, outside {0, 0.5, 1} (1 row out of range)",
    )


def test_ranges_are_checked_in_early_season_too() -> None:
    p5 = p5_rows(3, override={"fatigue_score": lambda i: 100.5 if i == 0 else 50.0})
    assert status_of(check(p5, early_season=True), "fatigue_score")[0] == "FAIL"


# --- constant features: WARN -------------------------------------------------------------------


def test_a_constant_feature_warns_in_the_spec_words() -> None:
    checks = check(p5_rows(213, override={"team_win_pct": lambda i: 0.5}))
    assert status_of(checks, "team_win_pct") == ("WARN", "team_win_pct is 0.5 for all 213 players")
    assert not_ok(checks) == ["team_win_pct"]
    assert summary(checks) == (
        "WARN",
        "feature checks WARN: team_win_pct is 0.5 for all 213 players",
    )


@pytest.mark.parametrize(("rows", "status"), [(49, "OK"), (50, "WARN")])
def test_constant_needs_exactly_50_rows_not_tagged_default(rows: int, status: str) -> None:
    alone = check(p5_rows(rows, override={"team_pace": lambda i: 101.0}))
    assert status_of(alone, "team_pace")[0] == status
    # Ten more rows on the default do not count towards the 50.
    padded = p5_rows(
        rows + 10,
        override={"team_pace": lambda i: 101.0},
        default_where={"team_pace": lambda i: i >= rows},
    )
    assert status_of(check(padded), "team_pace")[0] == status


def test_constant_is_not_checked_early_or_on_features_without_the_check() -> None:
    stuck = {"team_win_pct": lambda i: 0.5, "rest_advantage": lambda i: 0.0}
    assert not_ok(check(p5_rows(100, override=stuck), early_season=True)) == []
    assert not_ok(check(p5_rows(100, override={"rest_advantage": lambda i: 0.0}))) == []


# --- default shares: WARN ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("defaults", "status", "message"),
    [
        (30, "OK", None),
        (31, "WARN", "pct_free_throw is default on 31.0 % of rows (31/100)"),
    ],
)
def test_defaults_warn_above_exactly_30_percent(
    defaults: int, status: str, message: str | None
) -> None:
    p5 = p5_rows(100, default_where={"pct_free_throw": lambda i: i < defaults})
    checks = check(p5)
    assert status_of(checks, "pct_free_throw") == (status, message)
    assert checks.row(IDX["pct_free_throw"], named=True)["default_rows"] == defaults


def test_defaults_are_not_checked_in_early_season() -> None:
    p5 = p5_rows(100, default_where={"recent_trend": lambda i: i < 90})
    assert not_ok(check(p5, early_season=True)) == []
    assert status_of(check(p5), "recent_trend")[0] == "WARN"


# --- drift: WARN -------------------------------------------------------------------------------

REF_MEAN, REF_HALF_WIDTH = 11.8, 6.8
# 250 values at mean - 6.8 and 250 at mean + 6.8: sample std 6.8 * sqrt(500 / 499).
REF_STD = REF_HALF_WIDTH * math.sqrt(500 / 499)


def drift_reference(n: int = 500) -> pl.DataFrame:
    def value(i: int) -> float:
        return REF_MEAN + (REF_HALF_WIDTH if i % 2 else -REF_HALF_WIDTH)

    return p5_rows(n, D - timedelta(days=1), override={"points_avg_last_5": value})


def slate_around(mean: float, n: int = 50) -> pl.DataFrame:
    return p5_rows(n, override={"points_avg_last_5": lambda i: mean + (1.0 if i % 2 else -1.0)})


def test_drift_warns_in_the_spec_words() -> None:
    checks = check(slate_around(21.3), drift_reference())
    assert status_of(checks, "points_avg_last_5") == (
        "WARN",
        "drift: points_avg_last_5 mean 21.3 against 11.8 (+1.4 sd)",
    )
    row = checks.row(0, named=True)
    assert row["ref_mean"] == pytest.approx(REF_MEAN, abs=1e-12)
    assert row["ref_std"] == pytest.approx(REF_STD, abs=1e-12)
    assert not_ok(checks) == ["points_avg_last_5"]
    lower = check(slate_around(REF_MEAN - 0.6 * REF_STD), drift_reference())
    assert status_of(lower, "points_avg_last_5")[1] == (
        "drift: points_avg_last_5 mean 7.7 against 11.8 (-0.6 sd)"
    )


@pytest.mark.parametrize(("sds", "status"), [(0.5, "OK"), (0.5001, "WARN")])
def test_drift_fires_only_beyond_exactly_half_a_reference_sd(sds: float, status: str) -> None:
    checks = check(slate_around(REF_MEAN + sds * REF_STD), drift_reference())
    assert status_of(checks, "points_avg_last_5")[0] == status


@pytest.mark.parametrize(
    ("slate", "reference", "status"), [(49, 500, "OK"), (50, 499, "OK"), (50, 500, "WARN")]
)
def test_drift_needs_50_values_of_d_and_500_of_the_reference(
    slate: int, reference: int, status: str
) -> None:
    checks = check(slate_around(21.3, slate), drift_reference(reference))
    assert status_of(checks, "points_avg_last_5")[0] == status


def test_drift_leaves_out_default_values_early_season_and_team_features() -> None:
    # 20 of 70 rows on the default (10.0) : the 50 others are the drifted slate.
    mixed = p5_rows(
        70,
        override={"points_avg_last_5": lambda i: 21.3 + (1.0 if i % 2 else -1.0)},
        default_where={"points_avg_last_5": lambda i: i >= 50},
    )
    assert status_of(check(mixed, drift_reference()), "points_avg_last_5")[1] == (
        "drift: points_avg_last_5 mean 21.3 against 11.8 (+1.4 sd)"
    )
    assert not_ok(check(slate_around(21.3), drift_reference(), early_season=True)) == []
    shifted_team = p5_rows(60, override={"team_pace": lambda i: 115.0 + (i % 5)})
    checks = check(shifted_team, p5_rows(600, D - timedelta(days=1)))
    assert not_ok(checks) == []
    assert checks.row(IDX["team_pace"], named=True)["ref_mean"] is None


def test_a_date_that_fails_stays_out_of_the_later_dates_reference_its_stored_rows_stay_in() -> None:
    """Three dates checked in one pass: D-1 FAILs (a pace of 500), so D's reference is D-2's
    rows and D-1's stored partition (what stays written), never D-1's failed rows (40.0)."""
    day_before = D - timedelta(days=1)
    failing = p5_rows(
        500,
        day_before,
        override={"points_avg_last_5": lambda i: 40.0, "team_pace": lambda i: 500.0},
    )
    dates = [D - timedelta(days=2), day_before, D]
    p5 = pl.concat(
        [drift_reference().with_columns(game_date=pl.lit(dates[0])), failing, slate_around(21.3)]
    ).with_columns(early_season_flag=pl.lit(False))
    stored = drift_reference()  # D-1 as written by an earlier run
    checks, outcomes = check_dates(p5, dates, stored, "chunk")
    assert outcomes[day_before][0] == "FAIL"
    assert outcomes[day_before][1].startswith(
        "feature checks FAIL, nothing written: team_pace is 500 for p000, outside [80, 120] "
        "(500 rows out of range)"
    )
    assert outcomes[D] == (
        "WARN",
        "feature checks WARN: drift: points_avg_last_5 mean 21.3 against 11.8 (+1.4 sd)",
    )
    assert sorted(set(checks["game_date"])) == [dates[0], D]
    row = checks.filter(pl.col("game_date") == D).row(0, named=True)
    # 1000 values at 11.8 +- 6.8: D-2's and D-1's stored ones.
    assert row["ref_mean"] == pytest.approx(REF_MEAN, abs=1e-12)
    assert row["ref_std"] == pytest.approx(REF_HALF_WIDTH * math.sqrt(1000 / 999), abs=1e-12)


def test_several_warnings_of_one_feature_are_joined_and_the_report_counts_the_rest() -> None:
    p5 = p5_rows(
        100,
        override={"pct_three": lambda i: 0.35, "team_win_pct": lambda i: 0.5},
        default_where={"pct_three": lambda i: i < 40},
    )
    checks = check(p5)
    assert status_of(checks, "pct_three") == (
        "WARN",
        "pct_three is 0.35 for all 60 players; pct_three is default on 40.0 % of rows (40/100)",
    )
    assert summary(checks)[1].endswith("(+1 more)")
    markdown = checks_markdown(checks)
    assert markdown.startswith("# Feature checks of ml_feature_store_v2 for 2024-01-15")
    assert "| 24 | team_win_pct | WARN | 100 | 0 | 0.5 | 0.5 | 0.5 |" in markdown


# --- the reference: 14 most recent earlier slates of S with non-placeholder rows ----------------


def always(value: float) -> Callable[[int], float]:
    return lambda i: value


def test_the_reference_is_the_14_latest_earlier_slates_of_the_season() -> None:
    day = date(2023, 11, 13)
    days = [date(2023, 7, 30)] + [date(2023, 10, 24) + timedelta(days=i) for i in range(19)]
    # Slate k's two players both have points_avg_last_5 = k: the reference's mean says which.
    stored = pl.concat(
        [
            p5_rows(2, d, override={"points_avg_last_5": always(float(k))})
            for k, d in enumerate(days)
        ]
        + [placeholders(3, date(2023, 11, 11)), placeholders(2, date(2023, 11, 12))]
        + [p5_rows(2, day), p5_rows(2, date(2023, 11, 14))]  # D and later
    )
    picked = reference_dates(stored, day)
    # 11-12 has only placeholders; 11-11 has both kinds and counts.
    expected = [date(2023, 10, 24) + timedelta(days=i) for i in range(5, 19)]
    assert picked == expected
    checks = check_features(
        p5_rows(2, day, override={"points_avg_last_5": lambda i: 60.0}),
        stored,
        day,
        early_season=False,
        run_id="run-1",
    )
    # Slates 6 to 19, twice each: mean 12.5, sum of squared deviations 455 over 27.
    row = checks.row(0, named=True)
    assert row["ref_mean"] == 12.5
    assert row["ref_std"] == pytest.approx(math.sqrt(455 / 27), abs=1e-12)


# --- the run: checks between building and writing, on the embedded warehouse -----------------


def _stored(day: date, n: int, team_pace: float = 100.0) -> pl.DataFrame:
    """A schema-complete P5 partition built from hand-made features."""
    base = p5_rows(n, day, override={"team_pace": lambda i: team_pace + i / 10})
    full = {c.name: c for c in ML_FEATURE_STORE_V2.columns}
    filled = {
        name: pl.lit(_filler(col.type, name), dtype=col.polars_type)
        if col.mode != "REPEATED"
        else pl.lit([], dtype=col.polars_type)
        for name, col in full.items()
        if name not in base.columns
    }
    return base.with_columns(**filled).select(ML_FEATURE_STORE_V2.column_names)


def _filler(kind: str, name: str = "") -> Any:
    if name.startswith("feature_") and name.endswith("_value"):
        spec = FEATURE_CONTRACT[int(name.split("_")[1])]  # a valid value (25 to 59)
        if spec.always_null:
            return None
        return spec.allowed[0] if spec.allowed else spec.low if math.isfinite(spec.low) else 0.0
    return {
        "STRING": "x",
        "INT64": 0,
        "FLOAT64": 90.0,
        "BOOL": True,
        "DATE": D,
        "TIMESTAMP": datetime(2024, 1, 15, tzinfo=UTC),
    }[kind]


def test_a_forced_out_of_range_value_leaves_the_previous_partition_on_duckdb(
    warehouse_url: str,
) -> None:
    warehouse = open_warehouse(warehouse_url)
    ensure_tables(warehouse)
    previous = checked_partition_after(warehouse, (1, 2, 3), players=30)
    reference = read_reference(warehouse, D)
    assert sorted(set(reference["game_date"])) == [D - timedelta(days=b) for b in (3, 2, 1)]
    assert reference.height == 90

    broken = _stored(D, 30).with_columns(
        features=pl.when(pl.col("player_lookup") == "p004")
        .then(
            pl.col("features").list.eval(
                pl.when(pl.int_range(pl.len()) == 22).then(500.0).otherwise(pl.element())
            )
        )
        .otherwise(pl.col("features"))
    )
    (line,) = checked_and_committed(warehouse, broken, "run-2").lines
    assert (line.status, line.rows) == ("FAIL", None)
    assert "team_pace is 500 for p004, outside [80, 120]" in line.message
    kept = stored_features(warehouse)
    assert kept["features"].to_list() == previous["features"].to_list()
    stored_checks = feature_checks_of(warehouse, D)
    assert stored_checks["run_id"].unique().to_list() == ["run-1"]
    assert stored_checks["status"].to_list() == ["OK"] * 60


# --- real seasons: no WARN or FAIL on any date --------------------------------------------------


def _season(directory: Path, first: date) -> Phase3Frames:
    read = {
        name: conform_input(schema, pq.read_table(directory / f"{schema.full_name}.parquet"), first)
        for name, schema in PHASE3_TABLES.items()
    }
    return Phase3Frames(
        read["player_game_summary"],
        read["team_defense_game_summary"],
        read["team_offense_game_summary"],
        read["upcoming_player_game_context"],
        read["upcoming_team_game_context"],
    )


# 2025-02-20: P2 FAILs (SPEC 11, last night's box missing), so P3 is not built and P5 takes
# P3's four features' defaults on every row: SPEC 12's default-share WARN, as it should.
P3_FEATURES = ("fatigue_score", "shot_zone_mismatch_score", "pace_score", "usage_spike_score")
NIGHT_AFTER_HOLE = {(date(2025, 2, 20), name, "WARN") for name in P3_FEATURES}


@pytest.mark.parametrize(
    ("directory", "first", "last", "warned"),
    [
        (SEASON_2023, date(2023, 10, 24), date(2024, 6, 20), set()),
        (SEASON_2024, date(2024, 10, 22), date(2025, 6, 25), NIGHT_AFTER_HOLE),
    ],
)
def test_real_seasons_give_no_feature_check_warn_or_fail_and_a_date_checked_alone_agrees(
    directory: Path, first: date, last: date, warned: set[tuple[date, str, str]]
) -> None:
    """Every date in one pass of the run core, each date's reference the previous dates'
    P5 rows; then ten dates checked alone, as the nightly run does, against the stored rows of
    the earlier dates read back in another order: the same checks bit for bit."""
    frames = _season(directory, first)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    p5 = run(RunInputs(frames, tuple(days)), None, datetime(2026, 1, 1, tzinfo=UTC))[
        ML_FEATURE_STORE_V2.name
    ]
    assert p5.checks is not None
    season = p5.checks
    bad = season.filter(pl.col("status") != "OK")
    assert set(bad.select("game_date", "feature_name", "status").iter_rows()) == warned, bad
    checked = season["game_date"].unique().sort()
    assert checked.len() > 150 and season.height == 60 * checked.len()
    assert season.filter(pl.col("ref_mean").is_not_null()).height > 1000

    stored = p5.rows_to_write().select(REFERENCE_COLUMNS).sample(fraction=1.0, shuffle=True, seed=7)
    for day in checked.gather_every(16):
        alone, outcome = check_dates(
            p5.frame.filter(pl.col("game_date") == day),
            [day],
            stored.filter(pl.col("game_date") < day),
            "alone",
        )
        assert outcome == {day: ("OK", "feature checks OK (60 features)")}
        expected = season.filter(pl.col("game_date") == day)
        assert_frame_equal_exact(alone.drop("run_id"), expected.drop("run_id"))
        drift = expected.filter(pl.col("ref_mean").is_not_null())
        assert day == first or drift["feature_index"].to_list() == [0, 1, 2, 3, 8, 18, 19, 20, 21]


# --- the flow: the "done when" on the real 2023-24 season -------------------------------


def _rewrite_team_offense(url: str, change: pl.Expr, column: str) -> None:
    warehouse = open_warehouse(url)
    table = PHASE3_TABLES["team_offense_game_summary"]
    rows = (warehouse.read(table.full_name)).with_columns(change.alias(column))
    seasons = rows["season_year"].unique().to_list()
    warehouse.replace_seasons_of([SeasonRows(table.full_name, seasons, rows.to_arrow())])


@pytest.mark.usefixtures("prefect_harness")
def test_the_run_warns_on_a_constant_feature_and_fails_on_a_pace_of_500(season_url: str) -> None:
    from tests.test_flow_realdata import phase4

    code, printed = phase4("run", "--date", str(D))
    assert code == 0, printed
    clean = feature_checks_of(open_warehouse(season_url), D)
    assert clean["status"].to_list() == ["OK"] * 60

    # Every win_flag false: team_win_pct is 0 for the whole slate, a WARN, and P5 is written.
    _rewrite_team_offense(season_url, pl.lit(False), "win_flag")
    code, printed = phase4("run", "--date", str(D))
    assert code == 0, printed
    warned = feature_checks_of(open_warehouse(season_url), D)
    slate = warned["rows"][IDX["team_win_pct"]]
    assert status_of(warned, "team_win_pct") == (
        "WARN",
        f"team_win_pct is 0 for all {slate} players",
    )
    assert "team_win_pct is 0 for all" in " ".join(printed.split())
    written = read_p5(season_url)
    assert (written["features"].list.get(IDX["team_win_pct"]) == 0.0).all()

    # One team's pace at 500: P5 FAILs naming team_pace and a player, D's partitions stay.
    _rewrite_team_offense(
        season_url,
        pl.when(pl.col("team_abbr") == "BOS").then(500.0).otherwise(pl.col("pace")),
        "pace",
    )
    code, printed = phase4("run", "--date", str(D))
    assert code == 1, printed
    flat = " ".join(printed.split())
    boston = sorted(read_p5(season_url).filter(pl.col("team_abbr") == "BOS")["player_lookup"])
    assert (
        f"FAIL nothing written: team_pace is 500 for {boston[0]}, outside [80, 120] "
        f"({len(boston)} rows out of range)"
    ) in flat.replace("feature checks FAIL, nothing written", "FAIL nothing written")
    assert_frame_equal_exact(read_p5(season_url), written)
    assert_frame_equal_exact(feature_checks_of(open_warehouse(season_url), D), warned)


def checked_partition_after(
    warehouse: Warehouse, days_back: Sequence[int], players: int
) -> pl.DataFrame:
    """Stored P5 partitions `days_back` days before D, then D's checked and written (run-1)."""
    for back in days_back:
        day = D - timedelta(days=back)
        write_partition(warehouse, ML_FEATURE_STORE_V2.name, day, _stored(day, players))
    previous = _stored(D, players)
    (line,) = checked_and_committed(warehouse, previous, "run-1").lines
    assert (line.status, line.rows) == ("OK", players), line
    return previous


def checked_and_committed(warehouse: Warehouse, p5: pl.DataFrame, run_id: str) -> Built:
    """D's P5 rows through the run's own SPEC 12 step (`feature_checked`, the stored
    reference read as the nightly run reads it) and its commit (`commit_built`)."""
    line = RunLine(
        run_id=run_id,
        processor=ML_FEATURE_STORE_V2.name,
        analysis_date=D,
        status="OK",
        rows=p5.height,
        duration_seconds=0.1,
        started_at=None,
        finished_at=None,
        message="built",
    )
    built = Built(table=ML_FEATURE_STORE_V2.name, frame=p5, lines=(line,), write_dates=(D,))
    none = Phase3Frames(*(pl.DataFrame() for _ in range(5)))  # the checks read no Phase 3
    inputs = RunInputs(none, (D,), run_id=run_id, reference=read_reference(warehouse, D))
    checked = feature_checked(built, Context(inputs, {}, pl.DataFrame()))
    commit_built(warehouse, [checked], list(checked.lines))
    return checked


def stored_features(warehouse: Warehouse) -> pl.DataFrame:
    """D's stored P5 feature vectors, by player."""
    rows = warehouse.read(
        ML_FEATURE_STORE_V2.full_name, ["player_lookup", "features"], [Filter("game_date", "=", D)]
    )
    return rows.sort("player_lookup")


def read_p5(url: str) -> pl.DataFrame:
    rows = open_warehouse(url).read(
        ML_FEATURE_STORE_V2.full_name, None, [Filter("game_date", "=", D)]
    )
    return rows.sort("player_lookup")


def assert_frame_equal_exact(left: pl.DataFrame, right: pl.DataFrame) -> None:
    from polars.testing import assert_frame_equal

    assert_frame_equal(left, right, check_exact=True)


def test_a_forced_out_of_range_value_leaves_the_previous_partition_on_the_bigquery_emulator(
    monkeypatch: pytest.MonkeyPatch, bq_emulator: EmulatorProcess
) -> None:
    """The same FAIL path with the reference read through the real client (DATE filters)."""
    from tasks.warehouse.bigquery_warehouse import BigQueryWarehouse

    with nullcontext(bq_emulator) as emulator:  # the session's emulator, a project of its own
        monkeypatch.setenv("PHASE4_BIGQUERY_ENDPOINT", emulator.endpoint)
        warehouse = open_warehouse("bigquery://featurechecks")
        assert isinstance(warehouse, BigQueryWarehouse)
        ensure_tables(warehouse)
        previous = checked_partition_after(warehouse, (1, 2, 20), players=20)
        reference = read_reference(warehouse, D)
        assert sorted(set(reference["game_date"])) == [D - timedelta(days=b) for b in (20, 2, 1)]
        broken = previous.with_columns(
            features=pl.when(pl.col("player_lookup") == "p011")
            .then(
                pl.col("features").list.eval(
                    pl.when(pl.int_range(pl.len()) == IDX["injury_risk"])
                    .then(float("nan"))
                    .otherwise(pl.element())
                )
            )
            .otherwise(pl.col("features"))
        )
        (line,) = checked_and_committed(warehouse, broken, "run-2").lines
        kept = stored_features(warehouse)
        stored_checks = feature_checks_of(warehouse, D)
    assert (line.status, line.rows) == ("FAIL", None)
    assert "injury_risk is nan for p011, outside [0, 3]" in line.message
    assert kept["features"].to_list() == previous["features"].to_list()
    assert stored_checks["run_id"].unique().to_list() == ["run-1"]
    assert stored_checks.height == 60


def test_a_chunk_whose_first_dates_are_all_placeholders_is_checked_date_by_date(
    tmp_path: Path,
) -> None:
    """The season opener's P5 rows are all early-season placeholders (no feature values): the
    chunk's checks skip their figures instead of failing, and the later dates are checked."""
    first = date(2023, 10, 24)
    days = [first + timedelta(days=i) for i in range(10)]
    p5 = build_outputs(_season(SEASON_2023, first), days, datetime(2026, 1, 1, tzinfo=UTC))[
        ML_FEATURE_STORE_V2.name
    ]
    opener = p5.filter(pl.col("game_date") == first)
    assert opener.height > 0
    assert opener.select(pl.col("features").explode().is_null().all()).item()
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    ensure_tables(warehouse)
    checks, outcomes = check_dates(p5, days, read_reference(warehouse, first), "chunk")
    assert outcomes[first][0] == "OK"
    assert set(outcomes) == set(p5["game_date"].unique().to_list())
    assert checks.filter(pl.col("game_date") == first).height == 60


# --- SPEC 16.6: features 25 to 59 ------------------------------------------------------------


def with_later_values(
    p5: pl.DataFrame, values: Mapping[int, Callable[[int], float | None]]
) -> pl.DataFrame:
    """`p5` with feature_25_value .. feature_59_value: `values[k](i)` for player i, else a
    valid mid-range value (NULL for the four features that are always NULL)."""
    columns = {}
    for spec in FEATURE_CONTRACT[25:]:
        make = values.get(spec.index)
        column = []
        for i in range(p5.height):
            if make is not None:
                column.append(make(i))
            elif spec.always_null:
                column.append(None)
            elif spec.allowed:
                column.append(spec.allowed[i % 2])
            else:
                high = spec.high if math.isfinite(spec.high) else spec.low + 10
                column.append(spec.low + (high - spec.low) * 0.5)
        columns[f"feature_{spec.index}_value"] = pl.Series(column, dtype=pl.Float64)
    return p5.with_columns(**columns)


def test_sixty_rows_a_date_and_missing_counts_as_default() -> None:
    p5 = with_later_values(p5_rows(100), {55: lambda i: None if i < 80 else 0.5})
    checks = check(pd := pl.concat([p5, with_later_values(placeholders(5), {})]))
    assert pd.height == 105
    assert checks.height == 60 and checks["feature_index"].to_list() == list(range(60))
    row = checks.row(55, named=True)
    assert (row["feature_name"], row["rows"], row["default_rows"]) == ("over_rate_last_10", 100, 80)
    assert (row["min"], row["max"], row["mean"], row["status"]) == (0.5, 0.5, 0.5, "OK")
    always = checks.row(26, named=True)
    assert (always["rows"], always["default_rows"], always["status"]) == (100, 100, "OK")


def test_the_defaults_check_covers_28_to_36_only() -> None:
    """40 % missing WARNs for the required dnp_rate (33), not for the optional 55."""
    half = {33: lambda i: None if i < 40 else 0.1, 55: lambda i: None if i < 40 else 0.5}
    checks = check(with_later_values(p5_rows(100), half))
    assert not_ok(checks) == ["dnp_rate"]
    assert checks.row(33, named=True)["message"] == "dnp_rate is default on 40.0 % of rows (40/100)"
    assert check(with_later_values(p5_rows(100), half), early_season=True)[
        "status"
    ].unique().to_list() == ["OK"]


@pytest.mark.parametrize(
    ("index", "bad", "text"),
    [
        (25, 80.5, "[0, 80]"),
        (28, 0.5, "{0, 1}"),
        (32, -0.01, ">= 0"),
        (34, 30.5, "[-30, 30]"),
        (38, 149.0, "[150, 300]"),
        (42, 175.5, "[50, 175]"),
        (45, math.nan, "[-4, 4]"),
        (48, math.inf, ">= 0"),
        (57, 1.01, "[0, 1]"),
        (26, 1.0, "always NULL"),
        (47, 0.0, "always NULL"),
    ],
)
def test_ranges_of_25_to_59_fail(index: int, bad: float, text: str) -> None:
    p5 = with_later_values(p5_rows(60), {index: lambda i: bad if i == 7 else None})
    checks = check(p5)
    row = checks.row(index, named=True)
    assert row["status"] == "FAIL"
    assert f"for p007, outside {text} (1 row out of range)" in row["message"]
    assert summary(checks)[0] == "FAIL"


def test_no_constant_or_drift_check_for_25_to_59() -> None:
    """has_vegas_line 0.0 for all: a constant, but 25 to 59 have no constant check."""
    p5 = with_later_values(p5_rows(100), {28: lambda i: 0.0, 30: lambda i: 3.0})
    assert not_ok(check(p5)) == []
    assert not any(f.constant_check or f.drift_check for f in FEATURE_CONTRACT[25:])
    assert [f.index for f in FEATURE_CONTRACT if f.default_check] == [*range(25), *range(28, 37)]
