"""SPEC 16: features 25 to 59, the 60-column layout and the readiness rules of P5.

Hand-computed cases for every formula (with their minimums and edge cases), the rules of
16.3, point in time and row order, and an independent plain-Python implementation of features
25 to 59 compared with the engine on sampled dates of both real seasons, to 1e-9.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.core import build_outputs
from features.ml_feature_store_v2 import (
    TAGS,
    feature_sources_json,
    is_training_ready,
    matchup_data_status,
    quality_alert_level,
    quality_pct,
    tag_list,
)
from nba_calendar import season_of
from quality.feature_contract import (
    CATEGORY_FEATURES,
    FEATURE_CONTRACT,
    MISSING,
    REQUIRED_FEATURES,
    VALUE_COLUMNS,
)
from quality.schemas import (
    PLAYER_GAME_SUMMARY,
    TEAM_OFFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
    Phase3Frames,
)
from tests.conftest import SEASON_2023, SEASON_2024, season_frames
from tests.test_ml_feature_store_v2 import (
    CALENDAR,
    EARLY,
    SEASON,
    UPSTREAM_AT,
    D,
    context,
    daily_cache,
    frame,
    games,
    only_row,
    phase3,
    run,
    team_games,
)

BUILT_AT = datetime(2026, 1, 1, tzinfo=UTC)
TOLERANCE = 1e-9


def v(row: dict[str, Any], index: int) -> float | None:
    return row[f"feature_{index}_value"]


def tags(row: dict[str, Any]) -> dict[str, str]:
    return json.loads(row["feature_sources_json"])


def world(
    points: Sequence[int | None] = (),
    *,
    lines: Mapping[int, float | None] | None = None,
    slate_line: float | None = None,
    player_rows: Sequence[dict[str, Any]] | None = None,
    offense_rows: Sequence[dict[str, Any]] | None = None,
    team_context_rows: Sequence[dict[str, Any]] = (),
    **slate: Any,
) -> Phase3Frames:
    """p1 of AAA hosts BBB on D; `points` are qualifying games one a day back from D - 1;
    `lines` maps days back to the line of p1's context row of that date."""
    history = [
        context(game_date=D - timedelta(days=back), current_points_line=line, game_id=f"c{back}")
        for back, line in (lines or {}).items()
    ]
    slate_row = context(current_points_line=slate_line, **slate)
    rows = games("p1", points) if player_rows is None else player_rows
    return phase3(
        contexts=[slate_row, *history],
        player_rows=rows,
        offense_rows=offense_rows,
        team_context_rows=team_context_rows,
    )


def _tag_frame(tags_: dict[int, str]) -> pl.DataFrame:
    """One row's 60 tags (`tag__<i>`, 'phase4' unless given) and their list, as P5 has them."""
    frame_ = pl.DataFrame({f"tag__{i}": [tags_.get(i, "phase4")] for i in range(60)})
    return frame_.with_columns(tag_list().alias(TAGS))


def p1(w: Phase3Frames, **upstream: Any) -> dict[str, Any]:
    return only_row(run(w, **upstream))


# --- the layout ------------------------------------------------------------------------------


def test_feature_sources_json_is_what_json_dumps_writes() -> None:
    row = p1(world([20] * 10, slate_line=21.5))
    tags_by_index = {str(i): tags(row)[str(i)] for i in range(60)}
    assert row["feature_sources_json"] == json.dumps(tags_by_index)
    assert list(tags(row)) == [str(i) for i in range(60)]
    assert tags(row)["25"] == "phase3" and tags(row)["28"] == "calculated"
    assert tags(row)["26"] == tags(row)["47"] == MISSING
    frame_ = _tag_frame({3: "default"})
    expected = json.dumps({str(i): "default" if i == 3 else "phase4" for i in range(60)})
    assert frame_.select(feature_sources_json()).item() == expected


def test_values_of_0_to_24_are_null_where_tagged_default() -> None:
    """p1 has 3 games: recent_trend (11) and pct_free_throw (21) take their defaults, which
    the features array keeps and feature_11_value / feature_21_value never hold."""
    row = p1(world([20, 22, 24]), daily_cache=None)
    assert row["feature_sources"][11] == row["feature_sources"][21] == "default"
    assert row["features"][11] == 0.0 and v(row, 11) is None and v(row, 21) is None
    assert v(row, 0) == row["features"][0] == 22.0  # phase3: mean of the 3
    assert (tags(row)["11"], tags(row)["0"]) == ("default", "phase3")


def test_placeholder_rows_hold_no_value_and_every_tag_defaulted() -> None:
    out = run(world([20] * 10, slate_line=20.5), calendar=EARLY, daily_cache=None)
    row = only_row(out)
    assert [v(row, i) for i in range(60)] == [None] * 60
    assert list(tags(row).values()) == ["default"] * 25 + [MISSING] * 35
    assert (row["required_default_count"], row["default_feature_count"]) == (34, 60)
    assert (row["matchup_quality_pct"], row["vegas_quality_pct"]) == (40.0, 0.0)
    assert row["player_history_quality_pct"] == 40.0 * 5 / 24
    assert (row["quality_alert_level"], row["matchup_data_status"]) == (
        "red",
        "MATCHUP_UNAVAILABLE",
    )
    assert (row["is_quality_ready"], row["is_training_ready"]) == (False, False)
    assert (row["feature_version"], row["feature_count"]) == ("v2_60features", 60)


