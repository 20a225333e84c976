"""The run core: build any set of dates for the selected processors, judge each (date,
processor) line and say what to write. Pure Polars, no I/O.

The nightly flow (a set of one date), every backfill chunk and the bench all come here: the
flow and the backfill submit `build` as one Prefect task per processor, `build_outputs` calls it
in threads. A processor left out of the selection is an input, never an output (SPEC 17): its
stored partitions arrive in `RunInputs.stored`, judged by their state in processor_runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

import polars as pl

from features.common import processed_now
from features.registry import PROCESSORS, Processor, phase3_inputs, select
from nba_calendar import calendar_frame
from quality.feature_checks import CHECKED_COLUMNS, FAIL, check_frames, outcomes
from quality.schemas import ML_FEATURE_STORE_V2, Phase3Frames
from quality.success import (
    RunLine,
    SlateFacts,
    Status,
    evaluate_output,
    output_figures,
    slate_facts_of,
    upstream_not_built,
)

# An unselected upstream's state for D (SPEC 14 as `phase4 status` shows it): these are read
# as stored; MISSING and FAIL mean "not built".
BUILT_STATES = frozenset({"OK", "WARN", "NO_GAMES", "STALE"})
REFERENCE_COLUMNS = CHECKED_COLUMNS
# No stored P5 rows before the dates: made once (an empty frame of P5's schema costs ~2 ms).
NO_REFERENCE = ML_FEATURE_STORE_V2.empty_frame().select(REFERENCE_COLUMNS)


class Waitable(Protocol):
    def result(self) -> Any: ...


@dataclass(frozen=True)
class RunInputs:
    """Everything a run of some dates reads, already read.

    stored: an unselected upstream's rows of the dates, as stored; upstream_states: its state
    per date (OK, WARN, NO_GAMES, STALE, FAIL, MISSING). An upstream in `stored` without states
    counts as current (the in-memory entry point). reference: the stored P5 rows before the
    first date (REFERENCE_COLUMNS), the SPEC 12 drift reference. fingerprints: SPEC 14, per
    (date, table), copied onto the lines.
    """

    phase3: Phase3Frames
    dates: tuple[date, ...]
    run_id: str = "local"
    stored: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    upstream_states: Mapping[str, Mapping[date, str]] = field(default_factory=dict)
    reference: pl.DataFrame | None = None
    fingerprints: Mapping[tuple[date, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """The inputs with what every processor needs derived once: each date's slate facts."""

    inputs: RunInputs
    facts: Mapping[date, SlateFacts]
    calendars: pl.DataFrame  # every date's calendar row (`calendar_frame`), made once
    # A processor's `slate_inputs` for every date of the run, started early (`run`).
    early: Mapping[str, Waitable] = field(default_factory=dict)

    @property
    def dates(self) -> tuple[date, ...]:
        return self.inputs.dates

    def calendar(self, dates: Iterable[date]) -> pl.DataFrame:
        days = set(dates)
        if days == set(self.dates):
            return self.calendars
        return self.calendars.filter(pl.col("analysis_date").is_in(sorted(days)))


def with_history(ctx: Context, earlier: Built) -> Context:
    """The context with an earlier run's written P5 rows in its drift reference, whether or
    not their commit has landed yet (a backfill checks a chunk while the previous one commits)."""
    written = earlier.rows_to_write().select(REFERENCE_COLUMNS)
    stored = ctx.inputs.reference
    if stored is not None:
        stored = stored.filter(~pl.col("game_date").is_in(list(earlier.write_dates)))
        written = pl.concat([stored.cast(written.schema), written])
    return replace(ctx, inputs=replace(ctx.inputs, reference=written))


def prepare(inputs: RunInputs) -> Context:
    days = tuple(sorted(set(inputs.dates)))
    facts = slate_facts_of(days, inputs.phase3)
    calendars = calendar_frame([facts[d].calendar for d in days])
    return Context(replace(inputs, dates=days), facts, calendars)


@dataclass(frozen=True, kw_only=True)
class Built:
    """One processor over the run's dates: every row built (what dependents read), a line per
    date, and the partitions to replace (dates whose line allows a write)."""

    table: str
    frame: pl.DataFrame
    lines: tuple[RunLine, ...]
    write_dates: tuple[date, ...]
    checks: pl.DataFrame | None = None  # P5: ml_feature_checks rows of write_dates

    def rows_to_write(self) -> pl.DataFrame:
        column = PROCESSORS[self.table].schema.date_column
        return self.frame.filter(pl.col(column).is_in(list(self.write_dates)))


