"""P2 player_shot_zone_analysis against SPEC sections 5 and 10, by hand-computed cases."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.player_shot_zone_analysis import player_shot_zone_analysis
from nba_calendar import SlateCalendar
from tests.builders import (
    CALENDAR,
    DAY_BEFORE,
    PROCESSED_AT,
    D,
    only_row,
    player_game,
    player_games,
    player_games_frame,
    shots,
)


def one_player(rows: list[dict]) -> dict:
    return only_row(run(rows))


def run(rows: list[dict], calendar: SlateCalendar = CALENDAR) -> pl.DataFrame:
    return player_shot_zone_analysis(player_games_frame(rows), calendar, PROCESSED_AT)


def test_worked_example_of_the_spec() -> None:
    row = one_player(player_games("lebron", DAY_BEFORE, 10))
    assert row["paint_rate_last_10"] == pytest.approx(44.444444, abs=1e-5)
    assert row["mid_range_rate_last_10"] == pytest.approx(22.222222, abs=1e-5)
    assert row["three_pt_rate_last_10"] == pytest.approx(33.333333, abs=1e-5)
    assert row["paint_pct_last_10"] == pytest.approx(0.625)
    assert row["mid_range_pct_last_10"] == pytest.approx(0.5)
    assert row["three_pt_pct_last_10"] == pytest.approx(1 / 3)
    assert (
        row["paint_attempts_per_game"],
        row["mid_range_attempts_per_game"],
        row["three_pt_attempts_per_game"],
    ) == (8.0, 4.0, 6.0)
    assert row["assisted_rate_last_10"] == pytest.approx(66.666666, abs=1e-5)
    assert row["unassisted_rate_last_10"] == pytest.approx(33.333333, abs=1e-5)
    assert row["total_shots_last_10"] == 180
    assert row["primary_scoring_zone"] == "paint"
    assert row["games_in_sample_10"] == 10
    assert row["games_in_sample_20"] == 10
    assert row["sample_quality_10"] == "excellent"
    assert row["sample_quality_20"] == "limited"
    assert row["data_quality_tier"] == "high"
    assert row["paint_rate_last_20"] is None  # G20 = 10 < 15
    assert row["games_missing_zones"] == 0
    assert row["insufficient_data_reason"] is None


def test_rates_sum_to_100() -> None:
    row = one_player(
        player_games(
            "a",
            DAY_BEFORE,
            10,
            paint_attempts=3,
            mid_range_attempts=7,
            three_pt_attempts=11,
            fg_attempts=21,
        )
    )
    total = sum(row[f"{z}_rate_last_10"] for z in ("paint", "mid_range", "three_pt"))
    assert total == pytest.approx(100.0)


def test_fewer_than_seven_games_gives_a_placeholder() -> None:
    row = one_player(player_games("rookie", DAY_BEFORE, 6))
    assert row["insufficient_data_reason"] == "Only 6 games available, need 7"
    assert row["data_quality_tier"] == "low"
    assert row["sample_quality_10"] == "limited"
    for metric in (
        "paint_rate_last_10",
        "total_shots_last_10",
        "primary_scoring_zone",
        "assisted_rate_last_10",
        "paint_attempts_per_game",
    ):
        assert row[metric] is None, metric
    assert row["games_in_sample_10"] == 6


def test_null_zone_columns_leave_the_game_out_of_every_zone_sum() -> None:
    rows = player_games("a", DAY_BEFORE, 10)
    rows[0].update(paint_attempts=None, three_pt_attempts=20, three_pt_makes=10)
    rows[1].update(mid_range_makes=None)
    row = one_player(rows)
    assert row["games_missing_zones"] == 2
    assert row["games_in_sample_10"] == 10
    assert row["total_shots_last_10"] == 8 * 18
    assert row["three_pt_pct_last_10"] == pytest.approx(1 / 3)  # the 20/10 game is left out
    assert row["paint_attempts_per_game"] == 8.0  # 64 attempts / (10 - 2) games


def test_no_game_with_known_zones_gives_null_zones_but_not_a_placeholder() -> None:
    row = one_player(player_games("a", DAY_BEFORE, 8, paint_attempts=None))
    assert row["insufficient_data_reason"] is None
    assert row["total_shots_last_10"] is None
    assert row["paint_rate_last_10"] is None
    assert row["primary_scoring_zone"] is None
    assert row["games_missing_zones"] == 8
    assert row["paint_attempts_per_game"] is None
    assert row["data_quality_tier"] == "medium"


def test_zero_attempts_gives_null_rates_and_no_primary_zone() -> None:
    no_shots = shots(paint=(0, 0), mid_range=(0, 0), three_pt=(0, 0), fg=(0, 0))
    row = one_player(player_games("a", DAY_BEFORE, 10, **no_shots))
    assert row["total_shots_last_10"] == 0
    assert row["paint_rate_last_10"] is None
    assert row["primary_scoring_zone"] is None
    assert row["assisted_rate_last_10"] is None  # no field goals made


def test_assisted_rates_use_only_games_where_they_are_known() -> None:
    rows = player_games("a", DAY_BEFORE, 10, assisted_fg_makes=None, unassisted_fg_makes=None)
    rows[0].update(assisted_fg_makes=3, fg_makes=9)
    row = one_player(rows)
    assert row["assisted_rate_last_10"] == pytest.approx(100 * 3 / 9)
    assert row["unassisted_rate_last_10"] is None


@pytest.mark.parametrize(("games", "has_20"), [(14, False), (15, True), (25, True)])
def test_the_20_game_window_needs_15_games(games: int, has_20: bool) -> None:
    rows = player_games("a", DAY_BEFORE, games, every_days=1)
    row = one_player(rows)
    assert row["games_in_sample_20"] == min(games, 20)
    assert (row["paint_rate_last_20"] is not None) is has_20
    if has_20:
        assert row["paint_rate_last_20"] == pytest.approx(100 * 8 / 18)
        assert row["paint_pct_last_20"] == pytest.approx(5 / 8)


def test_the_20_game_window_sees_older_games_than_the_10_game_window() -> None:
    rows = player_games("a", DAY_BEFORE, 10, every_days=1) + [
        player_game(
            "a",
            DAY_BEFORE - timedelta(days=10 + i),
            50 + i,
            **shots(paint=(18, 9), mid_range=(0, 0), three_pt=(0, 0)),
        )
        for i in range(10)
    ]
    row = one_player(rows)
    assert row["paint_rate_last_10"] == pytest.approx(100 * 8 / 18)
    assert row["paint_rate_last_20"] == pytest.approx(100 * (80 + 180) / 360)


@pytest.mark.parametrize(
    ("paint", "mid", "three", "zone"),
    [
        (40, 20, 40, "paint"),  # paint >= 40 wins even when three >= 40
        (39, 21, 40, "perimeter"),
        (30, 35, 35, "mid_range"),  # three below 40, mid >= 35
        (34, 34, 32, "balanced"),
        (30, 36, 34, "mid_range"),
    ],
)
def test_primary_zone_rule_order(paint: int, mid: int, three: int, zone: str) -> None:
    attempts_only = shots(paint=(paint, 0), mid_range=(mid, 0), three_pt=(three, 0))
    rows = player_games(
        "a", DAY_BEFORE, 10, **attempts_only, fg_attempts=paint + mid + three, fg_makes=0
    )
    assert one_player(rows)["primary_scoring_zone"] == zone


@pytest.mark.parametrize(
    ("games", "quality_10", "tier"),
    [
        (10, "excellent", "high"),
        (7, "good", "medium"),
        (5, "limited", "low"),
        (4, "insufficient", "low"),
    ],
)
def test_sample_quality_and_tier(games: int, quality_10: str, tier: str) -> None:
    row = one_player(player_games("a", DAY_BEFORE, games))
    assert (row["sample_quality_10"], row["data_quality_tier"]) == (quality_10, tier)


def test_dnp_inactive_and_zero_minute_rows_are_not_games() -> None:
    rows = player_games("a", DAY_BEFORE, 7) + [
        player_game("a", D - timedelta(days=30), 90, is_dnp=True),
        player_game("a", D - timedelta(days=29), 91, is_active=False),
        player_game("a", D - timedelta(days=28), 92, minutes_played=0.0),
    ]
    assert one_player(rows)["games_in_sample_10"] == 7


def test_a_player_whose_latest_game_is_over_30_days_old_is_dropped() -> None:
    stale = player_games("stale", D - timedelta(days=31), 10)
    edge = player_games("edge", D - timedelta(days=30), 10)
    assert run(stale + edge)["player_lookup"].to_list() == ["edge"]


def test_point_in_time_games_on_or_after_d_change_nothing() -> None:
    history = player_games("a", DAY_BEFORE, 12) + player_games("b", DAY_BEFORE, 5)
    later = [
        player_game("a", D + timedelta(days=i), 300 + i, paint_attempts=30) for i in range(3)
    ] + [player_game("newcomer", D, 400)]
    assert_frame_equal(run(history), run(history + later))


def test_last_seasons_games_are_ignored() -> None:
    row = one_player(
        player_games("a", DAY_BEFORE, 8)
        + player_games("a", date(2024, 4, 10), 20, paint_attempts=0, paint_makes=0)
    )
    assert row["games_in_sample_20"] == 8


def test_ties_on_a_date_take_the_higher_game_id_first() -> None:
    """Nine recent games plus two on one older date: only the higher game_id fits in ten."""
    older_day = DAY_BEFORE - timedelta(days=30)
    all_paint = {
        "paint_attempts": 18,
        "mid_range_attempts": 0,
        "three_pt_attempts": 0,
        "paint_makes": 9,
        "mid_range_makes": 0,
        "three_pt_makes": 0,
    }
    rows = player_games("a", DAY_BEFORE, 9) + [
        player_game("a", older_day, 0, game_id="0022400999", **all_paint),
        player_game("a", older_day, 0, game_id="0022400100"),
    ]
    row = one_player(rows)
    assert row["games_in_sample_10"] == 10
    assert row["paint_rate_last_10"] == pytest.approx(100 * (9 * 8 + 18) / (10 * 18))
