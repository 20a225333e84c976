"""Reads: the Phase 3 rows a run builds from; training sets and the slate's features for those
downstream of P5. One query per table with the date range in its SQL, never a loop over dates.
Nothing here writes the warehouse or imports Prefect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta

import polars as pl

from features import registry
from features.training_set import (
    BOX_SCORE_COLUMNS,
    DEFAULT_MIN_QUALITY,
    LINE_COLUMNS,
    P5_COLUMNS,
    check_min_quality,
    training_set,
)
from nba_calendar import season_days, season_of
from quality.contracts import check_columns, conform_input
from quality.freshness import input_fingerprints
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    OUTPUT_TABLES,
    PHASE3_KEYWORDS,
    PHASE3_TABLES,
    PLAYER_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    Phase3Frames,
    TableSchema,
)
from tasks.warehouse import (
    Filter,
    TableNotFound,
    Warehouse,
    WarehouseError,
    check_stored_columns,
    open_warehouse,
    warehouse_url,
)

POINTS_LINE = "current_points_line"


def read_phase3(
    warehouse: Warehouse, table: str, first_date: date, last_date: date | None = None
) -> pl.DataFrame:
    """The rows needed to build every slate date of first_date..last_date (one season)."""
    schema = PHASE3_TABLES[table]
    assert schema.read_window is not None, table
    bounds = schema.read_window.bounds(first_date, last_date or first_date)
    # Checked before the SELECT, so a missing column is a contract error, not a SQL one.
    actual = warehouse.table_schema(schema.full_name)
    check_columns(schema, actual, first_date)
    columns = schema.present_column_names(actual.names if actual is not None else ())
    rows = warehouse.read(schema.full_name, columns, [Filter(c, op, v) for c, op, v in bounds])
    return conform_input(schema, rows.to_arrow(), first_date)


def read_phase3_frames(
    warehouse: Warehouse, first_date: date, last_date: date, tables: Iterable[str] | None = None
) -> Phase3Frames:
    """One read per table for slate dates of one season; a table not in `tables` is left empty."""
    wanted = set(PHASE3_TABLES if tables is None else tables)
    return phase3_frames(
        {t: read_phase3(warehouse, t, first_date, last_date) for t in PHASE3_TABLES if t in wanted}
    )


def phase3_frames(frames: Mapping[str, object]) -> Phase3Frames:
    """Frames by table name as Phase3Frames; anything else (absent, a failed read) is empty."""
    return Phase3Frames(
        **{
            keyword: frame
            if isinstance(frame := frames.get(table), pl.DataFrame)
            else PHASE3_TABLES[table].empty_frame()
            for keyword, table in PHASE3_KEYWORDS.items()
        }
    )


SeasonInputs = tuple[Phase3Frames, pl.DataFrame]  # `_AHEAD`: read_ahead's, by their arguments
_AHEAD: dict[tuple[str, date, date, tuple[str, ...]], Future[SeasonInputs]] = {}


def season_inputs(url: str, first: date, last: date, tables: Sequence[str]) -> SeasonInputs:
    """The Phase 3 rows of first..last (one season) and their SPEC 14 fingerprints."""
    ahead = _AHEAD.pop((url, first, last, tuple(tables)), None)
    return ahead.result() if ahead else _season_inputs(url, first, last, tables)


def _season_inputs(url: str, first: date, last: date, tables: Sequence[str]) -> SeasonInputs:
    warehouse = open_warehouse(url)
    with warehouse.held_open():  # one open file for every table's read
        frames = read_phase3_frames(warehouse, first, last, tables)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return frames, input_fingerprints(frames.by_table(), days, registry.PROCESSORS.values())


def read_ahead(start: date, end: date, processors: list[str] | None) -> None:
    """The backfill's `season_inputs` of its first season in a thread, the file held open: the
    reads and hashing (~0.6 s) use the other core while the caller imports Prefect (~1.5 s)."""
    url, last = warehouse_url(), min(end, season_days(season_of(start))[1])
    tables = tuple(sorted(registry.phase3_tables(registry.select(processors))))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
    _AHEAD[(url, start, last, tables)] = pool.submit(_season_inputs, url, start, last, tables)
    pool.shutdown(wait=False)


def open_reader(url: str | None = None) -> Warehouse:
    """The configured warehouse, opened so that reading it never creates or writes a file."""
    return open_warehouse(url, read_only=True)


def date_range(column: str, start: date, end: date) -> list[Filter]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return [Filter(column, ">=", start), Filter(column, "<=", end)]


def _existing(warehouse: Warehouse, schema: TableSchema, hint: str) -> None:
    if warehouse.table_schema(schema.full_name) is None:
        raise TableNotFound(schema.full_name, f"; {hint}")


class RequiredNullError(WarehouseError, ValueError):
    """A stored row has NULL in a NOT NULL column: typically written before the column was
    added (`phase4 warehouse init` adds new columns as nullable, e.g. SPEC 16's to P5)."""


def refuse_required_nulls(frame: pl.DataFrame, schema: TableSchema, then: str = "") -> None:
    """Refuse stored rows with NULL in a NOT NULL column, naming the dates to rebuild."""
    required = (c.name for c in schema.columns if c.mode == "REQUIRED" and c.name in frame)
    column = next((c for c in required if frame[c].null_count()), None)
    if column is None:
        return
    day = schema.partition_column or schema.column_names[0]
    days = frame.filter(pl.col(column).is_null()).get_column(day)
    first, last = str(days.min()), str(days.max())
    raise RequiredNullError(
        f"{schema.full_name}.{column}: NULL in a NOT NULL column ({days.len()} row(s) of "
        f"{first}..{last}, written before the column existed?): rebuild with `phase4 backfill "
        f"--start {first} --end {last} --force`{then}"
    )


def read_p5(warehouse: Warehouse, where: list[Filter]) -> pl.DataFrame:
    """Stored ml_feature_store_v2 rows matching `where`, with the columns training sets use."""
    _existing(warehouse, ML_FEATURE_STORE_V2, "run `phase4 backfill` for these dates first")
    check_stored_columns(warehouse, [ML_FEATURE_STORE_V2])  # an older version's table: one line
    frame = warehouse.read(ML_FEATURE_STORE_V2.full_name, list(P5_COLUMNS), where)
    refuse_required_nulls(frame, ML_FEATURE_STORE_V2)
    return ML_FEATURE_STORE_V2.typed(frame, P5_COLUMNS)


def build_training_set(
    start: date,
    end: date,
    *,
    all_rows: bool = False,
    min_quality: float = DEFAULT_MIN_QUALITY,
    warehouse: Warehouse | str | None = None,
) -> pl.DataFrame:
    """The SPEC 13 / 16.5 training set for slate dates start..end.

    `warehouse`: an open Warehouse, a URL, or None for PHASE4_WAREHOUSE. By default only the
    rows passing SPEC 16.5's filters with feature_quality_score >= min_quality (>= 50; 70 gives
    is_quality_ready and played); `all_rows=True` keeps every stored P5 row.
    """
    check_min_quality(min_quality)  # before any read: bad input writes and reads nothing
    opened = warehouse if isinstance(warehouse, Warehouse) else open_reader(warehouse)
    where = date_range("game_date", start, end)
    p5 = read_p5(opened, where)
    _existing(opened, PLAYER_GAME_SUMMARY, "run `phase4 load-phase3` first")
    box = opened.read(PLAYER_GAME_SUMMARY.full_name, BOX_SCORE_COLUMNS, where)
    box = PLAYER_GAME_SUMMARY.typed(box, BOX_SCORE_COLUMNS)
    context, lines = UPCOMING_PLAYER_GAME_CONTEXT.full_name, None
    found = opened.table_schema(context)
    if found is not None and POINTS_LINE in found.names:
        types = {"player_lookup": pl.String, "game_date": pl.Date, POINTS_LINE: pl.Float64}
        lines = opened.read(context, LINE_COLUMNS, where).cast(pl.Schema(types))
    return training_set(p5, box, lines, all_rows=all_rows, min_quality=min_quality)


def slates_built(warehouse: Warehouse, start: date, end: date) -> tuple[list[date], list[date]]:
    """The slate dates of start..end (a player context row dated D) and those of them without
    a stored P5 row: what a training set or a slate read of the range lacks, and why."""
    where = date_range("game_date", start, end)
    dates = {}
    for schema in (UPCOMING_PLAYER_GAME_CONTEXT, ML_FEATURE_STORE_V2):
        read = warehouse.read(schema.full_name, ["game_date"], where, missing_ok=True)
        dates[schema.name] = set(read.get_column("game_date").to_list())
    slates = sorted(dates[UPCOMING_PLAYER_GAME_CONTEXT.name])
    return slates, [d for d in slates if d not in dates[ML_FEATURE_STORE_V2.name]]


def read_slate(warehouse: Warehouse, day: date, player: str | None = None) -> pl.DataFrame:
    """D's stored P5 rows (one player's when given), as the 6 AM predictions read them."""
    where = [Filter("game_date", "=", day)]
    if player is not None:
        where.append(Filter("player_lookup", "=", player))
    return read_p5(warehouse, where)


def read_output(
    warehouse: Warehouse, table: str, first_date: date, last_date: date | None = None
) -> pl.DataFrame:
    """A Phase 4 table's stored partitions first_date..last_date (an unselected upstream)."""
    schema = OUTPUT_TABLES[table]
    where = date_range(schema.date_column, first_date, last_date or first_date)
    return schema.typed(warehouse.read(schema.full_name, None, where, missing_ok=True))
