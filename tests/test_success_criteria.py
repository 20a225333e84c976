"""SPEC section 9: the status of each processor's line, case by case."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from features import registry
from quality.success import SlateFacts, evaluate, output_figures

D = date(2025, 1, 15)
MID = SlateFacts(D, is_early_season=False, slate_players=300, season_games_before=1200)
EARLY = SlateFacts(D, is_early_season=True, slate_players=300, season_games_before=40)
NO_SLATE = SlateFacts(D, is_early_season=False, slate_players=0, season_games_before=1200)
SEASON_OPENER = SlateFacts(D, is_early_season=True, slate_players=200, season_games_before=0)


@pytest.mark.parametrize(
    ("processor", "facts", "rows", "quality", "status", "message"),
    [
        ("team_defense_zone_analysis", MID, 30, None, "OK", "30 rows"),
        ("team_defense_zone_analysis", MID, 19, None, "WARN", "only 19 teams"),
        ("team_defense_zone_analysis", EARLY, 19, None, "OK", "19 rows"),
        ("team_defense_zone_analysis", MID, 0, None, "FAIL", "0 teams"),
        ("team_defense_zone_analysis", SEASON_OPENER, 0, None, "OK", "0 rows"),
        ("player_shot_zone_analysis", MID, 450, None, "OK", "450 rows"),
        ("player_shot_zone_analysis", MID, 399, None, "WARN", "only 399 players (< 400)"),
        ("player_shot_zone_analysis", EARLY, 150, None, "OK", "150 rows"),
        ("player_shot_zone_analysis", EARLY, 99, None, "WARN", "(< 100)"),
        ("player_shot_zone_analysis", MID, 0, None, "FAIL", "0 players"),
        ("player_composite_factors", MID, 300, None, "OK", "300 rows"),
        ("player_composite_factors", MID, 299, None, "FAIL", "299 rows for 300"),
        ("player_composite_factors", NO_SLATE, 0, None, "NO_GAMES", "no games"),
        ("player_daily_cache", MID, 200, None, "OK", "200 rows"),
        ("player_daily_cache", MID, 99, None, "WARN", "only 99 players cached (< 100)"),
        ("player_daily_cache", SlateFacts(D, False, 150, 900), 74, None, "WARN", "(< 75)"),
        ("player_daily_cache", MID, 0, None, "FAIL", "0 rows on a game day"),
        ("player_daily_cache", EARLY, 0, None, "WARN", "only 0 players"),
        ("player_daily_cache", NO_SLATE, 0, None, "NO_GAMES", "no games"),
        ("ml_feature_store_v2", MID, 300, 90.0, "OK", "300 rows"),
        ("ml_feature_store_v2", MID, 300, 69.9, "WARN", "average quality 69.9 < 70"),
        ("ml_feature_store_v2", EARLY, 300, 40.0, "OK", "300 rows"),
        ("ml_feature_store_v2", MID, 12, 99.0, "FAIL", "12 rows for 300"),
    ],
)
def test_volume_and_quality_rules(
    processor: str,
    facts: SlateFacts,
    rows: int,
    quality: float | None,
    status: str,
    message: str,
) -> None:
    got_status, got_message = evaluate(
        processor,
        facts,
        reads=tuple(registry.PROCESSORS[processor].phase3.values()),
        rows=rows,
        error=None,
        duration_seconds=1.0,
        time_limit_minutes=5,
        avg_quality=quality,
    )
    assert got_status == status
    assert message in got_message


def test_an_error_fails_with_its_message() -> None:
    assert evaluate(
        "player_daily_cache",
        MID,
        reads=(),  # no upstream facts: SPEC 11 has nothing to judge
        rows=None,
        error="boom",
        duration_seconds=None,
        time_limit_minutes=15,
    ) == ("FAIL", "boom")


def test_a_slow_processor_warns_and_keeps_a_worse_status() -> None:
    assert evaluate(
        "team_defense_zone_analysis",
        MID,
        reads=(),  # no upstream facts: SPEC 11 has nothing to judge
        rows=30,
        error=None,
        duration_seconds=301,
        time_limit_minutes=5,
    ) == ("WARN", "took 5.0 min (limit 5)")
    status, message = evaluate(
        "team_defense_zone_analysis",
        MID,
        reads=(),  # no upstream facts: SPEC 11 has nothing to judge
        rows=0,
        error=None,
        duration_seconds=400,
        time_limit_minutes=5,
    )
    assert status == "FAIL" and "took 6.7 min" in message


def test_output_figures_count_each_dates_rows_and_average_p5_quality() -> None:
    """One group-by gives every date's rows; P5's lines also get the date's average quality,
    other processors none; a date without rows is absent (its line reads 0 rows)."""
    day_1, day_2 = date(2025, 1, 14), date(2025, 1, 15)
    p5 = pl.DataFrame(
        {"game_date": [day_1, day_2, day_2, day_2], "feature_quality_score": [60.0, 70, 80, 96]}
    )
    entry = registry.PROCESSORS["ml_feature_store_v2"]
    assert output_figures(entry, p5, "game_date") == {day_1: (1, 60.0), day_2: (3, 82.0)}
    p1 = pl.DataFrame({"analysis_date": [day_2, day_2]})
    entry = registry.PROCESSORS["team_defense_zone_analysis"]
    assert output_figures(entry, p1, "analysis_date") == {day_2: (2, None)}
    assert output_figures(entry, p1.clear(), "analysis_date") == {}
