"""The 25 model features declared once (SPEC sections 8 and 12), as plain data.

P5's assembly takes names, order, source chains and defaults from here, the feature checks take
ranges and check classes, and `docs/features.md` is generated from it:
`python -m quality.feature_contract > docs/features.md`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PHASE4, PHASE3, CALCULATED, DEFAULT = "phase4", "phase3", "calculated", "default"
# SPEC 16: a feature of 25 to 59 whose value is unknown is NULL and tagged 'missing'.
MISSING = "missing"
# Tags that mean "no real value": counted by default_feature_count and the Defaults check.
DEFAULTED = (DEFAULT, MISSING)
FEATURE_VERSION = "v2_60features"
# SPEC 16.3's categories: four have a `<c>_quality_pct` column, team_context has none.
MATCHUP, PLAYER_HISTORY, VEGAS, GAME_CONTEXT, TEAM_CONTEXT = (
    "matchup",
    "player_history",
    "vegas",
    "game_context",
    "team_context",
)
QUALITY_CATEGORIES = (MATCHUP, PLAYER_HISTORY, VEGAS, GAME_CONTEXT)


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: where its value comes from, what it falls back to, what a sane value is."""

    index: int
    name: str
    chain: tuple[str, ...]  # source tags in priority order, 'default' (or 'missing') last
    origin: str  # where each tag's value comes from, for the data dictionary
    default: float | None  # None: no default, unknown stays NULL ('missing', 25 to 59)
    low: float
    high: float
    constant_check: bool
    drift_check: bool
    allowed: tuple[float, ...] = ()  # a set of valid values instead of [low, high]
    category: str = PLAYER_HISTORY
    required: bool = True  # SPEC 16.3: optional features are the old system's OPTIONAL_FEATURES
    always_null: bool = False  # its source is not in Phase 3: any value is out of range
    minimum: str = ""  # SPEC 16.2's minimum sample, for the data dictionary

    @property
    def has_phase4(self) -> bool:
        return PHASE4 in self.chain

    @property
    def in_array(self) -> bool:
        """One of the 25 of `features` (SPEC 8), kept for the older reader."""
        return self.index < ARRAY_FEATURE_COUNT

    @property
    def default_check(self) -> bool:
        """SPEC 16.6: the Defaults check covers 0 to 24 and the required 28 to 36."""
        return self.required

    @property
    def range_text(self) -> str:
        if self.always_null:
            return "always NULL"
        if self.allowed:
            return "{" + ", ".join(_number(v) for v in self.allowed) + "}"
        if math.isinf(self.high):
            return f">= {_number(self.low)}"
        return f"[{_number(self.low)}, {_number(self.high)}]"


def _number(value: float) -> str:
    return f"{value:g}"


# The 25 features of the `features` array (SPEC 8); 25 to 59 only have value columns.
ARRAY_FEATURE_COUNT = 25
# SPEC 16.3: the categories of 0 to 24 (25 to 59 declare theirs in the table below).
_CATEGORY_OF_ARRAY = {
    **dict.fromkeys((5, 6, 7, 8, 13, 14), MATCHUP),
    **dict.fromkeys((0, 1, 2, 3, 4), PLAYER_HISTORY),
    **dict.fromkeys((9, 10, 11, 12, 15, 16, 17, 18, 19, 20, 21), GAME_CONTEXT),
    **dict.fromkeys((22, 23, 24), TEAM_CONTEXT),
}


def _f(
    index: int,
    name: str,
    chain: tuple[str, ...],
    origin: str,
    default: float,
    valid: tuple[float, float] | tuple[float, ...],
    checks: str = "",
) -> FeatureSpec:
    """One of the 25 (SPEC 8 and 12): required, with a default. `valid` is (low, high), or
    the set of allowed values when it has three or more."""
    allowed = valid if len(valid) > 2 else ()
    low, high = (min(valid), max(valid))
    return FeatureSpec(
        index,
        name,
        (*chain, DEFAULT),
        origin,
        default,
        low,
        high,
        "constant" in checks,
        "drift" in checks,
        allowed,
        category=_CATEGORY_OF_ARRAY[index],
    )


def _v(
    index: int,
    name: str,
    tag: str,
    origin: str,
    category: str,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    allowed: tuple[float, ...] = (),
    minimum: str = "",
) -> FeatureSpec:
    """One of 25 to 59 (SPEC 16.2 and 16.6): no default (NULL is 'missing'), no constant or
    drift check; required only for 28 to 36. No range at all: always NULL."""
    unbounded = math.isinf(low) and math.isinf(high) and not allowed
    return FeatureSpec(
        index,
        name,
        (tag, MISSING),
        origin,
        None,
        low,
        high,
        constant_check=False,
        drift_check=False,
        allowed=allowed,
        category=category,
        required=28 <= index <= 36,
        always_null=unbounded,
        minimum=minimum,
    )


