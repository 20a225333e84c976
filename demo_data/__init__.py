"""A deterministic synthetic NBA season shaped exactly like the five Phase 3 input tables.

Why: the flow, the CLI demo (`phase4 demo-data`) and the benchmarks need a full, realistic season
without the licence-restricted real fixtures. The generator simulates a schedule, rosters, box
scores (with zones, DNPs, injuries and trades), then derives every team table and both
"upcoming" context tables from those box scores the way Phase 3 does, point in time: a context
row for date D only uses games strictly before D.

Conventions copied from the real files (checked against `realdata/season_2023_24`):
`days_rest` counts full days off between games (0 on a back-to-back), "last 7 days" means
`D - 7 <= game_date < D`, `back_to_back` is the player's own previous qualifying game on D - 1,
`back_to_backs_last_14_days` counts such second games inside the 14-day window, pace is the mean
of both teams' possession estimates per 48 minutes. Not in the real files but filled here:
`player_age`, non-'available' `player_status`, `current_points_line`, blocks, spread and total.
"""

from __future__ import annotations

import random

import polars as pl

from demo_data.derived import (
    player_game_summary,
    team_defense_game_summary,
    team_offense_game_summary,
    team_totals,
    upcoming_player_game_context,
    upcoming_team_game_context,
)
from demo_data.schedule import (
    TEAMS,
    all_star_sunday,
    build_schedule,
    demo_slate_date,
    season_bounds,
)
from demo_data.schemas import SCHEMAS, conform
from demo_data.simulation import Simulator, box_frames

__all__ = [
    "SCHEMAS",
    "TEAMS",
    "all_star_sunday",
    "demo_slate_date",
    "generate_season",
    "season_bounds",
]


def generate_season(seed: int = 7, season_year: int = 2024) -> dict[str, pl.DataFrame]:
    """A full synthetic regular season S as the five Phase 3 tables, keyed by table name.

    The same (seed, season_year) always gives identical frames; another seed another season.
    """
    rng = random.Random(f"phase4-demo:{seed}:{season_year}")
    schedule = build_schedule(rng, season_year)
    sim = Simulator(rng, season_year)
    raw, facts = box_frames(sim, schedule)
    totals = team_totals(raw, facts)
    summary = player_game_summary(raw, totals, season_year)
    team_context = upcoming_team_game_context(totals, season_year)
    frames = {
        "player_game_summary": summary,
        "team_defense_game_summary": team_defense_game_summary(totals, season_year),
        "team_offense_game_summary": team_offense_game_summary(totals, season_year),
        "upcoming_player_game_context": upcoming_player_game_context(
            raw, summary, team_context, rng, season_year
        ),
        "upcoming_team_game_context": team_context,
    }
    return {name: conform(frames[name], schema) for name, schema in SCHEMAS.items()}
