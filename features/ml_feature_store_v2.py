"""P5 ml_feature_store_v2 (SPEC section 8): 25 model features per slate player, never missing.

Every feature takes the first available of its Phase 4 value, its Phase 3 fallback and its
default, and records which one it took, so predictions always get a row and can weigh it by
`feature_quality_score`. Upstream frames are optional: None means that processor failed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict, Unpack

import polars as pl

from features.common import divide, qualifying_games, ratio, slate, to_table
from features.ml_feature_store_v3 import attach_v3_inputs, v3_values, with_optional_columns
from features.windows import (
    GAME_NUMBER,
    ZONES,
    Aggregate,
    Window,
    as_of,
    attach_upstream_by_date,
    game_sequence,
    latest_before,
    tier,
    upstream_tracking,
    windowed,
    zones_known,
)
from nba_calendar import ENGINE, PLAN_OPTIMIZATIONS, Calendars, calendar_frame
from quality.feature_contract import (
    ARRAY_CONTRACT,
    ARRAY_FEATURE_COUNT,
    CALCULATED,
    CATEGORY_FEATURES,
    DEFAULT,
    DEFAULTED,
    FEATURE_CONTRACT,
    FEATURE_COUNT,
    FEATURE_NAMES,
    FEATURE_VERSION,
    GAME_CONTEXT,
    MATCHUP,
    MISSING,
    PHASE3,
    PHASE4,
    PLAYER_HISTORY,
    REQUIRED_FEATURES,
    VEGAS,
    value_column,
)
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_DAILY_CACHE,
    PLAYER_SHOT_ZONE_ANALYSIS,
    TEAM_DEFENSE_ZONE_ANALYSIS,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
    Phase3Frames,
    TableSchema,
)

SOURCE_WEIGHTS = {PHASE4: 100.0, PHASE3: 75.0, CALCULATED: 100.0, DEFAULT: 40.0}
# SPEC 16.3: the category quality pcts also weigh 'missing' (features 25 to 59), at 0.
CATEGORY_WEIGHTS = {**SOURCE_WEIGHTS, MISSING: 0.0}
QUALITY_READY_MATCHUP = 50.0
TRAINING_READY_SCORE, TRAINING_READY_MATCHUP, TRAINING_READY_HISTORY = 85.0, 70.0, 80.0
RED_REQUIRED_DEFAULTS = 5
RED_BELOW, YELLOW_BELOW = 50.0, 70.0
QUALITY_TIERS = ((95.0, "excellent"), (85.0, "good"), (70.0, "medium"))

# Upstream processors, named as in the source-tracking columns of the output schema.
DAILY_CACHE, COMPOSITE, SHOT_ZONES, TEAM_DEFENSE = (
    "daily_cache",
    "composite",
    "shot_zones",
    "team_defense",
)
UPSTREAMS = (DAILY_CACHE, COMPOSITE, SHOT_ZONES, TEAM_DEFENSE)
# SPEC 15: '<output table>_failed' for each of P1 to P4 that failed for D, in run order.
UPSTREAMS_IN_RUN_ORDER = (TEAM_DEFENSE, SHOT_ZONES, COMPOSITE, DAILY_CACHE)
FAILED_ISSUE = {
    TEAM_DEFENSE: "team_defense_zone_analysis_failed",
    SHOT_ZONES: "player_shot_zone_analysis_failed",
    COMPOSITE: "player_composite_factors_failed",
    DAILY_CACHE: "player_daily_cache_failed",
}
QUALITY_READY_SCORE = 70.0
PRODUCTION_READY_PCT = 90.0
BOOTSTRAP_DAYS = 30

SHORT_WINDOW = 10
TREND_GAMES = 5
TREND_RECENT_GAMES = 2
TEAM_WINDOW = 10
OPPONENT_WINDOW = 15
MIN_FREE_THROW_GAMES = 5
MIN_WIN_PCT_GAMES = 5
MAX_FREE_THROW_SHARE = 0.5
MAX_REST_ADVANTAGE = 2.0
# Band edges are compared at 1e-9 so float noise cannot move a value off an exact edge.
BAND_DECIMALS = 9
MINUTES_RATIO = "__minutes_ratio"  # the input of minutes_change (`minutes_ratio`)
INJURY_RISK = {"available": 0.0, "probable": 1.0, "questionable": 2.0, "doubtful": 3.0, "out": 3.0}


@dataclass(frozen=True)
class Feature:
    """One row of the SPEC table: candidate values in priority order, then the default."""

    name: str
    default: float
    tiers: tuple[tuple[str, pl.Expr], ...]

    def value(self) -> pl.Expr:
        candidates = [expr.cast(pl.Float64) for _, expr in self.tiers]
        return pl.coalesce([*candidates, pl.lit(self.default, dtype=pl.Float64)])

    def source(self) -> pl.Expr:
        tag: pl.Expr = pl.lit(DEFAULT)
        for name, expr in reversed(self.tiers):
            tag = pl.when(expr.is_not_null()).then(pl.lit(name)).otherwise(tag)
        return tag

    @property
    def has_phase4(self) -> bool:
        return any(name == PHASE4 for name, _ in self.tiers)


# ---------------------------------------------------------------------------------------------
# Inputs as frames: upstream rows for D and Phase 3 history, all joined onto the slate.
# ---------------------------------------------------------------------------------------------


class UpstreamFrames(TypedDict):
    """P5's upstream outputs by keyword (the registry's `upstream` names); None: it failed."""

    team_defense_zones: pl.DataFrame | None
    shot_zones: pl.DataFrame | None
    composite_factors: pl.DataFrame | None
    daily_cache: pl.DataFrame | None


@dataclass(frozen=True)
class Upstream:
    """How one upstream output is found for a slate row and which of its columns are read."""

    name: str
    schema: TableSchema  # matched on its first key column, for D's partition
    slate_key: str  # the slate column it matches
    columns: tuple[str, ...]
    # P4 has no placeholders (SPEC 7: under 5 games there is no row); its
    # insufficient_data_reason only explains early_season_flag and its values are real.
    reason_marks_placeholder: bool = True


UPSTREAM_READS = {
    DAILY_CACHE: Upstream(
        DAILY_CACHE,
        PLAYER_DAILY_CACHE,
        "player_lookup",
        (
            "points_avg_last_5",
            "points_avg_last_10",
            "points_avg_season",
            "points_std_last_10",
            "games_in_last_7_days",
            "minutes_avg_last_10",
            "team_pace_last_10",
            "team_off_rating_last_10",
        ),
        reason_marks_placeholder=False,
    ),
    COMPOSITE: Upstream(
        COMPOSITE,
        PLAYER_COMPOSITE_FACTORS,
        "player_lookup",
        ("fatigue_score", "shot_zone_mismatch_score", "pace_score", "usage_spike_score"),
    ),
    SHOT_ZONES: Upstream(
        SHOT_ZONES,
        PLAYER_SHOT_ZONE_ANALYSIS,
        "player_lookup",
        tuple(f"{z}_rate_last_10" for z in ZONES),
    ),
    TEAM_DEFENSE: Upstream(
        TEAM_DEFENSE,
        TEAM_DEFENSE_ZONE_ANALYSIS,
        "opponent_team_abbr",
        ("defensive_rating_last_15", "opponent_pace"),
    ),
}


def _attach_upstream(
    rows: pl.LazyFrame, upstream: pl.DataFrame | None, read: Upstream
) -> pl.LazyFrame:
    """Adds `<name>__found`, `<name>__processed_at` and `<name>__<column>` (NULL if unusable)
    from the upstream's row of each slate row's own date."""
    usable = (
        pl.col("insufficient_data_reason").is_null()
        if read.reason_marks_placeholder
        else pl.lit(True)
    )
    values = (
        pl.when(usable).then(pl.col(c).cast(pl.Float64)).alias(f"{read.name}__{c}")
        for c in read.columns
    )
    return attach_upstream_by_date(
        rows,
        upstream,
        read.schema,
        [pl.col("processed_at").alias(f"{read.name}__processed_at"), *values],
        f"{read.name}__found",
        rows_key=read.slate_key,
    )


def _pairs(players: pl.LazyFrame, key: str) -> pl.LazyFrame:
    """The distinct (key, analysis_date, season_year) of the slate rows: what `as_of` reads."""
    return players.select(key, "analysis_date", "season_year").unique()


def _as_of_slate(
    players: pl.LazyFrame, sequence: pl.LazyFrame, entity: str, key: str, columns: list[str]
) -> pl.LazyFrame:
    """`columns` of the entity's last sequence row before D, per (key, analysis_date) of the
    slate rows (the sequence keeps only what `as_of` needs, so no name clashes)."""
    windows = sequence.select(entity, "season_year", "game_date", GAME_NUMBER, *columns)
    return as_of(_pairs(players, key), windows, entity, key=key).select(
        key, "analysis_date", *columns
    )


def _history(
    games: pl.DataFrame | pl.LazyFrame,
    entity: str,
    players: pl.LazyFrame,
    key: str,
    aggregates: list[Aggregate],
    dates: pl.DataFrame,
) -> pl.LazyFrame:
    """The aggregates of the entity's windows as of its last game before each D, per (key, D)
    of the slate rows: `windowed` on the games some slate date reads (`dates`: the slate's
    (analysis_date, season_year), what `game_sequence` reads of them; one rolling group-by a
    window, as P4 does), then `as_of`."""
    sequence = game_sequence(games, entity, dates)
    windows = windowed(sequence, (entity, "season_year", "game_date", GAME_NUMBER), aggregates)
    columns = [a.column for a in aggregates]
    return _as_of_slate(players, windows, entity, key, columns)


def _player_history(
    player_games: pl.LazyFrame, players: pl.LazyFrame, dates: pl.DataFrame
) -> pl.LazyFrame:
    """Phase 3 fallbacks per player and D: P4/P2 windows with no minimum and no 30-day cut."""
    last_5, last_10, season = Window(TREND_GAMES), Window(SHORT_WINDOW), Window(None)
    points, minutes = pl.col("points"), pl.col("minutes_played")
    aggregates = [
        last_5.agg_integer_mean(points).alias("p3__points_avg_last_5"),
        last_10.agg_integer_mean(points).alias("p3__points_avg_last_10"),
        season.agg_integer_mean(points).alias("p3__points_avg_season"),
        last_10.agg_std(points).alias("p3__points_std_last_10"),
        last_10.agg_mean(minutes).alias("p3__minutes_avg_last_10"),
        season.agg_mean(minutes).alias("p3__minutes_avg_season"),
        last_5.agg_count().alias("p3__games_last_5"),
        last_10.agg_count().alias("p3__games_last_10"),
        Window(TREND_RECENT_GAMES).agg_integer_mean(points).alias("p3__points_newest"),
        Window(TREND_GAMES, TREND_RECENT_GAMES).agg_integer_mean(points).alias("p3__points_before"),
        *(
            last_10.agg_sum(pl.col(f"{z}_attempts"), zones_known()).alias(f"p3__{z}_attempts")
            for z in ZONES
        ),
        last_10.agg_sum(pl.col("ft_makes")).alias("p3__ft_makes_last_10"),
        last_10.agg_sum(points).alias("p3__points_last_10"),
    ]
    games = qualifying_games(player_games)
    return _history(games, "player_lookup", players, "player_lookup", aggregates, dates)


def _team_history(
    team_offense: pl.DataFrame, players: pl.LazyFrame, dates: pl.DataFrame
) -> pl.LazyFrame:
    """The context team's last 10 games (pace, rating) and its season record, per D."""
    last_10, season = Window(TEAM_WINDOW), Window(None)
    aggregates = [
        last_10.agg_mean(pl.col("pace")).alias("team__pace_last_10"),
        last_10.agg_mean(pl.col("offensive_rating")).alias("team__off_rating_last_10"),
        season.agg_count().alias("team__games"),
        # A NULL win_flag is a game played but not a win.
        season.agg_sum(pl.col("win_flag").fill_null(False).cast(pl.Int64)).alias("team__wins"),
    ]
    return _history(team_offense, "team_abbr", players, "team_abbr", aggregates, dates)


