"""The processor graph, declared once: what each processor reads, computes and is allowed.

The run core (features/core.py), the flows, the success criteria and the CLI all read this
table. A compute function is called by keyword: `calendar`, `processed_at`, one keyword
per Phase 3 input (the `Phase3Frames` field) and one per Phase 4 upstream. Pure data, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import polars as pl

from features.ml_feature_store_v2 import ml_feature_store_v2, slate_inputs
from features.player_composite_factors import player_composite_factors
from features.player_daily_cache import player_daily_cache
from features.player_shot_zone_analysis import player_shot_zone_analysis
from features.team_defense_zone_analysis import team_defense_zone_analysis
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

# What the calendar and the slate facts are derived from (SPEC sections 0 and 9); SPEC 11
# compares the schedule with the game summary tables a processor reads, read for it anyway.
FACT_INPUTS: dict[str, str] = {
    k: PHASE3_KEYWORDS[k] for k in ("team_offense", "team_context", "player_context")
}


@dataclass(frozen=True, kw_only=True)
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
    # P5: the part of `compute` that reads Phase 3 alone (by keyword, with `calendar`); the
    # run core may start it beside the upstreams and pass its frame as `slate_inputs`.
    slate_inputs: Callable[..., pl.DataFrame] | None = None

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
        id="P1",
        schema=TEAM_DEFENSE_ZONE_ANALYSIS,
        compute=team_defense_zone_analysis,
        phase3=_phase3("team_defense"),
        upstream={},
        time_limit_minutes=5,
    ),
    Processor(
        id="P2",
        schema=PLAYER_SHOT_ZONE_ANALYSIS,
        compute=player_shot_zone_analysis,
        phase3=_phase3("player_games"),
        upstream={},
        time_limit_minutes=15,
    ),
    Processor(
        id="P3",
        schema=PLAYER_COMPOSITE_FACTORS,
        compute=player_composite_factors,
        phase3=_phase3("player_context"),
        upstream={
            "shot_zones": PLAYER_SHOT_ZONE_ANALYSIS.name,
            "team_defense_zones": TEAM_DEFENSE_ZONE_ANALYSIS.name,
        },
        time_limit_minutes=20,
    ),
    Processor(
        id="P4",
        schema=PLAYER_DAILY_CACHE,
        compute=player_daily_cache,
        phase3=_phase3("player_games", "team_offense", "player_context"),
        upstream={"shot_zones": PLAYER_SHOT_ZONE_ANALYSIS.name},
        time_limit_minutes=15,
    ),
    Processor(
        id="P5",
        schema=ML_FEATURE_STORE_V2,
        compute=ml_feature_store_v2,
        phase3=_phase3(*PHASE3_KEYWORDS),
        upstream={
            "team_defense_zones": TEAM_DEFENSE_ZONE_ANALYSIS.name,
            "shot_zones": PLAYER_SHOT_ZONE_ANALYSIS.name,
            "composite_factors": PLAYER_COMPOSITE_FACTORS.name,
            "daily_cache": PLAYER_DAILY_CACHE.name,
        },
        time_limit_minutes=5,
        runs_if_upstream_failed=True,
        feature_checked=True,
        slate_inputs=slate_inputs,
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

CHOICES = "choose from " + ", ".join(f"{p.id} ({p.table})" for p in PROCESSORS.values())

# The values the flow's `processors` parameter accepts (the UI's multi-select).
if TYPE_CHECKING:
    ProcessorName = str
else:
    ProcessorName = Literal[tuple(PROCESSORS)]


def processor(name: str) -> Processor:
    """Look a processor up by id ('P3', 'p3') or table name ('player_composite_factors',
    'nba_precompute.player_composite_factors'), in any case, as the warehouses compare names."""
    for entry in PROCESSORS.values():
        if name.lower() in (entry.id.lower(), entry.table, entry.schema.full_name):
            return entry
    raise KeyError(f"unknown processor {name!r}; {CHOICES}")


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
        raise ValueError(f"unknown processor(s) {', '.join(sorted(unknown))}; {CHOICES}")
    return [p for p in PROCESSORS.values() if p.table in chosen]


def upstream_closure(selected: Sequence[Processor]) -> list[Processor]:
    """The processors upstream of the selection and not in it, in run order: what SPEC 17
    judges before reading their partitions (an upstream's state depends on its own)."""
    chosen = {p.table for p in selected}
    found = {u for p in selected for u in p.upstream.values()} - chosen
    for entry in reversed(PROCESSORS.values()):  # run order: upstreams come later
        if entry.table in found:
            found |= set(entry.upstream.values()) - chosen
    return [p for p in PROCESSORS.values() if p.table in found]


def phase3_tables(processors: Iterable[Processor]) -> set[str]:
    """The Phase 3 tables a run of these processors reads: their own, those of the slate
    facts, and those of the unselected upstreams whose freshness SPEC 17 judges."""
    chosen = list(processors)
    entries = [*chosen, *upstream_closure(chosen)]
    return {t for p in entries for t in p.phase3.values()} | set(FACT_INPUTS.values())


def phase3_inputs(entry: Processor, phase3: Phase3Frames) -> dict[str, pl.DataFrame]:
    return {keyword: getattr(phase3, keyword) for keyword in entry.phase3}
