"""Tiny schema-complete Phase 3 frames for hand-computed cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from quality.schemas import (
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_OFFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
    TableSchema,
)

PROCESSED_AT = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)


def frame(schema: TableSchema, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows with every declared column (missing ones NULL), typed as declared."""
    full = [{c: row.get(c) for c in schema.column_names} for row in rows]
    return pl.DataFrame(full, schema=schema.polars_schema)


def number(value: object) -> float:
    """A Series aggregate (min, mean, ...) as a float: polars types them as any Python value."""
    assert isinstance(value, int | float), value
    return float(value)


def day_of(value: object) -> date:
    """A Series aggregate of a Date column (min, max) as a date."""
    assert isinstance(value, date), value
    return value


def season_of_date(day: date) -> int:
    return day.year if day.month >= 8 else day.year - 1


def team_defense_game(team: str, day: date, n: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "game_id": f"g{day:%Y%m%d}{team}{n:03d}",
        "game_date": day,
        "season_year": season_of_date(day),
        "defending_team_abbr": team,
        "opponent_team_abbr": "OPP",
        "points_allowed": 110,
        "opp_paint_attempts": 35,
        "opp_paint_makes": 20,
        "opp_mid_range_attempts": 20,
        "opp_mid_range_makes": 8,
        "opp_three_pt_attempts": 35,
        "opp_three_pt_makes": 12,
        "points_in_paint_allowed": 42,
        "blocks_paint": 2,
        "blocks_mid_range": 1,
        "blocks_three_pt": 0,
        "defensive_rating": 112.5,
        "opponent_pace": 99.2,
        "processed_at": datetime(day.year, day.month, day.day, 3, 30, tzinfo=UTC)
        + timedelta(days=1),
    }
    row.update(values)
    return row


def team_defense(
    team: str, last_day: date, games: int, every_days: int = 2, **values: Any
) -> list[dict[str, Any]]:
    """`games` games ending on last_day, newest last, all with the same figures."""
    return [
        team_defense_game(team, last_day - timedelta(days=every_days * i), i, **values)
        for i in range(games)
    ]


def player_game(player: str, day: date, n: int = 0, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "player_lookup": player,
        "universal_player_id": f"{player}_001",
        "game_id": f"g{day:%Y%m%d}{n:03d}",
        "game_date": day,
        "season_year": season_of_date(day),
        "team_abbr": "AAA",
        "opponent_team_abbr": "BBB",
        "is_active": True,
        "is_dnp": False,
        "minutes_played": 30.0,
        "points": 20,
        "fg_attempts": 18,
        "fg_makes": 9,
        "three_pt_attempts": 6,
        "three_pt_makes": 2,
        "ft_attempts": 4,
        "ft_makes": 3,
        "paint_attempts": 8,
        "paint_makes": 5,
        "mid_range_attempts": 4,
        "mid_range_makes": 2,
        "assisted_fg_makes": 6,
        "unassisted_fg_makes": 3,
        "usage_rate": 25.0,
        "ts_pct": 0.55,
        "processed_at": datetime(day.year, day.month, day.day, 3, 30, tzinfo=UTC)
        + timedelta(days=1),
    }
    row.update(values)
    return row


def player_games(
    player: str, last_day: date, games: int, every_days: int = 2, **values: Any
) -> list[dict[str, Any]]:
    return [
        player_game(player, last_day - timedelta(days=every_days * i), i, **values)
        for i in range(games)
    ]


def team_defense_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(TEAM_DEFENSE_GAME_SUMMARY, rows)


def player_games_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(PLAYER_GAME_SUMMARY, rows)


def empty(schema: TableSchema) -> pl.DataFrame:
    return schema.empty_frame()


EMPTY_TEAM_OFFENSE = TEAM_OFFENSE_GAME_SUMMARY.empty_frame()
EMPTY_TEAM_CONTEXT = UPCOMING_TEAM_GAME_CONTEXT.empty_frame()
EMPTY_PLAYER_CONTEXT = UPCOMING_PLAYER_GAME_CONTEXT.empty_frame()