# --- 25 to 30: lines and the opponent --------------------------------------------------------


def test_vegas_line_features() -> None:
    """Line 21.5 on D, 20.5 four days ago and 18.0 twelve days ago (the newest wins)."""
    row = p1(world([20] * 10, slate_line=21.5, lines={4: 20.5, 12: 18.0}))
    assert (v(row, 25), v(row, 26), v(row, 27), v(row, 28)) == (21.5, None, None, 1.0)
    assert v(row, 53) == 21.5 - 23.0  # f2 = P4 points_avg_season 23.0
    assert v(row, 54) == 1.0


def test_without_a_line_the_line_features_are_missing_and_has_vegas_line_is_0() -> None:
    row = p1(world([20] * 10, lines={4: 20.5}))
    assert (v(row, 25), v(row, 28), v(row, 51), v(row, 52), v(row, 53), v(row, 54)) == (
        None,
        0.0,
        None,
        None,
        None,
        None,
    )
    assert tags(row)["28"] == "calculated" and tags(row)["25"] == MISSING


@pytest.mark.parametrize(("back", "delta"), [(14, 1.5), (15, None), (1, 3.0)])
def test_prop_line_delta_looks_back_14_days(back: int, delta: float | None) -> None:
    """The previous line (played or not: p1 has no game that day) must be dated >= D - 14."""
    lines = {back: 20.0 if back != 1 else 18.5, 16: 10.0}
    row = p1(world([20] * 10, slate_line=21.5, lines=lines))
    assert v(row, 54) == delta


def test_avg_points_vs_opponent_and_its_fallback() -> None:
    """Three games against BBB (one last season, one DNP: left out) and one against CCC."""
    rows = (
        games("p1", [30], 1, opponent_team_abbr="BBB")
        + games("p1", [20], 2, opponent_team_abbr="BBB")
        + games("p1", [10], 3, opponent_team_abbr="CCC")
        + games("p1", [0], 4, opponent_team_abbr="BBB", is_dnp=True, minutes_played=0.0)
        + games("p1", [50], 200, opponent_team_abbr="BBB")
    )
    row = p1(world(player_rows=rows))
    assert (v(row, 29), v(row, 30)) == (25.0, 2.0)
    none = p1(world(player_rows=rows, opponent_team_abbr="DDD"))
    assert (v(none, 29), v(none, 30), tags(none)["29"]) == (23.0, 0.0, "calculated")  # f2
    cache_without = daily_cache(points_avg_season=None)
    no_games = p1(world([]), daily_cache=cache_without)
    assert (v(no_games, 2), v(no_games, 29), tags(no_games)["29"]) == (None, None, MISSING)


# --- 31 to 36: recent minutes, DNPs, slope, z-score ------------------------------------------


def test_q30_means_use_every_game_of_the_last_30_days() -> None:
    rows = (
        games("p1", [20], 1, minutes_played=40.0)
        + games("p1", [10], 30, minutes_played=20.0)
        + games("p1", [99], 31, minutes_played=10.0)
    )
    row = p1(world(player_rows=rows))
    assert v(row, 31) == 30.0
    assert v(row, 32) == pytest.approx((20 / 40 + 10 / 20) / 2, abs=1e-12)
    old = p1(world(player_rows=games("p1", [20], 31)))
    assert (v(old, 31), v(old, 32)) == (None, None)


def test_dnp_rate_over_the_newest_10_rows_of_any_status() -> None:
    dnp = {"is_dnp": True, "is_active": False, "minutes_played": 0.0}
    rows = games("p1", [0, 0], 1, **dnp) + games("p1", [20] * 12, 3)
    assert v(p1(world(player_rows=rows)), 33) == 0.2
    two = games("p1", [0], 1, **dnp) + games("p1", [20], 2)
    assert v(p1(world(player_rows=two)), 33) is None  # 2 rows < 3
    three = two + games("p1", [20], 3, is_dnp=None)
    assert v(p1(world(player_rows=three)), 33) == pytest.approx(1 / 3)
    far = games("p1", [20] * 3, 61)  # older than D - 60
    assert v(p1(world(player_rows=far)), 33) is None


def slope_by_hand(newest_first: Sequence[float]) -> float:
    y = list(reversed(newest_first))
    m = len(y)
    x = range(1, m + 1)
    sx, sy = sum(x), sum(y)
    sxy = sum(a * b for a, b in zip(x, y, strict=True))
    sxx = sum(a * a for a in x)
    return (m * sxy - sx * sy) / (m * sxx - sx * sx)


