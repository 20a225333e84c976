"""The five Phase 3 tables exactly as the real Parquet files have them: columns, order,
dtypes. Written `name:type` in file order, so a schema reads like the file's header."""

from __future__ import annotations

import polars as pl

TYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "ts": pl.Datetime("us", "UTC"),
}


def columns(spec: str) -> dict[str, pl.DataType]:
    """`name:type name:type ...` (any whitespace between) as an ordered polars schema."""
    return {name: TYPES[kind] for name, kind in (item.split(":") for item in spec.split())}


PLAYER_GAME_SUMMARY_SCHEMA = columns(
    """
    player_lookup:str universal_player_id:str player_full_name:str game_id:str game_date:date
    season_year:int team_abbr:str opponent_team_abbr:str is_active:bool is_dnp:bool
    minutes_played:float points:int fg_attempts:int fg_makes:int three_pt_attempts:int
    three_pt_makes:int ft_attempts:int ft_makes:int rebounds:int assists:int turnovers:int
    paint_attempts:int paint_makes:int mid_range_attempts:int mid_range_makes:int
    assisted_fg_makes:int unassisted_fg_makes:int usage_rate:float ts_pct:float win_flag:bool
    processed_at:ts
    """
)
TEAM_DEFENSE_GAME_SUMMARY_SCHEMA = columns(
    """
    game_id:str game_date:date season_year:int defending_team_abbr:str opponent_team_abbr:str
    points_allowed:int opp_fg_attempts:int opp_fg_makes:int opp_paint_attempts:int
    opp_paint_makes:int opp_mid_range_attempts:int opp_mid_range_makes:int
    opp_three_pt_attempts:int opp_three_pt_makes:int points_in_paint_allowed:int
    mid_range_points_allowed:int three_pt_points_allowed:int blocks_paint:int
    blocks_mid_range:int blocks_three_pt:int defensive_rating:float opponent_pace:float
    home_game:bool win_flag:bool processed_at:ts
    """
)
TEAM_OFFENSE_GAME_SUMMARY_SCHEMA = columns(
    """
    game_id:str game_date:date season_year:int team_abbr:str opponent_team_abbr:str
    points_scored:int fg_attempts:int fg_makes:int three_pt_attempts:int three_pt_makes:int
    ft_attempts:int ft_makes:int turnovers:int possessions:float pace:float
    offensive_rating:float home_game:bool win_flag:bool processed_at:ts
    """
)
UPCOMING_PLAYER_GAME_CONTEXT_SCHEMA = columns(
    """
    player_lookup:str universal_player_id:str game_id:str game_date:date season_year:int
    team_abbr:str opponent_team_abbr:str home_game:bool back_to_back:bool season_phase:str
    days_rest:int opponent_days_rest:int games_in_last_7_days:int minutes_in_last_7_days:float
    games_in_last_14_days:int minutes_in_last_14_days:float avg_minutes_per_game_last_7:float
    back_to_backs_last_14_days:int fourth_quarter_minutes_last_7:float
    avg_usage_rate_last_7_games:float projected_usage_rate:float star_teammates_out:int
    pace_differential:float opponent_pace_last_10:float player_age:int player_status:str
    current_points_line:float processed_at:ts
    """
)
UPCOMING_TEAM_GAME_CONTEXT_SCHEMA = columns(
    """
    team_abbr:str game_id:str game_date:date season_year:int opponent_team_abbr:str
    home_game:bool team_days_rest:int team_back_to_back:bool games_in_last_7_days:int
    game_spread:float game_total:float starters_out_count:int processed_at:ts
    """
)

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "player_game_summary": PLAYER_GAME_SUMMARY_SCHEMA,
    "team_defense_game_summary": TEAM_DEFENSE_GAME_SUMMARY_SCHEMA,
    "team_offense_game_summary": TEAM_OFFENSE_GAME_SUMMARY_SCHEMA,
    "upcoming_player_game_context": UPCOMING_PLAYER_GAME_CONTEXT_SCHEMA,
    "upcoming_team_game_context": UPCOMING_TEAM_GAME_CONTEXT_SCHEMA,
}


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Exactly the real files' columns, order and dtypes."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())