def _upstream_gaps(
    entry: Processor, ctx: Context, ran: Mapping[str, Built | None]
) -> tuple[dict[str, pl.DataFrame | None], dict[date, list[str]], dict[date, list[str]]]:
    """The entry's upstream frames by keyword, and per date the upstream tables not built for
    it (its line MISSING or FAIL, in this run or stored: SPEC 15 and 17) and those STALE. A date
    without a slate has neither: nothing is built on it, so the processor judges it alone
    (NO_GAMES, SPEC 1 and 9, or SPEC 11's FAIL when games are scheduled without a slate)."""
    frames: dict[str, pl.DataFrame | None] = {}
    missing: dict[date, list[str]] = {d: [] for d in ctx.dates}
    stale: dict[date, list[str]] = {d: [] for d in ctx.dates}
    for keyword, table in entry.upstream.items():
        if table in ran:  # its lines of this run: a FAIL line is not built, rows or not
            built = ran[table]
            frames[keyword] = None if built is None else built.frame
            states: Mapping[date, str] = (
                {x.analysis_date: x.status for x in built.lines} if built else {}
            )
        else:
            frames[keyword] = ctx.inputs.stored.get(table)
            given = ctx.inputs.upstream_states.get(table)
            current = "OK" if frames[keyword] is not None else "MISSING"
            states = given if given is not None else dict.fromkeys(ctx.dates, current)
        for day in ctx.dates:
            state = states.get(day, "MISSING")
            if not ctx.facts[day].slate_players:  # no slate: nothing built on it (SPEC 1, 9)
                continue
            if state not in BUILT_STATES:
                missing[day].append(table)
            elif state == "STALE":
                stale[day].append(table)
    return frames, missing, stale


def build(
    entry: Processor,
    ctx: Context,
    ran: Mapping[str, Built | None],
    processed_at: datetime | None = None,
) -> Built:
    """Compute one processor for every date of the run in one pass and judge each date.

    `ran`: the upstreams built in this run (None: it errored); the others come from
    `ctx.inputs.stored`. A date whose upstream is not built FAILs for P3/P4; P5 builds it with
    that upstream as failed and WARNs (SPEC 8, 17). A FAIL line writes nothing: a partition is
    never replaced by rows its own checks rejected (SPEC 9, 11 as SPEC 12 does for P5's).
    """
    started, clock = processed_now(), time.perf_counter()
    frames, missing, stale = _upstream_gaps(entry, ctx, ran)
    groups: dict[tuple[str, ...], list[date]] = {}
    for day in ctx.dates:
        if entry.runs_if_upstream_failed or not missing[day]:
            groups.setdefault(tuple(missing[day]), []).append(day)
    parts = []
    for absent, days in groups.items():  # one pass per pattern of absent upstreams (usually 1)
        given = {k: None if t in absent else frames[k] for k, t in entry.upstream.items()}
        early = ctx.early.get(entry.table) if len(days) == len(ctx.dates) else None
        if early is not None:
            given["slate_inputs"] = early.result()
        parts.append(
            entry.compute(
                calendar=ctx.calendar(days),
                processed_at=processed_at or started,
                **phase3_inputs(entry, ctx.inputs.phase3),
                **given,
            )
        )
    column = entry.schema.date_column
    frame = (
        pl.concat(parts) if len(parts) > 1 else parts[0] if parts else entry.schema.empty_frame()
    )
    share = (time.perf_counter() - clock) / len(ctx.dates)
    figures = output_figures(entry, frame, column)
    finished = processed_now()
    lines = []
    for day in ctx.dates:
        notes = [f"upstream {t} not built for {day}" for t in missing[day]]
        notes += [f"upstream {t} stale for {day}" for t in stale[day]]
        made, avg_quality = figures.get(day, (0, None))  # 0 on a date not computed
        if missing[day] and not entry.runs_if_upstream_failed:
            status, message = upstream_not_built(entry, ctx.facts[day], "; ".join(notes))
        else:
            status, message = evaluate_output(entry, ctx.facts[day], made, avg_quality, share)
            status, message = _with_notes(status, message, notes)
        rows = None if status == "FAIL" else made  # a FAIL never writes (as in SPEC 12, 17)
        if status == "FAIL" and made:
            message += f"; {made} rows built, not written (the partition stays as it was)"
        lines.append(
            RunLine(
                run_id=ctx.inputs.run_id,
                processor=entry.table,
                analysis_date=day,
                status=status,
                rows=rows,
                duration_seconds=share,
                started_at=started,
                finished_at=finished,
                message=message,
                input_fingerprint=ctx.inputs.fingerprints.get((day, entry.table)),
            )
        )
    written = tuple(line.analysis_date for line in lines if line.rows is not None)
    built = Built(table=entry.table, frame=frame, lines=tuple(lines), write_dates=written)
    return feature_checked(built, ctx) if entry.feature_checked else built


def _with_notes(status: Status, message: str, notes: Sequence[str]) -> tuple[Status, str]:
    """Notes make an OK line WARN and go after its message."""
    if not notes:
        return status, message
    return ("WARN" if status == "OK" else status), "; ".join([message, *notes])