def _opponent_history(
    team_defense: pl.DataFrame, players: pl.LazyFrame, dates: pl.DataFrame
) -> pl.LazyFrame:
    """The opponent's last 15 games as the defending team, per D."""
    last_15 = Window(OPPONENT_WINDOW)
    aggregates = [
        last_15.agg_mean(pl.col("defensive_rating")).alias("opponent__def_rating_last_15"),
        last_15.agg_mean(pl.col("opponent_pace")).alias("opponent__pace_last_15"),
    ]
    return _history(
        team_defense, "defending_team_abbr", players, "opponent_team_abbr", aggregates, dates
    )


def _opponent_rest(team_context: pl.DataFrame) -> pl.LazyFrame:
    """Each team's context row of D, as the opponent's."""
    return team_context.lazy().select(
        pl.col("team_abbr").alias("opponent_team_abbr"),
        pl.col("game_date").alias("analysis_date"),
        pl.col("team_days_rest").alias("opponent__team_days_rest"),
    )


def _slate_inputs(phase3: Phase3Frames, calendars: Calendars) -> pl.LazyFrame:
    """The slates with every Phase 3 input a feature needs as columns, one row per slate player
    and D: everything but the upstream rows (`slate_inputs`)."""
    # The slate once, then read by every part of the plan (a frame, not the join it comes from
    # again in each), and the dates it holds, which each history's `game_sequence` reads.
    slate_rows = slate(phase3.player_context, calendars).collect(engine=ENGINE)
    players = slate_rows.lazy()
    dates = slate_rows.select("analysis_date", "season_year").unique()
    slate_games = (
        phase3.player_games.lazy()
        .join(players.select("player_lookup").unique(), on="player_lookup", how="semi")
        .cache()
    )  # read by the Phase 3 history, the windows of 25-59 and the games vs opponent
    by_date = ["analysis_date"]
    rows = (
        players.join(
            _player_history(slate_games, players, dates), ["player_lookup", *by_date], "left"
        )
        .join(_team_history(phase3.team_offense, players, dates), ["team_abbr", *by_date], "left")
        .join(
            _opponent_history(phase3.team_defense, players, dates),
            ["opponent_team_abbr", *by_date],
            "left",
        )
        .join(_opponent_rest(phase3.team_context), ["opponent_team_abbr", *by_date], "left")
        .join(_team_schedule(phase3, players), ["team_abbr", *by_date], "left")
    )
    return attach_v3_inputs(rows, players, phase3, slate_games)


