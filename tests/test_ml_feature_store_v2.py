"""P5 ml_feature_store_v2 against SPEC sections 8 and 10, by hand-computed cases."""

from __future__ import annotations

import dataclasses
import hashlib
import statistics
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict, Unpack

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.common import row_hash
from features.ml_feature_store_v2 import (
    FEATURE_NAMES,
    PHASE4_FEATURES,
    SOURCE_WEIGHTS,
    UpstreamFrames,
    feature_quality_score,
    feature_table,
    ml_feature_store_v2,
    quality_tier,
    slate_inputs,
)
from nba_calendar import Calendars, SlateCalendar, slate_calendar
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_DAILY_CACHE,
    PLAYER_GAME_SUMMARY,
    PLAYER_SHOT_ZONE_ANALYSIS,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_DEFENSE_ZONE_ANALYSIS,
    TEAM_OFFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
    Phase3Frames,
    TableSchema,
)
from tests.builders import number
from tests.conftest import SEASON_2023, season_frames
from tests.support.bq_emulator import EmulatorProcess

D = date(2024, 1, 15)
SEASON = 2023
CALENDAR = SlateCalendar(D, SEASON, date(2023, 10, 24))
EARLY = SlateCalendar(D, SEASON, D - timedelta(days=10))
UPSTREAM_AT = datetime(2024, 1, 15, 6, 0, tzinfo=UTC)
PROCESSED_AT = datetime(2024, 1, 15, 7, 0, tzinfo=UTC)
NAME = {n: i for i, n in enumerate(FEATURE_NAMES)}


class SomeUpstream(TypedDict, total=False):
    """Upstream frames a test replaces; the others stay `full_upstream()`'s."""

    team_defense_zones: pl.DataFrame | None
    shot_zones: pl.DataFrame | None
    composite_factors: pl.DataFrame | None
    daily_cache: pl.DataFrame | None


NO_UPSTREAM: SomeUpstream = {
    "team_defense_zones": None,
    "shot_zones": None,
    "composite_factors": None,
    "daily_cache": None,
}

# --- schema-complete frames ------------------------------------------------------------------

_REQUIRED_DEFAULTS: dict[type[pl.DataType], Any] = {
    pl.String: "",
    pl.Int64: 0,
    pl.Float64: 0.0,
    pl.Boolean: False,
    pl.Date: D,
    pl.Datetime: UPSTREAM_AT,
}


