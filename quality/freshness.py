"""SPEC 14 freshness: input fingerprints, and which dates are missing, failed or stale.

A processor's input fingerprint for D digests the content of the Phase 3 rows it reads for D:
its tables' rows of season S dated before D and the context rows dated D (plus the two tables
the slate calendar comes from, which every processor reads). It is cheap for many dates at
once: every row is hashed once, then per table the hashes are summed (mod 2^64, so row order
never matters) per game_date and cumulated over dates, so a whole season is one pass.

Row hash: blake2b (8 bytes) of the row's canonical text, the declared columns in contract
order, each value cast to text by Polars (NULL written as \\N), joined by the unit separator.
Unlike `DataFrame.hash_rows` it does not change with the Polars version; it could only change
if Polars changed how it writes a value as text (floats are written shortest round-trip).
Pure functions: the reads are in tasks/freshness.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from hashlib import blake2b

import polars as pl

from nba_calendar import ReadWindow, season_of
from quality.contracts import with_optional_columns
from quality.feature_contract import FEATURE_VERSION
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PHASE3_TABLES,
    TEAM_OFFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
    GraphNode,
)

NULL_TEXT = "\\N"
SEPARATOR = "\x1f"
MASK_64 = (1 << 64) - 1
# The slate calendar (season start, early season) every processor depends on (SPEC 0).
CALENDAR_TABLES = (TEAM_OFFENSE_GAME_SUMMARY.name, UPCOMING_TEAM_GAME_CONTEXT.name)
# SPEC 14: a processor reading the player context depends on its rows dated D, although the
# read fetches the season through D (for P5's line history, below).
FINGERPRINT_WINDOWS: dict[str, ReadWindow] = {UPCOMING_PLAYER_GAME_CONTEXT.name: ReadWindow.ON}
# SPEC 16: P5 also reads the optional lines, which the row hashes above leave out (they hash
# the contract's columns): the players' lines of S through D (L(g) and f25) and the teams'
# game_total and game_spread. Its fingerprint adds them, and its feature_version, so a
# partition written by another version is stale.
EXTRA_PARTS: dict[str, tuple[tuple[str, tuple[str, ...], ReadWindow], ...]] = {
    ML_FEATURE_STORE_V2.name: (
        (
            UPCOMING_PLAYER_GAME_CONTEXT.name,
            ("player_lookup", "game_date", "current_points_line"),
            ReadWindow.THROUGH,
        ),
        (
            UPCOMING_TEAM_GAME_CONTEXT.name,
            ("team_abbr", "game_date", "game_total", "game_spread"),
            ReadWindow.THROUGH,
        ),
    )
}
VERSIONS: dict[str, str] = {ML_FEATURE_STORE_V2.name: FEATURE_VERSION}

# SPEC 14: the states a backfill rebuilds.
REBUILD_STATES = frozenset({"MISSING", "FAIL", "STALE"})
DONE_STATUSES = frozenset({"OK", "WARN", "NO_GAMES"})


def row_hashes(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """A stable 64-bit hash of each row's values (see the module docstring).

    The text is written by the streaming engine, which spreads it over the cores (half the
    time of the in-memory one); the digests are taken from a Python list, quicker to walk
    than the Series."""
    text = (
        frame.lazy()
        .select(
            pl.concat_str(
                [pl.col(c).cast(pl.String).fill_null(NULL_TEXT) for c in columns],
                separator=SEPARATOR,
            ).cast(pl.Binary)
        )
        .collect(engine="streaming")
        .to_series()
        .to_list()
    )
    digests = [blake2b(t, digest_size=8).digest() for t in text]
    return pl.Series("row_hash", digests, pl.Binary).bin.reinterpret(
        dtype=pl.UInt64, endianness="big"
    )


def daily_sums(
    frame: pl.DataFrame, table: str, columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """Per (season_year, game_date): rows and the sums of the hashes' low and high halves,
    hashing `columns` (default: the contract's columns of the table).

    Halves keep every sum exact in UInt64; the digest folds them mod 2^64 at the end.
    """
    if columns is None:
        columns = PHASE3_TABLES[table].contract_column_names
    else:
        frame = with_optional_columns(PHASE3_TABLES[table], frame)
    hashed = frame.select("season_year", "game_date").with_columns(
        row_hashes(frame, columns).alias("h")
    )
    return (
        hashed.group_by("season_year", "game_date")
        .agg(
            pl.len().cast(pl.UInt64).alias("n"),
            (pl.col("h") % (1 << 32)).sum().alias("lo"),
            (pl.col("h") // (1 << 32)).sum().alias("hi"),
        )
        .sort("season_year", "game_date")
    )


def _targets(dates: Sequence[date]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "analysis_date": list(dates),
            "season_year": [season_of(d) for d in dates],
        },
        schema={"analysis_date": pl.Date, "season_year": pl.Int64},
    )


def windowed_sums(
    sums: pl.DataFrame, table: str, dates: Sequence[date], window: ReadWindow | None = None
) -> pl.DataFrame:
    """Per D: rows and hash sums of the table's rows a build for D depends on (`window`, else
    FINGERPRINT_WINDOWS, else its read window)."""
    window = window or FINGERPRINT_WINDOWS.get(table) or PHASE3_TABLES[table].read_window
    targets = _targets(dates)
    if window is ReadWindow.ON:
        per_day = sums.group_by("game_date").agg(pl.col("n", "lo", "hi").sum())
        joined = targets.join(per_day, left_on="analysis_date", right_on="game_date", how="left")
    else:
        cumulative = sums.with_columns(
            pl.col("season_year").cast(pl.Int64),
            pl.col("n", "lo", "hi").cum_sum().over("season_year"),
        ).sort("game_date")
        shift = timedelta(days=1) if window is ReadWindow.BEFORE else timedelta(0)
        joined = (
            targets.with_columns((pl.col("analysis_date") - shift).alias("until"))
            .sort("until")
            .join_asof(
                cumulative,
                left_on="until",
                right_on="game_date",
                by="season_year",
                strategy="backward",
                check_sortedness=False,
            )
        )
    return joined.select(
        "analysis_date", *(pl.col(c).fill_null(0).cast(pl.UInt64) for c in ("n", "lo", "hi"))
    )


def table_part(n: int, lo: int, hi: int) -> str:
    """One table's share of a fingerprint: its row count and hash sum mod 2^64."""
    return f"{n}:{((hi << 32) + lo) & MASK_64:016x}"


