"""The five processors as Prefect tasks: compute in Polars, then replace D's partition.

Each task hands its frame to dependents in memory through its future; a dependent run alone
reads the partition from the warehouse instead (see flows/phase4_precompute.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.common import Phase3Frames, processed_now
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
from quality.success import TIME_LIMIT_MINUTES
from tasks import feature_checks
from tasks.io import TRANSIENT_RETRIES, RunContext, write_partition
from tasks.warehouse import open_warehouse


@dataclass(frozen=True)
class ProcessorResult:
    """What a processor produced for D: its frame for dependents and figures for the report."""

    table: str
    frame: pl.DataFrame
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    notes: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return self.frame.height


async def _run_and_write(
    table: str, context: RunContext, warehouse_url: str, compute: Callable[[datetime], pl.DataFrame]
) -> ProcessorResult:
    """Compute, then write; a task timeout cancels between the two, so nothing is written.

    The work runs in a thread while the task awaits it: that lets Prefect's timeout stop the
    task (a sync task in a worker thread cannot be interrupted).
    """
    started_at, clock = processed_now(), time.perf_counter()
    frame = await asyncio.to_thread(compute, started_at)
    await asyncio.to_thread(
        write_partition,
        open_warehouse(warehouse_url),
        table,
        context.calendar.analysis_date,
        frame,
    )
    duration = time.perf_counter() - clock
    get_run_logger().info(
        "%s: %d rows for %s in %.2fs", table, frame.height, context.calendar.analysis_date, duration
    )
    return ProcessorResult(table, frame, started_at, processed_now(), duration)


def _processor_task(table: str) -> Callable[[Callable[..., Any]], Any]:
    return task(
        name=table,
        cache_policy=NO_CACHE,
        timeout_seconds=TIME_LIMIT_MINUTES[table] * 60 * 2,
        **TRANSIENT_RETRIES,
    )


def upstream_frame(upstream: object) -> pl.DataFrame | None:
    """A dependent receives a result, a frame read from the warehouse, or (P5) a failure."""
    if isinstance(upstream, ProcessorResult):
        return upstream.frame
    if isinstance(upstream, pl.DataFrame):
        return upstream
    return None


@_processor_task(TEAM_DEFENSE_ZONE_ANALYSIS.name)
async def team_defense_zone_analysis_task(
    team_defense: pl.DataFrame, context: RunContext, warehouse_url: str
) -> ProcessorResult:
    return await _run_and_write(
        TEAM_DEFENSE_ZONE_ANALYSIS.name,
        context,
        warehouse_url,
        lambda now: team_defense_zone_analysis(team_defense, context.calendar, now),
    )


@_processor_task(PLAYER_SHOT_ZONE_ANALYSIS.name)
async def player_shot_zone_analysis_task(
    player_games: pl.DataFrame, context: RunContext, warehouse_url: str
) -> ProcessorResult:
    return await _run_and_write(
        PLAYER_SHOT_ZONE_ANALYSIS.name,
        context,
        warehouse_url,
        lambda now: player_shot_zone_analysis(player_games, context.calendar, now),
    )


@_processor_task(PLAYER_COMPOSITE_FACTORS.name)
async def player_composite_factors_task(
    player_context: pl.DataFrame,
    shot_zones: ProcessorResult | pl.DataFrame,
    team_defense_zones: ProcessorResult | pl.DataFrame,
    context: RunContext,
    warehouse_url: str,
) -> ProcessorResult:
    zones, defense = upstream_frame(shot_zones), upstream_frame(team_defense_zones)
    assert zones is not None and defense is not None
    return await _run_and_write(
        PLAYER_COMPOSITE_FACTORS.name,
        context,
        warehouse_url,
        lambda now: player_composite_factors(player_context, zones, defense, context.calendar, now),
    )


@_processor_task(PLAYER_DAILY_CACHE.name)
async def player_daily_cache_task(
    player_games: pl.DataFrame,
    team_offense: pl.DataFrame,
    player_context: pl.DataFrame,
    shot_zones: ProcessorResult | pl.DataFrame,
    context: RunContext,
    warehouse_url: str,
) -> ProcessorResult:
    zones = upstream_frame(shot_zones)
    return await _run_and_write(
        PLAYER_DAILY_CACHE.name,
        context,
        warehouse_url,
        lambda now: player_daily_cache(
            player_games, team_offense, player_context, zones, context.calendar, now
        ),
    )


@_processor_task(ML_FEATURE_STORE_V2.name)
async def ml_feature_store_v2_task(
    player_games: pl.DataFrame,
    team_defense: pl.DataFrame,
    team_offense: pl.DataFrame,
    player_context: pl.DataFrame,
    team_context: pl.DataFrame,
    team_defense_zones: object,
    shot_zones: object,
    composite_factors: object,
    daily_cache: object,
    context: RunContext,
    warehouse_url: str,
) -> ProcessorResult:
    """Runs whatever happened upstream: a failed input arrives as an exception, read as missing."""
    upstream = {
        "team_defense_zones": upstream_frame(team_defense_zones),
        "shot_zones": upstream_frame(shot_zones),
        "composite_factors": upstream_frame(composite_factors),
        "daily_cache": upstream_frame(daily_cache),
    }
    missing = tuple(sorted(name for name, frame in upstream.items() if frame is None))
    phase3 = Phase3Frames(player_games, team_defense, team_offense, player_context, team_context)
    # SPEC 12 between building and writing: a FAIL raises here, so nothing is written.
    checked: list[pl.DataFrame] = []
    run_id = feature_checks.current_run_id()

    def build_and_check(now: datetime) -> pl.DataFrame:
        frame = ml_feature_store_v2(phase3, context.calendar, now, **upstream)
        warehouse = open_warehouse(warehouse_url)
        checked.append(feature_checks.check_partition(warehouse, frame, context.calendar, run_id))
        return frame

    result = await _run_and_write(ML_FEATURE_STORE_V2.name, context, warehouse_url, build_and_check)
    day = context.calendar.analysis_date
    await asyncio.to_thread(
        feature_checks.write_checks, open_warehouse(warehouse_url), day, checked[-1]
    )
    await feature_checks.publish_artifact(checked[-1])
    if missing:
        get_run_logger().warning("ml_feature_store_v2 ran without %s", ", ".join(missing))
    return ProcessorResult(
        result.table,
        result.frame,
        result.started_at,
        result.finished_at,
        result.duration_seconds,
        (
            *(f"upstream missing: {m}" for m in missing),
            *feature_checks.report_notes(checked[-1]),
        ),
    )