def _with_upstreams(rows: pl.LazyFrame, upstream: dict[str, pl.DataFrame | None]) -> pl.LazyFrame:
    """The slate rows with each upstream's row of their date (`_attach_upstream`)."""
    for name in UPSTREAMS:
        rows = _attach_upstream(rows, upstream[name], UPSTREAM_READS[name])
    return rows


def _team_schedule(phase3: Phase3Frames, players: pl.LazyFrame) -> pl.LazyFrame:
    """Per team and D: its scheduled games of S before D, and how many have a player box
    (SPEC 11). A game counts from its first scheduled date, and as boxed from the later of
    that date and its first box score's: running counts per team, as of D."""
    first_box = (
        phase3.player_games.lazy()
        .group_by("game_id", "season_year")
        .agg(pl.col("game_date").min().alias("box_date"))
    )
    scheduled = (
        phase3.team_context.lazy()
        .group_by("team_abbr", "game_id", "season_year")
        .agg(pl.col("game_date").min())
        .join(first_box, ["game_id", "season_year"], "left")
    )
    events = pl.concat(
        [
            scheduled.select(
                "team_abbr", "season_year", "game_date", expected=pl.lit(1), actual=pl.lit(0)
            ),
            scheduled.filter(pl.col("box_date").is_not_null()).select(
                "team_abbr",
                "season_year",
                pl.max_horizontal("game_date", "box_date").alias("game_date"),
                expected=pl.lit(0),
                actual=pl.lit(1),
            ),
        ]
    )
    running = (
        events.group_by("team_abbr", "season_year", "game_date")
        .agg(pl.col("expected").sum(), pl.col("actual").sum())
        .sort("team_abbr", "season_year", "game_date")
        .select(
            "team_abbr",
            "season_year",
            "game_date",
            pl.col("expected")
            .cum_sum()
            .over("team_abbr", "season_year")
            .alias("schedule__expected"),
            pl.col("actual").cum_sum().over("team_abbr", "season_year").alias("schedule__actual"),
        )
    )
    return latest_before(
        _pairs(players, "team_abbr"), running, ["team_abbr", "season_year"]
    ).select("team_abbr", "analysis_date", "schedule__expected", "schedule__actual")


