"""P1 team_defense_zone_analysis against SPEC sections 4 and 10, by hand-computed cases."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.team_defense_zone_analysis import PLACEHOLDER_NULLS, team_defense_zone_analysis
from nba_calendar import SlateCalendar
from tests.builders import (
    CALENDAR,
    DAY_BEFORE,
    PROCESSED_AT,
    D,
    only_row,
    team_defense,
    team_defense_frame,
    team_defense_game,
)


def run(rows: list[dict], calendar: SlateCalendar = CALENDAR) -> pl.DataFrame:
    return team_defense_zone_analysis(team_defense_frame(rows), calendar, PROCESSED_AT)


def one_team(rows: list[dict]) -> dict:
    return only_row(run(rows))


def test_worked_example_of_the_spec() -> None:
    row = one_team(team_defense("LAL", DAY_BEFORE, 15))
    assert row["paint_pct_allowed_last_15"] == pytest.approx(20 / 35)
    assert row["paint_attempts_allowed_per_game"] == 35.0
    assert row["paint_points_allowed_per_game"] == 42.0
    assert row["paint_blocks_per_game"] == 2.0
    assert row["mid_range_pct_allowed_last_15"] == pytest.approx(0.400)
    assert row["mid_range_attempts_allowed_per_game"] == 20.0
    assert row["three_pt_pct_allowed_last_15"] == pytest.approx(12 / 35)
    assert row["three_pt_attempts_allowed_per_game"] == 35.0
    assert row["defensive_rating_last_15"] == pytest.approx(112.5)
    assert row["opponent_points_per_game"] == 110.0
    assert row["opponent_pace"] == pytest.approx(99.2)
    # One team only: fewer than 10 teams, so the league defaults apply.
    assert (row["league_paint_pct"], row["league_mid_range_pct"], row["league_three_pt_pct"]) == (
        0.580,
        0.410,
        0.355,
    )
    assert row["paint_defense_vs_league_avg"] == pytest.approx(-0.857142857, abs=1e-6)
    assert row["mid_range_defense_vs_league_avg"] == pytest.approx(-1.0)
    assert row["three_pt_defense_vs_league_avg"] == pytest.approx(-1.214285714, abs=1e-6)
    assert row["strongest_zone"] == "perimeter"
    assert row["weakest_zone"] == "paint"
    assert row["data_quality_tier"] == "high"
    assert row["games_in_sample"] == 15
    assert row["calculation_notes"] is None
    assert row["insufficient_data_reason"] is None
    assert row["source_team_defense_rows_found"] == 15
    assert row["source_team_defense_completeness_pct"] == 100.0
    assert row["source_team_defense_last_updated"].date() == D
    assert len(row["data_hash"]) == 16


def test_fewer_than_ten_games_gives_a_placeholder() -> None:
    row = one_team(team_defense("LAL", DAY_BEFORE, 9))
    assert row["games_in_sample"] == 9
    assert row["data_quality_tier"] == "low"
    assert row["insufficient_data_reason"] == "Only 9 games available, need 10"
    hand_picked = {"paint_pct_allowed_last_15", "defensive_rating_last_15", "strongest_zone"}
    hand_picked |= {"three_pt_defense_vs_league_avg", "opponent_points_per_game"}
    assert hand_picked <= set(PLACEHOLDER_NULLS)
    for metric in PLACEHOLDER_NULLS:  # every metric the schema declares, these included
        assert row[metric] is None, metric
    assert row["league_paint_pct"] == 0.580
    assert row["source_team_defense_completeness_pct"] == pytest.approx(60.0)


@pytest.mark.parametrize(("games", "tier"), [(10, "medium"), (14, "medium"), (15, "high")])
def test_quality_tier(games: int, tier: str) -> None:
    assert one_team(team_defense("LAL", DAY_BEFORE, games))["data_quality_tier"] == tier


def test_only_the_last_fifteen_games_count() -> None:
    recent = team_defense("LAL", DAY_BEFORE, 15)
    older = [
        team_defense_game(
            "LAL",
            DAY_BEFORE - timedelta(days=40 + i),
            100 + i,
            opp_paint_makes=35,
            points_allowed=150,
        )
        for i in range(5)
    ]
    row = one_team(recent + older)
    assert row["games_in_sample"] == 15
    assert row["paint_pct_allowed_last_15"] == pytest.approx(20 / 35)
    assert row["opponent_points_per_game"] == 110.0


def test_a_zone_without_attempts_is_null_and_noted() -> None:
    row = one_team(
        team_defense("LAL", DAY_BEFORE, 15, opp_mid_range_attempts=0, opp_mid_range_makes=0)
    )
    assert row["mid_range_pct_allowed_last_15"] is None
    assert row["mid_range_defense_vs_league_avg"] is None
    assert row["mid_range_attempts_allowed_per_game"] == 0.0
    assert row["calculation_notes"] == "No mid-range attempts"
    assert row["strongest_zone"] == "perimeter"
    assert row["weakest_zone"] == "paint"


def test_notes_join_every_zone_without_attempts() -> None:
    row = one_team(
        team_defense(
            "LAL",
            DAY_BEFORE,
            15,
            opp_paint_attempts=0,
            opp_paint_makes=0,
            opp_three_pt_attempts=0,
            opp_three_pt_makes=0,
        )
    )
    assert row["calculation_notes"] == "No paint attempts; No three-point attempts"
    assert row["strongest_zone"] == row["weakest_zone"] == "mid_range"


def test_blocks_null_in_every_game_give_null_and_partial_blocks_divide_by_games() -> None:
    rows = team_defense("LAL", DAY_BEFORE, 15, blocks_paint=None, blocks_three_pt=None)
    rows[0]["blocks_three_pt"] = 3  # one known value: 3 / 15 games
    row = one_team(rows)
    assert row["paint_blocks_per_game"] is None
    assert row["three_pt_blocks_per_game"] == pytest.approx(3 / 15)
    assert row["mid_range_blocks_per_game"] == 1.0


@pytest.mark.parametrize(
    ("makes", "strongest", "weakest"),
    [
        # paint 0.58, mid 0.41, three 0.355 are exactly the league: all tie at 0.
        (
            {"opp_paint_makes": 29, "opp_mid_range_makes": 41, "opp_three_pt_makes": 71},
            "paint",
            "paint",
        ),
        # mid and three tie lowest; paint highest.
        (
            {"opp_paint_makes": 30, "opp_mid_range_makes": 40, "opp_three_pt_makes": 69},
            "mid_range",
            "paint",
        ),
        # paint and three tie highest: paint wins the weakest tie.
        (
            {"opp_paint_makes": 30, "opp_mid_range_makes": 38, "opp_three_pt_makes": 73},
            "mid_range",
            "paint",
        ),
    ],
)
def test_strongest_and_weakest_ties_follow_paint_mid_perimeter(
    makes: dict, strongest: str, weakest: str
) -> None:
    # Attempts 50 / 100 / 200 make the vs_league values exact multiples.
    rows = team_defense(
        "LAL",
        DAY_BEFORE,
        15,
        opp_paint_attempts=50,
        opp_mid_range_attempts=100,
        opp_three_pt_attempts=200,
        **makes,
    )
    row = one_team(rows)
    vs = [row[f"{z}_defense_vs_league_avg"] for z in ("paint", "mid_range", "three_pt")]
    assert row["strongest_zone"] == strongest, vs
    assert row["weakest_zone"] == weakest, vs


def _league(teams: int, games: int, start_offset: int = 1) -> list[dict]:
    rows = []
    for t in range(teams):
        rows += [
            team_defense_game(
                f"T{t:02d}", D - timedelta(days=start_offset + 2 * g), g, opp_paint_makes=10 + t
            )
            for g in range(games)
        ]
    return rows


def test_league_average_is_the_plain_mean_over_teams_with_ten_games_in_30_days() -> None:
    out = run(_league(teams=10, games=10))
    expected_paint = sum((10 + t) / 35 for t in range(10)) / 10
    assert out["league_paint_pct"].unique().to_list() == [pytest.approx(expected_paint)]
    assert out["league_mid_range_pct"][0] == pytest.approx(8 / 20)
    assert out["league_three_pt_pct"][0] == pytest.approx(12 / 35)


def test_league_falls_back_to_defaults_with_fewer_than_ten_qualifying_teams() -> None:
    # Ten teams, but one has only 9 games in the 30-day span.
    rows = _league(teams=9, games=10) + [
        team_defense_game("T99", D - timedelta(days=1 + 2 * g), g) for g in range(9)
    ]
    out = run(rows)
    assert out["league_paint_pct"].unique().to_list() == [0.580]
    assert out["league_three_pt_pct"].unique().to_list() == [0.355]


def test_league_window_is_the_30_days_before_d() -> None:
    # Ten games two days apart: they all fall in D-30..D-1 only when the oldest is D-30 or later.
    inside = _league(teams=10, games=10, start_offset=2)  # oldest at D-20
    assert run(inside)["league_paint_pct"][0] != 0.580
    outside = _league(teams=10, games=10, start_offset=13)  # oldest at D-31: 9 games inside
    assert run(outside)["league_paint_pct"][0] == 0.580


def test_point_in_time_games_on_or_after_d_change_nothing() -> None:
    history = team_defense("LAL", DAY_BEFORE, 15) + team_defense("BOS", DAY_BEFORE, 12)
    later = [
        team_defense_game("LAL", D + timedelta(days=i), 500 + i, opp_paint_makes=0)
        for i in range(3)
    ] + [team_defense_game("NEW", D, 900)]
    assert_frame_equal(run(history), run(history + later))


def test_last_seasons_games_are_ignored() -> None:
    last_season = team_defense("LAL", date(2024, 4, 10), 15, opp_paint_makes=0)
    current = team_defense("LAL", DAY_BEFORE, 12)
    row = one_team(current + last_season + team_defense("OLD", date(2024, 4, 10), 15))
    assert row["games_in_sample"] == 12
    assert row["paint_pct_allowed_last_15"] == pytest.approx(20 / 35)


def test_early_season_flag_marks_every_row() -> None:
    early = SlateCalendar(D, 2024, D - timedelta(days=20))
    out = run(team_defense("LAL", DAY_BEFORE, 10), early)
    assert out["early_season_flag"].to_list() == [True]
    assert run(team_defense("LAL", DAY_BEFORE, 10))["early_season_flag"].to_list() == [False]
