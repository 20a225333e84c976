"""P3 player_composite_factors (SPEC section 6): how fatigue, the zone matchup, pace and a usage
spike should move each slate player's expected points on D.

Every factor is a small expression over one joined row (context row + the player's P2 row + the
opponent's P1 row), so the whole slate is scored in one vectorised pass and each rule can be
tested on its own.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from polars.expr.whenthen import ChainedThen, Then

from features.common import added_in_order, clamp, slate, to_table
from features.windows import (
    ZONES,
    attach_upstream_by_date,
    slate_tracking,
    upstream_tracking,
)
from nba_calendar import Calendars
from quality.schemas import (
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_SHOT_ZONE_ANALYSIS,
    TEAM_DEFENSE_ZONE_ANALYSIS,
)

CALCULATION_VERSION = "v1_4factors"
# P2's primary_scoring_zone label -> the zone whose rate and defence it uses.
ZONE_OF_LABEL = {"paint": "paint", "mid_range": "mid_range", "perimeter": "three_pt"}
BALANCED = "balanced"

FRESH = 100
FATIGUE_POINTS_PER_UNIT = 0.05
# Polars 2.1 divides a column by a literal as a multiplication by its reciprocal, except when the
# chunk holds one row (then it truly divides), so `x / 7` can differ in the last bit between runs.
# Constant divisions are therefore written as multiplications by a fixed reciprocal.
PER_ZONE_RATE_POINT = 1 / 50.0  # a zone rate of 50 % or more counts fully
PER_PERCENT = 1 / 100.0
MISMATCH_BONUS_ABOVE = 5.0
MISMATCH_BONUS = 1.2
MISMATCH_LIMIT = 10.0
PACE_PER_DIFFERENTIAL = 0.5  # pace_differential / 2
PACE_LIMIT = 3.0
USAGE_WEIGHT = 0.3
USAGE_LIMIT = 3.0
ONE_STAR_OUT, TWO_STARS_OUT = 1.15, 1.30

# The context columns the fatigue rules read, in the order fatigue_context lists them.
FATIGUE_INPUTS = (
    "back_to_back",
    "days_rest",
    "games_in_last_7_days",
    "minutes_in_last_7_days",
    "avg_minutes_per_game_last_7",
    "back_to_backs_last_14_days",
    "player_age",
)
# SPEC: data_completeness_pct counts these six context inputs plus the zone data.
COMPLETENESS_INPUTS = (
    "days_rest",
    "games_in_last_7_days",
    "minutes_in_last_7_days",
    "avg_minutes_per_game_last_7",
    "pace_differential",
    "projected_usage_rate",
)
COMPLETENESS_ITEMS = len(COMPLETENESS_INPUTS) + 1
PCT_PER_ITEM = 100.0 / COMPLETENESS_ITEMS
INCOMPLETE_BELOW = 80.0
EXTREME_FATIGUE_BELOW = 50
EXTREME_MATCHUP_ABOVE = 8.0
EXTREME_ADJUSTMENT_ABOVE = 12.0

SCORES = ("fatigue", "shot_zone", "pace", "usage_spike")
DEFERRED_SCORES = (
    "referee_favorability_score",
    "look_ahead_pressure_score",
    "matchup_history_score",
    "momentum_score",
)
DEFERRED_ADJUSTMENTS = (
    "referee_adjustment",
    "look_ahead_adjustment",
    "matchup_history_adjustment",
    "momentum_adjustment",
)


# --- inputs ---------------------------------------------------------------------------------


# The upstream columns read, built once at import (as every stage's expressions below).
ZONE_COLUMNS: tuple[str | pl.Expr, ...] = (
    "primary_scoring_zone",
    *(f"{z}_rate_last_10" for z in ZONES),
    pl.col("insufficient_data_reason").alias("zone_placeholder_reason"),
    pl.col("processed_at").alias("source_player_shot_zone_last_updated"),
)
DEFENSE_COLUMNS = (
    *(pl.col(f"{z}_defense_vs_league_avg").alias(f"opp_{z}_vs_league") for z in ZONES),
    pl.col("insufficient_data_reason").alias("defense_placeholder_reason"),
    pl.col("processed_at").alias("source_team_defense_last_updated"),
)


def _attach_upstreams(
    rows: pl.LazyFrame,
    shot_zones: pl.DataFrame,
    team_defense_zones: pl.DataFrame,
) -> pl.LazyFrame:
    """The player's P2 row and his opponent's P1 row of the row's own date D, with markers so
    a missing row is told from a NULL value."""
    return attach_upstream_by_date(
        rows, shot_zones, PLAYER_SHOT_ZONE_ANALYSIS, ZONE_COLUMNS, "zone_row_found"
    ).pipe(
        attach_upstream_by_date,
        team_defense_zones,
        TEAM_DEFENSE_ZONE_ANALYSIS,
        DEFENSE_COLUMNS,
        "defense_row_found",
        rows_key="opponent_team_abbr",
    )


# --- fatigue --------------------------------------------------------------------------------


def _points(condition: pl.Expr, points: int) -> pl.Expr:
    """`points` when the rule holds; a NULL input makes the condition NULL, which applies none."""
    return (
        pl.when(condition).then(pl.lit(points, dtype=pl.Int64)).otherwise(pl.lit(0, dtype=pl.Int64))
    )


def fatigue_penalties() -> dict[str, pl.Expr]:
    """Each fatigue rule's points (0 when it does not apply), named for the JSON context."""
    back_to_back = pl.col("back_to_back").fill_null(False)
    back_to_backs = pl.col("back_to_backs_last_14_days")
    age = pl.col("player_age")
    return {
        "back_to_back": _points(back_to_back, -15),
        "rest_bonus": _points(~back_to_back & (pl.col("days_rest") >= 3), 5),
        "games_in_last_7_days": _points(pl.col("games_in_last_7_days") >= 4, -10),
        "minutes_in_last_7_days": _points(pl.col("minutes_in_last_7_days") > 240, -10),
        "avg_minutes_per_game_last_7": _points(pl.col("avg_minutes_per_game_last_7") > 35, -8),
        "back_to_backs_last_14_days": _points(back_to_backs >= 2, -12)
        + _points(back_to_backs == 1, -5),
        "age": _points(age >= 35, -10) + _points((age >= 30) & (age < 35), -5),
    }


