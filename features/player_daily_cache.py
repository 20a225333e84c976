"""P4 player_daily_cache (SPEC section 7): each slate player's recent scoring, minutes, usage and
team context, computed once per slate so the prediction layer reads one row instead of history.

Only players with a real recent history get a row (5+ qualifying games in S, the latest within 30
days of D); everyone else is left to P5's Phase 3 fallback.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.common import SlateCalendar, slate, to_table
from features.windows import (
    assisted_rate,
    assisted_sums,
    attach_upstream,
    recent_player_games,
    recent_team_games,
    slate_tracking,
    upstream_tracking,
    window_mean,
    window_std,
    window_tracking,
)
from quality.schemas import PLAYER_DAILY_CACHE, PLAYER_SHOT_ZONE_ANALYSIS

CACHE_VERSION = "v1"
MIN_GAMES = 5
FULL_SAMPLE_GAMES = 10  # below this the row is early season; also the completeness base
SHORT_WINDOW = 5
LONG_WINDOW = 10
TEAM_WINDOW = 10
CONTEXT_COPIES = (
    "games_in_last_7_days",
    "games_in_last_14_days",
    "minutes_in_last_7_days",
    "minutes_in_last_14_days",
    "back_to_backs_last_14_days",
    "avg_minutes_per_game_last_7",
    "fourth_quarter_minutes_last_7",
    "player_age",
)
SHOT_ZONE_COPIES = ("primary_scoring_zone", "paint_rate_last_10", "three_pt_rate_last_10")


def _slate_players(player_context: pl.DataFrame, calendar: SlateCalendar) -> pl.LazyFrame:
    """The context row for D decides the player's team (a traded player takes his new one)."""
    return slate(player_context, calendar).select(
        "player_lookup",
        "universal_player_id",
        "team_abbr",
        *CONTEXT_COPIES,
        pl.col("processed_at").alias("source_upcoming_context_last_updated"),
    )


def _player_history(player_games: pl.DataFrame, calendar: SlateCalendar) -> pl.LazyFrame:
    """Season-S qualifying games before D, summarised per player (means of known values)."""
    games = recent_player_games(player_games, calendar)
    last_5 = pl.col("games_ago") < SHORT_WINDOW
    last_10 = pl.col("games_ago") < LONG_WINDOW
    return games.group_by("player_lookup").agg(
        pl.col("universal_player_id").sort_by("games_ago").first().alias("history_player_id"),
        pl.col("game_date").max().alias("latest_game"),
        pl.len().cast(pl.Int64).alias("games_played_season"),
        window_mean("points", last_5).alias("points_avg_last_5"),
        window_mean("points", last_10).alias("points_avg_last_10"),
        window_mean("points").alias("points_avg_season"),
        window_std("points", last_10).alias("points_std_last_10"),
        window_mean("minutes_played", last_10).alias("minutes_avg_last_10"),
        window_mean("usage_rate", last_10).alias("usage_rate_last_10"),
        window_mean("ts_pct", last_10).alias("ts_pct_last_10"),
        window_mean("usage_rate").alias("player_usage_rate_season"),
        *assisted_sums(last_10),
        pl.col("processed_at").max().alias("source_player_game_last_updated"),
    )


def _team_recent(team_offense: pl.DataFrame, calendar: SlateCalendar) -> pl.LazyFrame:
    """Each team's last 10 offense games of S before D."""
    window = recent_team_games(team_offense, calendar, "team_abbr").filter(
        pl.col("games_ago") < TEAM_WINDOW
    )
    return window.group_by("team_abbr").agg(
        window_mean("pace").alias("team_pace_last_10"),
        window_mean("offensive_rating").alias("team_off_rating_last_10"),
        pl.len().cast(pl.Int64).alias("source_team_offense_rows_found"),
        pl.col("processed_at").max().alias("source_team_offense_last_updated"),
    )


def _attach_shot_zones(
    rows: pl.LazyFrame, shot_zones: pl.DataFrame | None, calendar: SlateCalendar
) -> pl.LazyFrame:
    """The player's P2 figures for D; a placeholder row copies NULLs, a failed P2 none at all."""
    is_placeholder = pl.col("insufficient_data_reason").is_not_null()
    copies = (
        *(pl.when(~is_placeholder).then(pl.col(c)).alias(c) for c in SHOT_ZONE_COPIES),
        pl.col("processed_at").alias("source_shot_zone_last_updated"),
    )
    return attach_upstream(
        rows, shot_zones, PLAYER_SHOT_ZONE_ANALYSIS, calendar, copies, "shot_zone_row_found"
    )


def has_recent_history(calendar: SlateCalendar) -> pl.Expr:
    """Population rule: 5+ qualifying games in S, the latest within 30 days of D."""
    return (pl.col("games_played_season") >= MIN_GAMES) & (
        pl.col("latest_game") >= calendar.recent_cutoff
    )


def assisted_rate_last_10() -> pl.Expr:
    return assisted_rate("assisted")


def early_season_flag() -> pl.Expr:
    return pl.col("games_played_season") < FULL_SAMPLE_GAMES


def early_season_reason() -> pl.Expr:
    return (
        pl.when(early_season_flag())
        .then(
            pl.format(
                "Only {} games played, need {} minimum",
                pl.col("games_played_season"),
                pl.lit(FULL_SAMPLE_GAMES),
            )
        )
        .otherwise(None)
    )


def player_daily_cache(
    player_games: pl.DataFrame,
    team_offense: pl.DataFrame,
    player_context: pl.DataFrame,
    shot_zones: pl.DataFrame | None,
    calendar: SlateCalendar,
    processed_at: datetime,
) -> pl.DataFrame:
    """One row per slate player with a recent history; `shot_zones` None means P2 failed."""
    games = pl.col("games_played_season")
    team_rows = pl.col("source_team_offense_rows_found").fill_null(0)
    rows = (
        _slate_players(player_context, calendar)
        .join(_player_history(player_games, calendar), on="player_lookup", how="inner")
        .filter(has_recent_history(calendar))
        .join(_team_recent(team_offense, calendar), on="team_abbr", how="left")
        .pipe(_attach_shot_zones, shot_zones, calendar)
        .with_columns(
            universal_player_id=pl.coalesce("universal_player_id", "history_player_id"),
            cache_date=pl.lit(calendar.analysis_date),
            assisted_rate_last_10=assisted_rate_last_10(),
            early_season_flag=early_season_flag(),
            insufficient_data_reason=early_season_reason(),
            cache_version=pl.lit(CACHE_VERSION),
            **window_tracking("player_game", games, FULL_SAMPLE_GAMES),
            **window_tracking("team_offense", team_rows, TEAM_WINDOW),
            **slate_tracking("upcoming_context"),
            **upstream_tracking("shot_zone", "shot_zone_row_found"),
            processed_at=pl.lit(processed_at),
        )
    )
    return to_table(rows, PLAYER_DAILY_CACHE)