def frame(schema: TableSchema, rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Every declared column: given values, else a type default when REQUIRED, else NULL."""

    def fill(column: str, row: dict[str, Any]) -> Any:
        if column in row:
            return row[column]
        spec = schema.column(column)
        return _REQUIRED_DEFAULTS[type(spec.polars_type)] if spec.mode == "REQUIRED" else None

    full = [{c: fill(c, row) for c in schema.column_names} for row in rows]
    return pl.DataFrame(full, schema=schema.polars_schema)


def context(player: str = "p1", **values: Any) -> dict[str, Any]:
    row = {
        "player_lookup": player,
        "universal_player_id": f"{player}_001",
        "game_id": "G1",
        "game_date": D,
        "season_year": SEASON,
        "team_abbr": "AAA",
        "opponent_team_abbr": "BBB",
        "home_game": True,
        "back_to_back": False,
        "season_phase": "regular_season",
        "days_rest": 2,
        "opponent_days_rest": 1,
        "games_in_last_7_days": 4,
        "player_status": "Probable",
        "processed_at": UPSTREAM_AT,
    }
    return row | values


def games(
    player: str, points: Sequence[int | None], first_day_back: int = 1, **values: Any
) -> list[dict[str, Any]]:
    """Qualifying games, newest first, one a day going back from D - first_day_back."""
    rows = []
    for i, pts in enumerate(points):
        day = D - timedelta(days=first_day_back + i)
        row = {
            "player_lookup": player,
            "universal_player_id": f"{player}_001",
            "game_id": f"{player}-{day:%Y%m%d}",
            "game_date": day,
            "season_year": SEASON if day >= date(2023, 8, 1) else SEASON - 1,
            "team_abbr": "AAA",
            "is_active": True,
            "is_dnp": False,
            "minutes_played": 30.0,
            "points": pts,
            "fg_makes": 8,
            "ft_makes": 4,
            "paint_attempts": 8,
            "paint_makes": 5,
            "mid_range_attempts": 4,
            "mid_range_makes": 2,
            "three_pt_attempts": 6,
            "three_pt_makes": 2,
            "processed_at": UPSTREAM_AT,
        }
        rows.append(row | values)
    return rows


def team_games(
    team: str, wins: Sequence[bool | None], first_day_back: int = 1, **values: Any
) -> list[dict[str, Any]]:
    rows = []
    for i, win in enumerate(wins):
        day = D - timedelta(days=first_day_back + i)
        row = {
            "game_id": f"{team}-{day:%Y%m%d}",
            "game_date": day,
            "season_year": SEASON if day >= date(2023, 8, 1) else SEASON - 1,
            "team_abbr": team,
            "pace": 98.0,
            "offensive_rating": 110.0,
            "win_flag": win,
            "processed_at": UPSTREAM_AT,
        }
        rows.append(row | values)
    return rows


def defense_games(team: str, count: int, first_day_back: int = 1, **values: Any) -> list[dict]:
    rows = []
    for i in range(count):
        day = D - timedelta(days=first_day_back + i)
        row = {
            "game_id": f"{team}-{day:%Y%m%d}",
            "game_date": day,
            "season_year": SEASON,
            "defending_team_abbr": team,
            "defensive_rating": 108.0,
            "opponent_pace": 97.0,
            "processed_at": UPSTREAM_AT,
        }
        rows.append(row | values)
    return rows


P3_POINTS = [30, 28, 20, 21, 19, 22, 22, 22, 22, 22]
AAA_WINS = [True] * 6 + [False] * 4


def phase3(
    contexts: Sequence[dict[str, Any]] | None = None,
    player_rows: Sequence[dict[str, Any]] | None = None,
    offense_rows: Sequence[dict[str, Any]] | None = None,
    defense_rows: Sequence[dict[str, Any]] | None = None,
    team_context_rows: Sequence[dict[str, Any]] = (),
) -> Phase3Frames:
    """The base Phase 3 world: p1 of AAA hosts BBB on D with ten games behind him."""
    return Phase3Frames(
        frame(PLAYER_GAME_SUMMARY, games("p1", P3_POINTS) if player_rows is None else player_rows),
        frame(
            TEAM_DEFENSE_GAME_SUMMARY,
            defense_games("BBB", 15) + defense_games("AAA", 15, defensive_rating=130.0)
            if defense_rows is None
            else defense_rows,
        ),
        frame(
            TEAM_OFFENSE_GAME_SUMMARY,
            team_games("AAA", AAA_WINS) if offense_rows is None else offense_rows,
        ),
        frame(UPCOMING_PLAYER_GAME_CONTEXT, [context()] if contexts is None else contexts),
        frame(UPCOMING_TEAM_GAME_CONTEXT, team_context_rows),
    )


def daily_cache(players: Sequence[str] = ("p1",), **values: Any) -> pl.DataFrame:
    base = {
        "cache_date": D,
        "team_abbr": "AAA",
        "points_avg_last_5": 25.0,
        "points_avg_last_10": 24.0,
        "points_avg_season": 23.0,
        "points_std_last_10": 4.0,
        "minutes_avg_last_10": 30.0,
        "games_played_season": 10,
        "team_pace_last_10": 101.0,
        "team_off_rating_last_10": 115.0,
        "games_in_last_7_days": 2,
        "cache_version": "v1",
        "processed_at": UPSTREAM_AT,
    }
    return frame(PLAYER_DAILY_CACHE, [base | {"player_lookup": p} | values for p in players])


def composite_factors(players: Sequence[str] = ("p1",), **values: Any) -> pl.DataFrame:
    base = {
        "game_date": D,
        "fatigue_score": 85,
        "shot_zone_mismatch_score": 2.5,
        "pace_score": 1.0,
        "usage_spike_score": 0.5,
        "calculation_version": "v1_4factors",
        "processed_at": UPSTREAM_AT,
    }
    return frame(PLAYER_COMPOSITE_FACTORS, [base | {"player_lookup": p} | values for p in players])


def shot_zones(players: Sequence[str] = ("p1",), **values: Any) -> pl.DataFrame:
    base = {
        "analysis_date": D,
        "season_year": SEASON,
        "paint_rate_last_10": 50.0,
        "mid_range_rate_last_10": 20.0,
        "three_pt_rate_last_10": 30.0,
        "games_in_sample_10": 10,
        "sample_quality_10": "excellent",
        "data_quality_tier": "high",
        "processed_at": UPSTREAM_AT,
    }
    return frame(PLAYER_SHOT_ZONE_ANALYSIS, [base | {"player_lookup": p} | values for p in players])


def team_defense_zones(**values: Any) -> pl.DataFrame:
    """BBB (the opponent) and AAA (the player's own team, which must not be used)."""
    base = {"analysis_date": D, "season_year": SEASON, "games_in_sample": 15}
    rows = [
        base
        | {"team_abbr": "BBB", "defensive_rating_last_15": 111.0, "opponent_pace": 99.0}
        | values,
        base | {"team_abbr": "AAA", "defensive_rating_last_15": 120.0, "opponent_pace": 90.0},
    ]
    return frame(TEAM_DEFENSE_ZONE_ANALYSIS, rows)


def full_upstream() -> UpstreamFrames:
    return {
        "team_defense_zones": team_defense_zones(),
        "shot_zones": shot_zones(),
        "composite_factors": composite_factors(),
        "daily_cache": daily_cache(),
    }


def run(
    world: Phase3Frames | None = None,
    calendar: SlateCalendar = CALENDAR,
    processed_at: datetime = PROCESSED_AT,
    **upstream: Unpack[SomeUpstream],
) -> pl.DataFrame:
    frames: UpstreamFrames = {**full_upstream(), **upstream}
    return build_p5(phase3() if world is None else world, calendar, processed_at, **frames)


def build_p5(
    world: Phase3Frames,
    calendar: Calendars,
    processed_at: datetime,
    **frames: Unpack[UpstreamFrames],
) -> pl.DataFrame:
    """P5 called as the registry calls it: every input by keyword."""
    inputs = {f.name: getattr(world, f.name) for f in dataclasses.fields(world)}
    return ml_feature_store_v2(**inputs, calendar=calendar, processed_at=processed_at, **frames)


def only_row(out: pl.DataFrame, player: str = "p1") -> dict[str, Any]:
    rows = out.filter(pl.col("player_lookup") == player)
    assert rows.height == 1, out
    return rows.row(0, named=True)


def feature(row: dict[str, Any], name: str) -> tuple[float | None, str]:
    return row["features"][NAME[name]], row["feature_sources"][NAME[name]]


def expected_score(sources: Sequence[str]) -> float:
    """An independent reading of the quality rule: plain mean of the source weights."""
    return statistics.fmean(SOURCE_WEIGHTS[s] for s in sources)


# --- the feature table -----------------------------------------------------------------------


def test_feature_names_follow_the_spec_table() -> None:
    assert len(FEATURE_NAMES) == 25
    assert tuple(f.name for f in feature_table()) == FEATURE_NAMES
    assert PHASE4_FEATURES == (0, 1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 18, 19, 20, 22, 23)


def test_output_matches_the_declared_schema() -> None:
    out = run()
    assert out.schema == ML_FEATURE_STORE_V2.polars_schema
    row = only_row(out)
    assert row["feature_names"] == list(FEATURE_NAMES)
    assert (row["feature_count"], row["feature_version"]) == (60, "v2_60features")
    assert row["created_at"] == PROCESSED_AT
    assert (row["team_abbr"], row["opponent_team_abbr"], row["game_id"]) == ("AAA", "BBB", "G1")
    assert (row["is_home"], row["days_rest"], row["universal_player_id"]) == (True, 2, "p1_001")
    assert len(row["data_hash"]) == 16


# --- three tiers per feature: Phase 4, Phase 3 fallback, default ------------------------------

P4, P3, CALC, DEF = "phase4", "phase3", "calculated", "default"
FULL: dict[str, tuple[float, str]] = {
    "points_avg_last_5": (25.0, P4),
    "points_avg_last_10": (24.0, P4),
    "points_avg_season": (23.0, P4),
    "points_std_last_10": (4.0, P4),
    "games_in_last_7_days": (2.0, P4),
    "fatigue_score": (85.0, P4),
    "shot_zone_mismatch_score": (2.5, P4),
    "pace_score": (1.0, P4),
    "usage_spike_score": (0.5, P4),
    "rest_advantage": (1.0, CALC),
    "injury_risk": (1.0, CALC),
    "recent_trend": (2.0, CALC),
    "minutes_change": (0.0, CALC),
    "opponent_def_rating": (111.0, P4),
    "opponent_pace": (99.0, P4),
    "home_away": (1.0, P3),
    "back_to_back": (0.0, P3),
    "playoff_game": (0.0, P3),
    "pct_paint": (0.5, P4),
    "pct_mid_range": (0.2, P4),
    "pct_three": (0.3, P4),
    "pct_free_throw": (40 / 228, CALC),
    "team_pace": (101.0, P4),
    "team_off_rating": (115.0, P4),
    "team_win_pct": (0.6, CALC),
}
NO_P4 = {
    "points_avg_last_5": (23.6, P3),
    "points_avg_last_10": (22.8, P3),
    "points_avg_season": (22.8, P3),
    "points_std_last_10": (statistics.stdev(P3_POINTS), P3),
    "games_in_last_7_days": (4.0, P3),
    "team_pace": (98.0, P3),
    "team_off_rating": (110.0, P3),
}
NO_P3 = {
    "fatigue_score": (50.0, DEF),
    "shot_zone_mismatch_score": (0.0, DEF),
    "pace_score": (0.0, DEF),
    "usage_spike_score": (0.0, DEF),
}
NO_P2 = {
    "pct_paint": (8 / 18, P3),
    "pct_mid_range": (4 / 18, P3),
    "pct_three": (6 / 18, P3),
}
NO_P1 = {"opponent_def_rating": (108.0, P3), "opponent_pace": (97.0, P3)}
NO_HISTORY = {
    "points_avg_last_5": (10.0, DEF),
    "points_avg_last_10": (10.0, DEF),
    "points_avg_season": (10.0, DEF),
    "points_std_last_10": (5.0, DEF),
    "recent_trend": (0.0, DEF),
    "minutes_change": (0.0, DEF),
    "opponent_def_rating": (112.0, DEF),
    "opponent_pace": (100.0, DEF),
    "pct_paint": (0.30, DEF),
    "pct_mid_range": (0.20, DEF),
    "pct_three": (0.35, DEF),
    "pct_free_throw": (0.15, DEF),
    "team_pace": (100.0, DEF),
    "team_off_rating": (112.0, DEF),
    "team_win_pct": (0.5, DEF),
}
EMPTY_HISTORY = phase3(player_rows=[], offense_rows=[], defense_rows=[])


@pytest.mark.parametrize(
    ("upstream", "world", "changes", "score", "tier", "source"),
    [
        pytest.param({}, None, {}, 97.0, "excellent", "phase4", id="all-upstream"),
        pytest.param({"daily_cache": None}, None, NO_P4, 90.0, "good", "mixed", id="P4-failed"),
        pytest.param(
            {"composite_factors": None}, None, NO_P3, 87.4, "good", "mixed", id="P3-failed"
        ),
        pytest.param(
            {"composite_factors": composite_factors(insufficient_data_reason="no context")},
            None,
            NO_P3,
            87.4,
            "good",
            "mixed",
            id="P3-placeholder",
        ),
        pytest.param({"shot_zones": None}, None, NO_P2, 94.0, "good", "mixed", id="P2-failed"),
        pytest.param(
            {
                "shot_zones": shot_zones(
                    paint_rate_last_10=None,
                    mid_range_rate_last_10=None,
                    three_pt_rate_last_10=None,
                    insufficient_data_reason="Only 3 games available, need 7",
                )
            },
            None,
            NO_P2,
            94.0,
            "good",
            "mixed",
            id="P2-placeholder",
        ),
        pytest.param(
            {"shot_zones": shot_zones(insufficient_data_reason="Only 3 games available, need 7")},
            None,
            NO_P2,
            94.0,
            "good",
            "mixed",
            id="P2-placeholder-with-values-still-ignored",
        ),
        pytest.param(
            {"team_defense_zones": None}, None, NO_P1, 95.0, "excellent", "mixed", id="P1-failed"
        ),
        pytest.param(
            {
                "team_defense_zones": team_defense_zones(
                    defensive_rating_last_15=None,
                    opponent_pace=None,
                    insufficient_data_reason="Only 9 games available, need 10",
                )
            },
            None,
            NO_P1,
            95.0,
            "excellent",
            "mixed",
            id="P1-placeholder",
        ),
        pytest.param(
            {"daily_cache": daily_cache(team_pace_last_10=None)},
            None,
            {"team_pace": (98.0, P3)},
            96.0,
            "excellent",
            "mixed",
            id="P4-null-value-falls-to-phase3",
        ),
        pytest.param(
            {
                "daily_cache": daily_cache(
                    games_played_season=7,
                    early_season_flag=True,
                    insufficient_data_reason="Only 7 games played, need 10 minimum",
                )
            },
            None,
            {},
            97.0,
            "excellent",
            "phase4",
            id="P4-under-10-games-is-still-used",
        ),
        pytest.param(
            NO_UPSTREAM,
            None,
            NO_P4 | NO_P3 | NO_P2 | NO_P1,
            75.4,
            "medium",
            "phase3",
            id="all-upstream-failed",
        ),
        pytest.param(
            {
                "team_defense_zones": TEAM_DEFENSE_ZONE_ANALYSIS.empty_frame(),
                "shot_zones": PLAYER_SHOT_ZONE_ANALYSIS.empty_frame(),
                "composite_factors": PLAYER_COMPOSITE_FACTORS.empty_frame(),
                "daily_cache": PLAYER_DAILY_CACHE.empty_frame(),
            },
            None,
            NO_P4 | NO_P3 | NO_P2 | NO_P1,
            75.4,
            "medium",
            "phase3",
            id="all-upstream-empty",
        ),
        pytest.param(
            NO_UPSTREAM,
            EMPTY_HISTORY,
            NO_P4 | NO_P3 | NO_P2 | NO_P1 | NO_HISTORY,
            50.4,
            "low",
            "phase3",
            id="all-upstream-failed-and-no-history",
        ),
        pytest.param(
            {},
            EMPTY_HISTORY,
            NO_HISTORY
            | {k: FULL[k] for k in ("opponent_def_rating", "opponent_pace")}
            | {k: FULL[k] for k in ("pct_paint", "pct_mid_range", "pct_three")}
            | {k: FULL[k] for k in ("points_avg_last_5", "points_avg_last_10")}
            | {k: FULL[k] for k in ("points_avg_season", "points_std_last_10")}
            | {k: FULL[k] for k in ("team_pace", "team_off_rating")},
            (16 * 100 + 3 * 75 + 2 * 100 + 4 * 40) / 25,
            "good",
            "phase4",
            id="all-upstream-but-no-history",
        ),
    ],
)
def test_each_feature_takes_phase4_else_phase3_else_default(
    upstream: SomeUpstream,
    world: Phase3Frames | None,
    changes: dict[str, tuple[float, str]],
    score: float,
    tier: str,
    source: str,
) -> None:
    row = only_row(run(world, **upstream))
    expected = FULL | changes
    for name in FEATURE_NAMES:
        value, tag = feature(row, name)
        assert tag == expected[name][1], name
        assert value == pytest.approx(expected[name][0]), name
    assert row["feature_quality_score"] == pytest.approx(score)
    assert row["feature_quality_score"] == pytest.approx(expected_score(row["feature_sources"]))
    assert row["quality_tier"] == tier
    assert row["data_source"] == source
    assert row["early_season_flag"] is False
    assert row["insufficient_data_reason"] is None


def test_worked_example_16_phase4_3_phase3_6_calculated() -> None:
    row = only_row(run())
    counts = {t: row["feature_sources"].count(t) for t in (P4, P3, CALC, DEF)}
    assert counts == {P4: 16, P3: 3, CALC: 6, DEF: 0}
    assert row["feature_quality_score"] == 97.0
    assert (row["quality_tier"], row["data_source"]) == ("excellent", "phase4")


@pytest.mark.parametrize(
    ("score_sources", "tier"),
    [
        ([P4] * 25, "excellent"),
        ([P4] * 20 + [P3] * 5, "excellent"),  # 95.0
        ([P4] * 19 + [P3] * 6, "good"),  # 94.0
        ([P3] * 19 + [P4] * 6, "medium"),  # 81.0
        ([P3] * 25, "medium"),  # 75.0
        ([DEF] * 25, "low"),  # 40.0
    ],
)
def test_quality_tier_thresholds(score_sources: list[str], tier: str) -> None:
    frame_ = pl.DataFrame({f"s{i}": [s] for i, s in enumerate(score_sources)})
    out = frame_.select(
        feature_quality_score(pl.concat_list(frame_.columns)).alias("score")
    ).with_columns(tier=quality_tier(pl.col("score")))
    assert out["score"][0] == pytest.approx(expected_score(score_sources))
    assert out["tier"][0] == tier


# --- calculated features ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "value", "tag"),
    [
        ([30, 28, 20, 21, 19], 2.0, CALC),  # SPEC 10: +9
        ([25, 24, 26, 18, 17], 1.0, CALC),  # SPEC 10: +4.17
        ([25, 25, 20, 20, 20], 2.0, CALC),  # exactly +5
        ([24, 25, 20, 20, 20], 1.0, CALC),  # +4.5
        ([22, 22, 20, 20, 20], 1.0, CALC),  # exactly +2
        ([21, 22, 20, 20, 20], 0.0, CALC),  # +1.5
        ([20, 20, 20, 20, 20], 0.0, CALC),
        ([18, 19, 20, 20, 20], 0.0, CALC),  # -1.5
        ([18, 18, 20, 20, 20], -1.0, CALC),  # exactly -2
        ([16, 15, 20, 20, 20], -1.0, CALC),  # -4.5
        ([15, 15, 20, 20, 20], -2.0, CALC),  # exactly -5
        ([20, 21, 22, 23, 24, 0, 0, 0], -1.0, CALC),  # only the last five count: 20.5 - 23
        ([30, 28, 20, 21], 0.0, DEF),  # fewer than five games
        ([], 0.0, DEF),
    ],
)
def test_recent_trend_bands(points: list[int], value: float, tag: str) -> None:
    row = only_row(run(phase3(player_rows=games("p1", points)), **NO_UPSTREAM))
    assert feature(row, "recent_trend") == (value, tag)


def test_recent_trend_skips_games_that_do_not_qualify() -> None:
    rows = games("p1", [30, 28, 20, 21, 19])
    dnp = games("p1", [0], first_day_back=1, is_dnp=True, minutes_played=0.0, game_id="dnp")
    for r in rows:  # move the real games one day back so the DNP is the newest
        r["game_date"] -= timedelta(days=1)
        r["game_id"] += "x"
    row = only_row(run(phase3(player_rows=rows + dnp), **NO_UPSTREAM))
    assert feature(row, "recent_trend") == (2.0, CALC)


@pytest.mark.parametrize(
    ("recent", "older", "value"),
    [
        (30.0, 20.0, 2.0),  # season 25, +0.20 exactly
        (29.9, 20.1, 1.0),  # +0.196
        (33.0, 27.0, 1.0),  # +0.10 exactly
        (32.9, 27.1, 0.0),  # +0.0967
        (30.0, 30.0, 0.0),
        (27.1, 32.9, 0.0),
        (27.0, 33.0, -1.0),  # -0.10 exactly
        (20.1, 29.9, -1.0),
        (20.0, 30.0, -2.0),  # -0.20 exactly
        (18.7, 15.3, 1.0),  # +0.10 on paper, 0.0999999999999997 in floats
        (15.6, 23.4, -2.0),  # -0.20 on paper, -0.1999999999999997 in floats
    ],
)
def test_minutes_change_bands(recent: float, older: float, value: float) -> None:
    rows = games("p1", [20] * 10, minutes_played=recent) + games(
        "p1", [20] * 10, first_day_back=11, minutes_played=older
    )
    row = only_row(run(phase3(player_rows=rows), **NO_UPSTREAM))
    assert feature(row, "minutes_change") == (value, CALC)


def test_minutes_change_prefers_the_p4_recent_minutes() -> None:
    world = phase3(player_rows=games("p1", [20] * 10, minutes_played=30.0))
    row = only_row(run(world, daily_cache=daily_cache(minutes_avg_last_10=36.0)))
    assert feature(row, "minutes_change") == (2.0, CALC)  # (36 - 30) / 30 = 0.2


def test_minutes_change_with_few_games_is_zero_and_with_none_is_default() -> None:
    few = only_row(run(phase3(player_rows=games("p1", [20] * 3)), **NO_UPSTREAM))
    assert feature(few, "minutes_change") == (0.0, CALC)
    none = only_row(run(phase3(player_rows=[])))  # P4 row present, no season games
    assert feature(none, "minutes_change") == (0.0, DEF)


@pytest.mark.parametrize(
    ("status", "value", "tag"),
    [
        ("available", 0.0, CALC),
        ("AVAILABLE", 0.0, CALC),
        ("Probable", 1.0, CALC),
        ("questionable", 2.0, CALC),
        ("DOUBTFUL", 3.0, CALC),
        ("Out", 3.0, CALC),
        (" out ", 3.0, CALC),
        ("day-to-day", 0.0, DEF),
        ("", 0.0, DEF),
        (None, 0.0, DEF),
    ],
)
def test_injury_risk_mapping(status: str | None, value: float, tag: str) -> None:
    row = only_row(run(phase3(contexts=[context(player_status=status)])))
    assert feature(row, "injury_risk") == (value, tag)


@pytest.mark.parametrize(
    ("days_rest", "opponent_rest", "team_rest", "value", "tag"),
    [
        (3, 0, None, 2.0, CALC),  # +3 clamped
        (0, 4, None, -2.0, CALC),  # -4 clamped
        (2, 1, None, 1.0, CALC),
        (2, 2, None, 0.0, CALC),
        (2, None, 0, 2.0, CALC),  # opponent rest from the team context
        (2, None, 3, -1.0, CALC),
        (2, 1, 5, 1.0, CALC),  # the player context wins
        (2, None, None, 0.0, DEF),
        (None, 1, 1, 0.0, DEF),
    ],
)
def test_rest_advantage_clamp_and_opponent_rest_fallback(
    days_rest: int | None, opponent_rest: int | None, team_rest: int | None, value: float, tag: str
) -> None:
    team_context = [
        {"team_abbr": "BBB", "game_date": D, "season_year": SEASON, "team_days_rest": team_rest},
        {"team_abbr": "AAA", "game_date": D, "season_year": SEASON, "team_days_rest": 0},
        # the opponent's row for another date is not D's rest
        {"team_abbr": "BBB", "game_date": D - timedelta(days=2), "season_year": SEASON,
         "team_days_rest": 9},
    ]  # fmt: skip
    world = phase3(
        contexts=[context(days_rest=days_rest, opponent_days_rest=opponent_rest)],
        team_context_rows=team_context,
    )
    assert feature(only_row(run(world)), "rest_advantage") == (value, tag)


@pytest.mark.parametrize(
    ("wins", "value", "tag"),
    [
        ([True, True, True, False, False], 0.6, CALC),
        ([True, True, True, True], 0.5, DEF),  # fewer than five games
        ([True, True, None, False, False], 0.4, CALC),  # NULL counts as a game, not a win
        ([None] * 5, 0.0, CALC),
        ([True] * 12 + [False] * 8, 0.6, CALC),  # the whole season, not the last 10
    ],
)
def test_team_win_pct(wins: list[bool | None], value: float, tag: str) -> None:
    world = phase3(offense_rows=team_games("AAA", wins) + team_games("CCC", [True] * 10))
    assert feature(only_row(run(world)), "team_win_pct") == pytest.approx((value, tag))


def test_team_win_pct_uses_the_context_team_and_season_only() -> None:
    offense = (
        team_games("AAA", [True, False, False, False])
        + team_games("AAA", [True] * 5, first_day_back=300)  # previous season
        + team_games("CCC", [True] * 10)
    )
    traded = games("p1", P3_POINTS, team_abbr="CCC")  # his games were for CCC
    world = phase3(player_rows=traded, offense_rows=offense)
    assert feature(only_row(run(world)), "team_win_pct") == (0.5, DEF)
    world = phase3(
        player_rows=traded, offense_rows=offense + team_games("AAA", [True], first_day_back=5)
    )
    assert feature(only_row(run(world)), "team_win_pct") == (0.4, CALC)


@pytest.mark.parametrize(
    ("rows", "value", "tag"),
    [
        (games("p1", [20] * 5, ft_makes=4), 0.2, CALC),
        (games("p1", [20] * 4, ft_makes=4), 0.15, DEF),  # fewer than five games
        (games("p1", [20] * 10, ft_makes=12), 0.5, CALC),  # 0.6 clamped
        (games("p1", [0] * 5, ft_makes=0), 0.15, DEF),  # no points: ratio NULL
        (
            games("p1", [20] * 10, ft_makes=4)
            + games("p1", [20] * 5, first_day_back=11, ft_makes=10),
            0.2,
            CALC,
        ),  # only the last ten count
    ],
)
def test_pct_free_throw(rows: list[dict[str, Any]], value: float, tag: str) -> None:
    row = only_row(run(phase3(player_rows=rows), **NO_UPSTREAM))
    assert feature(row, "pct_free_throw") == pytest.approx((value, tag))


# --- Phase 3 context features and fallbacks with thin history ----------------------------------


@pytest.mark.parametrize(
    ("values", "name", "expected"),
    [
        ({"home_game": False}, "home_away", (0.0, P3)),
        ({"home_game": None}, "home_away", (0.5, DEF)),
        ({"back_to_back": True}, "back_to_back", (1.0, P3)),
        ({"back_to_back": None}, "back_to_back", (0.0, DEF)),
        ({"season_phase": "playoffs"}, "playoff_game", (1.0, P3)),
        ({"season_phase": None}, "playoff_game", (0.0, DEF)),
        ({"games_in_last_7_days": None}, "games_in_last_7_days", (3.0, DEF)),
        ({"games_in_last_7_days": 1}, "games_in_last_7_days", (1.0, P3)),
    ],
)
def test_context_features(values: dict[str, Any], name: str, expected: tuple[float, str]) -> None:
    row = only_row(run(phase3(contexts=[context(**values)]), daily_cache=None))
    assert feature(row, name) == expected


def test_phase3_fallbacks_have_no_minimum_except_the_std() -> None:
    old = games("p1", [12], first_day_back=60)  # one game, two months ago: no 30-day cut
    row = only_row(run(phase3(player_rows=old), **NO_UPSTREAM))
    assert feature(row, "points_avg_last_5") == (12.0, P3)
    assert feature(row, "points_avg_season") == (12.0, P3)
    assert feature(row, "points_std_last_10") == (5.0, DEF)
    assert feature(row, "pct_paint") == pytest.approx((8 / 18, P3))
    two = only_row(run(phase3(player_rows=games("p1", [10, 14])), **NO_UPSTREAM))
    assert feature(two, "points_std_last_10") == pytest.approx((statistics.stdev([10, 14]), P3))


def test_phase3_zone_shares_leave_out_games_with_unknown_zones() -> None:
    rows = games("p1", [20] * 3) + games(
        "p1", [20], first_day_back=4, paint_attempts=None, three_pt_attempts=50
    )
    row = only_row(run(phase3(player_rows=rows), **NO_UPSTREAM))
    assert feature(row, "pct_three") == pytest.approx((6 / 18, P3))
    none_known = games("p1", [20] * 3, mid_range_makes=None)
    row = only_row(run(phase3(player_rows=none_known), **NO_UPSTREAM))
    assert feature(row, "pct_paint") == (0.30, DEF)


def test_phase3_windows_use_the_last_10_and_15_games() -> None:
    player = games("p1", [10] * 10) + games("p1", [40] * 5, first_day_back=11)
    offense = team_games("AAA", AAA_WINS) + team_games("AAA", [True] * 5, 11, pace=50.0)
    defense = defense_games("BBB", 15) + defense_games("BBB", 5, 16, defensive_rating=50.0)
    world = phase3(player_rows=player, offense_rows=offense, defense_rows=defense)
    row = only_row(run(world, **NO_UPSTREAM))
    assert feature(row, "points_avg_last_10") == (10.0, P3)
    assert feature(row, "points_avg_season") == (20.0, P3)
    assert feature(row, "team_pace") == (98.0, P3)
    assert feature(row, "opponent_def_rating") == (108.0, P3)
    assert feature(row, "team_win_pct") == (11 / 15, CALC)


def test_composite_features_are_phase4_whenever_the_p3_row_exists() -> None:
    row = only_row(
        run(
            composite_factors=composite_factors(
                fatigue_score=100, shot_zone_mismatch_score=0.0, pace_score=0.0
            )
        )
    )
    assert feature(row, "fatigue_score") == (100.0, P4)
    assert feature(row, "shot_zone_mismatch_score") == (0.0, P4)  # P3's own default
    assert feature(row, "pace_score") == (0.0, P4)


def test_upstream_rows_of_other_players_and_dates_are_not_used() -> None:
    out = run(
        daily_cache=daily_cache(("p2",)),
        composite_factors=composite_factors(game_date=D - timedelta(days=1)),
        shot_zones=shot_zones(analysis_date=D + timedelta(days=1)),
    )
    row = only_row(out)
    assert feature(row, "points_avg_last_5") == (23.6, P3)
    assert feature(row, "fatigue_score") == (50.0, DEF)
    assert feature(row, "pct_paint") == pytest.approx((8 / 18, P3))
    assert row["source_daily_cache_rows_found"] == 0


# --- source tracking, hash, point in time --------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "found"),
    [
        ({}, {"daily_cache": 1, "composite": 1, "shot_zones": 1, "team_defense": 1}),
        (NO_UPSTREAM, {"daily_cache": 0, "composite": 0, "shot_zones": 0, "team_defense": 0}),
        (
            {
                "shot_zones": shot_zones(insufficient_data_reason="Only 3 games"),
                "daily_cache": None,
            },
            {"daily_cache": 0, "composite": 1, "shot_zones": 1, "team_defense": 1},
        ),
    ],
)
def test_source_tracking(upstream: SomeUpstream, found: dict[str, int]) -> None:
    row = only_row(run(**upstream))
    for name, rows_found in found.items():
        assert row[f"source_{name}_rows_found"] == rows_found, name
        assert row[f"source_{name}_completeness_pct"] == 100.0 * rows_found, name
        expected_at = UPSTREAM_AT if rows_found else None
        assert row[f"source_{name}_last_updated"] == expected_at, name


