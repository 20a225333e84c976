"""P1 team_defense_zone_analysis (SPEC section 4): how each team defends each zone.

Read top to bottom as the table is built: the league's zone FG% and each team's last-15 sums,
one function per output column (`z_...(zone)` for the per-zone ones), the quality tier and the
placeholder rule, then the columns in schema order.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.common import insufficient_reason, ratio, to_table
from features.windows import (
    GAME_NUMBER,
    ZONES,
    Window,
    Windowed,
    as_of,
    entity_dates,
    first_games,
    game_sequence,
    null_when,
    placeholder_nulls,
    tier,
    window_tracking,
)
from nba_calendar import Calendars, calendar_frame
from quality.schemas import TEAM_DEFENSE_ZONE_ANALYSIS
from quality.stable import stable_mean

WINDOW_GAMES = 15
MIN_GAMES = 10
LEAGUE_MIN_TEAMS = 10
LEAGUE_MIN_TEAM_GAMES = 10
DEFAULT_LEAGUE_PCT = {"paint": 0.580, "mid_range": 0.410, "three_pt": 0.355}
TIE_DECIMALS = 9
ZONE_LABELS = {"paint": "paint", "mid_range": "mid_range", "three_pt": "perimeter"}
NO_ATTEMPT_NOTES = {
    "paint": "No paint attempts",
    "mid_range": "No mid-range attempts",
    "three_pt": "No three-point attempts",
}
# What a placeholder (under MIN_GAMES) leaves NULL: the schema's nullable columns.
PLACEHOLDER_NULLS = placeholder_nulls(TEAM_DEFENSE_ZONE_ANALYSIS)
GAMES = pl.col("games_in_sample")
TEAM = "defending_team_abbr"


# --- inputs and windowed sums ---------------------------------------------------------------


# The league's expressions, built once at import as every stage's expressions below.
IN_LAST_30_DAYS = (pl.col("game_date") < pl.col("analysis_date")) & (
    pl.col("game_date") >= pl.col("recent_cutoff")
)
TEAM_ZONE_PCT = (
    pl.len().alias("games"),
    *(
        ratio(pl.col(f"opp_{z}_makes").sum(), pl.col(f"opp_{z}_attempts").sum()).alias(z)
        for z in ZONES
    ),
)
LEAGUE_ZONE_MEAN = (
    pl.len().alias("league_teams"),
    *(stable_mean(pl.col(z)).alias(z) for z in ZONES),
)
_ENOUGH_TEAMS = pl.col("league_teams").fill_null(0) >= LEAGUE_MIN_TEAMS
LEAGUE_PCT = tuple(
    pl.when(_ENOUGH_TEAMS)
    .then(pl.col(z))
    .otherwise(pl.lit(DEFAULT_LEAGUE_PCT[z]))
    .alias(f"league_{z}_pct")
    for z in ZONES
)


def league_zone_pct(team_defense: pl.DataFrame, calendars: Calendars) -> pl.LazyFrame:
    """Per D, `league_<zone>_pct`: the plain mean over the teams with 10+ games in the 30 days
    before D (teams in name order); the defaults when fewer than 10 teams qualify."""
    dates = calendar_frame(calendars).lazy()
    recent = (
        dates.select("analysis_date", "season_year", "recent_cutoff")
        .join(team_defense.lazy(), on="season_year", how="inner")
        .filter(IN_LAST_30_DAYS)
    )
    per_team = (
        recent.group_by("analysis_date", TEAM)
        .agg(*TEAM_ZONE_PCT)
        .filter(pl.col("games") >= LEAGUE_MIN_TEAM_GAMES)
    )
    league = per_team.group_by("analysis_date").agg(*LEAGUE_ZONE_MEAN)
    return (
        dates.select("analysis_date")
        .join(league, on="analysis_date", how="left")
        .select("analysis_date", *LEAGUE_PCT)
    )


LAST_15 = Window(WINDOW_GAMES)
# The window sums (G = games_in_sample), built once at import as every stage's expressions.
WINDOW_SUMS = (
    LAST_15.agg_count().alias("games_in_sample"),
    *(
        LAST_15.agg_sum(pl.col(f"opp_{z}_{kind}")).alias(f"{z}_{kind}")
        for z in ZONES
        for kind in ("makes", "attempts")
    ),
    *(LAST_15.agg_sum(pl.col(f"blocks_{z}")).alias(f"{z}_blocks") for z in ZONES),
    LAST_15.agg_sum(pl.col("points_in_paint_allowed")).alias("paint_points"),
    LAST_15.agg_sum(pl.col("points_allowed")).alias("points_allowed"),
    LAST_15.agg_mean(pl.col("defensive_rating")).alias("defensive_rating_last_15"),
    LAST_15.agg_mean(pl.col("opponent_pace")).alias("opponent_pace"),
    LAST_15.agg_max(pl.col("processed_at")).alias("source_team_defense_last_updated"),
)
WINDOWS = Windowed((TEAM, "season_year", "game_date", GAME_NUMBER), WINDOW_SUMS)


def _window_sums(team_defense: pl.DataFrame, calendars: Calendars) -> pl.LazyFrame:
    """Per team and D, sums over its last 15 games of S before D (G = games_in_sample)."""
    dates = calendar_frame(calendars)
    sequence = game_sequence(team_defense, TEAM, dates).cache()  # for the windows and the pairs
    return as_of(entity_dates(first_games(sequence), TEAM, dates), WINDOWS.of(sequence), TEAM)


# --- metrics --------------------------------------------------------------------------------


def z_pct_allowed_last_15(z: str) -> pl.Expr:
    return ratio(pl.col(f"{z}_makes"), pl.col(f"{z}_attempts"))


def z_attempts_allowed_per_game(z: str) -> pl.Expr:
    return ratio(pl.col(f"{z}_attempts"), GAMES)


def z_blocks_per_game(z: str) -> pl.Expr:
    return ratio(pl.col(f"{z}_blocks"), GAMES)


def z_defense_vs_league_avg(z: str) -> pl.Expr:
    """Percentage points above the league; negative is better defence."""
    return (pl.col(f"{z}_pct_allowed_last_15") - pl.col(f"league_{z}_pct")) * 100.0


def paint_points_allowed_per_game() -> pl.Expr:
    return ratio(pl.col("paint_points"), GAMES)


def opponent_points_per_game() -> pl.Expr:
    return ratio(pl.col("points_allowed"), GAMES)


def _extreme_zone(lowest: bool) -> pl.Expr:
    """Lowest (strongest) or highest (weakest) vs_league; ties go to paint, mid, perimeter.

    Values are compared at 1e-9 percentage points so float noise cannot break a real tie.
    """
    fill = float("inf") if lowest else float("-inf")
    vs = {z: pl.col(f"{z}_defense_vs_league_avg").round(TIE_DECIMALS) for z in ZONES}
    v = {z: vs[z].fill_null(fill) for z in ZONES}

    def beats(a: pl.Expr, b: pl.Expr) -> pl.Expr:
        return a <= b if lowest else a >= b

    return (
        pl.when(
            vs["paint"].is_not_null()
            & beats(v["paint"], v["mid_range"])
            & beats(v["paint"], v["three_pt"])
        )
        .then(pl.lit(ZONE_LABELS["paint"]))
        .when(vs["mid_range"].is_not_null() & beats(v["mid_range"], v["three_pt"]))
        .then(pl.lit(ZONE_LABELS["mid_range"]))
        .when(vs["three_pt"].is_not_null())
        .then(pl.lit(ZONE_LABELS["three_pt"]))
        .otherwise(None)
    )


def strongest_zone() -> pl.Expr:
    return _extreme_zone(lowest=True)


def weakest_zone() -> pl.Expr:
    return _extreme_zone(lowest=False)


def calculation_notes() -> pl.Expr:
    """The zones without attempts in the window, '; '-joined; NULL when every zone has some."""
    notes = [
        pl.when(pl.col(f"{z}_attempts").fill_null(0) == 0).then(pl.lit(NO_ATTEMPT_NOTES[z]))
        for z in ZONES
    ]
    joined = pl.concat_str(notes, separator="; ", ignore_nulls=True)
    return pl.when(joined == "").then(None).otherwise(joined)


# --- tiers and flags ------------------------------------------------------------------------


def is_placeholder() -> pl.Expr:
    return GAMES < MIN_GAMES


def data_quality_tier() -> pl.Expr:
    return tier(GAMES, ((WINDOW_GAMES, "high"), (MIN_GAMES, "medium")), "low")


def insufficient_data_reason() -> pl.Expr:
    return pl.when(is_placeholder()).then(insufficient_reason(GAMES, MIN_GAMES)).otherwise(None)


# --- the table ------------------------------------------------------------------------------


# The stages' expressions do not depend on the call: built once, at import.
RATES = {
    **{f"{z}_pct_allowed_last_15": z_pct_allowed_last_15(z) for z in ZONES},
    **{f"{z}_attempts_allowed_per_game": z_attempts_allowed_per_game(z) for z in ZONES},
    **{f"{z}_blocks_per_game": z_blocks_per_game(z) for z in ZONES},
    "paint_points_allowed_per_game": paint_points_allowed_per_game(),
    "opponent_points_per_game": opponent_points_per_game(),
}
VS_LEAGUE = {f"{z}_defense_vs_league_avg": z_defense_vs_league_avg(z) for z in ZONES}
ZONE_CALLS = {
    "strongest_zone": strongest_zone(),
    "weakest_zone": weakest_zone(),
    "calculation_notes": calculation_notes(),
}
PLACEHOLDERS = null_when(is_placeholder(), PLACEHOLDER_NULLS)
DESCRIBED = {
    "team_abbr": pl.col(TEAM),
    "data_quality_tier": data_quality_tier(),
    "insufficient_data_reason": insufficient_data_reason(),
    **window_tracking("team_defense", GAMES, WINDOW_GAMES),
}


def team_defense_zone_analysis(
    team_defense: pl.DataFrame, calendar: Calendars, processed_at: datetime
) -> pl.DataFrame:
    """One row per team with a season-S game before D, for every date D of `calendar`;
    placeholders under 10 games."""
    rows = (
        _window_sums(team_defense, calendar)
        .join(league_zone_pct(team_defense, calendar), on="analysis_date", how="left")
        .with_columns(**RATES)
        .with_columns(**VS_LEAGUE)
        .with_columns(**ZONE_CALLS)
        .with_columns(PLACEHOLDERS)
        .with_columns(**DESCRIBED, processed_at=pl.lit(processed_at))
    )
    return to_table(rows, TEAM_DEFENSE_ZONE_ANALYSIS)
