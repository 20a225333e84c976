"""P4 player_daily_cache against SPEC sections 7 and 10, by hand-computed cases."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.player_daily_cache import CONTEXT_COPIES, player_daily_cache
from features.player_shot_zone_analysis import player_shot_zone_analysis
from nba_calendar import SlateCalendar, slate_calendar
from quality.schemas import (
    PLAYER_DAILY_CACHE,
    PLAYER_SHOT_ZONE_ANALYSIS,
)
from tests.builders import (
    CALENDAR,
    DAY_BEFORE,
    PROCESSED_AT,
    D,
    context_key,
    contexts_frame,
    number,
    only_row,
    player_game,
    player_games,
    player_games_frame,
    real_2023,
    team_offense_frame,
    tracking,
)

CONTEXT_AT = datetime(2025, 1, 15, 6, 0, tzinfo=UTC)


# --- builders -------------------------------------------------------------------------------


def context(player: str = "p", team: str = "AAA", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        **context_key(player, team),
        "games_in_last_7_days": 3,
        "games_in_last_14_days": 6,
        "minutes_in_last_7_days": 95.5,
        "minutes_in_last_14_days": 190.0,
        "back_to_backs_last_14_days": 1,
        "avg_minutes_per_game_last_7": 31.8,
        "fourth_quarter_minutes_last_7": 22.5,
        "player_age": 27,
        "processed_at": CONTEXT_AT,
    }
    row.update(values)
    return row


def team_game(team: str, day: date, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "game_id": f"g{day:%Y%m%d}{team}",
        "game_date": day,
        "season_year": day.year if day.month >= 8 else day.year - 1,
        "team_abbr": team,
        "opponent_team_abbr": "ZZZ",
        "points_scored": 110,
        "pace": 100.0,
        "offensive_rating": 112.0,
        "win_flag": True,
        "processed_at": datetime(day.year, day.month, day.day, 4, 0, tzinfo=UTC)
        + timedelta(days=1),
    }
    row.update(values)
    return row


def team_games(team: str, last_day: date, games: int, **values: Any) -> list[dict[str, Any]]:
    return [team_game(team, last_day - timedelta(days=2 * i), **values) for i in range(games)]


def run(
    games: list[dict[str, Any]],
    contexts: list[dict[str, Any]] | None = None,
    offense: list[dict[str, Any]] | None = None,
    shot_zones: pl.DataFrame | None = None,
    calendar: SlateCalendar = CALENDAR,
    processed_at: datetime = PROCESSED_AT,
) -> pl.DataFrame:
    return player_daily_cache(
        player_games_frame(games),
        team_offense_frame(team_games("AAA", DAY_BEFORE, 10) if offense is None else offense),
        contexts_frame([context()] if contexts is None else contexts),
        shot_zones,
        calendar,
        processed_at,
    )


def one(games: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return only_row(run(games, **kwargs))


def scoring(points: Sequence[int | None], **values: Any) -> list[dict[str, Any]]:
    """One game every two days before D, newest first, with these points."""
    return [
        player_game("p", DAY_BEFORE - timedelta(days=2 * i), i, points=pts, **values)
        for i, pts in enumerate(points)
    ]


# --- SPEC section 10 ------------------------------------------------------------------------


def test_worked_example_of_the_spec() -> None:
    row = one(scoring(list(range(26, 36))))
    assert row["points_avg_last_5"] == 28.0
    assert row["points_avg_last_10"] == 30.5
    assert row["points_avg_season"] == 30.5
    assert row["points_std_last_10"] == pytest.approx(3.0276503540974917)
    assert row["points_std_last_10"] == pytest.approx(statistics.stdev(range(26, 36)))
    assert row["games_played_season"] == 10
    assert row["early_season_flag"] is False
    assert row["insufficient_data_reason"] is None
    assert row["cache_version"] == "v1"


# --- windows and means ----------------------------------------------------------------------


def test_windows_last_5_last_10_and_season() -> None:
    points = [30, 10, 20, 40, 0, 5, 15, 25, 35, 45, 100, 100]  # newest first
    row = one(scoring(points))
    assert row["points_avg_last_5"] == 20.0
    assert row["points_avg_last_10"] == 22.5
    assert row["points_avg_season"] == pytest.approx(sum(points) / 12)
    assert row["points_std_last_10"] == pytest.approx(statistics.stdev(points[:10]))
    assert row["games_played_season"] == 12


def test_ties_on_a_date_go_to_the_higher_game_id() -> None:
    """Two games on the 5th-newest date: only the higher game_id (20 points) is in the last 5."""
    tied_day = DAY_BEFORE - timedelta(days=8)
    games = scoring([10, 10, 10, 10]) + [
        player_game("p", tied_day, 0, points=40, game_id="g20250106a"),
        player_game("p", tied_day, 0, points=20, game_id="g20250106b"),
    ]
    row = one(games)
    assert row["points_avg_last_5"] == pytest.approx((4 * 10 + 20) / 5)
    assert row["points_avg_last_10"] == pytest.approx((4 * 10 + 20 + 40) / 6)


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("minutes_played", [30.0, 34.0, 20.0, 36.0, 30.0], 30.0),
        ("usage_rate", [20.0, 30.0, None, 25.0, 25.0], 25.0),  # mean of the known values
        ("ts_pct", [0.5, 0.6, 0.7, None, None], 0.6),
        ("ts_pct", [None, None, None, None, None], None),
    ],
)
def test_last_10_means_use_known_values(
    column: str, values: list[float | None], expected: float | None
) -> None:
    games = [
        player_game("p", DAY_BEFORE - timedelta(days=2 * i), i, **{column: v})
        for i, v in enumerate(values)
    ]
    target = {
        "minutes_played": "minutes_avg_last_10",
        "usage_rate": "usage_rate_last_10",
        "ts_pct": "ts_pct_last_10",
    }[column]
    row = one(games)
    assert row[target] == (pytest.approx(expected) if expected is not None else None)


def test_season_usage_uses_every_season_game() -> None:
    games = [
        player_game("p", DAY_BEFORE - timedelta(days=2 * i), i, usage_rate=20.0 if i < 10 else 40.0)
        for i in range(15)
    ]
    row = one(games)
    assert row["usage_rate_last_10"] == 20.0
    assert row["player_usage_rate_season"] == pytest.approx((10 * 20 + 5 * 40) / 15)


def test_std_is_null_under_two_known_points() -> None:
    row = one(scoring([22, None, None, None, None]))
    assert row["points_std_last_10"] is None
    assert row["points_avg_last_5"] == 22.0


@pytest.mark.parametrize(
    ("assisted", "fg_makes", "expected"),
    [
        ([6] * 10, [9] * 10, 100 * 6 / 9),
        ([3, None, None, None, None], [9, 9, 9, 9, 9], 100 * 3 / 9),  # only known games count
        ([None] * 5, [9] * 5, None),
        ([0] * 5, [0] * 5, None),  # no field goals made
        ([2, 4, 0, 1, 3, 5, 5, 5, 5, 5, 9, 9], [4, 8, 1, 2, 5, 5, 5, 5, 5, 5, 9, 9], 3500 / 45),
    ],
)
def test_assisted_rate_last_10(
    assisted: list[int | None], fg_makes: list[int], expected: float | None
) -> None:
    games = [
        player_game("p", DAY_BEFORE - timedelta(days=2 * i), i, assisted_fg_makes=a, fg_makes=m)
        for i, (a, m) in enumerate(zip(assisted, fg_makes, strict=True))
    ]
    row = one(games)
    assert row["assisted_rate_last_10"] == (
        pytest.approx(expected) if expected is not None else None
    )


# --- population -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("games", "days_since_last", "has_row"),
    [(4, 1, False), (5, 1, True), (5, 30, True), (5, 31, False), (20, 31, False), (20, 30, True)],
)
def test_needs_five_games_the_latest_within_30_days(
    games: int, days_since_last: int, has_row: bool
) -> None:
    rows = player_games("p", D - timedelta(days=days_since_last), games, every_days=1)
    assert run(rows).height == int(has_row)


def test_only_slate_players_get_a_row() -> None:
    games = player_games("p", DAY_BEFORE, 8) + player_games("q", DAY_BEFORE, 8)
    contexts = [context("p"), context("q", game_date=D + timedelta(days=1)), context("r")]
    assert run(games, contexts=contexts)["player_lookup"].to_list() == ["p"]


@pytest.mark.parametrize(
    "not_played",
    [
        {"is_dnp": True},
        {"is_active": False},
        {"is_active": None},
        {"minutes_played": 0.0},
        {"minutes_played": None},
    ],
)
def test_dnp_rows_are_not_counted(not_played: dict[str, Any]) -> None:
    dnp = [
        player_game("p", D - timedelta(days=d), 50 + d, points=99, **not_played) for d in (2, 4, 6)
    ]
    assert run(player_games("p", DAY_BEFORE, 4, every_days=3) + dnp).height == 0
    row = one(player_games("p", DAY_BEFORE, 6, every_days=3) + dnp)
    assert row["games_played_season"] == 6
    assert row["points_avg_last_5"] == 20.0
    assert row["points_avg_season"] == 20.0


def test_previous_season_games_are_ignored() -> None:
    last_season = player_games("p", date(2024, 4, 14), 30, points=50)
    assert {g["season_year"] for g in last_season} == {2023}
    assert run(player_games("p", DAY_BEFORE, 4) + last_season).height == 0
    row = one(player_games("p", DAY_BEFORE, 6) + last_season)
    assert row["games_played_season"] == 6
    assert row["points_avg_season"] == 20.0
    assert row["points_avg_last_10"] == 20.0


# --- team context ---------------------------------------------------------------------------


def test_team_pace_uses_the_last_10_team_games() -> None:
    offense = [
        team_game("AAA", DAY_BEFORE - timedelta(days=2 * i), pace=100.0 + i, offensive_rating=110.0)
        for i in range(12)
    ]
    row = one(player_games("p", DAY_BEFORE, 8), offense=offense)
    assert row["team_pace_last_10"] == pytest.approx(104.5)
    assert row["team_off_rating_last_10"] == 110.0
    assert row["source_team_offense_rows_found"] == 10
    assert row["source_team_offense_completeness_pct"] == 100.0
    assert row["source_team_offense_last_updated"] == offense[0]["processed_at"]


def test_a_traded_player_takes_his_new_teams_pace() -> None:
    games = player_games("p", DAY_BEFORE, 10, team_abbr="AAA")
    offense = team_games("AAA", DAY_BEFORE, 10, pace=90.0) + team_games(
        "CCC", DAY_BEFORE, 4, pace=104.0, offensive_rating=118.0
    )
    row = one(games, contexts=[context(team="CCC")], offense=offense)
    assert row["team_abbr"] == "CCC"
    assert row["team_pace_last_10"] == 104.0
    assert row["team_off_rating_last_10"] == 118.0
    assert row["source_team_offense_rows_found"] == 4
    assert row["source_team_offense_completeness_pct"] == 40.0


def test_a_team_without_games_has_null_team_context() -> None:
    row = one(player_games("p", DAY_BEFORE, 8), offense=team_games("ZZZ", DAY_BEFORE, 10))
    assert row["team_pace_last_10"] is None
    assert row["team_off_rating_last_10"] is None
    assert row["source_team_offense_rows_found"] == 0
    assert row["source_team_offense_completeness_pct"] == 0.0
    assert row["source_team_offense_last_updated"] is None


def test_team_games_of_another_season_or_on_d_are_ignored() -> None:
    offense = (
        team_games("AAA", DAY_BEFORE, 3, pace=100.0)
        + team_games("AAA", date(2024, 4, 14), 10, pace=80.0)
        + [team_game("AAA", D, pace=130.0), team_game("AAA", D + timedelta(days=2), pace=130.0)]
    )
    row = one(player_games("p", DAY_BEFORE, 8), offense=offense)
    assert row["team_pace_last_10"] == 100.0
    assert row["source_team_offense_rows_found"] == 3


# --- point in time --------------------------------------------------------------------------


def test_games_on_or_after_d_change_nothing_but_processed_at() -> None:
    history = player_games("p", DAY_BEFORE, 12) + player_games("q", DAY_BEFORE, 6, points=11)
    offense = team_games("AAA", DAY_BEFORE, 12)
    contexts = [context("p"), context("q")]
    zones = player_shot_zone_analysis(player_games_frame(history), CALENDAR, PROCESSED_AT)
    before = run(history, contexts=contexts, offense=offense, shot_zones=zones)

    future = [
        player_game("p", D, 90, points=80, minutes_played=48.0, usage_rate=60.0),
        player_game("p", D + timedelta(days=3), 91, points=0),
        player_game("q", D, 92, points=70),
    ]
    future_offense = [team_game("AAA", D, pace=140.0), team_game("AAA", D + timedelta(days=2))]
    later = PROCESSED_AT + timedelta(days=5)
    after = run(
        history + future,
        contexts=contexts + [context("p", game_date=D + timedelta(days=3), team="CCC")],
        offense=offense + future_offense,
        shot_zones=zones,
        processed_at=later,
    )
    assert (after["processed_at"] == later).all()
    assert_frame_equal(before.drop("processed_at"), after.drop("processed_at"))

    changed = [{**g, "points": 1, "processed_at": later} for g in future]
    again = run(
        history + changed,
        contexts=contexts,
        offense=offense + [{**g, "pace": 60.0} for g in future_offense],
        shot_zones=zones,
    )
    assert_frame_equal(before, again)


def test_a_players_row_does_not_depend_on_who_else_is_on_the_slate() -> None:
    """Bit for bit: the same history gives the same floats alone or among 30 players."""
    odd = [
        player_game(
            "p",
            DAY_BEFORE - timedelta(days=2 * i),
            i,
            points=7 * i + 3,
            minutes_played=31.7 - i * 1.3,
            usage_rate=19.9 + i * 0.7,
            ts_pct=0.513 + i * 0.011,
        )
        for i in range(13)
    ]
    offense = [
        team_game("AAA", DAY_BEFORE - timedelta(days=2 * i), pace=97.3 + i * 0.37)
        for i in range(11)
    ]
    alone = run(odd, offense=offense)
    others = [g for n in range(30) for g in player_games(f"x{n:02d}", DAY_BEFORE, 7 + n % 5)]
    crowd = run(
        odd + others,
        contexts=[context()] + [context(f"x{n:02d}") for n in range(30)],
        offense=offense,
    )
    assert crowd.height == 31
    assert_frame_equal(alone, crowd.filter(pl.col("player_lookup") == "p"), check_exact=True)


# --- flags, copies, sources -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("games", "flag", "reason"),
    [
        (5, True, "Only 5 games played, need 10 minimum"),
        (9, True, "Only 9 games played, need 10 minimum"),
        (10, False, None),
        (25, False, None),
    ],
)
def test_early_season_flag_and_reason(games: int, flag: bool, reason: str | None) -> None:
    row = one(player_games("p", DAY_BEFORE, games, every_days=1))
    assert row["early_season_flag"] is flag
    assert row["insufficient_data_reason"] == reason
    assert row["source_player_game_rows_found"] == games
    assert row["source_player_game_completeness_pct"] == min(games * 10.0, 100.0)


def test_context_columns_are_copied() -> None:
    row = one(player_games("p", DAY_BEFORE, 8), contexts=[context(universal_player_id="p_ctx")])
    expected = context()
    for column in CONTEXT_COPIES:
        assert row[column] == expected[column], column
    assert row["universal_player_id"] == "p_ctx"
    assert (row["player_lookup"], row["cache_date"], row["team_abbr"]) == ("p", D, "AAA")
    assert tracking(row, "upcoming_context") == (CONTEXT_AT, 1, 100.0)


def test_player_game_source_is_the_latest_processed_season_game() -> None:
    games = player_games("p", DAY_BEFORE, 8)
    games[5]["processed_at"] = datetime(2025, 1, 16, 9, 0, tzinfo=UTC)  # a late re-process
    row = one(games)
    assert row["source_player_game_last_updated"] == datetime(2025, 1, 16, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("p2_games", "zone", "paint_rate", "rows_found"),
    [
        (None, None, None, 0),  # P2 failed
        (0, None, None, 0),  # P2 ran but has no row for the player
        (6, None, None, 1),  # P2 placeholder (under 7 games)
        (10, "paint", 100 * 8 / 18, 1),
    ],
)
def test_shot_zone_columns_come_from_a_full_p2_row(
    p2_games: int | None, zone: str | None, paint_rate: float | None, rows_found: int
) -> None:
    games = player_games("p", DAY_BEFORE, 10 if p2_games in (None, 10) else 6)
    zones = None
    if p2_games is not None:
        p2_input = player_games("p", DAY_BEFORE, p2_games) if p2_games else []
        zones = player_shot_zone_analysis(player_games_frame(p2_input), CALENDAR, PROCESSED_AT)
    row = one(games, shot_zones=zones)
    assert row["primary_scoring_zone"] == zone
    if paint_rate is None:
        assert row["paint_rate_last_10"] is None and row["three_pt_rate_last_10"] is None
    else:
        assert row["paint_rate_last_10"] == pytest.approx(paint_rate)
        assert row["three_pt_rate_last_10"] == pytest.approx(100 * 6 / 18)
    assert row["source_shot_zone_rows_found"] == rows_found
    assert row["source_shot_zone_completeness_pct"] == 100.0 * rows_found
    assert (row["source_shot_zone_last_updated"] == PROCESSED_AT) is bool(rows_found)


def test_a_p2_placeholder_copies_nulls_even_if_it_carries_values() -> None:
    stale = PLAYER_SHOT_ZONE_ANALYSIS.empty_frame().vstack(
        player_shot_zone_analysis(
            player_games_frame(player_games("p", DAY_BEFORE, 10)), CALENDAR, PROCESSED_AT
        ).with_columns(insufficient_data_reason=pl.lit("Only 6 games available, need 7"))
    )
    row = one(player_games("p", DAY_BEFORE, 10), shot_zones=stale)
    assert row["primary_scoring_zone"] is None
    assert row["paint_rate_last_10"] is None
    assert row["source_shot_zone_rows_found"] == 1


def test_no_slate_gives_an_empty_frame_of_the_schema() -> None:
    out = run(player_games("p", DAY_BEFORE, 8), contexts=[context(game_date=DAY_BEFORE)])
    assert out.height == 0
    assert out.schema == PLAYER_DAILY_CACHE.polars_schema


# --- real data ------------------------------------------------------------------------------


def test_real_data_2024_01_15() -> None:
    day = date(2024, 1, 15)
    player_games_real = real_2023("player_game_summary")
    team_offense = real_2023("team_offense_game_summary")
    player_context = real_2023("upcoming_player_game_context")
    calendar = slate_calendar(day, team_offense, real_2023("upcoming_team_game_context"))
    zones = player_shot_zone_analysis(player_games_real, calendar, PROCESSED_AT)
    out = player_daily_cache(
        player_games_real, team_offense, player_context, zones, calendar, PROCESSED_AT
    )

    slate_players = set(player_context.filter(pl.col("game_date") == day)["player_lookup"])
    assert len(slate_players) / 2 <= out.height <= len(slate_players)
    assert set(out["player_lookup"]) <= slate_players
    assert out["player_lookup"].is_unique().all()
    assert out.schema == PLAYER_DAILY_CACHE.polars_schema
    assert (out["games_played_season"] >= 5).all()
    assert (out["early_season_flag"] == (out["games_played_season"] < 10)).all()
    assert out["team_pace_last_10"].null_count() == 0
    assert number(out["points_avg_last_10"].min()) >= 0
    assert out["minutes_avg_last_10"].is_between(0.0, 60.0).all()
    assert number(out["source_team_offense_rows_found"].max()) <= 10