def test_rerun_changes_only_created_at() -> None:
    first = run()
    later = run(processed_at=PROCESSED_AT + timedelta(hours=5))
    assert_frame_equal(first.drop("created_at"), later.drop("created_at"))
    assert later["created_at"][0] == PROCESSED_AT + timedelta(hours=5)


def test_hash_changes_when_a_feature_changes() -> None:
    changed = run(daily_cache=daily_cache(points_avg_last_5=26.0))
    assert changed["data_hash"][0] != run()["data_hash"][0]


@pytest.mark.parametrize("upstream", [{}, NO_UPSTREAM], ids=["upstream", "no-upstream"])
def test_games_on_or_after_d_do_not_change_the_output(upstream: SomeUpstream) -> None:
    base = phase3(team_context_rows=[{"team_abbr": "BBB", "game_date": D, "season_year": SEASON}])
    later_days = (0, -1, -5)  # D, D+1, D+5
    later = phase3(
        contexts=[context(), context(game_date=D + timedelta(days=1), player_status="out")],
        player_rows=games("p1", P3_POINTS)
        + [r for k in later_days for r in games("p1", [99], first_day_back=k, minutes_played=48.0)]
        + games("p1", [1] * 5, first_day_back=400),  # previous season
        offense_rows=team_games("AAA", AAA_WINS)
        + [r for k in later_days for r in team_games("AAA", [False], k, pace=60.0)],
        defense_rows=defense_games("BBB", 15)
        + defense_games("AAA", 15, defensive_rating=130.0)
        + [r for k in later_days for r in defense_games("BBB", 1, k, defensive_rating=60.0)],
        team_context_rows=[
            {"team_abbr": "BBB", "game_date": D, "season_year": SEASON},
            {
                "team_abbr": "BBB",
                "game_date": D + timedelta(days=1),
                "team_days_rest": 0,
                "season_year": SEASON,
            },
        ],  # fmt: skip
    )
    assert_frame_equal(run(base, **upstream), run(later, **upstream))