def test_slopes_by_hand() -> None:
    """Points newest first 30, 28, 20, 21, 19, 22 x 5 (twelve games)."""
    points = [30, 28, 20, 21, 19] + [22] * 7
    row = p1(world(points))
    # newest 10, oldest at x = 1: 22 x 5, 19, 21, 20, 28, 30 -> 490 / 825
    assert v(row, 34) == pytest.approx(490 / 825, abs=1e-12)
    assert v(row, 34) == pytest.approx(slope_by_hand(points[:10]), abs=1e-12)
    # newest 7: 22, 22, 19, 21, 20, 28, 30 -> 259 / 196
    assert v(row, 44) == pytest.approx(259 / 196, abs=1e-12)


@pytest.mark.parametrize(
    ("points", "slope10", "slope7"),
    [
        ([10, 20, 30, 40], None, -10.0),  # n = 4: 44 yes, 34 needs 5
        ([10, 20, 30], None, None),
        ([25, 20, 15, 10, 5], -5.0 * -1, 5.0),  # rising by 5 a game
        ([7] * 6, 0.0, 0.0),
    ],
)
def test_slope_minimums(points: list[int], slope10: float | None, slope7: float | None) -> None:
    row = p1(world(points))
    assert v(row, 34) == (None if slope10 is None else pytest.approx(slope10))
    assert v(row, 44) == (None if slope7 is None else pytest.approx(slope7))


@pytest.mark.parametrize(
    ("cache", "zscore", "breakout"),
    [
        (
            {"points_avg_last_5": 25.0, "points_avg_season": 23.0, "points_std_last_10": 4.0},
            0.5,
            0.0,
        ),
        (
            {"points_avg_last_5": 30.0, "points_avg_season": 20.0, "points_std_last_10": 2.0},
            3.0,
            1.0,
        ),
        (
            {"points_avg_last_5": 10.0, "points_avg_season": 20.0, "points_std_last_10": 1.0},
            -3.0,
            0.0,
        ),
        (
            {"points_avg_last_5": 23.0, "points_avg_season": 23.0, "points_std_last_10": 0.0},
            None,
            0.0,
        ),
        (
            {"points_avg_last_5": 23.1, "points_avg_season": 23.0, "points_std_last_10": 0.0},
            None,
            1.0,
        ),
    ],
)
def test_zscore_and_breakout_from_the_stored_features(
    cache: dict[str, Any], zscore: float | None, breakout: float
) -> None:
    row = p1(world([20] * 10), daily_cache=daily_cache(**cache))
    assert (v(row, 35), v(row, 36)) == (zscore, breakout)


def test_zscore_and_breakout_missing_when_f3_is_a_default() -> None:
    """One game: no std from P4 nor Phase 3, so f3 is 'default' and both are missing."""
    row = p1(world([20]), daily_cache=None)
    assert row["feature_sources"][3] == "default"
    assert (v(row, 35), v(row, 36), tags(row)["35"], tags(row)["36"]) == (
        None,
        None,
        MISSING,
        MISSING,
    )
    assert row["required_default_count"] >= 3 and row["is_quality_ready"] is False


# --- 37 to 42: the context and the team row --------------------------------------------------


def test_context_and_team_row_features() -> None:
    team_row = {
        "team_abbr": "AAA",
        "game_id": "G1",
        "game_date": D,
        "season_year": SEASON,
        "game_total": 230.5,
        "game_spread": -6.5,
        "processed_at": UPSTREAM_AT,
    }
    other = team_row | {"team_abbr": "BBB", "game_spread": 6.5}
    w = world(
        [20] * 10,
        team_context_rows=[team_row, other],
        star_teammates_out=2,
        days_rest=3,
        minutes_in_last_7_days=101.5,
    )
    row = p1(w)
    assert [v(row, i) for i in range(37, 43)] == [2.0, 230.5, 3.0, 101.5, 6.5, 118.5]
    assert {tags(row)[str(i)] for i in range(37, 43)} == {"phase3"}
    bare = p1(world([20] * 10))
    assert [v(bare, i) for i in (37, 38, 40, 41, 42)] == [None] * 5


def test_optional_columns_absent_from_phase3_give_missing_features() -> None:
    w = world([20] * 10, slate_line=20.5, lines={3: 19.5})
    stripped = Phase3Frames(
        w.player_games,
        w.team_defense,
        w.team_offense,
        w.player_context.drop("current_points_line"),
        w.team_context.drop("game_total", "game_spread"),
    )
    row = p1(stripped)
    assert [v(row, i) for i in (25, 28, 38, 41, 42, 51, 54, 55)] == [
        None, 0.0, None, None, None, None, None, None,
    ]  # fmt: skip


# --- 43 to 49: the last 60 days --------------------------------------------------------------


def test_last_3_deviation_and_run_below_average() -> None:
    """Q60 newest first 10, 12, 30, 20, 28: mean 20, sd (ddof 1) sqrt(78)."""
    points = [10, 12, 30, 20, 28]
    row = p1(world(points))
    assert v(row, 43) == pytest.approx(52 / 3, abs=1e-12)
    sd = statistics.stdev(points)
    assert v(row, 45) == pytest.approx((52 / 3 - 20) / sd, abs=1e-12)
    assert v(row, 46) == 2.0  # 10 and 12 below 20; 30 reaches it


