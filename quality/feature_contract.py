"""The 25 model features declared once (SPEC sections 8 and 12), as plain data.

P5's assembly takes names, order, source chains and defaults from here, the feature checks take
ranges and check classes, and `docs/features.md` is generated from it:
`python -m quality.feature_contract > docs/features.md`.
"""

from __future__ import annotations

from dataclasses import dataclass

PHASE4, PHASE3, CALCULATED, DEFAULT = "phase4", "phase3", "calculated", "default"
SOURCES = (PHASE4, PHASE3, CALCULATED, DEFAULT)
FEATURE_VERSION = "v1_baseline_25"


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: where its value comes from, what it falls back to, what a sane value is."""

    index: int
    name: str
    chain: tuple[str, ...]  # source tags in priority order, the default last
    origin: str  # where each tag's value comes from, for the data dictionary
    default: float
    low: float
    high: float
    constant_check: bool
    drift_check: bool
    allowed: tuple[float, ...] = ()  # a set of valid values instead of [low, high]

    @property
    def has_phase4(self) -> bool:
        return PHASE4 in self.chain

    @property
    def range_text(self) -> str:
        if self.allowed:
            return "{" + ", ".join(_number(v) for v in self.allowed) + "}"
        return f"[{_number(self.low)}, {_number(self.high)}]"


def _number(value: float) -> str:
    return f"{value:g}"


def _f(
    index: int,
    name: str,
    chain: tuple[str, ...],
    origin: str,
    default: float,
    valid: tuple[float, float] | tuple[float, ...],
    checks: str = "",
) -> FeatureSpec:
    """`valid` is (low, high), or the set of allowed values when it has three or more."""
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
)  # fmt: skip

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURE_CONTRACT)
FEATURE_COUNT = len(FEATURE_CONTRACT)
BY_NAME: dict[str, FeatureSpec] = {f.name: f for f in FEATURE_CONTRACT}
PHASE4_FEATURES: tuple[int, ...] = tuple(f.index for f in FEATURE_CONTRACT if f.has_phase4)
# SPEC 12: is_quality_ready needs none of these tagged 'default'.
CORE_FEATURES: tuple[int, ...] = (0, 1, 2, 3)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def data_dictionary() -> str:
    """The Markdown data dictionary of the feature vector (docs/features.md)."""
    lines = [
        "# Features of `nba_predictions.ml_feature_store_v2` (feature_version "
        f"`{FEATURE_VERSION}`)",
        "",
        "Generated from `quality/feature_contract.py` by "
        "`python -m quality.feature_contract > docs/features.md`; do not edit by hand "
        "(a test fails when this file is out of date).",
        "",
        "`features[i]` takes the first available source of its chain and `feature_sources[i]` "
        "records which one. The range is inclusive; a value outside it (NaN and infinity "
        "included) makes P5 FAIL and keeps the previous partition. The constant, default-share "
        "and drift checks WARN (SPEC 12); results land in `nba_predictions.ml_feature_checks`.",
        "",
        "| # | name | source chain | from | default | valid range | constant check | drift check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in FEATURE_CONTRACT:
        lines.append(
            f"| {f.index} | {f.name} | {' → '.join(f.chain)} | {f.origin} | "
            f"{_number(f.default)} | {f.range_text} | {_yes(f.constant_check)} | "
            f"{_yes(f.drift_check)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(data_dictionary(), end="")