# ---------------------------------------------------------------------------------------------
# Metrics: the 25 features as expressions over the input columns.
# ---------------------------------------------------------------------------------------------


def _up(upstream: str, column: str) -> pl.Expr:
    return pl.col(f"{upstream}__{column}")


def _p3(column: str) -> pl.Expr:
    return pl.col(f"p3__{column}")


def _from_flag(flag: pl.Expr) -> pl.Expr:
    return flag.cast(pl.Float64)


def _bands(value: pl.Expr, strong: float, mild: float) -> pl.Expr:
    """-2..2 by how far value is from 0: >= strong is 2, >= mild is 1, mirrored below."""
    v = value.round(BAND_DECIMALS)
    return pl.when(v.is_not_null()).then(
        pl.when(v >= strong)
        .then(2.0)
        .when(v >= mild)
        .then(1.0)
        .when(v <= -strong)
        .then(-2.0)
        .when(v <= -mild)
        .then(-1.0)
        .otherwise(0.0)
    )


def rest_advantage() -> pl.Expr:
    """Context days_rest minus the opponent's, from the player row else the team row."""
    opponent_rest = pl.coalesce(pl.col("opponent_days_rest"), pl.col("opponent__team_days_rest"))
    return (
        (pl.col("days_rest") - opponent_rest)
        .cast(pl.Float64)
        .clip(-MAX_REST_ADVANTAGE, MAX_REST_ADVANTAGE)
    )


def injury_risk() -> pl.Expr:
    """Status matched case- and whitespace-insensitively; an unknown status is missing."""
    status = pl.col("player_status").str.strip_chars().str.to_lowercase()
    return status.replace_strict(INJURY_RISK, default=None, return_dtype=pl.Float64)


def recent_trend() -> pl.Expr:
    """Two newest of the last five games against the three before them; needs five games."""
    diff = _p3("points_newest") - _p3("points_before")
    return pl.when(_p3("games_last_5") >= TREND_GAMES).then(_bands(diff, 5.0, 2.0))


def minutes_ratio() -> pl.Expr:
    """Recent minutes (P4 else Phase 3, last 10) against the season mean, as a share."""
    recent = pl.coalesce(_up(DAILY_CACHE, "minutes_avg_last_10"), _p3("minutes_avg_last_10"))
    season = _p3("minutes_avg_season")
    return ratio(recent - season, season)


def minutes_change() -> pl.Expr:
    """`minutes_ratio` in bands, from its column (`assembly`): the bands, the value and the tag
    of the feature read it ten times, ~0.4 ms a date as an expression."""
    return _bands(pl.col(MINUTES_RATIO), 0.20, 0.10)


def zone_share(zone: str) -> pl.Expr:
    """Phase 3 share of known-zone attempts from a zone over the last 10 games, 0-1."""
    total = pl.sum_horizontal(_p3(f"{z}_attempts") for z in ZONES)
    return ratio(_p3(f"{zone}_attempts"), total)


def pct_free_throw() -> pl.Expr:
    share = ratio(_p3("ft_makes_last_10"), _p3("points_last_10")).clip(0.0, MAX_FREE_THROW_SHARE)
    return pl.when(_p3("games_last_10") >= MIN_FREE_THROW_GAMES).then(share)


def team_win_pct() -> pl.Expr:
    games = pl.col("team__games")
    return pl.when(games >= MIN_WIN_PCT_GAMES).then(ratio(pl.col("team__wins"), games))


def _candidates() -> dict[str, tuple[tuple[str, pl.Expr], ...]]:
    """SPEC section 8, row by row: each feature's candidate values in priority order."""

    def tiered(phase4: pl.Expr, phase3: pl.Expr) -> tuple[tuple[str, pl.Expr], ...]:
        return ((PHASE4, phase4), (PHASE3, phase3))

    def cache(name: str, fallback: pl.Expr | None = None) -> tuple[tuple[str, pl.Expr], ...]:
        return tiered(_up(DAILY_CACHE, name), _p3(name) if fallback is None else fallback)

    def zone(zone: str) -> tuple[tuple[str, pl.Expr], ...]:
        return tiered(divide(_up(SHOT_ZONES, f"{zone}_rate_last_10"), 100.0), zone_share(zone))

    composite = {
        name: ((PHASE4, _up(COMPOSITE, name)),)
        for name in ("fatigue_score", "shot_zone_mismatch_score", "pace_score", "usage_spike_score")
    }
    return {
        "points_avg_last_5": cache("points_avg_last_5"),
        "points_avg_last_10": cache("points_avg_last_10"),
        "points_avg_season": cache("points_avg_season"),
        "points_std_last_10": cache("points_std_last_10"),
        "games_in_last_7_days": cache("games_in_last_7_days", pl.col("games_in_last_7_days")),
        **composite,
        "rest_advantage": ((CALCULATED, rest_advantage()),),
        "injury_risk": ((CALCULATED, injury_risk()),),
        "recent_trend": ((CALCULATED, recent_trend()),),
        "minutes_change": ((CALCULATED, minutes_change()),),
        "opponent_def_rating": tiered(
            _up(TEAM_DEFENSE, "defensive_rating_last_15"), pl.col("opponent__def_rating_last_15")
        ),
        "opponent_pace": tiered(
            _up(TEAM_DEFENSE, "opponent_pace"), pl.col("opponent__pace_last_15")
        ),
        "home_away": ((PHASE3, _from_flag(pl.col("home_game"))),),
        "back_to_back": ((PHASE3, _from_flag(pl.col("back_to_back"))),),
        "playoff_game": ((PHASE3, _from_flag(pl.col("season_phase") == "playoffs")),),
        "pct_paint": zone("paint"),
        "pct_mid_range": zone("mid_range"),
        "pct_three": zone("three_pt"),
        "pct_free_throw": ((CALCULATED, pct_free_throw()),),
        "team_pace": tiered(_up(DAILY_CACHE, "team_pace_last_10"), pl.col("team__pace_last_10")),
        "team_off_rating": tiered(
            _up(DAILY_CACHE, "team_off_rating_last_10"), pl.col("team__off_rating_last_10")
        ),
        "team_win_pct": ((CALCULATED, team_win_pct()),),
    }