@pytest.mark.parametrize(
    ("points", "last3", "deviation", "below"),
    [
        ([15], 15.0, None, 0.0),  # n = 1: no sd
        ([15, 15, 15], 15.0, 0.0, 0.0),  # sd 0 -> 0.0; equal to the mean is not below
        ([10, 20], 15.0, 0.0, 1.0),  # f43 is the mean of all 2
        ([], None, None, None),
    ],
)
def test_last_3_minimums(
    points: list[int], last3: float | None, deviation: float | None, below: float | None
) -> None:
    row = p1(world(points))
    assert (v(row, 43), v(row, 45), v(row, 46)) == (last3, deviation, below)


def test_usage_rate_last_5_skips_unknown_usage() -> None:
    usages = [None, 30.0, None, 20.0, 10.0, 40.0, 50.0, 60.0]
    rows = [g | {"usage_rate": u} for g, u in zip(games("p1", [20] * 8), usages, strict=True)]
    assert v(p1(world(player_rows=rows)), 48) == pytest.approx(30.0)
    two = [
        g | {"usage_rate": u}
        for g, u in zip(games("p1", [20] * 3), [10.0, None, 20.0], strict=True)
    ]
    assert v(p1(world(player_rows=two)), 48) is None


@pytest.mark.parametrize(
    ("days_back", "teams", "expected"),
    [
        # g1..g5 oldest first, no change: min(n, 30) = 5
        ([9, 7, 5, 3, 1], ["AAA"] * 5, 5.0),
        # team change at the 4th game (i = 4): n - i = 1 game after it
        ([9, 7, 5, 3, 1], ["CCC", "CCC", "CCC", "AAA", "AAA"], 1.0),
        # a 15-day gap before the 3rd game: 2; a later team change at the 5th wins: 0
        ([40, 38, 20, 18, 16], ["AAA"] * 5, 2.0),
        ([40, 38, 20, 18, 16], ["AAA"] * 4 + ["CCC"], 0.0),
        # exactly 14 days is no change
        ([30, 16, 14], ["AAA"] * 3, 3.0),
        # the gap from the newest game to D does not count, nor the context team
        ([50, 48], ["CCC", "CCC"], 2.0),
    ],
)
def test_games_since_structural_change(
    days_back: list[int], teams: list[str], expected: float
) -> None:
    rows = [
        games("p1", [20], back, team_abbr=team)[0]
        for back, team in zip(days_back, teams, strict=True)
    ]
    assert v(p1(world(player_rows=rows)), 49) == expected


def test_structural_change_only_compares_consecutive_q60_games() -> None:
    """The game before Q60 (61 days back, another team) is not g1's predecessor."""
    rows = games("p1", [20], 61, team_abbr="CCC") + games("p1", [20, 20], 1)
    assert v(p1(world(player_rows=rows)), 49) == 2.0
    assert v(p1(world([])), 49) is None


def test_49_caps_at_30_games() -> None:
    rows = games("p1", [20] * 40)
    assert v(p1(world(player_rows=rows)), 49) == 30.0


# --- 51, 52, 55, 56: against the line ----------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "line", "over", "under"),
    [
        ([25, 24, 18, 30], 20.0, 2.0, 0.0),  # newest first: over, over, under -> stop
        ([15, 20, 18, 30], 20.0, 0.0, 2.0),  # under, equal (passed), under, over -> stop
        ([20, 20], 20.0, 0.0, 0.0),
        ([], 20.0, 0.0, 0.0),  # no game: 0
        ([25], None, None, None),  # no line: NULL
    ],
)
def test_prop_streaks_walk_q30_newest_first(
    points: list[int], line: float | None, over: float | None, under: float | None
) -> None:
    row = p1(world(points, slate_line=line))
    assert (v(row, 51), v(row, 52)) == (over, under)


def test_streaks_stop_at_30_days() -> None:
    rows = games("p1", [25, 25], 1) + games("p1", [25], 31)
    assert v(p1(world(player_rows=rows, slate_line=20.0)), 51) == 2.0


def test_over_rate_and_margin_use_each_games_own_line() -> None:
    """Games 1..7 days back with points 25, 20, 18, 30, 22, 21, 19; lines known on 6 of
    them (not day 2): G newest first = (25, 20.5), (18, 18.0), (30, 29.5), (22, 22.0),
    (21, 20.0), (19, 20.0)."""
    points = [25, 20, 18, 30, 22, 21, 19]
    lines = {1: 20.5, 3: 18.0, 4: 29.5, 5: 22.0, 6: 20.0, 7: 20.0}
    row = p1(world(points, lines=lines))
    # over: 25 > 20.5, 30 > 29.5, 21 > 20.0; equal is not over -> 3 of 6
    assert v(row, 55) == 0.5
    # newest 5: 4.5 + 0 + 0.5 + 0 + 1.0 = 6.0 / 5
    assert v(row, 56) == pytest.approx(1.2, abs=1e-12)
    assert v(row, 25) is None  # f25 is not used