def fatigue_score(penalties: dict[str, pl.Expr]) -> pl.Expr:
    """100 = fresh; penalties summed onto 100, clamped to 0..100."""
    raw = pl.lit(FRESH, dtype=pl.Int64) + pl.sum_horizontal(list(penalties.values()))
    return clamp(raw, 0, FRESH).cast(pl.Int64)


def fatigue_adjustment(score: pl.Expr) -> pl.Expr:
    return (score - FRESH).cast(pl.Float64) * FATIGUE_POINTS_PER_UNIT


def fatigue_context(penalties: dict[str, pl.Expr]) -> pl.Expr:
    return pl.struct(
        *FATIGUE_INPUTS,
        pl.struct([rule.alias(name) for name, rule in penalties.items()]).alias("penalties"),
        pl.col("fatigue_score").alias("score"),
    ).struct.json_encode()


# --- shot-zone mismatch ---------------------------------------------------------------------


def missing_zone_data_reason() -> pl.Expr:
    """Why the matchup cannot be scored, first cause found; NULL when both rows are usable."""
    return (
        pl.when(~pl.col("zone_row_found"))
        .then(pl.lit("no player shot-zone row"))
        .when(pl.col("zone_placeholder_reason").is_not_null())
        .then(pl.lit("player shot-zone placeholder"))
        .when(pl.col("primary_scoring_zone").is_null())
        .then(pl.lit("no primary scoring zone"))
        .when(~pl.col("defense_row_found"))
        .then(pl.lit("no opponent defense row"))
        .when(pl.col("defense_placeholder_reason").is_not_null())
        .then(pl.lit("opponent defense placeholder"))
        .otherwise(None)
    )


def has_zone_data() -> pl.Expr:
    return missing_zone_data_reason().is_null()


def raw_zone_mismatch() -> pl.Expr:
    """Opponent weakness in the player's zone, weighted by how much he lives there.

    A NULL opponent vs_league (or player rate) contributes 0.
    """
    vs = {z: pl.col(f"opp_{z}_vs_league").fill_null(0.0) for z in ZONES}
    rate = {z: pl.col(f"{z}_rate_last_10").fill_null(0.0) for z in ZONES}
    zone = pl.col("primary_scoring_zone")
    raw: Then | ChainedThen = pl.when(zone == BALANCED).then(
        pl.sum_horizontal([vs[z] * rate[z] * PER_PERCENT for z in ZONES])
    )
    for label, z in ZONE_OF_LABEL.items():
        weight = pl.min_horizontal(rate[z] * PER_ZONE_RATE_POINT, pl.lit(1.0))
        raw = raw.when(zone == label).then(vs[z] * weight)
    return raw.otherwise(0.0)


