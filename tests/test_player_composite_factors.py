"""P3 player_composite_factors against SPEC sections 6 and 10, by hand-computed cases."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from features.player_composite_factors import (
    FATIGUE_INPUTS,
    fatigue_score,
    player_composite_factors,
)
from features.player_shot_zone_analysis import player_shot_zone_analysis
from features.team_defense_zone_analysis import team_defense_zone_analysis
from nba_calendar import SlateCalendar, slate_calendar
from quality.schemas import (
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_SHOT_ZONE_ANALYSIS,
    TEAM_DEFENSE_ZONE_ANALYSIS,
)
from tests.builders import (
    CALENDAR,
    PROCESSED_AT,
    D,
    context_key,
    contexts_frame,
    frame,
    number,
    only_row,
    real_2023,
    tracking,
)

CONTEXT_AT = datetime(2025, 1, 15, 6, 0, tzinfo=UTC)
ZONES_AT = datetime(2025, 1, 15, 7, 0, tzinfo=UTC)
DEFENSE_AT = datetime(2025, 1, 15, 7, 30, tzinfo=UTC)

# The SPEC section 10 fatigue example: 100 − 15 − 10 − 10 − 8 − 12 − 10 = 35.
TIRED: dict[str, Any] = {
    "back_to_back": True,
    "games_in_last_7_days": 4,
    "minutes_in_last_7_days": 245.5,
    "avg_minutes_per_game_last_7": 35.1,
    "back_to_backs_last_14_days": 2,
    "player_age": 40,
}


# --- builders -------------------------------------------------------------------------------


def context(player: str = "p", **values: Any) -> dict[str, Any]:
    """A neutral context row for D: fresh, no pace edge, no usage change, every input known."""
    row: dict[str, Any] = {
        **context_key(player, game_id="g20250115AAABBB"),
        "home_game": True,
        "back_to_back": False,
        "season_phase": "regular_season",
        "days_rest": 1,
        "opponent_days_rest": 1,
        "games_in_last_7_days": 3,
        "games_in_last_14_days": 6,
        "minutes_in_last_7_days": 90.0,
        "minutes_in_last_14_days": 180.0,
        "avg_minutes_per_game_last_7": 30.0,
        "back_to_backs_last_14_days": 0,
        "fourth_quarter_minutes_last_7": 20.0,
        "avg_usage_rate_last_7_games": 20.0,
        "projected_usage_rate": 20.0,
        "star_teammates_out": 0,
        "pace_differential": 0.0,
        "opponent_pace_last_10": 100.0,
        "player_age": 25,
        "player_status": "available",
        "processed_at": CONTEXT_AT,
    }
    row.update(values)
    return row


def _tier_and_audit(placeholder: bool, reason: str, processed_at: datetime) -> dict[str, Any]:
    """The tier, placeholder reason and audit columns of a P1 or P2 row."""
    return {
        "data_quality_tier": "low" if placeholder else "high",
        "early_season_flag": False,
        "insufficient_data_reason": reason if placeholder else None,
        "data_hash": "0" * 16,
        "processed_at": processed_at,
    }


def zone_row(
    player: str = "p",
    zone: str | None = "paint",
    rates: tuple[float, float, float] = (50.0, 20.0, 30.0),
    placeholder: bool = False,
    **values: Any,
) -> dict[str, Any]:
    """A P2 row for D with the given primary zone and paint / mid-range / three rates."""
    paint, mid, three = (None, None, None) if placeholder else rates
    row: dict[str, Any] = {
        "player_lookup": player,
        "universal_player_id": f"{player}_001",
        "analysis_date": D,
        "season_year": 2024,
        "paint_rate_last_10": paint,
        "mid_range_rate_last_10": mid,
        "three_pt_rate_last_10": three,
        "games_in_sample_10": 3 if placeholder else 10,
        "games_in_sample_20": 3 if placeholder else 10,
        "sample_quality_10": "insufficient" if placeholder else "excellent",
        "sample_quality_20": "insufficient" if placeholder else "limited",
        "primary_scoring_zone": None if placeholder else zone,
        **_tier_and_audit(placeholder, "Only 3 games available, need 7", ZONES_AT),
    }
    return row | values


def defense_row(
    team: str = "BBB",
    vs_league: tuple[float | None, float | None, float | None] = (0.0, 0.0, 0.0),
    placeholder: bool = False,
    **values: Any,
) -> dict[str, Any]:
    """A P1 row for D with the given paint / mid-range / three vs_league values."""
    paint, mid, three = (None, None, None) if placeholder else vs_league
    row: dict[str, Any] = {
        "team_abbr": team,
        "analysis_date": D,
        "season_year": 2024,
        "paint_defense_vs_league_avg": paint,
        "mid_range_defense_vs_league_avg": mid,
        "three_pt_defense_vs_league_avg": three,
        "games_in_sample": 4 if placeholder else 15,
        "league_paint_pct": 0.58,
        "league_mid_range_pct": 0.41,
        "league_three_pt_pct": 0.355,
        **_tier_and_audit(placeholder, "Only 4 games available, need 10", DEFENSE_AT),
    }
    return row | values


def run(
    contexts: list[dict[str, Any]],
    zones: list[dict[str, Any]] | None = None,
    defenses: list[dict[str, Any]] | None = None,
    calendar: SlateCalendar = CALENDAR,
) -> pl.DataFrame:
    return player_composite_factors(
        contexts_frame(contexts),
        frame(PLAYER_SHOT_ZONE_ANALYSIS, [zone_row()] if zones is None else zones),
        frame(TEAM_DEFENSE_ZONE_ANALYSIS, [defense_row()] if defenses is None else defenses),
        calendar,
        PROCESSED_AT,
    )


def one(
    zones: list[dict[str, Any]] | None = None,
    defenses: list[dict[str, Any]] | None = None,
    **values: Any,
) -> dict[str, Any]:
    return only_row(run([context(**values)], zones, defenses))


def matchup(
    zone: str | None,
    rates: tuple[float, float, float],
    vs_league: tuple[float | None, float | None, float | None],
) -> dict[str, Any]:
    return one(
        zones=[zone_row(zone=zone, rates=rates)], defenses=[defense_row(vs_league=vs_league)]
    )


# --- SPEC section 10 ------------------------------------------------------------------------


def test_worked_example_fatigue() -> None:
    row = one(**TIRED)
    assert row["fatigue_score"] == 35
    assert row["fatigue_adjustment"] == pytest.approx(-3.25)


@pytest.mark.parametrize(
    ("paint_rate", "paint_vs_league", "expected"), [(65.0, 4.3, 4.3), (70.0, 6.0, 7.2)]
)
def test_worked_example_mismatch(
    paint_rate: float, paint_vs_league: float, expected: float
) -> None:
    rates = (paint_rate, 10.0, 90.0 - paint_rate)
    row = matchup("paint", rates, (paint_vs_league, -3.0, -3.0))
    assert row["shot_zone_mismatch_score"] == pytest.approx(expected)
    assert row["shot_zone_adjustment"] == pytest.approx(expected)


def test_worked_example_pace() -> None:
    row = one(pace_differential=5.2)
    assert row["pace_score"] == pytest.approx(2.6)
    assert row["pace_adjustment"] == pytest.approx(2.6)


@pytest.mark.parametrize(("stars_out", "expected"), [(1, 1.725), (2, 1.95)])
def test_worked_example_usage(stars_out: int, expected: float) -> None:
    row = one(
        projected_usage_rate=30.0, avg_usage_rate_last_7_games=25.0, star_teammates_out=stars_out
    )
    assert row["usage_spike_score"] == pytest.approx(expected)
    assert row["usage_spike_adjustment"] == pytest.approx(expected)


# --- fatigue --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, 100),
        ({"back_to_back": True}, 85),
        ({"back_to_back": True, "days_rest": 0}, 85),
        ({"back_to_back": True, "days_rest": 3}, 85),  # no rest bonus on a back-to-back
        ({"days_rest": 3, "games_in_last_7_days": 4}, 95),  # +5 shows under a penalty
        ({"days_rest": 2, "games_in_last_7_days": 4}, 90),
        ({"days_rest": 3}, 100),  # 105 clamped
        ({"games_in_last_7_days": 3}, 100),
        ({"games_in_last_7_days": 4}, 90),
        ({"games_in_last_7_days": 5}, 90),
        ({"minutes_in_last_7_days": 240.0}, 100),
        ({"minutes_in_last_7_days": 240.5}, 90),
        ({"avg_minutes_per_game_last_7": 35.0}, 100),
        ({"avg_minutes_per_game_last_7": 35.1}, 92),
        ({"back_to_backs_last_14_days": 1}, 95),
        ({"back_to_backs_last_14_days": 2}, 88),
        ({"back_to_backs_last_14_days": 3}, 88),
        ({"player_age": 29}, 100),
        ({"player_age": 30}, 95),
        ({"player_age": 34}, 95),
        ({"player_age": 35}, 90),
        ({"player_age": 41}, 90),
        (TIRED, 35),
        ({**TIRED, "days_rest": 5}, 35),
    ],
)
def test_fatigue_penalties_one_by_one(values: dict[str, Any], expected: int) -> None:
    row = one(**values)
    assert row["fatigue_score"] == expected
    assert row["fatigue_adjustment"] == pytest.approx((expected - 100) * 0.05)


@pytest.mark.parametrize("missing", FATIGUE_INPUTS)
def test_a_null_fatigue_input_applies_no_penalty(missing: str) -> None:
    tired = {**TIRED, "days_rest": 0}
    assert (
        one(**{**tired, missing: None})["fatigue_score"]
        == {
            "back_to_back": 50,
            "days_rest": 35,
            "games_in_last_7_days": 45,
            "minutes_in_last_7_days": 45,
            "avg_minutes_per_game_last_7": 43,
            "back_to_backs_last_14_days": 47,
            "player_age": 45,
        }[missing]
    )


def test_every_fatigue_input_null_is_fresh() -> None:
    nulls = {c: None for c in (*TIRED, "days_rest")}
    assert one(**nulls)["fatigue_score"] == 100


@pytest.mark.parametrize(
    ("penalty", "expected"), [(-150, 0), (-100, 0), (-99, 1), (0, 100), (5, 100), (30, 100)]
)
def test_fatigue_score_clamps_to_0_100(penalty: int, expected: int) -> None:
    out = pl.select(fatigue_score({"rule": pl.lit(penalty, dtype=pl.Int64)}).alias("score"))
    assert out.schema["score"] == pl.Int64
    assert out.item() == expected


def test_fatigue_context_lists_inputs_and_each_penalty() -> None:
    ctx = json.loads(one(**TIRED)["fatigue_context"])
    assert ctx["back_to_back"] is True
    assert ctx["minutes_in_last_7_days"] == 245.5
    assert ctx["player_age"] == 40
    assert ctx["penalties"] == {
        "back_to_back": -15,
        "rest_bonus": 0,
        "games_in_last_7_days": -10,
        "minutes_in_last_7_days": -10,
        "avg_minutes_per_game_last_7": -8,
        "back_to_backs_last_14_days": -12,
        "age": -10,
    }
    assert ctx["score"] == 35


# --- shot-zone mismatch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "rates", "vs_league", "expected"),
    [
        ("paint", (65.0, 10.0, 25.0), (4.3, 9.0, 9.0), 4.3),  # only the primary zone counts
        ("paint", (40.0, 30.0, 30.0), (4.0, 0.0, 0.0), 3.2),  # weight 40 / 50
        ("paint", (50.0, 20.0, 30.0), (5.0, 0.0, 0.0), 5.0),  # |raw| = 5: no bonus
        ("paint", (50.0, 20.0, 30.0), (5.5, 0.0, 0.0), 6.6),  # 5.5 × 1.2
        ("paint", (100.0, 0.0, 0.0), (9.0, 0.0, 0.0), 10.0),  # 10.8 clamped
        ("paint", (100.0, 0.0, 0.0), (-12.0, 0.0, 0.0), -10.0),  # −14.4 clamped
        ("mid_range", (30.0, 35.0, 35.0), (9.0, 2.0, 9.0), 1.4),  # 2 × 35 / 50
        ("mid_range", (10.0, 60.0, 30.0), (0.0, -6.0, 0.0), -7.2),  # −6 × 1 × 1.2
        ("perimeter", (25.0, 30.0, 45.0), (9.0, 9.0, -3.0), -2.7),  # three rate, 45 / 50
        ("perimeter", (20.0, 20.0, 60.0), (0.0, 0.0, -6.0), -7.2),
        ("balanced", (30.0, 30.0, 40.0), (2.0, -1.0, 3.0), 1.5),  # 0.6 − 0.3 + 1.2
        ("balanced", (34.0, 33.0, 33.0), (10.0, 8.0, 0.0), 7.248),  # 6.04 × 1.2
        ("balanced", (30.0, 30.0, 40.0), (2.0, None, 3.0), 1.8),  # NULL zone contributes 0
        ("paint", (60.0, 20.0, 20.0), (None, 4.0, 4.0), 0.0),
    ],
)
def test_mismatch_by_zone(
    zone: str,
    rates: tuple[float, float, float],
    vs_league: tuple[float | None, float | None, float | None],
    expected: float,
) -> None:
    row = matchup(zone, rates, vs_league)
    assert row["shot_zone_mismatch_score"] == pytest.approx(expected)
    assert row["warning_details"] != "MISSING_ZONE_DATA"
    assert row["data_completeness_pct"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("zones", "defenses", "zone_rows", "defense_rows", "reason"),
    [
        ([], [defense_row(vs_league=(6.0, 6.0, 6.0))], 0, 1, "no player shot-zone row"),
        ([zone_row(placeholder=True)], [defense_row()], 1, 1, "player shot-zone placeholder"),
        ([zone_row(zone=None)], [defense_row()], 1, 1, "no primary scoring zone"),
        ([zone_row(rates=(90.0, 5.0, 5.0))], [], 1, 0, "no opponent defense row"),
        ([zone_row()], [defense_row(placeholder=True)], 1, 1, "opponent defense placeholder"),
        (
            [zone_row()],
            [defense_row(team="CCC", vs_league=(8.0, 8.0, 8.0))],
            1,
            0,
            "no opponent defense row",
        ),
        (
            [zone_row(player="someone_else", rates=(90.0, 5.0, 5.0))],
            [defense_row(vs_league=(8.0, 8.0, 8.0))],
            0,
            1,
            "no player shot-zone row",
        ),
    ],
)
def test_missing_zone_data_scores_zero_and_warns(
    zones: list[dict[str, Any]],
    defenses: list[dict[str, Any]],
    zone_rows: int,
    defense_rows: int,
    reason: str,
) -> None:
    row = one(zones=zones, defenses=defenses)
    assert row["shot_zone_mismatch_score"] == 0.0
    assert row["shot_zone_adjustment"] == 0.0
    assert row["warning_details"] == "MISSING_ZONE_DATA"
    assert row["has_warnings"] is True
    assert row["data_completeness_pct"] == pytest.approx(600 / 7)
    assert row["source_player_shot_zone_rows_found"] == zone_rows
    assert row["source_player_shot_zone_completeness_pct"] == 100.0 * zone_rows
    assert row["source_team_defense_rows_found"] == defense_rows
    assert row["source_team_defense_completeness_pct"] == 100.0 * defense_rows
    assert (row["source_player_shot_zone_last_updated"] is not None) is bool(zone_rows)
    assert (row["source_team_defense_last_updated"] is not None) is bool(defense_rows)
    ctx = json.loads(row["shot_zone_context"])
    assert ctx["zone_data_available"] is False
    assert ctx["missing_reason"] == reason
    assert ctx["score"] == 0.0


def test_each_player_meets_his_own_opponent() -> None:
    out = run(
        [context("a", opponent_team_abbr="BBB"), context("b", opponent_team_abbr="CCC")],
        zones=[zone_row("a", rates=(60.0, 20.0, 20.0)), zone_row("b", rates=(60.0, 20.0, 20.0))],
        defenses=[defense_row("BBB", (2.0, 0.0, 0.0)), defense_row("CCC", (-3.0, 0.0, 0.0))],
    )
    assert out["player_lookup"].to_list() == ["a", "b"]
    assert out["shot_zone_mismatch_score"].to_list() == pytest.approx([2.0, -3.0])


def test_upstream_rows_of_another_date_are_not_used() -> None:
    other_day = D - timedelta(days=1)
    row = one(
        zones=[zone_row(analysis_date=other_day)],
        defenses=[defense_row(vs_league=(4.0, 0.0, 0.0))],
    )
    assert row["warning_details"] == "MISSING_ZONE_DATA"
    assert row["source_player_shot_zone_rows_found"] == 0


def test_shot_zone_context_holds_inputs_raw_score_and_bonus() -> None:
    row = matchup("paint", (70.0, 10.0, 20.0), (6.0, -1.0, 2.0))
    ctx = json.loads(row["shot_zone_context"])
    assert ctx["primary_scoring_zone"] == "paint"
    assert ctx["paint_rate_last_10"] == 70.0
    assert ctx["opponent_paint_vs_league"] == 6.0
    assert ctx["opponent_mid_range_vs_league"] == -1.0
    assert ctx["raw_score"] == pytest.approx(6.0)
    assert ctx["bonus_applied"] is True
    assert ctx["score"] == pytest.approx(7.2)


# --- pace and usage -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pace_differential", "expected"),
    [(5.2, 2.6), (-2.0, -1.0), (0.0, 0.0), (6.0, 3.0), (7.0, 3.0), (-6.1, -3.0), (None, 0.0)],
)
def test_pace_score(pace_differential: float | None, expected: float) -> None:
    row = one(pace_differential=pace_differential)
    assert row["pace_score"] == pytest.approx(expected)
    assert json.loads(row["pace_context"])["pace_differential"] == pace_differential


@pytest.mark.parametrize(
    ("projected", "base", "stars_out", "expected"),
    [
        (30.0, 25.0, 0, 1.5),
        (30.0, 25.0, 1, 1.725),
        (30.0, 25.0, 2, 1.95),
        (30.0, 25.0, 4, 1.95),
        (30.0, 25.0, None, 1.5),  # unknown stars: no multiplier
        (27.0, 25.0, 2, 0.78),
        (20.0, 25.0, 0, -1.5),
        (20.0, 25.0, 2, -1.5),  # a falling usage is not amplified
        (25.0, 25.0, 2, 0.0),
        (40.0, 25.0, 0, 3.0),  # 4.5 clamped
        (36.0, 25.0, 2, 3.0),  # 3.3 × 1.3 clamped
        (10.0, 25.0, 0, -3.0),  # −4.5 clamped
        (None, 25.0, 1, 0.0),
        (30.0, None, 1, 0.0),
        (30.0, 0.0, 1, 0.0),  # base 0
        (None, None, None, 0.0),
    ],
)
def test_usage_spike_score(
    projected: float | None, base: float | None, stars_out: int | None, expected: float
) -> None:
    row = one(
        projected_usage_rate=projected,
        avg_usage_rate_last_7_games=base,
        star_teammates_out=stars_out,
    )
    assert row["usage_spike_score"] == pytest.approx(expected)
    ctx = json.loads(row["usage_context"])
    assert ctx["projected_usage_rate"] == projected
    assert ctx["avg_usage_rate_last_7_games"] == base
    assert ctx["star_teammates_out"] == stars_out


# --- totals, quality and warnings -----------------------------------------------------------


def test_adjustments_and_total() -> None:
    row = one(
        zones=[zone_row(rates=(65.0, 10.0, 25.0))],
        defenses=[defense_row(vs_league=(4.3, 0.0, 0.0))],
        pace_differential=5.2,
        projected_usage_rate=30.0,
        avg_usage_rate_last_7_games=25.0,
        star_teammates_out=1,
        **TIRED,
    )
    assert row["fatigue_adjustment"] == pytest.approx(-3.25)
    assert row["total_composite_adjustment"] == pytest.approx(-3.25 + 4.3 + 2.6 + 1.725)
    for deferred in (
        "referee_favorability_score",
        "look_ahead_pressure_score",
        "matchup_history_score",
        "momentum_score",
        "referee_adjustment",
        "look_ahead_adjustment",
        "matchup_history_adjustment",
        "momentum_adjustment",
    ):
        assert row[deferred] == 0.0, deferred
    assert row["warning_details"] == "EXTREME_FATIGUE"


EXTREME_MATCHUP = {"zones": [zone_row(rates=(100.0, 0.0, 0.0))]}
FATIGUE_45 = {**TIRED, "minutes_in_last_7_days": None}  # 100 − 55, one input missing
FATIGUE_50 = {**TIRED, "avg_minutes_per_game_last_7": 30.0, "back_to_backs_last_14_days": 1}


@pytest.mark.parametrize(
    ("defense_vs", "values", "completeness", "warnings"),
    [
        (0.0, {}, 100.0, None),
        (0.0, {"days_rest": None}, 600 / 7, None),  # 85.7 is not incomplete
        (0.0, {"days_rest": None, "pace_differential": None}, 500 / 7, "INCOMPLETE_DATA"),
        (0.0, TIRED, 100.0, "EXTREME_FATIGUE"),
        (0.0, FATIGUE_50, 100.0, None),  # 50 is not extreme
        (7.5, {}, 100.0, "EXTREME_MATCHUP"),  # 9.0
        (6.5, {}, 100.0, None),  # 7.8
        (10.0, {"pace_differential": 6.0}, 100.0, "EXTREME_MATCHUP,EXTREME_ADJUSTMENT"),  # 13
        (6.0, {"pace_differential": 6.0, "projected_usage_rate": 25.0}, 100.0, None),  # 11.7
        (
            -10.0,
            {
                **FATIGUE_45,
                "days_rest": None,
                "pace_differential": -6.0,
                "projected_usage_rate": 5.0,
            },
            500 / 7,
            "EXTREME_FATIGUE,EXTREME_MATCHUP,EXTREME_ADJUSTMENT,INCOMPLETE_DATA",
        ),
    ],
)
def test_warnings_in_spec_order_and_completeness(
    defense_vs: float, values: dict[str, Any], completeness: float, warnings: str | None
) -> None:
    row = one(defenses=[defense_row(vs_league=(defense_vs, 0.0, 0.0))], **EXTREME_MATCHUP, **values)
    assert row["data_completeness_pct"] == pytest.approx(completeness)
    assert row["warning_details"] == warnings
    assert row["has_warnings"] is (warnings is not None)


@pytest.mark.parametrize(
    ("values", "completeness", "warnings"),
    [
        ({}, 600 / 7, "MISSING_ZONE_DATA"),
        ({"projected_usage_rate": None}, 500 / 7, "INCOMPLETE_DATA,MISSING_ZONE_DATA"),
        (
            {**TIRED, "avg_minutes_per_game_last_7": None},
            500 / 7,
            "EXTREME_FATIGUE,INCOMPLETE_DATA,MISSING_ZONE_DATA",
        ),
        (
            {c: None for c in ("days_rest", "games_in_last_7_days", "minutes_in_last_7_days")}
            | {"avg_minutes_per_game_last_7": None, "pace_differential": None}
            | {"projected_usage_rate": None},
            0.0,
            "INCOMPLETE_DATA,MISSING_ZONE_DATA",
        ),
    ],
)
def test_warnings_without_zone_data(
    values: dict[str, Any], completeness: float, warnings: str
) -> None:
    row = one(zones=[], **values)
    assert row["data_completeness_pct"] == pytest.approx(completeness)
    assert row["warning_details"] == warnings
    assert row["has_warnings"] is True


# --- population, identifiers, sources -------------------------------------------------------


def test_one_row_per_slate_player_with_identifiers_and_sources() -> None:
    contexts = [
        context("b", team_abbr="CCC", game_id="g2", universal_player_id="b_42"),
        context("a"),
        context("a", game_date=D - timedelta(days=1)),
        context("c", game_date=D + timedelta(days=1)),
    ]
    out = run(contexts, zones=[zone_row("a")])
    assert out.schema == PLAYER_COMPOSITE_FACTORS.polars_schema
    assert out["player_lookup"].to_list() == ["a", "b"]
    b = out.row(1, named=True)
    assert (b["universal_player_id"], b["game_id"], b["team_abbr"]) == ("b_42", "g2", "CCC")
    assert (b["game_date"], b["opponent_team_abbr"]) == (D, "BBB")
    assert b["calculation_version"] == "v1_4factors"
    assert b["insufficient_data_reason"] is None
    assert b["early_season_flag"] is False
    assert b["processed_at"] == PROCESSED_AT
    assert len(b["data_hash"]) == 16
    assert tracking(b, "player_context") == (CONTEXT_AT, 1, 100.0)
    a = out.row(0, named=True)
    assert tracking(a, "player_shot_zone") == (ZONES_AT, 1, 100.0)
    assert tracking(a, "team_defense") == (DEFENSE_AT, 1, 100.0)


def test_early_season_flag_follows_the_calendar() -> None:
    early = SlateCalendar(D, 2024, D - timedelta(days=20))
    out = run([context("a"), context("b")], calendar=early)
    assert out["early_season_flag"].to_list() == [True, True]


def test_a_date_without_a_slate_gives_no_rows() -> None:
    out = run([context(game_date=D + timedelta(days=1))])
    assert out.height == 0
    assert out.schema == PLAYER_COMPOSITE_FACTORS.polars_schema


def test_the_run_is_idempotent_except_processed_at() -> None:
    contexts = [context("a", **TIRED), context("b", pace_differential=-3.3)]
    first = run(contexts)
    second = player_composite_factors(
        contexts_frame(contexts),
        frame(PLAYER_SHOT_ZONE_ANALYSIS, [zone_row()]),
        frame(TEAM_DEFENSE_ZONE_ANALYSIS, [defense_row()]),
        CALENDAR,
        PROCESSED_AT + timedelta(hours=1),
    )
    assert_series_equal(first["data_hash"], second["data_hash"])
    assert first.drop("processed_at").equals(second.drop("processed_at"))


def test_a_players_row_does_not_depend_on_the_size_of_the_slate() -> None:
    """Bit for bit: a one-player slate and a 40-player slate give the same row."""
    awkward = context(
        "a",
        days_rest=None,
        projected_usage_rate=None,
        pace_differential=3.3,
        minutes_in_last_7_days=None,
    )
    zones = [zone_row("a", "balanced", (33.3, 29.7, 37.0))]
    defenses = [defense_row(vs_league=(1.7, -2.9, 3.1))]
    alone = run([awkward], zones, defenses)
    crowd = run([awkward] + [context(f"z{i:02d}") for i in range(39)], zones, defenses)
    assert_frame_equal(alone, crowd.filter(pl.col("player_lookup") == "a"), check_exact=True)
    assert alone["data_completeness_pct"].item() == 4 * (100.0 / 7)


# --- real data ------------------------------------------------------------------------------


def test_real_data_2024_01_15() -> None:
    day = date(2024, 1, 15)
    player_context = real_2023("upcoming_player_game_context")
    calendar = slate_calendar(
        day, real_2023("team_offense_game_summary"), real_2023("upcoming_team_game_context")
    )
    defense = team_defense_zone_analysis(
        real_2023("team_defense_game_summary"), calendar, PROCESSED_AT
    )
    zones = player_shot_zone_analysis(real_2023("player_game_summary"), calendar, PROCESSED_AT)
    out = player_composite_factors(player_context, zones, defense, calendar, PROCESSED_AT)

    slate_players = player_context.filter(pl.col("game_date") == day)["player_lookup"]
    assert out.height == slate_players.len() > 0
    assert set(out["player_lookup"]) == set(slate_players)
    assert out["player_lookup"].is_unique().all()
    assert out.schema == PLAYER_COMPOSITE_FACTORS.polars_schema
    assert out["fatigue_score"].is_between(0, 100).all()
    assert out["shot_zone_mismatch_score"].is_between(-10.0, 10.0).all()
    assert out["pace_score"].is_between(-3.0, 3.0).all()
    assert out["usage_spike_score"].is_between(-3.0, 3.0).all()
    assert out["data_completeness_pct"].is_between(0.0, 100.0).all()
    assert (out["has_warnings"] == out["warning_details"].is_not_null()).all()
    # Most slate players have both zone rows: the matchup is scored, not defaulted.
    assert number((out["source_player_shot_zone_rows_found"] == 1).mean()) > 0.9
    assert (out["source_team_defense_rows_found"] == 1).all()
    total = out.select(
        pl.sum_horizontal(
            "fatigue_adjustment",
            "shot_zone_adjustment",
            "pace_adjustment",
            "usage_spike_adjustment",
        )
    ).to_series()
    assert number((total - out["total_composite_adjustment"]).abs().max()) < 1e-9