@pytest.mark.parametrize(
    ("known", "rate", "margin"), [(4, None, 0.0), (2, None, None), (5, 0.6, 0.4)]
)
def test_over_rate_and_margin_minimums(
    known: int, rate: float | None, margin: float | None
) -> None:
    """Points 22, 18, 22, 18, 22 against a 20.0 line on the newest `known` games."""
    points = [22, 18, 22, 18, 22]
    lines = {back: 20.0 for back in range(1, known + 1)}
    row = p1(world(points, lines=lines))
    assert v(row, 55) == rate
    assert v(row, 56) == (None if margin is None else pytest.approx(margin))


# --- 57, 58, 59 -----------------------------------------------------------------------------


def test_blowout_risk_over_the_teams_newest_10_with_the_opponents_row() -> None:
    """AAA's 12 games: the newest 10 are taken first; 2 of them lack BBB's row and drop out."""
    aaa, bbb = [], []
    margins = [20, 3, 15, 14, -16, 1, 2, 3, 30, 4, 40, 40]  # newest first
    for i, margin in enumerate(margins):
        day = D - timedelta(days=i + 1)
        gid = f"g{i}"
        aaa.append(
            {"game_id": gid, "game_date": day, "season_year": SEASON, "team_abbr": "AAA",
             "opponent_team_abbr": "BBB", "points_scored": 100 + margin,
             "processed_at": UPSTREAM_AT}
        )  # fmt: skip
        if i not in (1, 8):  # BBB's rows of g1 and g8 are missing
            bbb.append(aaa[-1] | {"team_abbr": "BBB", "opponent_team_abbr": "AAA",
                                  "points_scored": 100})  # fmt: skip
    row = p1(world([20] * 10, offense_rows=aaa + bbb))
    # newest 10 = g0..g9; without g1 and g8: 20, 15, -16 are >= 15 of 8
    assert v(row, 57) == 3 / 8
    only_missing = [r for r in aaa if r["game_id"] in ("g1", "g8")]
    assert v(p1(world([20] * 10, offense_rows=only_missing)), 57) is None


def test_blowout_risk_window_is_60_days() -> None:
    rows = team_games("AAA", [True], 61, opponent_team_abbr="BBB", points_scored=130)
    rows += team_games("BBB", [False], 61, opponent_team_abbr="AAA", points_scored=100)
    for r in rows:
        r["game_id"] = "old"
    assert v(p1(world([20] * 10, offense_rows=rows)), 57) is None


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        ([30.0, 34.0, 26.0], 4.0),
        ([30.0, 34.0], None),
        ([20.0] * 4 + [30.0] * 6 + [99.0], statistics.stdev([20.0] * 4 + [30.0] * 6)),
    ],
)
def test_minutes_volatility(minutes: list[float], expected: float | None) -> None:
    rows = [
        g | {"minutes_played": m}
        for g, m in zip(games("p1", [20] * len(minutes)), minutes, strict=True)
    ]
    got = v(p1(world(player_rows=rows)), 58)
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-12))


def test_opponent_pace_mismatch() -> None:
    row = p1(world([20] * 10))
    assert v(row, 59) == 101.0 - 99.0  # team_pace (P4) - opponent_pace (P1)


# --- 16.3: weights, categories, readiness -------------------------------------------------------


def test_category_features_and_required_set() -> None:
    assert CATEGORY_FEATURES["matchup"] == (5, 6, 7, 8, 13, 14)
    assert CATEGORY_FEATURES["vegas"] == (25, 26, 27, 28)
    assert len(CATEGORY_FEATURES["player_history"]) == 24
    assert len(CATEGORY_FEATURES["game_context"]) == 22
    assert (*range(25), *range(28, 37)) == REQUIRED_FEATURES
    everything = sorted(i for c in CATEGORY_FEATURES.values() for i in c)
    assert everything == list(range(60))


def test_quality_pct_is_one_division_with_missing_at_0() -> None:
    frame_ = _tag_frame({25: "phase3", 26: "missing", 27: "missing", 28: "calculated"})
    assert frame_.select(quality_pct("vegas")).item() == 175.0 / 4
    matchup = _tag_frame({5: "default", 13: "phase3"}).select(quality_pct("matchup"))
    assert matchup.item() == (40 + 75 + 4 * 100) / 6


@pytest.mark.parametrize(
    ("score", "matchup", "history", "required", "training", "alert", "status"),
    [
        (85.0, 70.0, 80.0, 0, True, "green", "COMPLETE"),
        (84.99, 70.0, 80.0, 0, False, "green", "COMPLETE"),
        (97.0, 69.99, 100.0, 0, False, "yellow", "COMPLETE"),
        (97.0, 100.0, 79.99, 0, False, "green", "COMPLETE"),
        (97.0, 100.0, 100.0, 1, False, "yellow", "COMPLETE"),
        (69.99, 100.0, 100.0, 0, False, "yellow", "COMPLETE"),
        (97.0, 49.99, 100.0, 0, False, "red", "MATCHUP_UNAVAILABLE"),
        (49.99, 100.0, 100.0, 0, False, "red", "COMPLETE"),
        (97.0, 100.0, 100.0, 5, False, "red", "COMPLETE"),
        (97.0, 50.0, 100.0, 4, False, "yellow", "COMPLETE"),
    ],
)
def test_training_ready_alert_level_and_matchup_status(
    score: float,
    matchup: float,
    history: float,
    required: int,
    training: bool,
    alert: str,
    status: str,
) -> None:
    frame_ = pl.DataFrame(
        {
            "feature_quality_score": [score],
            "matchup_quality_pct": [matchup],
            "player_history_quality_pct": [history],
            "required_default_count": [required],
        }
    )
    got = frame_.select(
        is_training_ready().alias("t"),
        quality_alert_level().alias("a"),
        matchup_data_status().alias("s"),
    ).row(0)
    assert got == (training, alert, status)


