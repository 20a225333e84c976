"""Loading Phase 3 tables into the warehouse: every file is checked before any is written."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from quality.contracts import check_columns, check_rows
from quality.schemas import INPUT_DATASET, PHASE3_TABLES, PLAYER_GAME_SUMMARY
from tasks.warehouse import Warehouse


class Phase3FileError(ValueError):
    """A Phase 3 file that cannot be read: one line naming it and what to do."""


def read_phase3_file(path: Path) -> pl.DataFrame:
    """Read one Parquet file; a corrupted or unreadable file names itself, not a traceback."""
    if not path.is_file():
        raise Phase3FileError(
            f"{path}: not a readable file (a folder or a broken link); replace it with the "
            "table's Parquet export or remove it from the folder"
        )
    try:
        return pl.read_parquet(path)
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


def load_phase3_directory(warehouse: Warehouse, directory: Path) -> dict[str, int]:
    """Load every `nba_analytics.<table>.parquet` in `directory`, replacing those tables."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    files = {
        path.name.removeprefix(f"{INPUT_DATASET}.").removesuffix(".parquet"): path
        for path in sorted(directory.glob(f"{INPUT_DATASET}.*.parquet"))
    }
    known = {table: path for table, path in files.items() if table in PHASE3_TABLES}
    if not known:
        expected = ", ".join(f"{INPUT_DATASET}.{t}.parquet" for t in PHASE3_TABLES)
        raise FileNotFoundError(f"no Phase 3 files in {directory}; expected some of {expected}")
    return load_phase3_frames(warehouse, {t: read_phase3_file(p) for t, p in known.items()})


def load_phase3_frames(warehouse: Warehouse, frames: dict[str, pl.DataFrame]) -> dict[str, int]:
    """Validate all frames against the input contract first, so bad input loads nothing."""
    for table, frame in frames.items():
        schema = PHASE3_TABLES[table]
        check_columns(schema, frame.to_arrow().schema, None)
        check_rows(schema, frame.select(schema.column_names), None)
    return {
        table: warehouse.replace_table(PHASE3_TABLES[table].full_name, frame.to_arrow())
        for table, frame in frames.items()
    }


def has_phase3(warehouse: Warehouse) -> bool:
    return warehouse.table_schema(PLAYER_GAME_SUMMARY.full_name) is not None