_P4_P3 = (PHASE4, PHASE3)
_FLAGS = (0.0, 0.5, 1.0)

FEATURE_CONTRACT: tuple[FeatureSpec, ...] = (
    _f(0, "points_avg_last_5", _P4_P3, "P4; mean points, last 5 qualifying games", 10.0,
       (0, 70), "constant drift"),
    _f(1, "points_avg_last_10", _P4_P3, "P4; mean points, last 10 qualifying games", 10.0,
       (0, 70), "constant drift"),
    _f(2, "points_avg_season", _P4_P3, "P4; mean points, season's qualifying games", 10.0,
       (0, 70), "constant drift"),
    _f(3, "points_std_last_10", _P4_P3, "P4; sample std of points, last 10 (>= 2 games)", 5.0,
       (0, 40), "constant drift"),
    _f(4, "games_in_last_7_days", _P4_P3, "P4; context games_in_last_7_days", 3.0,
       (0, 7), "constant"),
    _f(5, "fatigue_score", (PHASE4,), "P3 player_composite_factors", 50.0,
       (0, 100), "constant"),
    _f(6, "shot_zone_mismatch_score", (PHASE4,), "P3 player_composite_factors", 0.0,
       (-10, 10), "constant"),
    _f(7, "pace_score", (PHASE4,), "P3 player_composite_factors", 0.0,
       (-3, 3), "constant"),
    _f(8, "usage_spike_score", (PHASE4,), "P3 player_composite_factors", 0.0,
       (-3, 3), "constant drift"),
    _f(9, "rest_advantage", (CALCULATED,),
       "clamp(days_rest - opponent's days rest, -2, 2)", 0.0, (-2, 2)),
    _f(10, "injury_risk", (CALCULATED,),
       "player_status: available 0, probable 1, questionable 2, doubtful 3, out 3", 0.0, (0, 3)),
    _f(11, "recent_trend", (CALCULATED,),
       "points of the 2 newest vs the 3 before them, banded -2..2 (5 games)", 0.0, (-2, 2)),
    _f(12, "minutes_change", (CALCULATED,),
       "recent vs season minutes as a share, banded -2..2", 0.0, (-2, 2)),
    _f(13, "opponent_def_rating", _P4_P3,
       "P1 (opponent); mean defensive_rating, opponent's last 15", 112.0, (70, 150), "constant"),
    _f(14, "opponent_pace", _P4_P3,
       "P1 (opponent); mean opponent_pace, opponent's last 15", 100.0, (80, 120), "constant"),
    _f(15, "home_away", (PHASE3,), "context home_game as 1.0 / 0.0", 0.5, _FLAGS),
    _f(16, "back_to_back", (PHASE3,), "context back_to_back as 1.0 / 0.0", 0.0, _FLAGS),
    _f(17, "playoff_game", (PHASE3,), "1.0 when season_phase = 'playoffs', else 0.0", 0.0,
       _FLAGS),
    _f(18, "pct_paint", _P4_P3, "P2 paint_rate_last_10 / 100; same from the last 10 games",
       0.30, (0, 1), "constant drift"),
    _f(19, "pct_mid_range", _P4_P3,
       "P2 mid_range_rate_last_10 / 100; same from the last 10 games", 0.20, (0, 1),
       "constant drift"),
    _f(20, "pct_three", _P4_P3, "P2 three_pt_rate_last_10 / 100; same from the last 10 games",
       0.35, (0, 1), "constant drift"),
    _f(21, "pct_free_throw", (CALCULATED,),
       "sum ft_makes / sum points, last 10 (>= 5 games), clamp [0, 0.5]", 0.15, (0, 0.5),
       "constant drift"),
    _f(22, "team_pace", _P4_P3, "P4 team_pace_last_10; mean pace, team's last 10", 100.0,
       (80, 120), "constant"),
    _f(23, "team_off_rating", _P4_P3,
       "P4 team_off_rating_last_10; mean offensive_rating, team's last 10", 112.0, (70, 150),
       "constant"),
    _f(24, "team_win_pct", (CALCULATED,),
       "wins / games of the player's team in S before D (>= 5 games)", 0.5, (0, 1), "constant"),
    # SPEC 16.2. Q60 (Q30): qualifying games of S in [D - 60, D) ([D - 30, D)), newest first;
    # n = |Q60|; R10: newest 10 box rows of any status in [D - 60, D); L(g): the context line
    # of g's date; G: the Q60 games with L(g) known.
    _v(25, "vegas_points_line", PHASE3, "context current_points_line", VEGAS, 0, 80),
    _v(26, "vegas_opening_line", CALCULATED, "not in Phase 3", VEGAS),
    _v(27, "vegas_line_move", CALCULATED, "not in Phase 3", VEGAS),
    _v(28, "has_vegas_line", CALCULATED, "1 when vegas_points_line is known, else 0", VEGAS,
       allowed=(0.0, 1.0)),
    _v(29, "avg_points_vs_opponent", CALCULATED,
       "mean points, qualifying games of S before D against the context opponent; none: "
       "points_avg_season as stored", PLAYER_HISTORY, 0, 100),
    _v(30, "games_vs_opponent", CALCULATED, "number of those games", PLAYER_HISTORY, 0, 20),
    _v(31, "minutes_avg_last_10", CALCULATED, "mean minutes_played over Q30", PLAYER_HISTORY,
       0, 70, minimum="1 game"),
    _v(32, "ppm_avg_last_10", CALCULATED, "mean points / minutes_played over Q30",
       PLAYER_HISTORY, 0, minimum="1 game"),
    _v(33, "dnp_rate", CALCULATED, "share of R10 rows with is_dnp true", PLAYER_HISTORY, 0, 1,
       minimum="3 rows"),
    _v(34, "pts_slope_10g", CALCULATED, "least-squares slope of points, newest min(10, n) of Q60",
       PLAYER_HISTORY, -30, 30, minimum="n >= 5"),
    _v(35, "pts_vs_season_zscore", CALCULATED,
       "clamp((f0 - f2) / f3, -3, 3); NULL when f3 = 0", PLAYER_HISTORY, -3, 3),
    _v(36, "breakout_flag", CALCULATED, "1 when f0 > f2 + 1.5 x f3, else 0", PLAYER_HISTORY,
       allowed=(0.0, 1.0)),
    _v(37, "star_teammates_out", PHASE3, "context star_teammates_out", PLAYER_HISTORY, 0, 15),
    _v(38, "game_total_line", PHASE3, "team context game_total", GAME_CONTEXT, 150, 300),
    _v(39, "days_rest", PHASE3, "context days_rest", GAME_CONTEXT, 0),
    _v(40, "minutes_load_last_7d", PHASE3, "context minutes_in_last_7_days", GAME_CONTEXT,
       0, 500),
    _v(41, "spread_magnitude", PHASE3, "abs(team context game_spread)", GAME_CONTEXT, 0, 40),
    _v(42, "implied_team_total", PHASE3, "(game_total - game_spread) / 2", GAME_CONTEXT,
       50, 175),
    _v(43, "points_avg_last_3", CALCULATED, "mean points, newest min(3, n) of Q60",
       PLAYER_HISTORY, 0, 100, minimum="n >= 1"),
    _v(44, "scoring_trend_slope", CALCULATED,
       "least-squares slope of points, newest min(7, n) of Q60", PLAYER_HISTORY, -40, 40,
       minimum="n >= 4"),
    _v(45, "deviation_from_avg_last3", CALCULATED,
       "(f43 - mean) / sd (ddof 1) of Q60's points; 0 when sd = 0", PLAYER_HISTORY, -4, 4,
       minimum="n >= 2"),
    _v(46, "consecutive_games_below_avg", CALCULATED,
       "newest Q60 games before the first with points >= Q60's mean", PLAYER_HISTORY, 0, 40,
       minimum="n >= 1"),
    _v(47, "teammate_usage_available", CALCULATED, "not in Phase 3 (injury report)",
       GAME_CONTEXT),
    _v(48, "usage_rate_last_5", CALCULATED,
       "mean usage_rate, newest min(5, u) of the u Q60 games where it is known",
       PLAYER_HISTORY, 0, minimum="u >= 3"),
    _v(49, "games_since_structural_change", CALCULATED,
       "Q60 games after the newest team change or > 14-day gap; none: min(n, 30)",
       PLAYER_HISTORY, 0, 40, minimum="n >= 1"),
    _v(50, "multi_book_line_std", CALCULATED, "not in Phase 3", GAME_CONTEXT),
    _v(51, "prop_over_streak", CALCULATED,
       "Q30 newest first: games above vegas_points_line before the first below",
       GAME_CONTEXT, 0, 40),
    _v(52, "prop_under_streak", CALCULATED,
       "Q30 newest first: games below vegas_points_line before the first above",
       GAME_CONTEXT, 0, 40),
    _v(53, "line_vs_season_avg", CALCULATED, "f25 - f2", GAME_CONTEXT, -100, 100),
    _v(54, "prop_line_delta", CALCULATED,
       "f25 - the newest known context line of S in [D - 14, D)", PLAYER_HISTORY, -100, 100),
    _v(55, "over_rate_last_10", CALCULATED,
       "share of G's newest min(10, |G|) with points > L(g)", PLAYER_HISTORY, 0, 1,
       minimum="|G| >= 5"),
    _v(56, "margin_vs_line_avg_last_5", CALCULATED,
       "mean points - L(g) over G's newest min(5, |G|)", PLAYER_HISTORY, -100, 100,
       minimum="|G| >= 3"),
    _v(57, "blowout_minutes_risk", CALCULATED,
       "share of the team's newest 10 games in [D - 60, D) won or lost by 15+ (both rows known)",
       TEAM_CONTEXT, 0, 1, minimum="1 game"),
    _v(58, "minutes_volatility_last_10", CALCULATED,
       "sample std (ddof 1) of minutes_played, newest 10 of Q60", PLAYER_HISTORY, 0, 45,
       minimum="3 games"),
    _v(59, "opponent_pace_mismatch", CALCULATED, "f22 - f14", GAME_CONTEXT, -40, 40),
)  # fmt: skip