def test_a_missing_composite_row_makes_the_matchup_unavailable() -> None:
    """No P3 row: 5 to 8 default (40), 13 and 14 from P1 (100): m = 560 / 6 < 70 -> yellow."""
    row = p1(world([20] * 10), composite_factors=None)
    assert row["matchup_quality_pct"] == (4 * 40 + 2 * 100) / 6
    assert (row["matchup_data_status"], row["quality_alert_level"]) == ("COMPLETE", "yellow")
    assert row["required_default_count"] == 4 and row["is_quality_ready"] is False
    both = p1(world([20] * 10), composite_factors=None, team_defense_zones=None)
    assert both["matchup_quality_pct"] == (4 * 40 + 2 * 75) / 6


# --- point in time and row order ----------------------------------------------------------------


def _later_changed(frames: Phase3Frames, day: date) -> Phase3Frames:
    """Every game row on or after `day` changed, more games added after it, and the lines of
    context rows after `day` moved: nothing a build for `day` may read."""
    on_or_after = pl.col("game_date") >= day
    player_games = frames.player_games.with_columns(
        pl.when(on_or_after).then(pl.col("points") + 7).otherwise(pl.col("points")).alias("points"),
        pl.when(on_or_after)
        .then(pl.col("minutes_played") / 2)
        .otherwise(pl.col("minutes_played"))
        .alias("minutes_played"),
        pl.when(on_or_after).then(pl.lit(True)).otherwise(pl.col("is_dnp")).alias("is_dnp"),
    )
    offense = frames.team_offense.with_columns(
        pl.when(on_or_after)
        .then(pl.col("points_scored") + 30)
        .otherwise(pl.col("points_scored"))
        .alias("points_scored")
    )
    context = frames.player_context.with_columns(
        pl.when(pl.col("game_date") > day)
        .then(pl.lit(44.5))
        .otherwise(pl.col("current_points_line"))
        .alias("current_points_line")
    )
    return Phase3Frames(player_games, frames.team_defense, offense, context, frames.team_context)


def _p5(frames: Phase3Frames, days: Sequence[date]) -> pl.DataFrame:
    return build_outputs(frames, days, BUILT_AT)["ml_feature_store_v2"]


@pytest.fixture(scope="module")
def season_2024() -> tuple[Phase3Frames, list[date]]:
    return season_frames(SEASON_2024)


@pytest.fixture(scope="module")
def season_2023() -> tuple[Phase3Frames, list[date]]:
    return season_frames(SEASON_2023)


def test_point_in_time_games_on_or_after_d_do_not_change_d(
    season_2024: tuple[Phase3Frames, list[date]],
) -> None:
    frames, _ = season_2024
    for day in (date(2024, 12, 10), date(2025, 1, 8)):
        before = _p5(frames, [day])
        after = _p5(_later_changed(frames, day), [day])
        assert before.height > 20
        assert_frame_equal(before, after)


def test_row_order_and_the_other_dates_built_do_not_change_a_row(
    season_2024: tuple[Phase3Frames, list[date]],
) -> None:
    frames, _ = season_2024
    days = [date(2024, 11, 20), date(2025, 1, 8), date(2025, 1, 20)]
    alone = pl.concat([_p5(frames, [d]) for d in days])
    shuffled = Phase3Frames(
        *(getattr(frames, f).sample(fraction=1.0, shuffle=True, seed=7) for f in (
            "player_games", "team_defense", "team_offense", "player_context", "team_context"
        ))
    )  # fmt: skip
    together = _p5(shuffled, days)
    assert_frame_equal(alone.drop("created_at"), together.drop("created_at"))


# --- an independent implementation: plain Python over rows ---------------------------------------


def _qualifying(row: dict[str, Any]) -> bool:
    return bool(row["is_active"]) and row["is_dnp"] is not True and (row["minutes_played"] or 0) > 0


def _newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["game_date"], r["game_id"]), reverse=True)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _slope(points_newest_first: Sequence[float]) -> float:
    return slope_by_hand(points_newest_first)