# --- early season ---------------------------------------------------------------------------------


def _slate(players: Sequence[str]) -> Phase3Frames:
    rows = [r for p in players for r in games(p, P3_POINTS)]
    return phase3(contexts=[context(p) for p in players], player_rows=rows)


@pytest.mark.parametrize(
    ("players", "cached", "calendar", "placeholder", "reason"),
    [
        (4, 2, EARLY, False, None),  # exactly half lack P4: not more than half
        (4, 1, EARLY, True, "Early season: 3/4 players lack history"),
        (3, 2, EARLY, False, None),
        (3, 1, EARLY, True, "Early season: 2/3 players lack history"),
        (4, None, EARLY, True, "Early season: 4/4 players lack history"),  # P4 failed
        (4, 0, CALENDAR, False, None),  # not early season: never placeholders
    ],
)
def test_early_season_placeholder_rule(
    players: int,
    cached: int | None,
    calendar: SlateCalendar,
    placeholder: bool,
    reason: str | None,
) -> None:
    names = [f"p{i}" for i in range(1, players + 1)]
    cache = None if cached is None else daily_cache(names[:cached])
    out = run(_slate(names), calendar, daily_cache=cache)
    assert out.height == players
    assert out["early_season_flag"].to_list() == [calendar.is_early_season] * players
    assert out["insufficient_data_reason"].to_list() == [reason] * players
    for row in out.iter_rows(named=True):
        if placeholder:
            assert row["features"] == [None] * 25
            assert row["feature_sources"] == [DEF] * 25
            assert row["feature_names"] == list(FEATURE_NAMES)
            assert (row["feature_quality_score"], row["quality_tier"]) == (0.0, "low")
            assert row["data_source"] == "early_season"
        else:
            assert None not in row["features"]
            assert row["data_source"] != "early_season"
            assert row["feature_quality_score"] > 0