ARRAY_CONTRACT: tuple[FeatureSpec, ...] = FEATURE_CONTRACT[:ARRAY_FEATURE_COUNT]
# The names of the 25 of `features` / `feature_names` (SPEC 8: what the older reader reads).
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in ARRAY_CONTRACT)
# All 60, in index order: `feature_<i>_value` holds ALL_FEATURE_NAMES[i] (SPEC 16).
ALL_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURE_CONTRACT)
FEATURE_COUNT = len(FEATURE_CONTRACT)
BY_NAME: dict[str, FeatureSpec] = {f.name: f for f in FEATURE_CONTRACT}
PHASE4_FEATURES: tuple[int, ...] = tuple(f.index for f in FEATURE_CONTRACT if f.has_phase4)
REQUIRED_FEATURES: tuple[int, ...] = tuple(f.index for f in FEATURE_CONTRACT if f.required)
CATEGORY_FEATURES: dict[str, tuple[int, ...]] = {
    c: tuple(f.index for f in FEATURE_CONTRACT if f.category == c)
    for c in (*QUALITY_CATEGORIES, TEAM_CONTEXT)
}


def value_column(index: int) -> str:
    """SPEC 16.1: the FLOAT64 column of feature `index`."""
    return f"feature_{index}_value"


VALUE_COLUMNS: tuple[str, ...] = tuple(value_column(f.index) for f in FEATURE_CONTRACT)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def data_dictionary() -> str:
    """The Markdown data dictionary of the 60 features (docs/features.md)."""
    lines = [
        "# Features of `nba_predictions.ml_feature_store_v2` (feature_version "
        f"`{FEATURE_VERSION}`)",
        "",
        "Generated from `quality/feature_contract.py` by "
        "`python -m quality.feature_contract > docs/features.md`; do not edit by hand "
        "(a test fails when this file is out of date).",
        "",
        "Every feature `i` has a column `feature_<i>_value` (FLOAT64, NULL when unknown; never "
        "a made-up value) and a tag in `feature_sources_json`. Features 0 to 24 are also the "
        "`features` array (SPEC 8): each takes the first available source of its chain and "
        "`feature_sources[i]` records which one; `features[i]` holds the default where "
        "`feature_<i>_value` is NULL. Features 25 to 59 have no default: a NULL value is tagged "
        "`missing` (SPEC 16). Required features (0 to 24, 28 to 36) count in "
        "`required_default_count`; a row with one of them defaulted is not quality-ready.",
        "",
        "The range is inclusive; a value outside it (NaN and infinity included) makes P5 FAIL "
        "and keeps the previous partition. The constant, default-share and drift checks WARN "
        "(SPEC 12 and 16.6); results land in `nba_predictions.ml_feature_checks`, one row per "
        "feature and date.",
        "",
        "| # | name | required | category | source chain | from | minimum | default "
        "| valid range | constant check | default check | drift check |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in FEATURE_CONTRACT:
        default = "—" if f.default is None else _number(f.default)
        lines.append(
            f"| {f.index} | {f.name} | {_yes(f.required)} | {f.category} | "
            f"{' → '.join(f.chain)} | {f.origin} | {f.minimum or '—'} | {default} | "
            f"{f.range_text} | {_yes(f.constant_check)} | {_yes(f.default_check)} | "
            f"{_yes(f.drift_check)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(data_dictionary(), end="")