def naive_features(frames: Phase3Frames, p5: pl.DataFrame) -> dict[tuple[str, date], list]:
    """Features 25 to 59 of every P5 row, read literally from SPEC 16.2, row by row."""
    box: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in frames.player_games.iter_rows(named=True):
        box[r["player_lookup"]].append(r)
    context_cols = frames.player_context.columns
    ctx: dict[tuple[str, date], dict[str, Any]] = {}
    for r in frames.player_context.iter_rows(named=True):
        if "current_points_line" not in context_cols:
            r["current_points_line"] = None
        ctx[(r["player_lookup"], r["game_date"])] = r
    team_ctx = {
        (r["team_abbr"], r["game_date"]): r for r in frames.team_context.iter_rows(named=True)
    }
    offense: dict[str, list[dict[str, Any]]] = defaultdict(list)
    offense_by_key = {}
    for r in frames.team_offense.iter_rows(named=True):
        offense[r["team_abbr"]].append(r)
        offense_by_key[(r["team_abbr"], r["game_id"])] = r

    out: dict[tuple[str, date], list] = {}
    for row in p5.iter_rows(named=True):
        player, day = row["player_lookup"], row["game_date"]
        if row["data_source"] == "early_season":
            out[(player, day)] = [None] * 35
            continue
        f = {i: row[f"feature_{i}_value"] for i in range(25)}
        c = ctx[(player, day)]
        season = season_of(day)
        season_rows = [
            r for r in box[player] if r["season_year"] == season and r["game_date"] < day
        ]
        q_all = _newest_first([r for r in season_rows if _qualifying(r)])
        q60 = [r for r in q_all if r["game_date"] >= day - timedelta(days=60)]
        q30 = [r for r in q_all if r["game_date"] >= day - timedelta(days=30)]
        r10 = _newest_first([r for r in season_rows if r["game_date"] >= day - timedelta(days=60)])[
            :10
        ]
        n = len(q60)
        pts = [float(r["points"]) for r in q60]

        def line_of(g: dict[str, Any], p: str = player, s: int = season) -> float | None:
            lc = ctx.get((p, g["game_date"]))
            return None if lc is None or lc["season_year"] != s else lc["current_points_line"]

        f25 = c["current_points_line"]
        vs = [r for r in q_all if r["opponent_team_abbr"] == c["opponent_team_abbr"]]
        feats: dict[int, float | None] = {i: None for i in range(25, 60)}
        feats[25] = f25
        feats[28] = 1.0 if f25 is not None else 0.0
        feats[29] = _mean([float(r["points"]) for r in vs]) if vs else f[2]
        feats[30] = float(len(vs))
        if q30:
            feats[31] = _mean([r["minutes_played"] for r in q30])
            feats[32] = _mean([r["points"] / r["minutes_played"] for r in q30])
        if len(r10) >= 3:
            feats[33] = sum(1 for r in r10 if r["is_dnp"] is True) / len(r10)
        if n >= 5:
            feats[34] = _slope(pts[: min(10, n)])
        if f[0] is not None and f[2] is not None and f[3] is not None:
            if f[3] != 0:
                feats[35] = max(-3.0, min(3.0, (f[0] - f[2]) / f[3]))
            feats[36] = 1.0 if f[0] > f[2] + 1.5 * f[3] else 0.0
        stars = c["star_teammates_out"]
        feats[37] = None if stars is None else float(stars)
        team = team_ctx.get((c["team_abbr"], day))
        total = None if team is None else team.get("game_total")
        spread = None if team is None else team.get("game_spread")
        feats[38] = total
        feats[39] = None if c["days_rest"] is None else float(c["days_rest"])
        feats[40] = c["minutes_in_last_7_days"]
        feats[41] = None if spread is None else abs(spread)
        feats[42] = None if total is None or spread is None else (total - spread) / 2
        if n >= 1:
            feats[43] = _mean(pts[: min(3, n)])
            mean = _mean(pts)
            feats[46] = float(next((i for i, p in enumerate(pts) if p >= mean), n))
            oldest_first = list(reversed(q60))
            changes = [
                i
                for i in range(2, n + 1)
                if oldest_first[i - 1]["team_abbr"] != oldest_first[i - 2]["team_abbr"]
                or (oldest_first[i - 1]["game_date"] - oldest_first[i - 2]["game_date"]).days > 14
            ]
            feats[49] = float(n - max(changes)) if changes else float(min(n, 30))
        if n >= 2:
            sd = statistics.stdev(pts)
            feats[45] = 0.0 if sd == 0 else (feats[43] - _mean(pts)) / sd  # type: ignore[operator]
        if n >= 4:
            feats[44] = _slope(pts[: min(7, n)])
        usage = [r["usage_rate"] for r in q60 if r["usage_rate"] is not None]
        if len(usage) >= 3:
            feats[48] = _mean(usage[:5])
        if f25 is not None:
            over = under = 0
            for r in q30:
                if r["points"] > f25:
                    if under > 0:
                        break
                    over += 1
                elif r["points"] < f25:
                    if over > 0:
                        break
                    under += 1
            feats[51], feats[52] = float(over), float(under)
            if f[2] is not None:
                feats[53] = f25 - f[2]
            history = [
                r
                for (p, d), r in ctx.items()
                if p == player
                and r["season_year"] == season
                and day - timedelta(days=14) <= d < day
                and r["current_points_line"] is not None
            ]
            if history:
                feats[54] = f25 - max(history, key=lambda r: r["game_date"])["current_points_line"]
        g = [(r, line_of(r)) for r in q60 if line_of(r) is not None]
        if len(g) >= 5:
            newest = g[: min(10, len(g))]
            feats[55] = sum(1 for r, line in newest if r["points"] > line) / len(newest)
        if len(g) >= 3:
            newest = g[: min(5, len(g))]
            feats[56] = _mean([r["points"] - line for r, line in newest])
        team_games_ = _newest_first(
            [
                r
                for r in offense[c["team_abbr"]]
                if r["season_year"] == season and day - timedelta(days=60) <= r["game_date"] < day
            ]
        )[:10]
        paired = [
            (r, offense_by_key[(r["opponent_team_abbr"], r["game_id"])])
            for r in team_games_
            if (r["opponent_team_abbr"], r["game_id"]) in offense_by_key
        ]
        if paired:
            feats[57] = sum(
                1 for r, o in paired if abs(r["points_scored"] - o["points_scored"]) >= 15
            ) / len(paired)
        if min(10, n) >= 3:
            feats[58] = statistics.stdev([r["minutes_played"] for r in q60[:10]])
        if f[22] is not None and f[14] is not None:
            feats[59] = f[22] - f[14]
        out[(player, day)] = [feats[i] for i in range(25, 60)]
    return out


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0.0, abs_tol=TOLERANCE)


