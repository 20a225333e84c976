"""P2 player_shot_zone_analysis (SPEC section 5): where each player shoots from, how well.

In the order the table is built: sums over each player's last 10 and 20 qualifying games, a
function per output column (`z_...(zone)` for the per-zone ones), sample qualities, tier and the
placeholder rule, then the columns in schema order.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.common import insufficient_reason, qualifying_games, ratio, to_table
from features.windows import (
    GAME_NUMBER,
    ZONES,
    Aggregate,
    Window,
    Windowed,
    as_of,
    assisted_rate,
    assisted_sums,
    entity_dates,
    first_games,
    game_sequence,
    null_when,
    placeholder_nulls,
    tier,
    window_tracking,
    zones_known,
)
from nba_calendar import Calendars, calendar_frame
from quality.schemas import PLAYER_SHOT_ZONE_ANALYSIS

SHORT_WINDOW = 10
LONG_WINDOW = 20
MIN_GAMES_10 = 7
MIN_GAMES_20 = 15
# What a placeholder (G10 under 7) leaves NULL: the schema's nullable columns but the
# player's id and how many of his games lacked zones.
PLACEHOLDER_NULLS = placeholder_nulls(
    PLAYER_SHOT_ZONE_ANALYSIS, keeps=("universal_player_id", "games_missing_zones")
)
G10, G20 = pl.col("games_in_sample_10"), pl.col("games_in_sample_20")
PLAYER = "player_lookup"


# --- inputs and windowed sums ---------------------------------------------------------------


def _zone_sums(window: Window, suffix: str) -> list[Aggregate]:
    """Σ`<zone>_attempts`/`_makes` over the window's games with known zones, and their count."""
    known = pl.col("zones_known")
    exprs = [
        window.agg_sum(pl.col(f"{z}_{kind}"), known).alias(f"{z}_{kind}_{suffix}")
        for z in ZONES
        for kind in ("attempts", "makes")
    ]
    return exprs + [window.agg_count(known).alias(f"known_zone_games_{suffix}")]


LAST_10, LAST_20 = Window(SHORT_WINDOW), Window(LONG_WINDOW)
# The windows, built once at import as every stage's expressions.
WINDOWS = Windowed(
    (
        PLAYER,
        "season_year",
        "game_date",
        GAME_NUMBER,
        "universal_player_id",  # as of his newest game
        pl.col("game_date").alias("latest_game"),
    ),
    [
        LAST_10.agg_count().alias("games_in_sample_10"),
        LAST_20.agg_count().alias("games_in_sample_20"),
        LAST_10.agg_count(~pl.col("zones_known")).alias("games_missing_zones"),
        *_zone_sums(LAST_10, "10"),
        *_zone_sums(LAST_20, "20"),
        *assisted_sums(LAST_10, ("assisted", "unassisted")),
        LAST_10.agg_max(pl.col("processed_at")).alias("source_player_game_last_updated"),
    ],
)
ZONES_KNOWN = zones_known()


def _window_sums(player_games: pl.DataFrame, calendars: Calendars) -> pl.LazyFrame:
    """Per player and D, sums over his last 10 and 20 qualifying games of S before D."""
    games = qualifying_games(player_games.lazy()).with_columns(zones_known=ZONES_KNOWN)
    dates = calendar_frame(calendars)
    sequence = game_sequence(games, PLAYER, dates).cache()  # for the windows and the pairs
    return as_of(entity_dates(first_games(sequence), PLAYER, dates), WINDOWS.of(sequence), PLAYER)


# --- metrics --------------------------------------------------------------------------------


def _total_attempts(suffix: str) -> pl.Expr:
    return pl.sum_horizontal(pl.col(f"{z}_attempts_{suffix}") for z in ZONES)


def total_shots_last_10() -> pl.Expr:
    """Known-zone attempts; NULL when no game of the window has known zones."""
    total = _total_attempts("10")
    return pl.when(pl.col("known_zone_games_10") > 0).then(total).otherwise(None).cast(pl.Int64)


