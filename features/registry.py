"""The processor graph, declared once: what each processor reads, computes and is allowed.

The nightly flow, the backfill, the success criteria and the in-memory chain below all read
this table. A compute function is called by keyword: `calendar`, `processed_at`, one keyword
per Phase 3 input (the `Phase3Frames` field) and one per Phase 4 upstream. Pure data, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

import polars as pl

from features.ml_feature_store_v2 import ml_feature_store_v2
from features.player_composite_factors import player_composite_factors
from features.player_daily_cache import player_daily_cache
from features.player_shot_zone_analysis import player_shot_zone_analysis
from features.team_defense_zone_analysis import team_defense_zone_analysis
from nba_calendar import Calendars, calendar_frame, slate_calendars
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PHASE3_KEYWORDS,
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_DAILY_CACHE,
    PLAYER_SHOT_ZONE_ANALYSIS,
    TEAM_DEFENSE_ZONE_ANALYSIS,
    Phase3Frames,
    TableSchema,
)

# What the calendar and the slate facts are derived from (SPEC sections 0 and 9).
# SPEC 11 compares the schedule with every game summary table, so all five are read.
FACT_INPUTS: dict[str, str] = dict(PHASE3_KEYWORDS)


@dataclass(frozen=True)
class Processor:
    """One Phase 4 processor: its table, its formula and its place in the graph."""

    id: str
    schema: TableSchema
    compute: Callable[..., pl.DataFrame]
    phase3: Mapping[str, str]  # keyword -> Phase 3 table
    upstream: Mapping[str, str]  # keyword -> upstream processor's table
    time_limit_minutes: float  # SPEC section 9: WARN past it, stopped (FAIL) at twice it
    runs_if_upstream_failed: bool = False  # P5: a failed upstream arrives as None
    feature_checked: bool = False  # P5: SPEC 12 checks gate the write (quality/feature_checks)

    @property
    def table(self) -> str:
        return self.schema.name

    @property
    def timeout_seconds(self) -> float:
        return 2 * self.time_limit_minutes * 60


def _phase3(*keywords: str) -> dict[str, str]:
    return {k: PHASE3_KEYWORDS[k] for k in keywords}


_DECLARED = (
    Processor(
        "P1",
        TEAM_DEFENSE_ZONE_ANALYSIS,
        team_defense_zone_analysis,
        _phase3("team_defense"),
        {},
        5,
    ),
    Processor(
        "P2",
        PLAYER_SHOT_ZONE_ANALYSIS,
        player_shot_zone_analysis,
        _phase3("player_games"),
        {},
        15,
    ),
    Processor(
        "P3",
        PLAYER_COMPOSITE_FACTORS,
        player_composite_factors,
        _phase3("player_context"),
        {
            "shot_zones": PLAYER_SHOT_ZONE_ANALYSIS.name,
            "team_defense_zones": TEAM_DEFENSE_ZONE_ANALYSIS.name,
        },
        20,
    ),
    Processor(
        "P4",
        PLAYER_DAILY_CACHE,
        player_daily_cache,
        _phase3("player_games", "team_offense", "player_context"),
        {"shot_zones": PLAYER_SHOT_ZONE_ANALYSIS.name},
        15,
    ),
    Processor(
        "P5",
        ML_FEATURE_STORE_V2,
        ml_feature_store_v2,
        _phase3(*PHASE3_KEYWORDS),
        {
            "team_defense_zones": TEAM_DEFENSE_ZONE_ANALYSIS.name,
            "shot_zones": PLAYER_SHOT_ZONE_ANALYSIS.name,
            "composite_factors": PLAYER_COMPOSITE_FACTORS.name,
            "daily_cache": PLAYER_DAILY_CACHE.name,
        },
        5,
        runs_if_upstream_failed=True,
        feature_checked=True,
    ),
)


def topological_order(processors: Iterable[Processor]) -> list[Processor]:
    """Upstreams first; ties keep declaration order. A cycle or unknown upstream is a bug."""
    pending = list(processors)
    names = {p.table for p in pending}
    ordered: list[Processor] = []
    while pending:
        done = {p.table for p in ordered}
        ready = [p for p in pending if set(p.upstream.values()) <= done]
        if not ready:
            stuck = sorted(u for p in pending for u in p.upstream.values() if u not in done)
            raise ValueError(f"processor graph: {stuck} unknown or in a cycle (known: {names})")
        ordered.append(ready[0])
        pending.remove(ready[0])
    return ordered


# Table name -> processor, in run order. Tests override an entry with monkeypatch.setitem.
PROCESSORS: dict[str, Processor] = {p.table: p for p in topological_order(_DECLARED)}

# The values the flow's `processors` parameter accepts (the UI's multi-select).
if TYPE_CHECKING:
    ProcessorName = str
else:
    ProcessorName = Literal[tuple(PROCESSORS)]


def processor(name: str) -> Processor:
    """Look a processor up by id ('P3', 'p3') or table name ('player_composite_factors')."""
    for entry in PROCESSORS.values():
        if name in (entry.id, entry.table) or name.upper() == entry.id:
            return entry
    raise KeyError(
        f"unknown processor {name!r}; choose from "
        + ", ".join(f"{p.id} ({p.table})" for p in PROCESSORS.values())
    )


def select(names: Iterable[str] | None) -> list[Processor]:
    """The processors named (ids or tables), in run order; none named means all of them."""
    wanted = list(names or ())
    if not wanted:
        return list(PROCESSORS.values())
    unknown = []
    chosen = set()
    for name in wanted:
        try:
            chosen.add(processor(name).table)
        except KeyError:
            unknown.append(name)
    if unknown:
        raise ValueError(
            f"unknown processor(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(PROCESSORS)}"
        )
    return [p for p in PROCESSORS.values() if p.table in chosen]


def phase3_tables(processors: Iterable[Processor]) -> set[str]:
    """Every Phase 3 table a run of these processors reads, the slate facts' included."""
    return {t for p in processors for t in p.phase3.values()} | set(FACT_INPUTS.values())