def test_an_empty_slate_gives_no_rows() -> None:
    out = run(phase3(contexts=[context(game_date=D + timedelta(days=1))]))
    assert out.height == 0
    assert out.schema == ML_FEATURE_STORE_V2.polars_schema


# --- real data ------------------------------------------------------------------------------------


def test_real_data_2024_01_15_with_every_upstream_failed() -> None:
    world, _ = season_frames(SEASON_2023)
    day = date(2024, 1, 15)
    calendar = slate_calendar(day, world.team_offense, world.team_context)
    out = build_p5(world, calendar, PROCESSED_AT, **NO_UPSTREAM)
    slate_players = world.player_context.filter(pl.col("game_date") == day)["player_lookup"]
    assert out.height == slate_players.len() > 0
    assert out["player_lookup"].is_unique().all()
    assert set(out["player_lookup"]) == set(slate_players)
    assert out.schema == ML_FEATURE_STORE_V2.polars_schema
    assert out["features"].list.len().to_list() == [25] * out.height
    assert out["features"].list.eval(pl.element().is_null().any()).explode().sum() == 0
    sources = out["feature_sources"].explode()
    assert set(sources) <= {P3, CALC, DEF}
    assert (out["data_source"] == "phase3").all()
    assert not out["early_season_flag"].any()
    assert number(out["feature_quality_score"].max()) < 80  # lower quality without Phase 4
    assert number(out["feature_quality_score"].min()) >= 40
    trends = out["features"].list.get(NAME["recent_trend"])
    assert set(trends) <= {-2.0, -1.0, 0.0, 1.0, 2.0}
    shares = out["features"].list.get(NAME["pct_free_throw"])
    assert number(shares.min()) >= 0.0 and number(shares.max()) <= 0.5