def mismatch_bonus_applies(raw: pl.Expr) -> pl.Expr:
    return raw.abs() > MISMATCH_BONUS_ABOVE


def shot_zone_mismatch_score(raw: pl.Expr, usable: pl.Expr) -> pl.Expr:
    """×1.2 beyond ±5, clamped to ±10; 0.0 without usable zone data on both sides."""
    boosted = pl.when(mismatch_bonus_applies(raw)).then(raw * MISMATCH_BONUS).otherwise(raw)
    return pl.when(usable).then(clamp(boosted, -MISMATCH_LIMIT, MISMATCH_LIMIT)).otherwise(0.0)


def shot_zone_context(raw: pl.Expr, usable: pl.Expr) -> pl.Expr:
    return pl.struct(
        "primary_scoring_zone",
        *(f"{z}_rate_last_10" for z in ZONES),
        *(pl.col(f"opp_{z}_vs_league").alias(f"opponent_{z}_vs_league") for z in ZONES),
        usable.alias("zone_data_available"),
        missing_zone_data_reason().alias("missing_reason"),
        pl.when(usable).then(raw).alias("raw_score"),
        (usable & mismatch_bonus_applies(raw)).alias("bonus_applied"),
        pl.col("shot_zone_mismatch_score").alias("score"),
    ).struct.json_encode()


# --- pace -----------------------------------------------------------------------------------


def pace_score() -> pl.Expr:
    return clamp(
        pl.col("pace_differential") * PACE_PER_DIFFERENTIAL, -PACE_LIMIT, PACE_LIMIT
    ).fill_null(0.0)


def pace_context() -> pl.Expr:
    return pl.struct(
        "pace_differential",
        (pl.col("pace_differential") * PACE_PER_DIFFERENTIAL).alias("unclamped_score"),
        pl.col("pace_score").alias("score"),
    ).struct.json_encode()


# --- usage spike ----------------------------------------------------------------------------


def usage_is_scorable() -> pl.Expr:
    base = pl.col("avg_usage_rate_last_7_games")
    return pl.col("projected_usage_rate").is_not_null() & base.is_not_null() & (base != 0)


def usage_spike() -> pl.Expr:
    """(projected − recent) × 0.3, before star multipliers and clamping."""
    return (pl.col("projected_usage_rate") - pl.col("avg_usage_rate_last_7_games")) * USAGE_WEIGHT


def star_multiplier(spike: pl.Expr) -> pl.Expr:
    """Only a rising usage is amplified by missing stars; a NULL count amplifies nothing."""
    stars = pl.col("star_teammates_out")
    return (
        pl.when(spike <= 0)
        .then(1.0)
        .when(stars >= 2)
        .then(TWO_STARS_OUT)
        .when(stars == 1)
        .then(ONE_STAR_OUT)
        .otherwise(1.0)
    )


def usage_spike_score() -> pl.Expr:
    spike = usage_spike()
    scored = clamp(spike * star_multiplier(spike), -USAGE_LIMIT, USAGE_LIMIT)
    return pl.when(usage_is_scorable()).then(scored).otherwise(0.0)


def usage_context() -> pl.Expr:
    scorable = usage_is_scorable()
    return pl.struct(
        "projected_usage_rate",
        "avg_usage_rate_last_7_games",
        "star_teammates_out",
        pl.when(scorable).then(usage_spike()).alias("spike"),
        pl.when(scorable).then(star_multiplier(usage_spike())).alias("star_multiplier"),
        pl.col("usage_spike_score").alias("score"),
    ).struct.json_encode()


# --- totals and quality ---------------------------------------------------------------------


def total_composite_adjustment() -> pl.Expr:
    adjustments = [f"{s}_adjustment" for s in SCORES] + list(DEFERRED_ADJUSTMENTS)
    return added_in_order(pl.col(c) for c in adjustments)