def feature_table() -> tuple[Feature, ...]:
    """The contract's features in order, each with its expressions and the contract's default.

    The expressions' source tags must be the contract's chain: the two cannot drift apart.
    """
    candidates = _candidates()
    assert set(candidates) == set(FEATURE_NAMES), "P5 and the feature contract disagree"
    table = []
    for spec in ARRAY_CONTRACT:
        tiers = candidates[spec.name]
        assert spec.default is not None, f"{spec.name}: the 25 of SPEC 8 have defaults"
        assert (*(tag for tag, _ in tiers), DEFAULT) == spec.chain, spec.name
        table.append(Feature(spec.name, spec.default, tiers))
    return tuple(table)


FEATURES = feature_table()
PHASE4_FEATURES: tuple[int, ...] = tuple(i for i, f in enumerate(FEATURES) if f.has_phase4)


# ---------------------------------------------------------------------------------------------
# Tiers and flags: quality score, data_source, the early-season placeholder rule.
# ---------------------------------------------------------------------------------------------


def row_list(columns: Sequence[pl.Expr]) -> pl.Expr:
    """The columns of each row as one list, in order (same values as `pl.concat_list`).

    Built as a fixed-size array first: Polars' `concat_list` costs ~20x more per row, which
    over a season of slates was a quarter of P5's time.
    """
    return pl.concat_arr(columns).arr.to_list()


def _source_col(i: int) -> pl.Expr:
    return pl.col(f"source__{FEATURE_NAMES[i]}")


def feature_quality_score(sources: pl.Expr) -> pl.Expr:
    """Mean of 100 (phase4), 75 (phase3), 100 (calculated), 40 (default) over the 25 features
    of the list `sources`: each weight times its count in the lists (a list kernel each; a
    when-chain per feature cost 1 ms a date, `list.eval` 0.18 s a season). The weights are
    whole numbers, so the sum is exact in any order."""
    counted = (sources.list.count_matches(s) * w for s, w in SOURCE_WEIGHTS.items())
    return divide(pl.sum_horizontal(counted), ARRAY_FEATURE_COUNT)


def quality_tier(score: pl.Expr) -> pl.Expr:
    return tier(score, QUALITY_TIERS, "low")


def data_source() -> pl.Expr:
    """'phase4' when every feature with a Phase 4 source took it, 'phase3' when none did."""
    taken = pl.sum_horizontal((_source_col(i) == PHASE4).cast(pl.Int64) for i in PHASE4_FEATURES)
    return (
        pl.when(taken == len(PHASE4_FEATURES))
        .then(pl.lit("phase4"))
        .when(taken == 0)
        .then(pl.lit("phase3"))
        .otherwise(pl.lit("mixed"))
    )


def _tag(i: int) -> pl.Expr:
    return pl.col(f"tag__{i}")


def feature_tags() -> list[pl.Expr]:
    """`tag__<i>` for the 60 features: 0 to 24 as in feature_sources (all 'default' on a
    placeholder), 25 to 59 their contract tag, or 'missing' when the value is NULL."""
    placeholder = pl.col("is_placeholder")
    tags = []
    for spec in FEATURE_CONTRACT:
        if spec.in_array:
            tag = pl.when(placeholder).then(pl.lit(DEFAULT)).otherwise(_source_col(spec.index))
        else:
            value = pl.col(value_column(spec.index))
            tag = pl.when(value.is_null()).then(pl.lit(MISSING)).otherwise(pl.lit(spec.chain[0]))
        tags.append(tag.alias(f"tag__{spec.index}"))
    return tags


TAGS = "__tags"  # a row's 60 tags as one list, feature i at i: what the tag figures read


def tag_list() -> pl.Expr:
    """The 60 `tag__<i>` of a row as one list (the `TAGS` column)."""
    return row_list([_tag(i) for i in range(FEATURE_COUNT)])


def _tags(indices: Sequence[int] | None = None) -> pl.Expr:
    """The row's tags (`TAGS`), or those of the features `indices`, in that order."""
    tags = pl.col(TAGS)
    return tags if indices is None else tags.list.gather(list(indices))


def _defaulted(tags: pl.Expr) -> pl.Expr:
    """SPEC 16.3: a feature is defaulted when tagged 'default' or 'missing'."""
    return tags.list.eval(pl.element().is_in(DEFAULTED))


# The tag figures are list operations over `TAGS`, a few expressions each rather than one
# (or ten) per feature: the expressions, not the rows, were the cost of a date.


def feature_sources_json() -> pl.Expr:
    """{"0": tag, ..., "59": tag}, as Python's json.dumps writes it (default separators): the
    row's 60 `tag__<i>` between constant pieces, one concatenation (formatting each element of
    the list of tags ran once per row)."""
    pieces: list[pl.Expr] = []
    for i in range(FEATURE_COUNT):
        pieces += [pl.lit(('{"' if i == 0 else '", "') + f'{i}": "'), _tag(i)]
    return pl.concat_str([*pieces, pl.lit('"}')])