def feature_checked(built: Built, ctx: Context) -> Built:
    """SPEC 12 on P5's dates: a FAIL keeps the date's previous partition, a WARN is noted."""
    history = NO_REFERENCE if ctx.inputs.reference is None else ctx.inputs.reference
    checks, outcomes = check_dates(
        built.frame, built.write_dates, history, ctx.inputs.run_id, ctx.facts
    )
    lines = []
    for line in built.lines:
        if line.analysis_date not in outcomes:
            lines.append(line)
            continue
        status, message = outcomes[line.analysis_date]
        if status == FAIL:
            lines.append(replace(line, status="FAIL", rows=None, message=message))
        elif status == "WARN":
            worse: Status = "WARN" if line.status == "OK" else line.status
            lines.append(replace(line, status=worse, message=f"{line.message}; {message}"))
        else:
            lines.append(line)
    written = tuple(line.analysis_date for line in lines if line.rows is not None)
    return replace(built, lines=tuple(lines), write_dates=written, checks=checks)


def check_dates(
    p5: pl.DataFrame,
    dates: Sequence[date],
    history: pl.DataFrame,
    run_id: str,
    facts: Mapping[date, SlateFacts] | None = None,
) -> tuple[pl.DataFrame, dict[date, tuple[str, str]]]:
    """SPEC 12 for every date of `dates` with P5 rows, each as the nightly run checks D, in one
    pass (`check_frames`).

    A date's drift reference is `history` (stored P5 rows before the dates) plus the earlier
    dates here that passed (they are written with it). Returns the checks of the dates that
    passed and every checked date's worst status and message.
    """
    rows = p5.filter(pl.col("game_date").is_in(list(dates)))
    days = rows["game_date"].unique().to_list()
    if facts:
        early = {d: facts[d].is_early_season for d in days}
    else:
        flags = rows.group_by("game_date").agg(pl.col("early_season_flag").any())
        early = dict(flags.iter_rows())
    checks = check_frames(rows, history, early, run_id)
    judged = outcomes(checks)
    passed = [d for d, (status, _) in judged.items() if status != FAIL]
    return checks.filter(pl.col("game_date").is_in(passed)), judged


F = TypeVar("F", bound=Waitable)


def schedule(
    selected: Sequence[Processor], submit: Callable[[Processor, dict[str, F]], F]
) -> dict[str, F]:
    """Submit every selected processor in run order with the futures of its selected
    upstreams: each starts when they are done (P1 with P2, P3 with P4, P5 last). The one
    scheduler of the graph: threads here, Prefect tasks in the flows."""
    futures: dict[str, F] = {}
    for entry in selected:
        futures[entry.table] = submit(
            entry, {t: futures[t] for t in entry.upstream.values() if t in futures}
        )
    return futures


def run(
    inputs: RunInputs,
    processors: Iterable[str] | None = None,
    processed_at: datetime | None = None,
) -> dict[str, Built]:
    """The whole run in memory, two processors at a time (Polars releases the GIL); P5's
    slate inputs, which read Phase 3 alone, in a third thread from the start (`start_early`)."""
    chosen = select(processors)
    with ThreadPoolExecutor(max_workers=1) as early, ThreadPoolExecutor(max_workers=2) as pool:
        ctx = start_early(prepare(inputs), chosen, early)

        def submit(entry: Processor, ups: dict[str, Future[Built]]) -> Future[Built]:
            return pool.submit(
                lambda: build(entry, ctx, {t: f.result() for t, f in ups.items()}, processed_at)
            )

        futures = schedule(chosen, submit)
        return {table: future.result() for table, future in futures.items()}


def start_early(ctx: Context, selected: Sequence[Processor], pool: Executor) -> Context:
    """The context with the selected processors' `slate_inputs` for every date submitted to
    `pool`: P5's Phase 3 half then runs while P1 to P4 do (a core is often idle then, with
    a processor waiting for its upstreams), not after them."""
    early = {
        entry.table: pool.submit(
            entry.slate_inputs, calendar=ctx.calendars, **phase3_inputs(entry, ctx.inputs.phase3)
        )
        for entry in selected
        if entry.slate_inputs is not None
    }
    return replace(ctx, early=early)


def build_outputs(
    phase3: Phase3Frames,
    dates: date | Iterable[date],
    processed_at: datetime,
    processors: Iterable[str] | None = None,
    upstream: Mapping[str, pl.DataFrame] | None = None,
) -> dict[str, pl.DataFrame]:
    """Every row of the selected processors for one date or many, in memory (`upstream`:
    unselected processors' rows of the same dates, taken as current)."""
    days = (dates,) if isinstance(dates, date) else tuple(dates)
    inputs = RunInputs(phase3, days, stored=dict(upstream or {}))
    return {t: built.frame for t, built in run(inputs, processors, processed_at).items()}
