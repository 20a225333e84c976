"""P4 player_daily_cache (SPEC section 7): each slate player's recent scoring, minutes, usage and
team context, computed once per slate so the prediction layer reads one row instead of history.

Only players with a real recent history get a row (5+ qualifying games in S, the latest within 30
days of D); everyone else is left to P5's Phase 3 fallback.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.common import qualifying_games, slate, to_table
from features.windows import (
    GAME_NUMBER,
    Window,
    Windowed,
    as_of,
    assisted_rate,
    assisted_sums,
    attach_upstream_by_date,
    game_sequence,
    games_of,
    slate_tracking,
    upstream_tracking,
    window_tracking,
)
from nba_calendar import Calendars, calendar_frame
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
PLAYER = "player_lookup"
TEAM = "team_abbr"


# The columns, windows and stages, built once at import: they do not depend on the call.
SLATE_COLUMNS = (
    "analysis_date",
    "season_year",
    "recent_cutoff",
    PLAYER,
    "universal_player_id",
    TEAM,
    *CONTEXT_COPIES,
    pl.col("processed_at").alias("source_upcoming_context_last_updated"),
)
_SEASON, _LAST_5, _LAST_10 = Window(None), Window(SHORT_WINDOW), Window(LONG_WINDOW)
_POINTS, _USAGE = pl.col("points"), pl.col("usage_rate")
PLAYER_WINDOWS = Windowed(
    (
        PLAYER,
        "season_year",
        "game_date",
        GAME_NUMBER,
        pl.col("universal_player_id").alias("history_player_id"),
        pl.col("game_date").alias("latest_game"),
    ),
    [
        _SEASON.agg_count().alias("games_played_season"),
        _LAST_5.agg_integer_mean(_POINTS).alias("points_avg_last_5"),
        _LAST_10.agg_integer_mean(_POINTS).alias("points_avg_last_10"),
        _SEASON.agg_integer_mean(_POINTS).alias("points_avg_season"),
        _LAST_10.agg_std(_POINTS).alias("points_std_last_10"),
        _LAST_10.agg_mean(pl.col("minutes_played")).alias("minutes_avg_last_10"),
        _LAST_10.agg_mean(_USAGE).alias("usage_rate_last_10"),
        _LAST_10.agg_mean(pl.col("ts_pct")).alias("ts_pct_last_10"),
        _SEASON.agg_mean(_USAGE).alias("player_usage_rate_season"),
        *assisted_sums(_LAST_10),
        _SEASON.agg_max(pl.col("processed_at")).alias("source_player_game_last_updated"),
    ],
)
_TEAM_10 = Window(TEAM_WINDOW)
TEAM_WINDOWS = Windowed(
    (TEAM, "season_year", "game_date", GAME_NUMBER),
    [
        _TEAM_10.agg_mean(pl.col("pace")).alias("team_pace_last_10"),
        _TEAM_10.agg_mean(pl.col("offensive_rating")).alias("team_off_rating_last_10"),
        _TEAM_10.agg_count().alias("source_team_offense_rows_found"),
        _TEAM_10.agg_max(pl.col("processed_at")).alias("source_team_offense_last_updated"),
    ],
)
_IS_PLACEHOLDER = pl.col("insufficient_data_reason").is_not_null()
SHOT_ZONE_COLUMNS = (
    *(pl.when(~_IS_PLACEHOLDER).then(pl.col(c)).alias(c) for c in SHOT_ZONE_COPIES),
    pl.col("processed_at").alias("source_shot_zone_last_updated"),
)


def _slate_players(player_context: pl.DataFrame, calendar: Calendars) -> pl.LazyFrame:
    """The context row for D decides the player's team (a traded player takes his new one).

    The calendar's early_season_flag is left out: P4's own is games-based.
    """
    return slate(player_context, calendar).select(SLATE_COLUMNS)


def _player_history(
    player_games: pl.DataFrame, players: pl.LazyFrame, calendar: Calendars
) -> pl.LazyFrame:
    """Per player and game of S, his qualifying games up to it summarised (means of known
    values): the row of his last game before D is his history as of D."""
    games = games_of(qualifying_games(player_games.lazy()), players, PLAYER)
    return PLAYER_WINDOWS.of(game_sequence(games, PLAYER, calendar_frame(calendar)))


def _team_recent(
    team_offense: pl.DataFrame, players: pl.LazyFrame, calendar: Calendars
) -> pl.LazyFrame:
    """Per team and game of S, its last 10 offense games up to it."""
    games = games_of(team_offense, players, TEAM)
    return TEAM_WINDOWS.of(game_sequence(games, TEAM, calendar_frame(calendar)))


def _attach_shot_zones(rows: pl.LazyFrame, shot_zones: pl.DataFrame | None) -> pl.LazyFrame:
    """The player's P2 figures for D; a placeholder row copies NULLs, a failed P2 none at all."""
    return attach_upstream_by_date(
        rows, shot_zones, PLAYER_SHOT_ZONE_ANALYSIS, SHOT_ZONE_COLUMNS, "shot_zone_row_found"
    )


def has_recent_history() -> pl.Expr:
    """Population rule: 5+ qualifying games in S, the latest within 30 days of D."""
    return (pl.col("games_played_season") >= MIN_GAMES) & (
        pl.col("latest_game") >= pl.col("recent_cutoff")
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


_GAMES = pl.col("games_played_season")
_TEAM_ROWS = pl.col("source_team_offense_rows_found").fill_null(0)
RECENT_HISTORY = has_recent_history()
DESCRIBED = {
    "universal_player_id": pl.coalesce("universal_player_id", "history_player_id"),
    "cache_date": pl.col("analysis_date"),
    "assisted_rate_last_10": assisted_rate_last_10(),
    "early_season_flag": early_season_flag(),
    "insufficient_data_reason": early_season_reason(),
    "cache_version": pl.lit(CACHE_VERSION),
    **window_tracking("player_game", _GAMES, FULL_SAMPLE_GAMES),
    **window_tracking("team_offense", _TEAM_ROWS, TEAM_WINDOW),
    **slate_tracking("upcoming_context"),
    **upstream_tracking("shot_zone", "shot_zone_row_found"),
}


def player_daily_cache(
    player_games: pl.DataFrame,
    team_offense: pl.DataFrame,
    player_context: pl.DataFrame,
    shot_zones: pl.DataFrame | None,
    calendar: Calendars,
    processed_at: datetime,
) -> pl.DataFrame:
    """One row per slate player with a recent history, for every date D of `calendar`;
    `shot_zones` None means P2 failed."""
    players = _slate_players(player_context, calendar).cache()  # the pairs and the sequences
    rows = (
        as_of(players, _player_history(player_games, players, calendar), PLAYER)
        .drop("game_date", GAME_NUMBER)
        .filter(RECENT_HISTORY)
        .pipe(as_of, _team_recent(team_offense, players, calendar), TEAM)
        .pipe(_attach_shot_zones, shot_zones)
        .with_columns(**DESCRIBED, processed_at=pl.lit(processed_at))
    )
    return to_table(rows, PLAYER_DAILY_CACHE)