def test_slate_inputs_computed_apart_give_the_same_table() -> None:
    """The run core computes P5's Phase 3 half beside P1 to P4 (`slate_inputs`), the flows'
    tasks inside P5's own plan: every column has the same bits, data_hash included."""
    world, _ = season_frames(SEASON_2023)
    days = (date(2024, 1, 14), date(2024, 1, 15))
    calendars = [slate_calendar(d, world.team_offense, world.team_context) for d in days]
    phase3 = {f.name: getattr(world, f.name) for f in dataclasses.fields(world)}
    together = build_p5(world, calendars, PROCESSED_AT, **NO_UPSTREAM)
    inputs = slate_inputs(calendar=calendars, **phase3)
    apart = ml_feature_store_v2(
        **phase3, calendar=calendars, processed_at=PROCESSED_AT, slate_inputs=inputs, **NO_UPSTREAM
    )
    assert together["game_date"].unique().sort().to_list() == list(days)
    assert inputs.height == together.height > 300
    assert_frame_equal(apart, together)


# --- SPEC 12 and 15 columns: quality readiness and the Phase 5 reader's completeness ----------

NEW_COLUMNS = (
    "default_feature_count",
    "is_quality_ready",
    "expected_games_count",
    "actual_games_count",
    "missing_games_count",
    "completeness_percentage",
    "is_production_ready",
    "data_quality_issues",
    "backfill_bootstrap_mode",
    "processing_decision_reason",
)