def default_feature_count() -> pl.Expr:
    """Features of the 60 tagged 'default' or 'missing' (60 on a placeholder row)."""
    return _defaulted(_tags()).list.sum().cast(pl.Int64)


def required_default_count() -> pl.Expr:
    """The required features (SPEC 16.3: 0 to 24, 28 to 36) among the defaulted ones."""
    return _defaulted(_tags(REQUIRED_FEATURES)).list.sum().cast(pl.Int64)


def default_feature_indices() -> pl.Expr:
    """The defaulted features' indices, ascending; [] when none."""
    indices = _tags().list.eval(pl.element().is_in(DEFAULTED).arg_true())
    return indices.cast(pl.List(pl.Int64))


def quality_pct(category: str) -> pl.Expr:
    """Sum of the category's tag weights (CATEGORY_WEIGHTS) over its number of features: one
    division. The weights are whole numbers, so their sum is exact in any order."""
    tags = _tags(CATEGORY_FEATURES[category])
    weights = tags.list.eval(
        pl.element().replace_strict(CATEGORY_WEIGHTS, default=None, return_dtype=pl.Float64)
    )
    # Over a count added up on each row: Polars divides by a literal, or by `list.len` of a
    # gathered list (a broadcast value), as a multiplication by its reciprocal in some
    # chunks, which moves the last bit (100 / 12 gave 8.333333333333332 on a date alone).
    count = tags.list.eval(pl.element().is_not_null()).list.sum().cast(pl.Float64)
    return weights.list.sum() / count


def default_issues() -> pl.Expr:
    """'default:<name>' for each of 0 to 24 tagged 'default', in feature order (feature i of
    feature_sources is tag i: both 'default' on a placeholder)."""
    issues = pl.lit(pl.Series([f"default:{name}" for name in FEATURE_NAMES]))
    array = _tags(range(ARRAY_FEATURE_COUNT))
    return array.list.eval(issues.gather((pl.element() == DEFAULT).arg_true()))


def is_quality_ready() -> pl.Expr:
    """SPEC 16.3 (replaces SPEC 12's rule, which it implies): score >= 70, matchup >= 50 and
    no required feature defaulted. A placeholder has 25 required defaults: never ready."""
    return (
        (pl.col("feature_quality_score") >= QUALITY_READY_SCORE)
        & (pl.col("matchup_quality_pct") >= QUALITY_READY_MATCHUP)
        & (pl.col("required_default_count") == 0)
    )


def is_training_ready() -> pl.Expr:
    return (
        (pl.col("feature_quality_score") >= TRAINING_READY_SCORE)
        & (pl.col("matchup_quality_pct") >= TRAINING_READY_MATCHUP)
        & (pl.col("player_history_quality_pct") >= TRAINING_READY_HISTORY)
        & (pl.col("required_default_count") == 0)
    )


def quality_alert_level() -> pl.Expr:
    """'red' for a weak matchup, a low score or 5+ required defaults; 'yellow' for any
    required default or a middling score or matchup; else 'green'."""
    score, matchup = pl.col("feature_quality_score"), pl.col("matchup_quality_pct")
    required = pl.col("required_default_count")
    return (
        pl.when((matchup < RED_BELOW) | (score < RED_BELOW) | (required >= RED_REQUIRED_DEFAULTS))
        .then(pl.lit("red"))
        .when((required > 0) | (score < YELLOW_BELOW) | (matchup < YELLOW_BELOW))
        .then(pl.lit("yellow"))
        .otherwise(pl.lit("green"))
    )


def matchup_data_status() -> pl.Expr:
    return (
        pl.when(pl.col("matchup_quality_pct") < QUALITY_READY_MATCHUP)
        .then(pl.lit("MATCHUP_UNAVAILABLE"))
        .otherwise(pl.lit("COMPLETE"))
    )


def feature_values() -> list[pl.Expr]:
    """`feature_<i>_value` for the 60: NULL on a placeholder and wherever a feature of 0 to
    24 is tagged 'default' (never a made-up value); 25 to 59 from SPEC 16.2 with `f(k)`,
    feature k as stored."""
    placeholder = pl.col("is_placeholder")

    def stored(i: int) -> pl.Expr:
        name = FEATURE_NAMES[i]
        real = ~placeholder & (pl.col(f"source__{name}") != DEFAULT)
        return pl.when(real).then(pl.col(f"value__{name}"))

    later = v3_values(stored)
    return [
        *(stored(i).alias(value_column(i)) for i in range(ARRAY_FEATURE_COUNT)),
        *(
            pl.when(~placeholder).then(later[i].cast(pl.Float64)).alias(value_column(i))
            for i in range(ARRAY_FEATURE_COUNT, FEATURE_COUNT)
        ),
    ]


def completeness_percentage() -> pl.Expr:
    """Scheduled games of the team with a player box, x 100; 100.0 when none is expected."""
    expected = pl.col("expected_games_count")
    return (
        pl.when(expected == 0)
        .then(100.0)
        .otherwise(pl.col("actual_games_count") * 100.0 / expected)
    )


def is_production_ready(failed: Sequence[str]) -> pl.Expr:
    """SPEC 15: >= 90 % of the team's games boxed, no upstream failed, not a placeholder."""
    return (
        (pl.col("completeness_percentage") >= PRODUCTION_READY_PCT)
        & pl.lit(not failed)
        & ~pl.col("is_placeholder")
    )


