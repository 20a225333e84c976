"""The five Phase 3 tables exactly as the real Parquet files have them: columns, order,
dtypes."""

from __future__ import annotations

import polars as pl

TS = pl.Datetime("us", "UTC")

ZONE_COLUMNS = ("paint_attempts", "paint_makes", "mid_range_attempts", "mid_range_makes")

PLAYER_GAME_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "player_lookup": pl.String(),
    "universal_player_id": pl.String(),
    "player_full_name": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "is_active": pl.Boolean(),
    "is_dnp": pl.Boolean(),
    "minutes_played": pl.Float64(),
    "points": pl.Int64(),
    "fg_attempts": pl.Int64(),
    "fg_makes": pl.Int64(),
    "three_pt_attempts": pl.Int64(),
    "three_pt_makes": pl.Int64(),
    "ft_attempts": pl.Int64(),
    "ft_makes": pl.Int64(),
    "rebounds": pl.Int64(),
    "assists": pl.Int64(),
    "turnovers": pl.Int64(),
    **{c: pl.Int64() for c in ZONE_COLUMNS},
    "assisted_fg_makes": pl.Int64(),
    "unassisted_fg_makes": pl.Int64(),
    "usage_rate": pl.Float64(),
    "ts_pct": pl.Float64(),
    "win_flag": pl.Boolean(),
    "processed_at": TS,
}

TEAM_DEFENSE_GAME_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "defending_team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "points_allowed": pl.Int64(),
    "opp_fg_attempts": pl.Int64(),
    "opp_fg_makes": pl.Int64(),
    "opp_paint_attempts": pl.Int64(),
    "opp_paint_makes": pl.Int64(),
    "opp_mid_range_attempts": pl.Int64(),
    "opp_mid_range_makes": pl.Int64(),
    "opp_three_pt_attempts": pl.Int64(),
    "opp_three_pt_makes": pl.Int64(),
    "points_in_paint_allowed": pl.Int64(),
    "mid_range_points_allowed": pl.Int64(),
    "three_pt_points_allowed": pl.Int64(),
    "blocks_paint": pl.Int64(),
    "blocks_mid_range": pl.Int64(),
    "blocks_three_pt": pl.Int64(),
    "defensive_rating": pl.Float64(),
    "opponent_pace": pl.Float64(),
    "home_game": pl.Boolean(),
    "win_flag": pl.Boolean(),
    "processed_at": TS,
}

TEAM_OFFENSE_GAME_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "points_scored": pl.Int64(),
    "fg_attempts": pl.Int64(),
    "fg_makes": pl.Int64(),
    "three_pt_attempts": pl.Int64(),
    "three_pt_makes": pl.Int64(),
    "ft_attempts": pl.Int64(),
    "ft_makes": pl.Int64(),
    "turnovers": pl.Int64(),
    "possessions": pl.Float64(),
    "pace": pl.Float64(),
    "offensive_rating": pl.Float64(),
    "home_game": pl.Boolean(),
    "win_flag": pl.Boolean(),
    "processed_at": TS,
}

UPCOMING_PLAYER_GAME_CONTEXT_SCHEMA: dict[str, pl.DataType] = {
    "player_lookup": pl.String(),
    "universal_player_id": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "team_abbr": pl.String(),
    "opponent_team_abbr": pl.String(),
    "home_game": pl.Boolean(),
    "back_to_back": pl.Boolean(),
    "season_phase": pl.String(),
    "days_rest": pl.Int64(),
    "opponent_days_rest": pl.Int64(),
    "games_in_last_7_days": pl.Int64(),
    "minutes_in_last_7_days": pl.Float64(),
    "games_in_last_14_days": pl.Int64(),
    "minutes_in_last_14_days": pl.Float64(),
    "avg_minutes_per_game_last_7": pl.Float64(),
    "back_to_backs_last_14_days": pl.Int64(),
    "fourth_quarter_minutes_last_7": pl.Float64(),
    "avg_usage_rate_last_7_games": pl.Float64(),
    "projected_usage_rate": pl.Float64(),
    "star_teammates_out": pl.Int64(),
    "pace_differential": pl.Float64(),
    "opponent_pace_last_10": pl.Float64(),
    "player_age": pl.Int64(),
    "player_status": pl.String(),
    "current_points_line": pl.Float64(),
    "processed_at": TS,
}

UPCOMING_TEAM_GAME_CONTEXT_SCHEMA: dict[str, pl.DataType] = {
    "team_abbr": pl.String(),
    "game_id": pl.String(),
    "game_date": pl.Date(),
    "season_year": pl.Int64(),
    "opponent_team_abbr": pl.String(),
    "home_game": pl.Boolean(),
    "team_days_rest": pl.Int64(),
    "team_back_to_back": pl.Boolean(),
    "games_in_last_7_days": pl.Int64(),
    "game_spread": pl.Float64(),
    "game_total": pl.Float64(),
    "starters_out_count": pl.Int64(),
    "processed_at": TS,
}

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