def new_columns(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in NEW_COLUMNS)


def test_the_feature_table_is_the_contract() -> None:
    from quality.feature_contract import ARRAY_CONTRACT

    table = feature_table()
    assert [f.name for f in table] == [f.name for f in ARRAY_CONTRACT]
    assert [f.default for f in table] == [f.default for f in ARRAY_CONTRACT]
    assert [(*(t for t, _ in f.tiers), DEF) for f in table] == [f.chain for f in ARRAY_CONTRACT]


def test_a_fully_sourced_row_is_ready_and_complete_with_no_schedule() -> None:
    """Every one of the 25 from its first source; of 25 to 59, the 18 without an input in
    this world (no lines, no team row, no usage, no opponent rows) are 'missing'."""
    row = only_row(run())
    assert new_columns(row) == (18, True, 0, 0, 0, 100.0, True, [], False, "processed")
    assert row["default_feature_indices"] == [
        *(25, 26, 27, 37, 38, 40, 41, 42, 47, 48, 50, 51, 52, 53, 54, 55, 56, 57)
    ]


def _schedule(team: str, game_ids: Sequence[str], days_back: Sequence[int]) -> list[dict]:
    return [
        {
            "team_abbr": team,
            "game_id": game_id,
            "game_date": D - timedelta(days=back),
            "season_year": SEASON if D - timedelta(days=back) >= date(2023, 8, 1) else SEASON - 1,
            "opponent_team_abbr": "ZZZ",
            "processed_at": UPSTREAM_AT,
        }
        for game_id, back in zip(game_ids, days_back, strict=True)
    ]


def test_completeness_counts_the_teams_scheduled_games_with_a_player_box() -> None:
    """AAA: 4 scheduled games of S before D, 3 with player rows (any player's)."""
    schedule = (
        _schedule("AAA", ["p1-20240114", "p1-20240113", "p2-20240110", "X-1"], [1, 2, 5, 6])
        + _schedule("AAA", ["D-game", "old-season"], [0, 200])  # D itself, season 2022
        + _schedule("BBB", ["B-1", "B-2"], [1, 2])  # another team
    )
    p2_box = games("p2", [10], first_day_back=5)
    world = phase3(player_rows=games("p1", P3_POINTS) + p2_box, team_context_rows=schedule)
    row = only_row(run(world))
    assert new_columns(row)[2:8] == (4, 3, 1, 75.0, False, ["phase3_incomplete"])
    assert row["processing_decision_reason"] == "processed"


def test_ninety_percent_is_production_ready() -> None:
    ids = [f"p1-{D - timedelta(days=b):%Y%m%d}" for b in range(1, 10)] + ["lost"]
    world = phase3(team_context_rows=_schedule("AAA", ids, list(range(1, 11))))
    row = only_row(run(world))
    assert new_columns(row)[2:8] == (10, 9, 1, 90.0, True, ["phase3_incomplete"])


def test_failed_upstreams_and_defaults_are_listed_in_order() -> None:
    """P1 and P4 failed; p1 has 3 games so recent_trend and pct_free_throw default."""
    world = phase3(player_rows=games("p1", [20, 22, 24]))
    row = only_row(run(world, team_defense_zones=None, daily_cache=None))
    assert row["data_quality_issues"] == [
        "team_defense_zone_analysis_failed",
        "player_daily_cache_failed",
        "default:recent_trend",
        "default:pct_free_throw",
    ]
    # 11 and 21 on their defaults, 34 (n < 5) missing: three required defaults; 44 (n < 4)
    # and the 18 of the fully sourced row are optional.
    assert row["default_feature_indices"][:6] == [11, 21, 25, 26, 27, 34]
    assert (row["default_feature_count"], row["required_default_count"]) == (22, 3)
    assert (row["is_quality_ready"], row["quality_alert_level"]) == (False, "yellow")
    assert (row["is_production_ready"], row["processing_decision_reason"]) == (
        False,
        "upstream_fallback",
    )


def test_a_player_without_history_is_not_quality_ready() -> None:
    world = phase3(contexts=[context(), context("newbie")])
    row = only_row(run(world, daily_cache=daily_cache(["p1"])), "newbie")
    assert row["feature_sources"][:4] == [DEF] * 4
    assert row["is_quality_ready"] is False
    assert row["data_quality_issues"][:4] == [
        "default:points_avg_last_5",
        "default:points_avg_last_10",
        "default:points_avg_season",
        "default:points_std_last_10",
    ]
    assert row["processing_decision_reason"] == "upstream_fallback"