def data_quality_issues(failed: Sequence[str]) -> pl.Expr:
    """SPEC 15's order: placeholder, phase3_incomplete, failed upstreams, defaulted features
    (`default_issues`, a column of the row's tag figures)."""
    issues = [
        pl.when(pl.col("is_placeholder")).then(pl.lit("early_season_placeholder")),
        pl.when(pl.col("missing_games_count") > 0).then(pl.lit("phase3_incomplete")),
        *(pl.lit(issue) for issue in failed),
    ]
    return row_list(issues).list.drop_nulls().list.concat(pl.col(DEFAULT_ISSUES))


DEFAULT_ISSUES = "__default_issues"


def processing_decision_reason() -> pl.Expr:
    """Placeholder, else 'upstream_fallback' when a Phase 4 feature did not take Phase 4."""
    fell_back = pl.any_horizontal(_source_col(i) != PHASE4 for i in PHASE4_FEATURES)
    return (
        pl.when(pl.col("is_placeholder"))
        .then(pl.lit("early_season_placeholder"))
        .when(fell_back)
        .then(pl.lit("upstream_fallback"))
        .otherwise(pl.lit("processed"))
    )


def _early_season_placeholders() -> list[pl.Expr]:
    """Early season with over half of D's slate missing from P4: every row of D becomes a
    placeholder.

    The counts are aggregates over each date's slate, broadcast onto its rows.
    """
    lacking = (~pl.col(f"{DAILY_CACHE}__found")).cast(pl.Int64).sum().over("analysis_date")
    players = pl.len().over("analysis_date")
    return [
        (pl.col("early_season_flag") & (lacking * 2 > players)).alias("is_placeholder"),
        pl.format("Early season: {}/{} players lack history", lacking, players).alias(
            "placeholder_reason"
        ),
    ]


def _source_tracking(name: str) -> list[pl.Expr]:
    """One upstream row per slate row at most: found is 1 row of 1 expected, or 0."""
    tracking = upstream_tracking(name, f"{name}__found")
    return [
        pl.col(f"{name}__processed_at").alias(f"source_{name}_last_updated"),
        *(expr.alias(column) for column, expr in tracking.items()),
    ]


Steps = tuple[tuple[pl.Expr, ...], ...]


@functools.cache
def assembly(failed: tuple[str, ...]) -> tuple[Steps, Steps]:
    """The steps of `with_columns` from the inputs to the table's columns (but created_at),
    given the upstreams that failed (SPEC 15 issues, in run order): those up to the tags, and
    those after the tag figures (`with_tag_figures`). They depend on nothing else, so they
    are built once: building these hundreds of expressions was a fixed cost of every run."""
    sources = [pl.col(f"source__{n}") for n in FEATURE_NAMES]
    placeholder = pl.col("is_placeholder")
    before = (
        (minutes_ratio().alias(MINUTES_RATIO), *_early_season_placeholders()),
        (
            *(f.value().alias(f"value__{f.name}") for f in FEATURES),
            *(f.source().alias(f"source__{f.name}") for f in FEATURES),
        ),
        (
            row_list([pl.col(f"value__{n}") for n in FEATURE_NAMES]).alias("features"),
            row_list(sources).alias("feature_sources"),
            data_source().alias("data_source"),
        ),
        (
            pl.when(placeholder)
            .then(pl.concat_list([pl.lit(None, dtype=pl.Float64)] * ARRAY_FEATURE_COUNT))
            .otherwise(pl.col("features"))
            .alias("features"),
            pl.when(placeholder)
            .then(pl.concat_list([pl.lit(DEFAULT)] * ARRAY_FEATURE_COUNT))
            .otherwise(pl.col("feature_sources"))
            .alias("feature_sources"),
            pl.when(placeholder)
            .then(0.0)
            .otherwise(feature_quality_score(pl.col("feature_sources")))
            .alias("feature_quality_score"),
            pl.when(placeholder)
            .then(pl.lit("early_season"))
            .otherwise(pl.col("data_source"))
            .alias("data_source"),
            pl.when(placeholder)
            .then(pl.col("placeholder_reason"))
            .alias("insufficient_data_reason"),
        ),
        (
            pl.concat_list([pl.lit(n) for n in FEATURE_NAMES]).alias("feature_names"),
            pl.lit(FEATURE_COUNT).alias("feature_count"),
            pl.lit(FEATURE_VERSION).alias("feature_version"),
            quality_tier(pl.col("feature_quality_score")).alias("quality_tier"),
            pl.col("home_game").alias("is_home"),
        ),
        tuple(expr for name in UPSTREAMS for expr in _source_tracking(name)),
        tuple(feature_values()),
        tuple(feature_tags()),
    )
    after = (
        (
            is_quality_ready().alias("is_quality_ready"),
            is_training_ready().alias("is_training_ready"),
            quality_alert_level().alias("quality_alert_level"),
            matchup_data_status().alias("matchup_data_status"),
            pl.col("schedule__expected").fill_null(0).cast(pl.Int64).alias("expected_games_count"),
            pl.col("schedule__actual").fill_null(0).cast(pl.Int64).alias("actual_games_count"),
        ),
        (
            (pl.col("expected_games_count") - pl.col("actual_games_count")).alias(
                "missing_games_count"
            ),
            completeness_percentage().alias("completeness_percentage"),
            (pl.col("days_into_season") < BOOTSTRAP_DAYS).alias("backfill_bootstrap_mode"),
            processing_decision_reason().alias("processing_decision_reason"),
        ),
        (
            is_production_ready(failed).alias("is_production_ready"),
            data_quality_issues(failed).alias("data_quality_issues"),
        ),
    )
    return before, after