def phase3_inputs(entry: Processor, phase3: Phase3Frames) -> dict[str, pl.DataFrame]:
    return {keyword: getattr(phase3, keyword) for keyword in entry.phase3}


def compute(
    entry: Processor,
    calendar: Calendars,
    processed_at: datetime,
    phase3: Mapping[str, pl.DataFrame],
    upstream: Mapping[str, pl.DataFrame | None],
) -> pl.DataFrame:
    """Run one processor for every date of `calendar` in one pass (the nightly run is a set
    of one date); `phase3` and `upstream` are keyed by the entry's keywords.

    An upstream that did not run is None (P5 falls back per feature; the flow never starts
    the others without their upstreams).
    """
    inputs = {
        **{k: phase3[k] for k in entry.phase3},
        **{k: upstream.get(k) for k in entry.upstream},
    }
    return entry.compute(calendar=calendar, processed_at=processed_at, **inputs)


def calendars_for(phase3: Phase3Frames, dates: date | Iterable[date]) -> pl.DataFrame:
    """The calendar frame of the dates (one row each), what `compute` takes."""
    days = [dates] if isinstance(dates, date) else dates
    return calendar_frame(slate_calendars(days, phase3.team_offense, phase3.team_context))


def build_outputs(
    phase3: Phase3Frames,
    dates: date | Iterable[date],
    processed_at: datetime,
    processors: Iterable[str] | None = None,
    upstream: Mapping[str, pl.DataFrame] | None = None,
) -> dict[str, pl.DataFrame]:
    """The output frames for one date or many, chained in memory, every date in one pass;
    `upstream` supplies unselected processors' partitions of the same dates."""
    calendar = calendars_for(phase3, dates)
    selected = select(processors)
    outputs: dict[str, pl.DataFrame] = dict(upstream or {})
    # Each processor starts as soon as its upstreams are done (P1 with P2, P3 with P4), as
    # in the nightly flow: Polars releases the GIL, so two processors use both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        running: dict[str, Future[pl.DataFrame]] = {}
        for entry in selected:  # run order: every upstream is submitted before its dependents
            running[entry.table] = pool.submit(
                _compute_after, entry, calendar, processed_at, phase3, outputs, running
            )
        for table, future in running.items():
            outputs[table] = future.result()
    return {p.table: outputs[p.table] for p in selected}


def _compute_after(
    entry: Processor,
    calendar: pl.DataFrame,
    processed_at: datetime,
    phase3: Phase3Frames,
    given: Mapping[str, pl.DataFrame],
    running: Mapping[str, Future[pl.DataFrame]],
) -> pl.DataFrame:
    """`compute` once the entry's upstreams being built are done."""
    ups = {
        k: running[table].result() if table in running else given.get(table)
        for k, table in entry.upstream.items()
    }
    return compute(entry, calendar, processed_at, phase3_inputs(entry, phase3), ups)