def z_rate_last_10(z: str) -> pl.Expr:
    return ratio(pl.col(f"{z}_attempts_10"), pl.col("total_shots_last_10")) * 100.0


def z_pct_last_10(z: str) -> pl.Expr:
    return ratio(pl.col(f"{z}_makes_10"), pl.col(f"{z}_attempts_10"))


def z_attempts_per_game(z: str) -> pl.Expr:
    """Per game with known zones."""
    known_games = G10 - pl.col("games_missing_zones")
    return ratio(pl.col(f"{z}_attempts_10"), known_games)


def paint_rate_last_20() -> pl.Expr:
    return pl.when(G20 >= MIN_GAMES_20).then(
        ratio(pl.col("paint_attempts_20"), _total_attempts("20")) * 100.0
    )


def paint_pct_last_20() -> pl.Expr:
    return pl.when(G20 >= MIN_GAMES_20).then(
        ratio(pl.col("paint_makes_20"), pl.col("paint_attempts_20"))
    )


def assisted_rate_last_10() -> pl.Expr:
    return assisted_rate("assisted")


def unassisted_rate_last_10() -> pl.Expr:
    return assisted_rate("unassisted")


def primary_scoring_zone() -> pl.Expr:
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


# --- tiers and flags ------------------------------------------------------------------------


def sample_quality(games: pl.Expr, excellent: int, good: int, limited: int) -> pl.Expr:
    return tier(
        games, ((excellent, "excellent"), (good, "good"), (limited, "limited")), "insufficient"
    )


def sample_quality_10() -> pl.Expr:
    return sample_quality(G10, 10, 7, 5)


def sample_quality_20() -> pl.Expr:
    return sample_quality(G20, 20, 14, 10)


def data_quality_tier() -> pl.Expr:
    return tier(G10, ((SHORT_WINDOW, "high"), (MIN_GAMES_10, "medium")), "low")


def is_placeholder() -> pl.Expr:
    return G10 < MIN_GAMES_10


def insufficient_data_reason() -> pl.Expr:
    return pl.when(is_placeholder()).then(insufficient_reason(G10, MIN_GAMES_10)).otherwise(None)


# --- the table ------------------------------------------------------------------------------


# The stages' expressions do not depend on the call: built once, at import.
RECENT = pl.col("latest_game") >= pl.col("recent_cutoff")
TOTALS = {"total_shots_last_10": total_shots_last_10()}
RATES = {
    **{f"{z}_rate_last_10": z_rate_last_10(z) for z in ZONES},
    **{f"{z}_pct_last_10": z_pct_last_10(z) for z in ZONES},
    **{f"{z}_attempts_per_game": z_attempts_per_game(z) for z in ZONES},
    "paint_rate_last_20": paint_rate_last_20(),
    "paint_pct_last_20": paint_pct_last_20(),
    "assisted_rate_last_10": assisted_rate_last_10(),
    "unassisted_rate_last_10": unassisted_rate_last_10(),
}
ZONE_CALLS = {"primary_scoring_zone": primary_scoring_zone()}
PLACEHOLDERS = null_when(is_placeholder(), PLACEHOLDER_NULLS)
DESCRIBED = {
    "sample_quality_10": sample_quality_10(),
    "sample_quality_20": sample_quality_20(),
    "data_quality_tier": data_quality_tier(),
    "insufficient_data_reason": insufficient_data_reason(),
    **window_tracking("player_game", G10, SHORT_WINDOW),
}


def player_shot_zone_analysis(
    player_games: pl.DataFrame, calendar: Calendars, processed_at: datetime
) -> pl.DataFrame:
    """One row per player whose latest qualifying game of S is within 30 days of D, for every
    date D of `calendar`."""
    rows = (
        _window_sums(player_games, calendar)
        .filter(RECENT)
        .with_columns(**TOTALS)
        .with_columns(**RATES)
        .with_columns(**ZONE_CALLS)
        .with_columns(PLACEHOLDERS)
        .with_columns(**DESCRIBED, processed_at=pl.lit(processed_at))
    )
    return to_table(rows, PLAYER_SHOT_ZONE_ANALYSIS)
