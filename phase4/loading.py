"""Loading Phase 3 tables into the warehouse: every file is checked before any is written.

A load replaces only the seasons (`season_year`) its files hold, per table, so seasons loaded
one after the other sit side by side (SPEC 14: a reload marks the dates it changed stale).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from phase4.checks import InputError
from quality.contracts import (
    InputContractError,
    contract_problems,
    stored_type_problems,
    typed_for_load,
)
from quality.schemas import INPUT_DATASET, PHASE3_TABLES
from tasks.warehouse import Warehouse
from tasks.warehouse.base import SeasonRows


class Phase3FileError(InputError):
    """A Phase 3 file that cannot be read: one line naming it and what to do."""


def read_phase3_file(path: Path) -> pl.DataFrame:
    """Read one Parquet file; a corrupted or unreadable file names itself, not a traceback.
    glob=False: a folder named `s[1]` is a name, not a pattern matching its sibling `s1`."""
    if not path.is_file():
        raise Phase3FileError(
            f"{path}: not a readable file (a folder or a broken link); replace it with the "
            "table's Parquet export or remove it from the folder"
        )
    try:
        return pl.read_parquet(path, glob=False)
    except PermissionError as exc:
        raise Phase3FileError(
            f"{path}: permission denied; make it readable by this user (chmod a+r) and re-run"
        ) from exc
    except (OSError, pl.exceptions.PolarsError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise Phase3FileError(
            f"{path}: not a readable Parquet file ({reason}); re-export it from Phase 3 "
            "or remove it from the folder"
        ) from exc


class Phase3LoadError(ValueError):
    """Every contract problem of every file, one per line: nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} contract problem(s), nothing loaded:\n" + "\n".join(problems)
        )


@dataclass(frozen=True)
class SeasonLoad:
    """What a load did (or, checking, would do) to one table."""

    table: str
    seasons: tuple[int, ...]
    rows_before: int  # rows of these seasons before the load
    rows_after: int  # rows of these seasons after it (the file's rows)
    rows_kept: int  # rows of other seasons, untouched

    def describe(self, written: bool = True, counted: bool = True) -> str:
        """counted False: a check that could not read the warehouse, whose rows are unknown."""
        if not self.seasons:  # an empty file names no season: its table stays as it was
            nothing = "nothing replaced" if written else "nothing would be replaced"
            return f"{self.table}: the file holds no rows; {nothing}, the table stays as it was"
        verb = "replaced" if written else "would replace"
        seasons = ", ".join(str(s) for s in self.seasons)
        if not counted:
            return f"{verb} {self.table} season(s) {seasons} with {self.rows_after} rows"
        return (
            f"{verb} {self.table} season(s) {seasons}: {self.rows_before} -> "
            f"{self.rows_after} rows; {self.rows_kept} rows of other seasons kept"
        )


def load_phase3_directory(
    warehouse: Warehouse | None, directory: Path, *, check: bool = False
) -> list[SeasonLoad]:
    if not directory.is_dir():
        raise Phase3FileError(f"{directory} is not a folder")
    parquet = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".parquet")
    tables = {f"{INPUT_DATASET}.{table}.parquet": table for table in PHASE3_TABLES}
    if stray := [p for p in parquet if p.name not in tables]:  # never skipped without a word
        raise Phase3FileError(
            f"{stray[0]}: not a Phase 3 file; name it {INPUT_DATASET}.<table>.parquet, a table "
            f"of {', '.join(PHASE3_TABLES)}, or move it out of the folder"
        )
    known = {tables[p.name]: p for p in parquet}
    if not known:
        expected = ", ".join(f"{INPUT_DATASET}.{t}.parquet" for t in PHASE3_TABLES)
        raise Phase3FileError(f"no Phase 3 files in {directory}; expected some of {expected}")
    frames = {t: read_phase3_file(p) for t, p in known.items()}
    if not any(frame.height for frame in frames.values()):  # a failed export, most likely
        raise Phase3FileError(
            f"every Phase 3 file in {directory} holds no rows: nothing to load; re-export the "
            "tables from Phase 3"
        )
    return load_phase3_frames(warehouse, frames, check=check, sources=known)


def season_counts(warehouse: Warehouse | None, full_name: str) -> dict[int, int]:
    """Rows per season_year now in the table (empty when there is no table yet)."""
    if warehouse is None or warehouse.table_schema(full_name) is None:
        return {}
    counts = warehouse.read(full_name, ["season_year"]).group_by("season_year").len()
    return {int(s): int(n) for s, n in counts.iter_rows() if s is not None}


def _refuse(found: dict[str, list[InputContractError]], sources: dict[str, Path] | None) -> None:
    """Raise every table's problems at once (Phase3LoadError), one line each, file first."""
    problems = [
        f"{(sources or {}).get(table, table)}: {problem}"
        for table, listed in found.items()
        for problem in listed
    ]
    if problems:
        raise Phase3LoadError(problems)


def load_phase3_frames(
    warehouse: Warehouse | None,
    frames: dict[str, pl.DataFrame],
    *,
    check: bool = False,
    sources: dict[str, Path] | None = None,
) -> list[SeasonLoad]:
    """Validate and type all frames first, then replace every table's seasons in one
    all-or-nothing step (Warehouse.replace_seasons_of). check: validate and report only."""
    # Every frame checked against the contract, typed as declared, then against stored types.
    _refuse({t: contract_problems(PHASE3_TABLES[t], f) for t, f in frames.items()}, sources)
    typed = {t: typed_for_load(PHASE3_TABLES[t], frame) for t, frame in frames.items()}
    stored = {
        t: warehouse.table_schema(PHASE3_TABLES[t].full_name) if warehouse else None for t in typed
    }
    _refuse(
        {t: stored_type_problems(PHASE3_TABLES[t], stored[t], f) for t, f in typed.items()}, sources
    )
    loads, replacing = [], []
    for table, frame in typed.items():
        full_name = PHASE3_TABLES[table].full_name
        seasons = tuple(sorted(int(s) for s in frame["season_year"].unique().to_list()))
        before = season_counts(warehouse, full_name)
        replaced = sum(n for s, n in before.items() if s in seasons)
        kept = sum(before.values()) - replaced
        if frame.height:
            replacing.append(SeasonRows(full_name, seasons, frame.to_arrow()))
        loads.append(SeasonLoad(table, seasons, replaced, frame.height, kept))
    if not check and replacing:
        assert warehouse is not None
        with interrupts_after_it() as heard:
            warehouse.replace_seasons_of(replacing)
        if heard:
            raise InterruptedAfterWrite("; ".join(load.describe() for load in loads))
    return loads


class InterruptedAfterWrite(KeyboardInterrupt):
    """A Ctrl-C that arrived during a write the command let end whole: what it wrote."""


@contextmanager
def interrupts_after_it() -> Iterator[list[int]]:
    """Ctrl-C during the block is noted, not raised: a load's commit ends whole and the command
    can say so (interrupted inside, DuckDB would roll back; just after, the command would claim
    a rollback of what it had committed). Main thread only: Python runs handlers there."""
    heard: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield heard
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: heard.append(signum))
    try:
        yield heard
    finally:
        signal.signal(signal.SIGINT, previous)
