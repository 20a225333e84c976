"""The nightly Phase 4 flow: five processors as concurrent tasks ordered by futures.

P1 and P2 start together; P3 waits for P1 and P2, P4 for P2; P5 runs last even when some of
them failed. A processor left out of `processors` is replaced by a read of its partition for D.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run
from prefect.states import Failed, State

from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_DAILY_CACHE,
    PLAYER_GAME_SUMMARY,
    PLAYER_SHOT_ZONE_ANALYSIS,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_DEFENSE_ZONE_ANALYSIS,
    TEAM_OFFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
)
from tasks.io import ensure_tables, read_output_task, read_phase3_task, run_context_task
from tasks.processors import (
    ml_feature_store_v2_task,
    player_composite_factors_task,
    player_daily_cache_task,
    player_shot_zone_analysis_task,
    team_defense_zone_analysis_task,
)
from tasks.report import RunReport, record_run_task, run_lines
from tasks.warehouse import exclusive, open_warehouse, warehouse_url

ProcessorName = Literal[
    "team_defense_zone_analysis",
    "player_shot_zone_analysis",
    "player_composite_factors",
    "player_daily_cache",
    "ml_feature_store_v2",
]
P1, P2, P3, P4, P5 = (
    TEAM_DEFENSE_ZONE_ANALYSIS.name,
    PLAYER_SHOT_ZONE_ANALYSIS.name,
    PLAYER_COMPOSITE_FACTORS.name,
    PLAYER_DAILY_CACHE.name,
    ML_FEATURE_STORE_V2.name,
)
ALL_PROCESSORS: tuple[str, ...] = (P1, P2, P3, P4, P5)
UPSTREAM: dict[str, tuple[str, ...]] = {
    P1: (),
    P2: (),
    P3: (P1, P2),
    P4: (P2,),
    P5: (P1, P2, P3, P4),
}
PHASE3_INPUTS: dict[str, tuple[str, ...]] = {
    P1: (TEAM_DEFENSE_GAME_SUMMARY.name,),
    P2: (PLAYER_GAME_SUMMARY.name,),
    P3: (UPCOMING_PLAYER_GAME_CONTEXT.name,),
    P4: (
        PLAYER_GAME_SUMMARY.name,
        TEAM_OFFENSE_GAME_SUMMARY.name,
        UPCOMING_PLAYER_GAME_CONTEXT.name,
    ),
    P5: (
        PLAYER_GAME_SUMMARY.name,
        TEAM_DEFENSE_GAME_SUMMARY.name,
        TEAM_OFFENSE_GAME_SUMMARY.name,
        UPCOMING_PLAYER_GAME_CONTEXT.name,
        UPCOMING_TEAM_GAME_CONTEXT.name,
    ),
}
SLATE_TIME_ZONE = ZoneInfo("America/New_York")
SLATE_LOCK_SECONDS = 2 * 60 * 60


def next_slate_date(now: datetime | None = None) -> date:
    """The nightly run at 23:00 New York prepares the next calendar day's games."""
    current = (now or datetime.now(SLATE_TIME_ZONE)).astimezone(SLATE_TIME_ZONE)
    return current.date() + timedelta(days=1)


def select_processors(processors: list[str] | None) -> list[str]:
    if not processors:
        return list(ALL_PROCESSORS)
    unknown = sorted(set(processors) - set(ALL_PROCESSORS))
    if unknown:
        raise ValueError(
            f"unknown processor(s) {', '.join(unknown)}; choose from {', '.join(ALL_PROCESSORS)}"
        )
    return [p for p in ALL_PROCESSORS if p in processors]


def run_name() -> str:
    """Scheduled runs carry no date: name them after the slate they will build."""
    day = flow_run.parameters.get("analysis_date") or next_slate_date()
    return f"phase4-{day}"


@flow(
    name="phase4-precompute",
    description="Build the five Phase 4 tables for one slate date from the Phase 3 tables.",
    flow_run_name=run_name,
)
def phase4_precompute(
    analysis_date: date | None = None,
    processors: list[ProcessorName] | None = None,
) -> RunReport | State:
    """Phase 4 precompute for one slate date.

    Args:
        analysis_date: The slate date D. Empty: the next day in America/New_York.
        processors: Output tables to build. Empty: all five, in dependency order.
    """
    started = time.monotonic()
    day = analysis_date or next_slate_date()
    selected = select_processors(list(processors) if processors else None)
    url = warehouse_url()
    ensure_tables(open_warehouse(url))
    context = run_context_task(url, day)

    # One run per slate date at a time: a second run waits rather than interleave writes.
    with exclusive(open_warehouse(url), f"phase4-slate-{day.isoformat()}", SLATE_LOCK_SECONDS):
        needed = {t for p in selected for t in PHASE3_INPUTS[p]}
        reads = {t: read_phase3_task.submit(url, t, day) for t in sorted(needed)}
        runs: dict[str, PrefectFuture] = {}

        def upstream(table: str) -> PrefectFuture:
            return runs[table] if table in runs else read_output_task.submit(url, table, day)

        if P1 in selected:
            runs[P1] = team_defense_zone_analysis_task.submit(
                reads[TEAM_DEFENSE_GAME_SUMMARY.name], context, url
            )
        if P2 in selected:
            runs[P2] = player_shot_zone_analysis_task.submit(
                reads[PLAYER_GAME_SUMMARY.name], context, url
            )
        if P3 in selected:
            runs[P3] = player_composite_factors_task.submit(
                reads[UPCOMING_PLAYER_GAME_CONTEXT.name], upstream(P2), upstream(P1), context, url
            )
        if P4 in selected:
            runs[P4] = player_daily_cache_task.submit(
                reads[PLAYER_GAME_SUMMARY.name],
                reads[TEAM_OFFENSE_GAME_SUMMARY.name],
                reads[UPCOMING_PLAYER_GAME_CONTEXT.name],
                upstream(P2),
                context,
                url,
            )
        if P5 in selected:
            runs[P5] = ml_feature_store_v2_task.submit(
                *(reads[t] for t in PHASE3_INPUTS[P5]),
                *(allow_failure(upstream(p)) for p in UPSTREAM[P5]),
                context,
                url,
            )
        wait(list(runs.values()))

    report = RunReport(
        str(flow_run.id or "local"),
        day,
        run_lines(
            str(flow_run.id or "local"),
            context,
            runs,
            {p: [reads[t] for t in PHASE3_INPUTS[p]] for p in runs},
            UPSTREAM,
        ),
        time.monotonic() - started,
    )
    record_run_task(url, report)
    if report.failed:
        failed = [line.processor for line in report.lines if line.status == "FAIL"]
        return Failed(message=f"Phase 4 for {day} failed: {', '.join(failed)}", data=report)
    return report
