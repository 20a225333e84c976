"""Tiny schema-complete Phase 3 frames for hand-computed cases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from nba_calendar import SlateCalendar
from quality.schemas import PHASE3_TABLES, TEAM_DEFENSE_ZONE_ANALYSIS, TableSchema
from tasks.warehouse.base import BeforeCommit, Replacement, Rows, Warehouse

PROCESSED_AT = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)
# The slate date of the hand-computed cases, in a season that opened on 2024-10-22.
D = date(2025, 1, 15)
CALENDAR = SlateCalendar(D, 2024, date(2024, 10, 22))
DAY_BEFORE = D - timedelta(days=1)
REAL_2023 = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "season_2023_24"


def only_row(out: pl.DataFrame) -> dict[str, Any]:
    """The single row a one-entity case must produce."""
    assert out.height == 1, out
    return out.row(0, named=True)


def tracking(row: dict[str, Any], source: str) -> tuple[Any, Any, Any]:
    """A row's SPEC 3 source tracking of one input: (last_updated, rows_found, completeness_pct)."""
    return (
        row[f"source_{source}_last_updated"],
        row[f"source_{source}_rows_found"],
        row[f"source_{source}_completeness_pct"],
    )


def context_key(player: str, team: str = "AAA", game_id: str = "g20250115") -> dict[str, Any]:
    """Who plays whom on D: the key columns of a player's context row (against BBB)."""
    return {
        "player_lookup": player,
        "universal_player_id": f"{player}_001",
        "game_id": game_id,
        "game_date": D,
        "season_year": 2024,
        "team_abbr": team,
        "opponent_team_abbr": "BBB",
    }


def frame(schema: TableSchema, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows with every declared column (missing ones NULL), typed as declared."""
    full = [{c: row.get(c) for c in schema.column_names} for row in rows]
    return pl.DataFrame(full, schema=schema.polars_schema)


def p1_rows(day: date, teams: list[str], rating: float = 110.0) -> pa.Table:
    """Schema-complete P1 output rows for the warehouse tests, one per team."""
    rows = [
        {
            "team_abbr": team,
            "analysis_date": day,
            "season_year": 2024,
            "games_in_sample": 15,
            "league_paint_pct": 0.58,
            "league_mid_range_pct": 0.41,
            "league_three_pt_pct": 0.355,
            "defensive_rating_last_15": rating,
            "data_quality_tier": "high",
            "early_season_flag": False,
            "data_hash": "0" * 16,
            "processed_at": datetime(2025, 1, 1, tzinfo=UTC),
        }
        for team in teams
    ]
    return frame(TEAM_DEFENSE_ZONE_ANALYSIS, rows).to_arrow()


def replace_partitions(
    warehouse: Warehouse,
    schema: TableSchema,
    partitions: Sequence[date],
    rows: Rows,
    *,
    before_commit: BeforeCommit | None = None,
) -> int:
    """One table's partitions: a commit of one replacement and no run lines."""
    return warehouse.commit([Replacement(schema, partitions, rows)], before_commit=before_commit)


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


def _game(game_id: str, day: date) -> dict[str, Any]:
    """What every Phase 3 game row has: its id, date, season, and Phase 3 writing it next night."""
    written = datetime(day.year, day.month, day.day, 3, 30, tzinfo=UTC) + timedelta(days=1)
    return {
        "game_id": game_id,
        "game_date": day,
        "season_year": season_of_date(day),
        "processed_at": written,
    }


def shots(prefix: str = "", **attempts_makes: tuple[int, int]) -> dict[str, int]:
    """`<prefix><kind>_attempts` and `_makes` columns from kind=(attempts, makes):
    shots(paint=(8, 5)) == {"paint_attempts": 8, "paint_makes": 5}."""
    columns: dict[str, int] = {}
    for kind, (attempts, makes) in attempts_makes.items():
        columns |= {f"{prefix}{kind}_attempts": attempts, f"{prefix}{kind}_makes": makes}
    return columns


def team_defense_game(team: str, day: date, n: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        **_game(f"g{day:%Y%m%d}{team}{n:03d}", day),
        "defending_team_abbr": team,
        "opponent_team_abbr": "OPP",
        "points_allowed": 110,
        **shots("opp_", paint=(35, 20), mid_range=(20, 8), three_pt=(35, 12)),
        "points_in_paint_allowed": 42,
        **{f"blocks_{z}": b for z, b in (("paint", 2), ("mid_range", 1), ("three_pt", 0))},
        "defensive_rating": 112.5,
        "opponent_pace": 99.2,
    }
    row.update(values)
    return row


def _every(
    game: Callable[..., dict[str, Any]],
    who: str,
    last_day: date,
    games: int,
    every: int,
    values: dict[str, Any],
) -> list[dict[str, Any]]:
    """`games` games of `who` ending on last_day, one every `every` days, newest first."""
    return [game(who, last_day - timedelta(days=every * i), i, **values) for i in range(games)]


def team_defense(
    team: str, last_day: date, games: int, every_days: int = 2, **values: Any
) -> list[dict[str, Any]]:
    """`games` games ending on last_day, all with the same figures."""
    return _every(team_defense_game, team, last_day, games, every_days, values)


def player_game(player: str, day: date, n: int = 0, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "player_lookup": player,
        "universal_player_id": f"{player}_001",
        "team_abbr": "AAA",
        "opponent_team_abbr": "BBB",
        **_game(f"g{day:%Y%m%d}{n:03d}", day),
        "is_active": True,
        "is_dnp": False,
        "minutes_played": 30.0,
        "points": 20,
        **shots(fg=(18, 9), three_pt=(6, 2), ft=(4, 3), paint=(8, 5), mid_range=(4, 2)),
        "assisted_fg_makes": 6,
        "unassisted_fg_makes": 3,
        "usage_rate": 25.0,
        "ts_pct": 0.55,
    }
    row.update(values)
    return row


def player_games(
    player: str, last_day: date, games: int, every_days: int = 2, **values: Any
) -> list[dict[str, Any]]:
    return _every(player_game, player, last_day, games, every_days, values)


def contexts_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(PHASE3_TABLES["upcoming_player_game_context"], rows)


def team_offense_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(PHASE3_TABLES["team_offense_game_summary"], rows)


def real_2023(table: str) -> pl.DataFrame:
    """A table of the real 2023-24 season as shipped in ../shared/realdata."""
    return pl.read_parquet(REAL_2023 / f"nba_analytics.{table}.parquet")


def team_defense_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(PHASE3_TABLES["team_defense_game_summary"], rows)


def player_games_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return frame(PHASE3_TABLES["player_game_summary"], rows)