def test_placeholder_rows_are_neither_quality_nor_production_ready() -> None:
    row = only_row(run(calendar=EARLY, daily_cache=None))
    assert row["data_source"] == "early_season"
    assert row["default_feature_count"] == 60
    assert row["default_feature_indices"] == list(range(60))
    assert [row[f"feature_{i}_value"] for i in range(60)] == [None] * 60
    assert (row["is_quality_ready"], row["is_production_ready"]) == (False, False)
    assert row["data_quality_issues"] == [
        "early_season_placeholder",
        "player_daily_cache_failed",
        *(f"default:{n}" for n in FEATURE_NAMES),
    ]
    assert (row["backfill_bootstrap_mode"], row["processing_decision_reason"]) == (
        True,
        "early_season_placeholder",
    )


@pytest.mark.parametrize(("days", "bootstrap"), [(29, True), (30, False)])
def test_backfill_bootstrap_mode_is_the_first_30_days(days: int, bootstrap: bool) -> None:
    calendar = SlateCalendar(D, SEASON, D - timedelta(days=days))
    assert only_row(run(calendar=calendar))["backfill_bootstrap_mode"] is bootstrap


@pytest.mark.parametrize(
    ("score", "matchup", "required_defaults", "ready"),
    [
        (70.0, 50.0, 0, True),
        (69.99, 100.0, 0, False),
        (97.0, 49.99, 0, False),
        (97.0, 100.0, 1, False),
        (0.0, 40.0, 34, False),  # a placeholder: score 0, matchup 40, 34 required defaults
    ],
)
def test_is_quality_ready_rule(
    score: float, matchup: float, required_defaults: int, ready: bool
) -> None:
    """SPEC 16.3 (replacing SPEC 12's rule): q >= 70, m >= 50 and r = 0."""
    from features.ml_feature_store_v2 import is_quality_ready

    frame = pl.DataFrame(
        {
            "feature_quality_score": [score],
            "matchup_quality_pct": [matchup],
            "required_default_count": [required_defaults],
        }
    )
    assert frame.select(is_quality_ready())["feature_quality_score"].to_list() == [ready]


# --- SPEC 15: the old prediction worker's batch query, verbatim, on the BigQuery emulator -------

WORKER_QUERY = (
    "SELECT player_lookup, features, feature_names, feature_quality_score, data_source, "
    "days_rest, is_home, expected_games_count, actual_games_count, completeness_percentage, "
    "missing_games_count, is_production_ready, data_quality_issues, backfill_bootstrap_mode, "
    "processing_decision_reason FROM nba_predictions.ml_feature_store_v2 WHERE player_lookup IN "
    "UNNEST(@player_lookups) AND game_date = @game_date AND feature_version = @feature_version"
)
SPEC = Path(__file__).resolve().parents[2] / "shared" / "SPEC.md"


def test_the_worker_query_is_the_spec_text_verbatim() -> None:
    spec = " ".join(SPEC.read_text().split())
    assert WORKER_QUERY in spec.replace("`", "")


def test_the_phase5_worker_query_runs_unchanged_on_the_emulator(
    monkeypatch: pytest.MonkeyPatch, bq_emulator: EmulatorProcess
) -> None:
    """A real 2023-24 partition written through the warehouse, read by the worker's query."""
    from google.cloud import bigquery

    from features.core import build_outputs
    from tasks.io import ensure_tables
    from tasks.warehouse import open_warehouse
    from tasks.warehouse.bigquery_warehouse import BigQueryWarehouse
    from tests.conftest import write_partition

    world, _ = season_frames(SEASON_2023)
    day = date(2024, 1, 15)
    p5 = {
        d: build_outputs(world, d, PROCESSED_AT)[ML_FEATURE_STORE_V2.name]
        for d in (day, day - timedelta(days=1))
    }
    slate_players = sorted(p5[day]["player_lookup"])
    with nullcontext(bq_emulator) as emulator:  # the session's emulator, a project of its own
        monkeypatch.setenv("PHASE4_BIGQUERY_ENDPOINT", emulator.endpoint)
        warehouse = open_warehouse("bigquery://spec15worker")
        assert isinstance(warehouse, BigQueryWarehouse)
        ensure_tables(warehouse)
        for d, frame in p5.items():
            write_partition(warehouse, ML_FEATURE_STORE_V2.name, d, frame)
        asked = [*slate_players, "nobody_at_all"]
        job = warehouse.client.query(
            WORKER_QUERY,
            job_config=bigquery.QueryJobConfig(
                query_parameters=[
                    bigquery.ArrayQueryParameter("player_lookups", "STRING", asked),
                    bigquery.ScalarQueryParameter("game_date", "DATE", day),
                    bigquery.ScalarQueryParameter("feature_version", "STRING", "v2_60features"),
                ]
            ),
        )
        rows = {row["player_lookup"]: dict(row.items()) for row in job.result()}
    assert sorted(rows) == slate_players and len(slate_players) > 100
    columns = (
        "features",
        "feature_names",
        "feature_quality_score",
        "data_source",
        "days_rest",
        "is_home",
        "expected_games_count",
        "actual_games_count",
        "completeness_percentage",
        "missing_games_count",
        "is_production_ready",
        "data_quality_issues",
        "backfill_bootstrap_mode",
        "processing_decision_reason",
    )
    for expected in p5[day].iter_rows(named=True):
        got = rows[expected["player_lookup"]]
        assert {c: got[c] for c in columns} == {c: expected[c] for c in columns}
    issues = p5[day].filter(pl.col("data_quality_issues").list.len() > 0).height
    assert issues > 0  # some rows carry issues, so the ARRAY<STRING> round trip is exercised


# --- the row hash ---------------------------------------------------------------------------------


def test_data_hash_is_the_sha256_of_each_rows_json_in_order_across_morsels() -> None:
    """Each row's hash, computed by the streaming engine over many morsels, is the digest of
    its own business columns' JSON, in order (hashlib as the reference)."""
    count = 150_003
    frame = pl.DataFrame(
        {"player_lookup": [f"p{i}" for i in range(count)], "x": [i / 7 for i in range(count)]}
    )
    hashes = frame.lazy().select(row_hash(["player_lookup", "x"])).collect(engine="streaming")
    encoded = frame.select(pl.struct("player_lookup", "x").struct.json_encode()).to_series()
    assert hashes.to_series().to_list() == [
        hashlib.sha256(r.encode()).hexdigest()[:16] for r in encoded
    ]
    assert encoded[1] == '{"player_lookup":"p1","x":0.14285714285714285}'