def fingerprint_tables(entry: GraphNode) -> list[str]:
    """The Phase 3 tables whose rows a processor's output for D depends on."""
    return sorted({*entry.phase3.values(), *CALENDAR_TABLES})


def input_fingerprints(
    frames: Mapping[str, pl.DataFrame], dates: Sequence[date], processors: Iterable[GraphNode]
) -> pl.DataFrame:
    """analysis_date, processor, input_fingerprint for every date and processor.

    `frames` (Phase 3 table -> rows) must hold at least every row a build of each date reads;
    more rows do no harm (each window is applied here).
    """
    chosen = list(processors)
    needed = sorted({t for p in chosen for t in fingerprint_tables(p)})
    parts: dict[str, dict[date, str]] = {}
    for table in needed:
        sums = windowed_sums(daily_sums(frames[table], table), table, dates)
        parts[table] = {d: table_part(n, lo, hi) for d, n, lo, hi in sums.iter_rows()}
    extra: dict[str, list[dict[date, str]]] = {}
    for entry in chosen:
        for table, columns, window in EXTRA_PARTS.get(entry.table, ()):
            sums = windowed_sums(daily_sums(frames[table], table, columns), table, dates, window)
            part = {d: table_part(n, lo, hi) for d, n, lo, hi in sums.iter_rows()}
            extra.setdefault(entry.table, []).append(part)
    rows = []
    for day in dates:
        for entry in chosen:
            text = "|".join(f"{t}={parts[t][day]}" for t in fingerprint_tables(entry))
            for i, part in enumerate(extra.get(entry.table, [])):
                text += f"|extra{i}={part[day]}"
            if entry.table in VERSIONS:
                text += f"|version={VERSIONS[entry.table]}"
            digest = blake2b(text.encode(), digest_size=16).hexdigest()
            rows.append((day, entry.table, digest))
    return pl.DataFrame(
        rows,
        schema={"analysis_date": pl.Date, "processor": pl.String, "input_fingerprint": pl.String},
        orient="row",
    )


