"""The old processors' shape, for comparison only: one query per player, Python loops.

The seed system ran one BigQuery query per player and looped over that player's games in
Python. These baselines do the same against the local DuckDB warehouse, whose queries take
milliseconds where BigQuery's took about a second, so the ratio they give is a lower bound.
"""

from __future__ import annotations

import statistics
from datetime import date, timedelta

from nba_calendar import season_of
from quality.schemas import PLAYER_GAME_SUMMARY, UPCOMING_PLAYER_GAME_CONTEXT
from tasks.warehouse import Filter, Warehouse


def _player_games(warehouse: Warehouse, player: str, day: date) -> list[dict]:
    """One query per player: that player's games, then qualifying games of S before D."""
    season = season_of(day)
    rows = warehouse.read(
        PLAYER_GAME_SUMMARY.full_name, None, [Filter("player_lookup", "=", player)]
    ).to_dicts()
    games = [
        r
        for r in rows
        if r["season_year"] == season
        and r["game_date"] < day
        and r["is_active"]
        and not r["is_dnp"]
        and (r["minutes_played"] or 0) > 0
    ]
    return sorted(games, key=lambda r: (r["game_date"], r["game_id"]), reverse=True)


def _players(warehouse: Warehouse, table: str, filters: list[Filter]) -> list[str]:
    """The players to loop over: one query, each player once, in the order first read."""
    rows = warehouse.read(table, ["player_lookup"], filters)
    return rows.get_column("player_lookup").unique(maintain_order=True).to_list()


def naive_shot_zones(warehouse: Warehouse, day: date) -> list[dict]:
    """P2's zone rates and primary zone, player by player."""
    out = []
    cutoff = day - timedelta(days=30)
    players = _players(
        warehouse,
        PLAYER_GAME_SUMMARY.full_name,
        [Filter("season_year", "=", season_of(day)), Filter("game_date", "<", day)],
    )
    for player in players:
        games = _player_games(warehouse, player, day)
        if not games or games[0]["game_date"] < cutoff:
            continue
        last_10 = [
            g
            for g in games[:10]
            if g["paint_attempts"] is not None and g["mid_range_attempts"] is not None
        ]
        paint = sum(g["paint_attempts"] for g in last_10)
        mid = sum(g["mid_range_attempts"] for g in last_10)
        three = sum(g["three_pt_attempts"] for g in last_10)
        total = paint + mid + three
        paint_rate: float | None = None
        zone: str | None = None
        if total:
            paint_rate, mid_rate, three_rate = (100 * x / total for x in (paint, mid, three))
            zone = (
                "paint"
                if paint_rate >= 40
                else "perimeter"
                if three_rate >= 40
                else "mid_range"
                if mid_rate >= 35
                else "balanced"
            )
        out.append(
            {
                "player_lookup": player,
                "paint_rate_last_10": paint_rate,
                "primary_scoring_zone": zone,
                "games": len(games[:10]),
            }
        )
    return out


def naive_daily_cache(warehouse: Warehouse, day: date) -> list[dict]:
    """P4's points and minutes aggregates, player by player."""
    out = []
    cutoff = day - timedelta(days=30)
    slate = _players(
        warehouse, UPCOMING_PLAYER_GAME_CONTEXT.full_name, [Filter("game_date", "=", day)]
    )
    for player in slate:
        games = _player_games(warehouse, player, day)
        if len(games) < 5 or games[0]["game_date"] < cutoff:
            continue
        points = [g["points"] for g in games]
        out.append(
            {
                "player_lookup": player,
                "points_avg_last_5": statistics.mean(points[:5]),
                "points_avg_last_10": statistics.mean(points[:10]),
                "points_avg_season": statistics.mean(points),
                "points_std_last_10": statistics.stdev(points[:10]) if len(points) >= 2 else None,
                "minutes_avg_last_10": statistics.mean(g["minutes_played"] for g in games[:10]),
                "games_played_season": len(games),
            }
        )
    return out
