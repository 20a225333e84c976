"""P1 team_defense_zone_analysis (SPEC section 4): how each team defends each zone.

Read top to bottom as the table is built: the league's zone FG% and each team's last-15 sums,
one function per output column (`z_...(zone)` for the per-zone ones), the quality tier and the
placeholder rule, then the columns in schema order.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.common import (
    SlateCalendar,
    games_before,
    insufficient_reason,
    known_sum,
    ratio,
    stable_mean,
    to_table,
)
from features.windows import (
    ZONES,
    null_when,
    placeholder_nulls,
    recent_team_games,
    tier,
    window_mean,
    window_tracking,
)
from quality.schemas import TEAM_DEFENSE_ZONE_ANALYSIS

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


# --- inputs and windowed sums ---------------------------------------------------------------


def league_zone_pct(team_defense: pl.DataFrame, calendar: SlateCalendar) -> dict[str, float]:
    """Plain mean over teams with 10+ games in the 30 days before D; defaults below 10 teams."""
    recent = games_before(team_defense, calendar).filter(
        pl.col("game_date") >= calendar.recent_cutoff
    )
    per_team = (
        recent.group_by("defending_team_abbr")
        .agg(
            pl.len().alias("games"),
            *(
                ratio(pl.col(f"opp_{z}_makes").sum(), pl.col(f"opp_{z}_attempts").sum()).alias(z)
                for z in ZONES
            ),
        )
        .filter(pl.col("games") >= LEAGUE_MIN_TEAM_GAMES)
        .collect()
    )
    if per_team.height < LEAGUE_MIN_TEAMS:
        return dict(DEFAULT_LEAGUE_PCT)
    league = per_team.select(stable_mean(pl.col(z)).alias(z) for z in ZONES)
    return {z: float(league[z][0]) for z in ZONES}


def _window_sums(team_defense: pl.DataFrame, calendar: SlateCalendar) -> pl.LazyFrame:
    """Per team, sums over its last 15 games of S before D (G = games_in_sample)."""
    window = recent_team_games(team_defense, calendar, "defending_team_abbr").filter(
        pl.col("games_ago") < WINDOW_GAMES
    )
    return window.group_by("defending_team_abbr").agg(
        pl.len().alias("games_in_sample"),
        *(
            known_sum(pl.col(f"opp_{z}_{kind}")).alias(f"{z}_{kind}")
            for z in ZONES
            for kind in ("makes", "attempts")
        ),
        *(known_sum(pl.col(f"blocks_{z}")).alias(f"{z}_blocks") for z in ZONES),
        known_sum(pl.col("points_in_paint_allowed")).alias("paint_points"),
        known_sum(pl.col("points_allowed")).alias("points_allowed"),
        defensive_rating_last_15=window_mean("defensive_rating"),
        opponent_pace=window_mean("opponent_pace"),
        source_team_defense_last_updated=pl.col("processed_at").max(),
    )


# --- metrics --------------------------------------------------------------------------------


def z_pct_allowed_last_15(z: str) -> pl.Expr:
    return ratio(pl.col(f"{z}_makes"), pl.col(f"{z}_attempts"))


def z_attempts_allowed_per_game(z: str) -> pl.Expr:
    return ratio(pl.col(f"{z}_attempts"), GAMES)


def z_blocks_per_game(z: str) -> pl.Expr:
    return ratio(pl.col(f"{z}_blocks"), GAMES)


def z_defense_vs_league_avg(z: str, league_pct: float) -> pl.Expr:
    """Percentage points above the league; negative is better defence."""
    return (pl.col(f"{z}_pct_allowed_last_15") - league_pct) * 100.0


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


def team_defense_zone_analysis(
    team_defense: pl.DataFrame, calendar: SlateCalendar, processed_at: datetime
) -> pl.DataFrame:
    """One row per team with a season-S game before D; placeholders under 10 games."""
    league = league_zone_pct(team_defense, calendar)
    rows = (
        _window_sums(team_defense, calendar)
        .with_columns(
            **{f"{z}_pct_allowed_last_15": z_pct_allowed_last_15(z) for z in ZONES},
            **{f"{z}_attempts_allowed_per_game": z_attempts_allowed_per_game(z) for z in ZONES},
            **{f"{z}_blocks_per_game": z_blocks_per_game(z) for z in ZONES},
            paint_points_allowed_per_game=paint_points_allowed_per_game(),
            opponent_points_per_game=opponent_points_per_game(),
        )
        .with_columns(
            **{f"{z}_defense_vs_league_avg": z_defense_vs_league_avg(z, league[z]) for z in ZONES}
        )
        .with_columns(
            strongest_zone=strongest_zone(),
            weakest_zone=weakest_zone(),
            calculation_notes=calculation_notes(),
        )
        .with_columns(null_when(is_placeholder(), PLACEHOLDER_NULLS))
        .with_columns(
            team_abbr=pl.col("defending_team_abbr"),
            analysis_date=pl.lit(calendar.analysis_date),
            season_year=pl.lit(calendar.season_year),
            league_paint_pct=pl.lit(league["paint"]),
            league_mid_range_pct=pl.lit(league["mid_range"]),
            league_three_pt_pct=pl.lit(league["three_pt"]),
            data_quality_tier=data_quality_tier(),
            early_season_flag=pl.lit(calendar.is_early_season),
            insufficient_data_reason=insufficient_data_reason(),
            **window_tracking("team_defense", GAMES, WINDOW_GAMES),
            processed_at=pl.lit(processed_at),
        )
    )
    return to_table(rows, TEAM_DEFENSE_ZONE_ANALYSIS)