def data_completeness_pct(usable_zones: pl.Expr) -> pl.Expr:
    present = [pl.col(c).is_not_null().cast(pl.Int64) for c in COMPLETENESS_INPUTS]
    return pl.sum_horizontal([*present, usable_zones.cast(pl.Int64)]) * PCT_PER_ITEM


def warning_details(usable_zones: pl.Expr) -> pl.Expr:
    """Codes in SPEC order, comma-joined; NULL when none applies."""
    rules = (
        ("EXTREME_FATIGUE", pl.col("fatigue_score") < EXTREME_FATIGUE_BELOW),
        ("EXTREME_MATCHUP", pl.col("shot_zone_mismatch_score").abs() > EXTREME_MATCHUP_ABOVE),
        (
            "EXTREME_ADJUSTMENT",
            pl.col("total_composite_adjustment").abs() > EXTREME_ADJUSTMENT_ABOVE,
        ),
        ("INCOMPLETE_DATA", pl.col("data_completeness_pct") < INCOMPLETE_BELOW),
        ("MISSING_ZONE_DATA", ~usable_zones),
    )
    joined = pl.concat_str(
        [pl.when(rule).then(pl.lit(code)) for code, rule in rules], separator=",", ignore_nulls=True
    )
    return pl.when(joined == "").then(None).otherwise(joined)


# --- the table ------------------------------------------------------------------------------
#
# The stages' expressions do not depend on the call: they are built once, at import (a typed
# literal alone takes some 40 µs to build; a nightly date's whole plan runs in a few ms).

PENALTIES = fatigue_penalties()
_USABLE, _RAW_MISMATCH = pl.col("has_zone_data"), pl.col("raw_zone_mismatch")
ZONE_DATA = {"has_zone_data": has_zone_data(), "raw_zone_mismatch": raw_zone_mismatch()}
SCORED = {
    "fatigue_score": fatigue_score(PENALTIES),
    "shot_zone_mismatch_score": shot_zone_mismatch_score(_RAW_MISMATCH, _USABLE),
    "pace_score": pace_score(),
    "usage_spike_score": usage_spike_score(),
    **{name: pl.lit(0.0) for name in (*DEFERRED_SCORES, *DEFERRED_ADJUSTMENTS)},
}
ADJUSTED = {
    "fatigue_adjustment": fatigue_adjustment(pl.col("fatigue_score")),
    "shot_zone_adjustment": pl.col("shot_zone_mismatch_score"),
    "pace_adjustment": pl.col("pace_score"),
    "usage_spike_adjustment": pl.col("usage_spike_score"),
}
TOTALLED = {
    "total_composite_adjustment": total_composite_adjustment(),
    "data_completeness_pct": data_completeness_pct(_USABLE),
}
WARNED = {"warning_details": warning_details(_USABLE)}
DESCRIBED = {
    "has_warnings": pl.col("warning_details").is_not_null(),
    "fatigue_context": fatigue_context(PENALTIES),
    "shot_zone_context": shot_zone_context(_RAW_MISMATCH, _USABLE),
    "pace_context": pace_context(),
    "usage_context": usage_context(),
    "calculation_version": pl.lit(CALCULATION_VERSION),
    "insufficient_data_reason": pl.lit(None, dtype=pl.String),
    **slate_tracking("player_context"),
    **upstream_tracking("player_shot_zone", "zone_row_found"),
    **upstream_tracking("team_defense", "defense_row_found"),
}


def player_composite_factors(
    player_context: pl.DataFrame,
    shot_zones: pl.DataFrame,
    team_defense_zones: pl.DataFrame,
    calendar: Calendars,
    processed_at: datetime,
) -> pl.DataFrame:
    """One row per slate player, for every date D of `calendar`; a missing P2/P1 row scores
    the matchup 0.0 and warns."""
    rows = (
        slate(player_context, calendar)
        .rename({"processed_at": "source_player_context_last_updated"})
        .pipe(_attach_upstreams, shot_zones, team_defense_zones)
        .with_columns(**ZONE_DATA)
        .with_columns(**SCORED)
        .with_columns(**ADJUSTED)
        .with_columns(**TOTALLED)
        .with_columns(**WARNED)
        .with_columns(**DESCRIBED, processed_at=pl.lit(processed_at))
    )
    return to_table(rows, PLAYER_COMPOSITE_FACTORS)
