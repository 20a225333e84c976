"""P2 player_shot_zone_analysis (SPEC section 5): where each player shoots from, how well."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.common import (
    SlateCalendar,
    completeness_pct,
    games_before,
    insufficient_reason,
    known_sum,
    qualifying_games,
    ratio,
    to_output,
    with_recency,
)
from quality.schemas import PLAYER_SHOT_ZONE_ANALYSIS

SHORT_WINDOW = 10
LONG_WINDOW = 20
MIN_GAMES_10 = 7
MIN_GAMES_20 = 15
ZONES = ("paint", "mid_range", "three_pt")
ZONE_COLUMNS = {
    "paint": ("paint_attempts", "paint_makes"),
    "mid_range": ("mid_range_attempts", "mid_range_makes"),
    "three_pt": ("three_pt_attempts", "three_pt_makes"),
}
METRICS = (
    *(f"{z}_rate_last_10" for z in ZONES),
    "total_shots_last_10",
    *(f"{z}_pct_last_10" for z in ZONES),
    *(f"{z}_attempts_per_game" for z in ZONES),
    "assisted_rate_last_10",
    "unassisted_rate_last_10",
    "paint_rate_last_20",
    "paint_pct_last_20",
    "primary_scoring_zone",
)


def _zones_known() -> pl.Expr:
    """A game with any unknown paint or mid-range figure is left out of every zone sum."""
    return pl.all_horizontal(
        pl.col(c).is_not_null() for c in (*ZONE_COLUMNS["paint"], *ZONE_COLUMNS["mid_range"])
    )


def _zone_sums(in_window: pl.Expr, suffix: str) -> list[pl.Expr]:
    counted = in_window & pl.col("zones_known")
    exprs = [
        known_sum(pl.col(column).filter(counted)).alias(f"{column}_{suffix}")
        for columns in ZONE_COLUMNS.values()
        for column in columns
    ]
    return exprs + [counted.sum().alias(f"known_zone_games_{suffix}")]


def _assisted_sums(in_window: pl.Expr) -> list[pl.Expr]:
    exprs = []
    for kind in ("assisted", "unassisted"):
        known = in_window & pl.col(f"{kind}_fg_makes").is_not_null()
        exprs += [
            known_sum(pl.col(f"{kind}_fg_makes").filter(known)).alias(f"{kind}_makes"),
            known_sum(pl.col("fg_makes").filter(known)).alias(f"{kind}_fg_base"),
        ]
    return exprs


def _window_sums(player_games: pl.DataFrame, calendar: SlateCalendar) -> pl.LazyFrame:
    games = with_recency(qualifying_games(games_before(player_games, calendar)), "player_lookup")
    in_10 = pl.col("games_ago") < SHORT_WINDOW
    in_20 = pl.col("games_ago") < LONG_WINDOW
    return (
        games.filter(in_20)
        .with_columns(zones_known=_zones_known())
        .group_by("player_lookup")
        .agg(
            pl.col("universal_player_id").first(),
            pl.col("game_date").max().alias("latest_game"),
            in_10.sum().alias("games_in_sample_10"),
            in_20.sum().alias("games_in_sample_20"),
            (in_10 & ~pl.col("zones_known")).sum().alias("games_missing_zones"),
            *_zone_sums(in_10, "10"),
            *_zone_sums(in_20, "20"),
            *_assisted_sums(in_10),
            pl.col("processed_at").filter(in_10).max().alias("source_player_game_last_updated"),
        )
    )


def _zone_metrics() -> list[pl.Expr]:
    total = pl.sum_horizontal(pl.col(f"{ZONE_COLUMNS[z][0]}_10") for z in ZONES)
    total = pl.when(pl.col("known_zone_games_10") > 0).then(total).otherwise(None)
    known_games = pl.col("games_in_sample_10") - pl.col("games_missing_zones")
    exprs = [total.cast(pl.Int64).alias("total_shots_last_10")]
    for z in ZONES:
        attempts, makes = (pl.col(f"{c}_10") for c in ZONE_COLUMNS[z])
        exprs += [
            (ratio(attempts, total) * 100.0).alias(f"{z}_rate_last_10"),
            ratio(makes, attempts).alias(f"{z}_pct_last_10"),
            ratio(attempts, known_games).alias(f"{z}_attempts_per_game"),
        ]
    total_20 = pl.sum_horizontal(pl.col(f"{ZONE_COLUMNS[z][0]}_20") for z in ZONES)
    long_enough = pl.col("games_in_sample_20") >= MIN_GAMES_20
    exprs += [
        pl.when(long_enough)
        .then(ratio(pl.col("paint_attempts_20"), total_20) * 100.0)
        .alias("paint_rate_last_20"),
        pl.when(long_enough)
        .then(ratio(pl.col("paint_makes_20"), pl.col("paint_attempts_20")))
        .alias("paint_pct_last_20"),
        (ratio(pl.col("assisted_makes"), pl.col("assisted_fg_base")) * 100.0).alias(
            "assisted_rate_last_10"
        ),
        (ratio(pl.col("unassisted_makes"), pl.col("unassisted_fg_base")) * 100.0).alias(
            "unassisted_rate_last_10"
        ),
    ]
    return exprs


def _primary_scoring_zone() -> pl.Expr:
    """First rule that holds: paint >= 40, three >= 40, mid-range >= 35, else balanced."""
    return (
        pl.when(pl.col("total_shots_last_10").is_null() | (pl.col("total_shots_last_10") == 0))
        .then(None)
        .when(pl.col("paint_rate_last_10") >= 40)
        .then(pl.lit("paint"))
        .when(pl.col("three_pt_rate_last_10") >= 40)
        .then(pl.lit("perimeter"))
        .when(pl.col("mid_range_rate_last_10") >= 35)
        .then(pl.lit("mid_range"))
        .otherwise(pl.lit("balanced"))
    )


def sample_quality(games: pl.Expr, excellent: int, good: int, limited: int) -> pl.Expr:
    return (
        pl.when(games >= excellent)
        .then(pl.lit("excellent"))
        .when(games >= good)
        .then(pl.lit("good"))
        .when(games >= limited)
        .then(pl.lit("limited"))
        .otherwise(pl.lit("insufficient"))
    )


def _quality_tier(games: pl.Expr) -> pl.Expr:
    return (
        pl.when(games >= SHORT_WINDOW)
        .then(pl.lit("high"))
        .when(games >= MIN_GAMES_10)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )


def player_shot_zone_analysis(
    player_games: pl.DataFrame, calendar: SlateCalendar, processed_at: datetime
) -> pl.DataFrame:
    """One row per player whose latest qualifying game of S is within 30 days of D."""
    g10 = pl.col("games_in_sample_10")
    is_placeholder = g10 < MIN_GAMES_10
    rows = (
        _window_sums(player_games, calendar)
        .filter(pl.col("latest_game") >= calendar.recent_cutoff)
        .with_columns(_zone_metrics())
        .with_columns(primary_scoring_zone=_primary_scoring_zone())
        .with_columns(
            [pl.when(is_placeholder).then(None).otherwise(pl.col(m)).alias(m) for m in METRICS]
        )
        .with_columns(
            analysis_date=pl.lit(calendar.analysis_date),
            season_year=pl.lit(calendar.season_year),
            sample_quality_10=sample_quality(g10, 10, 7, 5),
            sample_quality_20=sample_quality(pl.col("games_in_sample_20"), 20, 14, 10),
            data_quality_tier=_quality_tier(g10),
            early_season_flag=pl.lit(calendar.is_early_season),
            insufficient_data_reason=pl.when(is_placeholder)
            .then(insufficient_reason(g10, MIN_GAMES_10))
            .otherwise(None),
            source_player_game_rows_found=g10,
            source_player_game_completeness_pct=completeness_pct(g10, SHORT_WINDOW),
            processed_at=pl.lit(processed_at),
        )
        .sort("player_lookup")
        .collect()
    )
    return to_output(rows, PLAYER_SHOT_ZONE_ANALYSIS)
