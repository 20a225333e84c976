"""Where a season's backfill spends its time, step by step, without Prefect.

`backfill_profile(url, first, last)` runs the backfill's steps in this process in the flow's
order (one read and one fingerprint pass per season, then chunk by chunk through the run core)
and times each, wall and CPU: Phase 3 reads, SPEC 14 fingerprints, the freshness choice of
dates, the stored inputs (SPEC 17, the drift reference), slate facts, each processor's build
(its lines included; P5's SPEC 12 checks also apart), the commit, the checkpoint when the file
closes and the closing report's reads. The flow's wall time minus their sum is the Prefect
overhead (tasks, threads, API calls).
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

from features import core, registry
from flows.phase4_backfill import seasons_of
from quality.freshness import input_fingerprints
from quality.report import report_markdown
from tasks.backfill import dates_to_build_task, write_chunk_task
from tasks.freshness import date_chunks, run_inputs
from tasks.io import ensure_tables
from tasks.readers import read_phase3_frames
from tasks.report_reads import read_report_frames
from tasks.warehouse import Warehouse, open_warehouse

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
    selected = list(registry.PROCESSORS.values())
    build, check_dates, facts_of = core.build, core.check_dates, core.slate_facts_of

    def timed_build(entry: registry.Processor, *args: Any, **kwargs: Any) -> Any:
        return timed(f"build {entry.id}", build, entry, *args, **kwargs)

    core.build = timed_build
    core.check_dates = partial(timed, "feature checks", check_dates)
    core.slate_facts_of = partial(timed, "slate facts", facts_of)
    held = warehouse.held_open()  # as the flow does: one open file for every chunk
    held.__enter__()
    try:
        prints = _chunks(url, warehouse, first, last, selected, timed)
    finally:
        core.build, core.check_dates, core.slate_facts_of = build, check_dates, facts_of
        timed("close (checkpoint)", held.__exit__, None, None, None)
    with warehouse.held_open():
        frames = timed("report reads", read_report_frames, warehouse, first, last, prints)
        timed("report markdown", report_markdown, frames)
    return dict(spent)


def _chunks(
    url: str,
    warehouse: Warehouse,
    first: date,
    last: date,
    selected: list[registry.Processor],
    timed: Callable[..., Any],
) -> pl.DataFrame:
    """The flow's steps, one chunk after the other (the flow overlaps two); the fingerprints."""
    hashed, every_p = [], list(registry.PROCESSORS.values())
    for season in seasons_of(date_chunks(first, last)):
        frames = timed("read phase 3", read_phase3_frames, warehouse, season[0][0], season[-1][-1])
        every = [d for dates in season for d in dates]
        season_prints = timed("fingerprints", input_fingerprints, frames.by_table(), every, every_p)
        hashed.append(season_prints)
        for dates in season:
            prints = season_prints.filter(pl.col("analysis_date").is_in(dates))
            timed("dates to build", dates_to_build_task.fn, url, prints, dates, [])
            inputs = timed(
                "stored inputs", run_inputs, warehouse, frames, dates, selected, "b", prints
            )
            built = timed("core (all)", core.run, inputs)
            lines = sorted(
                (line for b in built.values() for line in b.lines),
                key=lambda line: line.analysis_date,
            )
            timed("commit", write_chunk_task.fn, url, list(built.values()), lines)
    return pl.concat(hashed)


if __name__ == "__main__":
    from tasks.warehouse import warehouse_url

    spent = backfill_profile(warehouse_url(), *SEASON)
    print(f"{'step':18} {'wall':>8} {'cpu':>8}")
    for step, seconds in spent.items():
        if not step.endswith(" (cpu)"):
            print(f"{step:18} {seconds:7.2f}s {spent[step + ' (cpu)']:7.2f}s")