SAMPLES = {
    "2023": [date(2023, 10, 26), date(2023, 11, 20), date(2023, 12, 26), date(2024, 1, 15),
             date(2024, 2, 8), date(2024, 3, 1), date(2024, 3, 25), date(2024, 4, 5)],
    "2024": [date(2024, 10, 24), date(2024, 11, 13), date(2024, 12, 1), date(2024, 12, 25),
             date(2025, 1, 5), date(2025, 1, 12), date(2025, 1, 20), date(2025, 1, 26),
             date(2025, 2, 21), date(2025, 3, 20), date(2025, 4, 10)],
}  # fmt: skip


@pytest.mark.parametrize("season", ["2023", "2024"])
def test_engine_equals_an_independent_row_by_row_implementation(
    season: str,
    season_2023: tuple[Phase3Frames, list[date]],
    season_2024: tuple[Phase3Frames, list[date]],
) -> None:
    frames, _ = season_2023 if season == "2023" else season_2024
    p5 = _p5(frames, SAMPLES[season])
    expected = naive_features(frames, p5)
    assert len(expected) == p5.height > 1000
    mismatches: list[tuple[Any, ...]] = []
    known = [0] * 35
    for row in p5.iter_rows(named=True):
        want = expected[(row["player_lookup"], row["game_date"])]
        for offset, value in enumerate(want):
            got = row[VALUE_COLUMNS[25 + offset]]
            known[offset] += got is not None
            if not _close(got, value):
                mismatches.append((row["player_lookup"], row["game_date"], 25 + offset, got, value))
        json_tags = json.loads(row["feature_sources_json"])
        for offset, value in enumerate(want):
            spec = FEATURE_CONTRACT[25 + offset]
            if json_tags[str(spec.index)] != (MISSING if value is None else spec.chain[0]):
                mismatches.append((row["player_lookup"], row["game_date"], spec.index, "tag"))
    assert (len(mismatches), mismatches[:5]) == (0, [])
    # The sample exercises every feature that real Phase 3 data can fill.
    filled = {25 + i for i, count in enumerate(known) if count}
    never = {26, 27, 47, 50, 38, 41, 42}  # no source; the real files have no total/spread
    if season == "2023":
        never |= {25, 51, 52, 53, 54, 55, 56}  # no lines in 2023-24
    assert filled == set(range(25, 60)) - never


def test_real_2024_rows_carry_the_contract_columns(
    season_2024: tuple[Phase3Frames, list[date]],
) -> None:
    frames, _ = season_2024
    p5 = _p5(frames, [date(2025, 1, 5)])
    assert p5["feature_version"].unique().to_list() == ["v2_60features"]
    assert (p5["default_feature_count"] == p5["default_feature_indices"].list.len()).all()
    assert (p5["feature_quality_score"].is_not_null()).all()
    # 0 to 24: the array's value unless tagged default
    for i in range(25):
        tagged_default = p5["feature_sources"].list.get(i) == "default"
        values = p5[f"feature_{i}_value"]
        assert (values.is_null() == tagged_default).all()
        real = ~tagged_default
        assert (values.filter(real) == p5["features"].list.get(i).filter(real)).all()
    with_line = p5.filter(pl.col("feature_25_value").is_not_null())
    assert with_line.height > 30 and (with_line["feature_28_value"] == 1.0).all()


def test_points_line_column_types() -> None:
    """The optional columns are declared where the warehouses and the contract find them."""
    assert UPCOMING_PLAYER_GAME_CONTEXT.column("current_points_line").optional
    assert UPCOMING_TEAM_GAME_CONTEXT.column("game_total").optional
    assert not PLAYER_GAME_SUMMARY.column("points").optional
    assert "game_spread" not in UPCOMING_TEAM_GAME_CONTEXT.contract_column_names
    assert TEAM_OFFENSE_GAME_SUMMARY.present_column_names(["x"]) == (
        TEAM_OFFENSE_GAME_SUMMARY.column_names
    )
    assert frame(UPCOMING_TEAM_GAME_CONTEXT, []).columns[-2:] == ["game_total", "game_spread"]
    assert CALENDAR.analysis_date == D