def latest_lines(runs: pl.DataFrame) -> pl.DataFrame:
    """The latest processor_runs line per (date, processor): what the partition holds now."""
    return (
        runs.sort(pl.coalesce("finished_at", "started_at"), nulls_last=False)
        .group_by("analysis_date", "processor", maintain_order=True)
        .last()
    )


def freshness_grid(
    runs: pl.DataFrame,
    current: pl.DataFrame,
    dates: Sequence[date],
    processors: Sequence[GraphNode],
) -> pl.DataFrame:
    """analysis_date, processor, state, reason for every date x processor (SPEC 14).

    runs: processor_runs lines (analysis_date, processor, status, started_at, finished_at,
    input_fingerprint); current: input_fingerprints of the rows in the warehouse now.
    processors: in run order, upstreams first.
    """
    latest = latest_lines(runs)
    # When each partition was last written: a FAIL line writes nothing, so it rebuilds nothing.
    written = latest_lines(runs.filter(pl.col("status").is_in(DONE_STATUSES))).select(
        "analysis_date", "processor", pl.col("finished_at").alias("written_at")
    )
    grid = _targets(dates).select("analysis_date")
    states: dict[str, pl.DataFrame] = {}
    for entry in processors:
        own = (
            grid.join(
                latest.filter(pl.col("processor") == entry.table).select(
                    "analysis_date", "status", "finished_at", pl.col("input_fingerprint")
                ),
                on="analysis_date",
                how="left",
            )
            .join(
                current.filter(pl.col("processor") == entry.table).select(
                    "analysis_date", pl.col("input_fingerprint").alias("now")
                ),
                on="analysis_date",
                how="left",
            )
            .join(
                written.filter(pl.col("processor") == entry.table).drop("processor"),
                on="analysis_date",
                how="left",
            )
            .sort("analysis_date")
        )
        ups = [states[u] for u in entry.upstream.values() if u in states]
        upstream_names = [u for u in entry.upstream.values() if u in states]
        newer = [
            (up["written_at"] > own["finished_at"]).fill_null(False).alias(name)
            for name, up in zip(upstream_names, ups, strict=True)
        ]
        stale_up = [
            (up["state"] == "STALE").alias(name)
            for name, up in zip(upstream_names, ups, strict=True)
        ]
        state = _state(own, newer, stale_up, upstream_names)
        own = own.select("analysis_date", "written_at").with_columns(
            state.struct.field("state"), state.struct.field("reason")
        )
        states[entry.table] = own
    return pl.concat(
        [
            frame.select("analysis_date", pl.lit(table).alias("processor"), "state", "reason")
            for table, frame in states.items()
        ]
    ).sort("analysis_date", maintain_order=True)


def _state(
    own: pl.DataFrame,
    newer: list[pl.Series],
    stale_up: list[pl.Series],
    upstream_names: list[str],
) -> pl.Series:
    """The state and its reason, row by row in SPEC 14's order of precedence."""
    out = []
    for i, row in enumerate(own.iter_rows(named=True)):
        status = row["status"]
        if status is None:
            out.append({"state": "MISSING", "reason": "never built"})
        elif status not in DONE_STATUSES:
            out.append({"state": "FAIL", "reason": f"last run {status}"})
        elif row["input_fingerprint"] is None:
            out.append({"state": "STALE", "reason": "built before fingerprints were recorded"})
        elif row["input_fingerprint"] != row["now"]:
            out.append({"state": "STALE", "reason": "Phase 3 inputs changed since it was built"})
        elif rebuilt := [n for n, s in zip(upstream_names, newer, strict=True) if s[i]]:
            out.append({"state": "STALE", "reason": f"upstream {rebuilt[0]} rebuilt after it"})
        elif stale := [n for n, s in zip(upstream_names, stale_up, strict=True) if s[i]]:
            out.append({"state": "STALE", "reason": f"upstream {stale[0]} is stale"})
        else:
            out.append({"state": status, "reason": ""})
    return pl.Series(out, dtype=pl.Struct({"state": pl.String, "reason": pl.String}))


def dates_to_build(grid: pl.DataFrame, processors: Iterable[str]) -> list[date]:
    """Dates where a selected processor is missing, failed or stale (SPEC 14)."""
    wanted = list(processors)
    needs = grid.filter(
        pl.col("processor").is_in(wanted) & pl.col("state").is_in(list(REBUILD_STATES))
    )
    return sorted(set(needs["analysis_date"].to_list()))