TAG_KEY = (*(f"tag__{i}" for i in range(FEATURE_COUNT)), "is_placeholder")
DISTINCT_TAGS_FROM_DATES = 7


@functools.cache
def tag_figures() -> tuple[tuple[pl.Expr, ...], ...]:
    """The columns that depend on a row's 60 tags alone: SPEC 16.3's counts, indices and
    category pcts, feature_sources_json and the 'default:<name>' issues."""
    return (
        (tag_list().alias(TAGS),),
        (
            feature_sources_json().alias("feature_sources_json"),
            default_feature_count().alias("default_feature_count"),
            required_default_count().alias("required_default_count"),
            default_feature_indices().alias("default_feature_indices"),
            quality_pct(MATCHUP).alias("matchup_quality_pct"),
            quality_pct(PLAYER_HISTORY).alias("player_history_quality_pct"),
            quality_pct(VEGAS).alias("vegas_quality_pct"),
            quality_pct(GAME_CONTEXT).alias("game_context_quality_pct"),
            default_issues().alias(DEFAULT_ISSUES),
        ),
    )


def with_tag_figures(rows: pl.LazyFrame) -> pl.LazyFrame:
    """The rows with their tag figures (`tag_figures`), computed once per distinct tag vector
    and joined back: a season's 25,000 rows hold some 80 of them, and the strings and lists
    cost microseconds a row (a tenth of P5's assembly when computed per row)."""
    distinct = rows.select(TAG_KEY).unique()
    for step in tag_figures():
        distinct = distinct.with_columns(*step)
    return rows.join(distinct, on=TAG_KEY, how="left", nulls_equal=True, maintain_order="left")


def assembled(rows: pl.LazyFrame, failed: tuple[str, ...], dates: int) -> pl.LazyFrame:
    """The slate rows of `dates` dates with every upstream attached, through P5's assembly
    (`assembly`). The tag figures are computed per distinct tag vector from a week of dates
    on; for fewer rows the `unique` and the join cost more than they save (some 8 ms)."""
    before, after = assembly(failed)
    for step in before:
        rows = rows.with_columns(*step)
    if dates >= DISTINCT_TAGS_FROM_DATES:
        rows = with_tag_figures(rows)
    else:
        for step in tag_figures():
            rows = rows.with_columns(*step)
    for step in after:
        rows = rows.with_columns(*step)
    return rows


def _phase3_frames(
    player_games: pl.DataFrame,
    team_defense: pl.DataFrame,
    team_offense: pl.DataFrame,
    player_context: pl.DataFrame,
    team_context: pl.DataFrame,
) -> Phase3Frames:
    """The Phase 3 inputs, the context tables with their optional columns (NULL if absent)."""
    return Phase3Frames(
        player_games,
        team_defense,
        team_offense,
        with_optional_columns(player_context, UPCOMING_PLAYER_GAME_CONTEXT),
        with_optional_columns(team_context, UPCOMING_TEAM_GAME_CONTEXT),
    )


def slate_inputs(
    *,
    player_games: pl.DataFrame,
    team_defense: pl.DataFrame,
    team_offense: pl.DataFrame,
    player_context: pl.DataFrame,
    team_context: pl.DataFrame,
    calendar: Calendars,
) -> pl.DataFrame:
    """Every slate row of `calendar` with its Phase 3 inputs (histories, windows of 25-59,
    schedule counts): the half of P5 that reads no upstream, so the run core computes it while
    P1 to P4 run (`Processor.slate_inputs`) and passes it to `ml_feature_store_v2`."""
    phase3 = _phase3_frames(player_games, team_defense, team_offense, player_context, team_context)
    return _slate_inputs(phase3, calendar).collect(engine=ENGINE, optimizations=PLAN_OPTIMIZATIONS)


def ml_feature_store_v2(
    *,
    player_games: pl.DataFrame,
    team_defense: pl.DataFrame,
    team_offense: pl.DataFrame,
    player_context: pl.DataFrame,
    team_context: pl.DataFrame,
    calendar: Calendars,
    processed_at: datetime,
    slate_inputs: pl.DataFrame | None = None,
    **frames: Unpack[UpstreamFrames],
) -> pl.DataFrame:
    """One row per slate player of every date D of `calendar`, whatever upstream failed;
    None means that processor failed (for every date). The optional Phase 3 columns may be
    absent: their features are then NULL ('missing'). `slate_inputs`: the slate rows of
    `calendar` already computed (`slate_inputs`), else computed here in the same plan."""
    upstream = {
        DAILY_CACHE: frames["daily_cache"],
        COMPOSITE: frames["composite_factors"],
        SHOT_ZONES: frames["shot_zones"],
        TEAM_DEFENSE: frames["team_defense_zones"],
    }
    failed = tuple(FAILED_ISSUE[name] for name in UPSTREAMS_IN_RUN_ORDER if upstream[name] is None)
    if slate_inputs is None:  # no early half (`slate_inputs`): computed here, in the same plan
        phase3 = _phase3_frames(
            player_games, team_defense, team_offense, player_context, team_context
        )
        slate_inputs_plan = _slate_inputs(phase3, calendar)
    else:
        slate_inputs_plan = slate_inputs.lazy()
    dates = calendar_frame(calendar).height
    rows = assembled(_with_upstreams(slate_inputs_plan, upstream), failed, dates)
    rows = rows.with_columns(created_at=pl.lit(processed_at))
    return to_table(rows, ML_FEATURE_STORE_V2)
