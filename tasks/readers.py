"""Reads for the people and programs downstream of P5: training sets and the slate's features.

Each read is one query per table with the date range pushed into the warehouse's SQL (DuckDB and
BigQuery alike), never a loop over dates. Nothing here creates or writes the warehouse.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from features.training_set import (
    BOX_SCORE_COLUMNS,
    DEFAULT_MIN_QUALITY,
    LINE_COLUMNS,
    P5_COLUMNS,
    check_min_quality,
    training_set,
)
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    TableSchema,
)
from tasks.warehouse import Filter, TableNotFound, Warehouse, WarehouseError, open_warehouse

POINTS_LINE = "current_points_line"


def open_reader(url: str | None = None) -> Warehouse:
    """The configured warehouse, opened so that reading it never creates or writes a file."""
    return open_warehouse(url, read_only=True)


def date_range(column: str, start: date, end: date) -> list[Filter]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return [Filter(column, ">=", start), Filter(column, "<=", end)]


def _existing_columns(warehouse: Warehouse, schema: TableSchema, hint: str) -> set[str]:
    found = warehouse.table_schema(schema.full_name)
    if found is None:
        raise TableNotFound(schema.full_name, f"; {hint}")
    return set(found.names)


def read_p5(warehouse: Warehouse, where: list[Filter]) -> pl.DataFrame:
    """Stored ml_feature_store_v2 rows matching `where`, with the columns training sets use."""
    existing = _existing_columns(
        warehouse, ML_FEATURE_STORE_V2, "run `phase4 backfill` for these dates first"
    )
    missing = [c for c in P5_COLUMNS if c not in existing]
    if missing:
        raise WarehouseError(
            f"{ML_FEATURE_STORE_V2.full_name} has no column {missing[0]} (created by an older "
            "version): run `phase4 warehouse init` to add the new columns, then `phase4 "
            "backfill` over the dates to fill them"
        )
    frame = warehouse.read(ML_FEATURE_STORE_V2.full_name, list(P5_COLUMNS), where)
    types = ML_FEATURE_STORE_V2.polars_schema
    return frame.select(P5_COLUMNS).cast({c: types[c] for c in P5_COLUMNS if c in types})


def build_training_set(
    start: date,
    end: date,
    *,
    all_rows: bool = False,
    min_quality: float = DEFAULT_MIN_QUALITY,
    warehouse: Warehouse | str | None = None,
) -> pl.DataFrame:
    """The SPEC 13 / 16.5 training set for slate dates start..end as a Polars DataFrame.

    `warehouse` is an open Warehouse, a URL, or None for PHASE4_WAREHOUSE. By default only the
    rows passing SPEC 16.5's filters with feature_quality_score >= min_quality (>= 50; 70 gives
    is_quality_ready and played); `all_rows=True` keeps every stored P5 row. One query per
    table (P5 rows, box scores, lines when there are any), game_date pushed into its SQL.
    """
    check_min_quality(min_quality)  # before any read: bad input writes and reads nothing
    opened = warehouse if isinstance(warehouse, Warehouse) else open_reader(warehouse)
    where = date_range("game_date", start, end)
    p5 = read_p5(opened, where)
    _existing_columns(opened, PLAYER_GAME_SUMMARY, "run `phase4 load-phase3` first")
    box = opened.read(PLAYER_GAME_SUMMARY.full_name, BOX_SCORE_COLUMNS, where)
    box = box.cast({c: PLAYER_GAME_SUMMARY.polars_schema[c] for c in BOX_SCORE_COLUMNS})
    context, lines = UPCOMING_PLAYER_GAME_CONTEXT.full_name, None
    found = opened.table_schema(context)
    if found is not None and POINTS_LINE in found.names:
        types = {"player_lookup": pl.String, "game_date": pl.Date, POINTS_LINE: pl.Float64}
        lines = opened.read(context, LINE_COLUMNS, where).cast(pl.Schema(types))
    return training_set(p5, box, lines, all_rows=all_rows, min_quality=min_quality)


def read_slate(warehouse: Warehouse, day: date, player: str | None = None) -> pl.DataFrame:
    """D's stored P5 rows (one player's when given), as the 6 AM predictions read them."""
    where = [Filter("game_date", "=", day)]
    if player is not None:
        where.append(Filter("player_lookup", "=", player))
    return read_p5(warehouse, where)
