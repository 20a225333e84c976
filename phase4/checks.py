"""The CLI's input contract: dates, date ranges and output files, checked before any work.

Each refusal is an `InputError` whose message is one line naming the value and what is
allowed; the CLI prints it and exits 2 with nothing written (docs/cli.md lists them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.warehouse import Warehouse


class InputError(ValueError):
    """A command-line value that is not allowed: one line, exit 2, nothing written."""


def day(value: datetime | date, option: str = "--date") -> date:
    from nba_calendar import FIRST_DAY, LAST_DAY  # polars with it: cheap commands skip both

    result = value.date() if isinstance(value, datetime) else value
    if not FIRST_DAY <= result <= LAST_DAY:
        raise InputError(
            f"{option} {result}: out of range; give a date from {FIRST_DAY} to {LAST_DAY}"
        )
    return result


def ordered(start: datetime | date, end: datetime | date) -> tuple[date, date]:
    first, last = day(start, "--start"), day(end, "--end")
    if last < first:
        raise InputError(f"--end {last} is before --start {first}: give --start <= --end")
    return first, last


def within_seasons(warehouse: Warehouse, first: date, last: date, one_date: bool = False) -> None:
    """Refuse dates outside the loaded seasons: no Phase 3 rows to build from or compare with
    (and centuries would plan ~36,500 dates). one_date: the range came from --date."""
    from nba_calendar import season_days

    seasons = loaded_seasons(warehouse, f"{first}..{last}")
    lowest, highest = season_days(seasons[0])[0], season_days(seasons[-1])[1]
    names = ", ".join(f"{s}-{(s + 1) % 100:02d}" for s in seasons)
    held = f"the warehouse holds season(s) {names}: give dates from {lowest} to {highest}"
    start, end = ("--date", "--date") if one_date else ("--start", "--end")
    if first < lowest:
        raise InputError(f"{start} {first} is before the first season loaded; {held}")
    if last > highest:
        raise InputError(f"{end} {last} is after the last season loaded; {held}")


def loaded_seasons(warehouse: Warehouse, what: str) -> list[int]:
    """The Phase 3 seasons the warehouse holds (those of player_game_summary); none at all is
    bad input for any command about dates (`what`), a run included: it could only fail."""
    from quality.schemas import PLAYER_GAME_SUMMARY

    loaded = warehouse.read(PLAYER_GAME_SUMMARY.full_name, ["season_year"], missing_ok=True)
    seasons = sorted(int(s) for s in loaded.get_column("season_year").drop_nulls().unique())
    if not seasons:
        raise InputError(
            f"the warehouse holds no Phase 3 season, so {what} has nothing to build or show: "
            "load one with `phase4 load-phase3 DIR` (or `phase4 demo-data`), or check that "
            f"PHASE4_WAREHOUSE names the one you loaded ({warehouse.url})"
        )
    return seasons


def stored_tables(warehouse: Warehouse) -> None:
    """Refuse output tables an older version left with other columns (one line, the fix)."""
    from quality.schemas import ML_FEATURE_CHECKS, OUTPUT_TABLES, PROCESSOR_RUNS
    from tasks.warehouse import check_stored_columns

    check_stored_columns(warehouse, (*OUTPUT_TABLES.values(), ML_FEATURE_CHECKS, PROCESSOR_RUNS))


def output_file(
    path: Path, *, force: bool, fmt: str | None = None, file_formats: tuple[str, ...] = ()
) -> None:
    """A file the command may write: a UTF-8 name (for Polars), in a folder that exists, not the
    warehouse, `.csv`/`.parquet` only for that `fmt` (the other offered when it is one of the
    command's `file_formats`), not an existing file unless --force."""
    utf8_name(path, "--out")
    if path.is_dir():
        raise InputError(f"--out {path} is a folder: name a file inside it")
    _folder_exists(path)
    if path.exists() and not path.is_file():  # a device or pipe: os.replace would swap it out
        raise InputError(f"--out {path} is not a regular file: name a file to write")
    _not_the_warehouse(path)
    suffix = path.suffix.lower()
    if fmt is not None and suffix in (".csv", ".parquet") and suffix != f".{fmt}":
        other = suffix.lstrip(".")
        offer = f"pass --format {other} or " if other in file_formats else ""
        raise InputError(
            f"--out {path} is a {path.suffix} name but --format is {fmt}: {offer}name a .{fmt} file"
        )
    if (path.exists() or path.is_symlink()) and not force:
        raise InputError(f"--out {path} exists: pass --force to replace it, or choose another file")


def utf8_name(path: Path, what: str) -> None:
    from tasks.warehouse import is_utf8

    if not is_utf8(path):
        raise InputError(f"{what} {path}: not a UTF-8 name; name it in UTF-8")


def output_folder(path: Path) -> None:
    """A folder the command may write into (created when absent): not a file."""
    utf8_name(path, "--out")
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {path} is a file: name a folder")
    _folder_exists(path)


def _not_the_warehouse(path: Path) -> None:
    """--force replaces a file, never the DuckDB warehouse the command reads (or its WAL)."""
    from tasks.warehouse import checked_warehouse_url, duckdb_path

    url = checked_warehouse_url()
    if not url.startswith("duckdb://"):
        return
    warehouse = duckdb_path(url).resolve()
    if path.resolve() in (warehouse, warehouse.with_name(f"{warehouse.name}.wal")):
        raise InputError(f"--out {path} is the warehouse's own file: name another file")


def _folder_exists(path: Path) -> None:
    """`path`'s folder exists and no parent is a file: a folder is never made on a typo
    (`typo_dir/r.html`, or a quoted `~/r.html`: the shell, not the program, expands `~`)."""
    existing = next((parent for parent in path.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InputError(f"--out {path}: {existing} is a file, not a folder")
    if not path.parent.is_dir():
        raise InputError(
            f"--out {path}: folder {path.parent} does not exist; create it first or choose "
            "another path"
        )


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write a temporary file beside `path`, then os.replace: never a truncated file."""
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temporary)
        os.replace(temporary, path)
    except OSError as exc:
        raise InputError(
            f"--out {path}: cannot write it ({exc.strerror or exc}); choose a folder this "
            "user can write in"
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)
