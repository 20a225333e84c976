"""Hive-partitioned Parquet exports of the output tables: `OUT/<dataset>.<table>/<partition
column>=YYYY-MM-DD/part-0.parquet` (Polars, DuckDB, Spark and BigQuery external tables read it).

Each date's file is staged and renamed into place, so a reader never sees half of one. Nothing
outside OUT is touched: a symbolic link where a folder should be is refused, never followed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from quality.schemas import OUTPUT_TABLES, TableSchema
from tasks.processes import alive
from tasks.readers import date_range, refuse_required_nulls
from tasks.warehouse import Warehouse

PART_FILE = "part-0.parquet"
STAGING_DIR = ".phase4-export-staging"


@dataclass(frozen=True)
class ExportedDate:
    table: str
    day: date
    rows: int
    path: Path | None  # the file written, or None when the date had no rows
    removed_stale: bool  # an earlier export's file for a date with no rows was deleted
    table_absent: bool = False  # the warehouse has no such table: nothing written or removed


class ExportPathError(ValueError):
    """OUT holds something export must not write through (a link, a file for a folder)."""


def partition_dir(out: Path, schema: TableSchema, day: date) -> Path:
    return out / schema.full_name / f"{schema.date_column}={day.isoformat()}"


def to_described_table(frame: pl.DataFrame, schema: TableSchema) -> pa.Table:
    """Rows in declared order and type; a NULL in a NOT NULL column is refused, here too."""
    arrow = schema.typed(frame).to_arrow()
    fields = []  # the declared Arrow schema with each column's description and NOT NULL mode
    for c in schema.columns:
        metadata = {"description": c.description} if c.description else None
        fields.append(pa.field(c.name, c.arrow_type, c.mode != "REQUIRED", metadata))
    target = pa.schema(fields, {"table": schema.full_name, "description": schema.description})
    refuse_required_nulls(frame, schema, ", then export again")
    return arrow.cast(target)


def _refuse_links(out: Path, paths: list[Path]) -> None:
    """Every folder export would write in must be a real folder inside OUT (or absent)."""
    for path in paths:
        if path.is_symlink():
            raise ExportPathError(
                f"{path} is a symbolic link: export never writes through links inside --out "
                f"{out}; remove the link or export to another folder"
            )
        if path.exists() and not path.is_dir():
            raise ExportPathError(f"{path} is a file where export writes a folder: move it away")


def _remove_stale(target_dir: Path) -> bool:
    """Remove what an earlier export wrote for a date that now has no rows: the folder's own
    part-0.parquet, then the folder if it is left empty; anything else there is kept."""
    part = target_dir / PART_FILE
    if target_dir.is_symlink() or not target_dir.is_dir() or part.is_symlink():
        return False
    removed = part.is_file()
    part.unlink(missing_ok=True)
    if not any(target_dir.iterdir()):
        target_dir.rmdir()
    return removed


def write_date(out: Path, schema: TableSchema, day: date, frame: pl.DataFrame) -> ExportedDate:
    """Replace the date's folder contents with one file (no rows: remove the old file)."""
    target_dir = partition_dir(out, schema, day)
    staging = out / STAGING_DIR
    _refuse_links(out, [out / schema.full_name, target_dir, staging])
    if frame.is_empty():
        return ExportedDate(schema.name, day, 0, None, _remove_stale(target_dir))
    staging.mkdir(parents=True, exist_ok=True)
    staged = staging / f"{os.getpid()}-{uuid.uuid4().hex}.parquet"  # the pid: see _clear_killed
    try:
        pq.write_table(to_described_table(frame, schema), staged)
        target_dir.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target_dir / PART_FILE)
    finally:
        staged.unlink(missing_ok=True)
    for stale in (path for path in target_dir.iterdir() if path.name != PART_FILE):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)  # never follows links inside it
        else:
            stale.unlink()  # a link is removed, not what it points at
    return ExportedDate(schema.name, day, frame.height, target_dir / PART_FILE, False)


def export_range(
    warehouse: Warehouse, start: date, end: date, out: Path, into: list[ExportedDate] | None = None
) -> list[ExportedDate]:
    """One read per table, one file per date (appended to `into`, when given); every check runs
    first, so a refusal writes none."""
    days = pl.date_range(start, end, eager=True).to_list()
    _refuse_links(out, [out / STAGING_DIR])
    frames: dict[str, dict[date, pl.DataFrame]] = {}  # by table, then by date
    for table, schema in OUTPUT_TABLES.items():
        column = schema.date_column
        _refuse_links(out, [out / schema.full_name, *(partition_dir(out, schema, d) for d in days)])
        if warehouse.table_schema(schema.full_name) is not None:
            frame = warehouse.read(schema.full_name, None, date_range(column, start, end))
            refuse_required_nulls(frame, schema, ", then export again")
            frames[table] = {
                k[0]: part for k, part in frame.partition_by(column, as_dict=True).items()
            }
    results = [] if into is None else into
    try:
        for table, schema in OUTPUT_TABLES.items():
            if (by_day := frames.get(table)) is None:
                results += [ExportedDate(table, d, 0, None, False, table_absent=True) for d in days]
                continue
            for d in days:  # one at a time: after a Ctrl-C `into` holds what is there
                results.append(write_date(out, schema, d, by_day.get(d, schema.empty_frame())))
    finally:
        staging = out / STAGING_DIR
        if staging.is_dir() and not staging.is_symlink():
            _clear_killed(staging)
            if not any(staging.iterdir()):
                staging.rmdir()
    return results


def _clear_killed(staging: Path) -> None:
    """Remove the staged files of exports that were killed (SIGKILL, a crash) before their
    rename: their pid runs no more. An export running beside this one keeps its own."""
    for left in staging.glob("*-*.parquet"):
        pid = left.name.split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            left.unlink(missing_ok=True)
