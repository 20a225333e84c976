"""Where a season's backfill spends its time, step by step, without Prefect.

`backfill_profile(url, first, last)` runs the backfill's steps in this process in the flow's
order (one read and one fingerprint pass per season, then chunk by chunk) and times each, wall
and CPU: Phase 3 reads, SPEC 14 fingerprints, the freshness choice of dates, slate facts, each
processor's compute, the per-date lines, SPEC 12 feature checks and the writes. The flow's wall
time minus their sum is the Prefect overhead (tasks, threads, API calls).
`python -m benchmarks.backfill_profile` prints it for the real season in the warehouse that
PHASE4_WAREHOUSE names.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any, TypeVar

import polars as pl

from features import registry
from flows.phase4_backfill import seasons_of
from tasks import backfill, feature_checks
from tasks.freshness import chunk_fingerprints, dates_to_build_task
from tasks.io import ensure_tables, read_phase3_frames
from tasks.warehouse import open_warehouse

T = TypeVar("T")
SEASON = (date(2023, 10, 24), date(2024, 4, 7))


def backfill_profile(url: str, first: date, last: date) -> dict[str, float]:
    """Seconds per step, summed over the chunks of first..last (every date rebuilt)."""
    spent: dict[str, float] = defaultdict(float)

    def timed(step: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        clock, cpu = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        spent[step] += time.perf_counter() - clock
        spent[f"{step} (cpu)"] += time.process_time() - cpu
        return out

    warehouse = open_warehouse(url)
    ensure_tables(warehouse)
    compute, check_chunk, facts_of = (
        registry.compute,
        feature_checks.check_chunk,
        backfill.slate_facts_of,
    )

    def timed_compute(entry: registry.Processor, *args: Any, **kwargs: Any) -> Any:
        return timed(f"compute {entry.id}", compute, entry, *args, **kwargs)

    registry.compute = timed_compute
    feature_checks.check_chunk = partial(timed, "feature checks", check_chunk)
    backfill.slate_facts_of = partial(timed, "slate facts", facts_of)
    try:
        for season in seasons_of(backfill.date_chunks(first, last)):
            frames = timed(
                "read phase 3", read_phase3_frames, warehouse, season[0][0], season[-1][-1]
            )
            every = [d for dates in season for d in dates]
            season_prints = timed("fingerprints", chunk_fingerprints, frames, every)
            for dates in season:
                prints = season_prints.filter(pl.col("analysis_date").is_in(dates))
                timed("dates to build", dates_to_build_task.fn, url, prints, dates, [])
                chunk = timed("build (all)", backfill.build_chunk, frames, dates, [], "b", prints)
                timed("write (all)", backfill.write_chunk_task.fn, url, chunk)
    finally:
        registry.compute = compute
        feature_checks.check_chunk = check_chunk
        backfill.slate_facts_of = facts_of
    for cpu in ("", " (cpu)"):
        ids = [entry.id for entry in registry.PROCESSORS.values()]
        spent[f"compute (all){cpu}"] = sum(spent[f"compute {p}{cpu}"] for p in ids)
        spent[f"lines{cpu}"] = (
            spent[f"build (all){cpu}"] - spent[f"compute (all){cpu}"] - spent[f"slate facts{cpu}"]
        )
        spent[f"writes{cpu}"] = spent[f"write (all){cpu}"] - spent[f"feature checks{cpu}"]
    return dict(spent)


if __name__ == "__main__":
    from tasks.warehouse import warehouse_url

    spent = backfill_profile(warehouse_url(), *SEASON)
    print(f"{'step':18} {'wall':>8} {'cpu':>8}")
    for step, seconds in spent.items():
        if not step.endswith(" (cpu)"):
            print(f"{step:18} {seconds:7.2f}s {spent[step + ' (cpu)']:7.2f}s")
