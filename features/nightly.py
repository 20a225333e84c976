"""All five processors for one slate date, chained in memory with no I/O.

The flow runs the same functions as separate tasks; backfills, benchmarks and the
point-in-time tests call this chain directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import polars as pl

from features.common import Phase3Frames, SlateCalendar, slate_calendar
from features.ml_feature_store_v2 import ml_feature_store_v2
from features.player_composite_factors import player_composite_factors
from features.player_daily_cache import player_daily_cache
from features.player_shot_zone_analysis import player_shot_zone_analysis
from features.team_defense_zone_analysis import team_defense_zone_analysis
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_DAILY_CACHE,
    PLAYER_SHOT_ZONE_ANALYSIS,
    TEAM_DEFENSE_ZONE_ANALYSIS,
)


def calendar_for(phase3: Phase3Frames, analysis_date: date) -> SlateCalendar:
    return slate_calendar(analysis_date, phase3.team_offense, phase3.team_context)


def build_outputs(
    phase3: Phase3Frames,
    analysis_date: date,
    processed_at: datetime,
    processors: Iterable[str] | None = None,
    upstream: dict[str, pl.DataFrame] | None = None,
) -> dict[str, pl.DataFrame]:
    """The output frames for D; `upstream` supplies partitions of processors not selected."""
    selected = set(processors) if processors is not None else None
    calendar = calendar_for(phase3, analysis_date)
    outputs: dict[str, pl.DataFrame] = dict(upstream or {})

    def wanted(table: str) -> bool:
        return selected is None or table in selected

    if wanted(TEAM_DEFENSE_ZONE_ANALYSIS.name):
        outputs[TEAM_DEFENSE_ZONE_ANALYSIS.name] = team_defense_zone_analysis(
            phase3.team_defense, calendar, processed_at
        )
    if wanted(PLAYER_SHOT_ZONE_ANALYSIS.name):
        outputs[PLAYER_SHOT_ZONE_ANALYSIS.name] = player_shot_zone_analysis(
            phase3.player_games, calendar, processed_at
        )
    team_zones = outputs.get(TEAM_DEFENSE_ZONE_ANALYSIS.name)
    shot_zones = outputs.get(PLAYER_SHOT_ZONE_ANALYSIS.name)
    if wanted(PLAYER_COMPOSITE_FACTORS.name):
        assert team_zones is not None and shot_zones is not None
        outputs[PLAYER_COMPOSITE_FACTORS.name] = player_composite_factors(
            phase3.player_context, shot_zones, team_zones, calendar, processed_at
        )
    if wanted(PLAYER_DAILY_CACHE.name):
        outputs[PLAYER_DAILY_CACHE.name] = player_daily_cache(
            phase3.player_games,
            phase3.team_offense,
            phase3.player_context,
            shot_zones,
            calendar,
            processed_at,
        )
    if wanted(ML_FEATURE_STORE_V2.name):
        outputs[ML_FEATURE_STORE_V2.name] = ml_feature_store_v2(
            phase3,
            calendar,
            processed_at,
            team_defense_zones=team_zones,
            shot_zones=shot_zones,
            composite_factors=outputs.get(PLAYER_COMPOSITE_FACTORS.name),
            daily_cache=outputs.get(PLAYER_DAILY_CACHE.name),
        )
    if selected is not None:
        return {t: f for t, f in outputs.items() if t in selected}
    return outputs
