"""Prefect tasks that move data between the warehouse and Polars.

Reads carry the point-in-time window into the warehouse's SQL so only the rows a run needs
leave it, and every Phase 3 read is checked against the input contract before use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any, TypedDict

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from quality.contracts import InputContractError, check_columns, conform_input
from quality.schemas import (
    OUTPUT_TABLES,
    PHASE3_KEYWORDS,
    PHASE3_TABLES,
    Phase3Frames,
    all_tables,
)
from tasks.warehouse import (
    Filter,
    TransientWarehouseError,
    Warehouse,
    WarehouseError,
    open_warehouse,
)


class ProcessorTimeout(TimeoutError):
    """A processor ran past twice its SPEC limit: Prefect records the task run as TimedOut."""


def is_transient(exc: BaseException) -> bool:
    """Retry warehouse hiccups, never bad input, logic errors or a processor's own timeout."""
    if isinstance(exc, ProcessorTimeout):
        return False  # a processor past twice its limit is stopped, not started again
    if isinstance(exc, InputContractError | ValueError | KeyError | TypeError | AssertionError):
        return False
    if isinstance(exc, WarehouseError):
        return isinstance(exc, TransientWarehouseError)
    return isinstance(exc, ConnectionError | TimeoutError | OSError)


def retry_transient(task: object, task_run: object, state: object) -> bool:
    """Prefect retry_condition_fn: look at the exception the failed state carries."""
    # _sync: the condition also runs inside async tasks, where result() would be a coroutine.
    outcome = state.result(raise_on_failure=False, _sync=True)  # type: ignore[attr-defined]
    return isinstance(outcome, BaseException) and is_transient(outcome)


class RetryOptions(TypedDict):
    """The keyword arguments of @task that TRANSIENT_RETRIES spreads, typed for mypy."""

    retries: int
    retry_delay_seconds: list[float]
    retry_condition_fn: Callable[[Any, Any, Any], bool]


TRANSIENT_RETRIES: RetryOptions = {
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": retry_transient,
}


def phase3_window(table: str, first_date: date, last_date: date) -> list[Filter]:
    """The rows needed to build every slate date from first_date to last_date (one season):
    the table's read window (nba_calendar.ReadWindow, declared on its schema)."""
    window = PHASE3_TABLES[table].read_window
    assert window is not None, table
    return [Filter(column, op, value) for column, op, value in window.bounds(first_date, last_date)]


def read_phase3(
    warehouse: Warehouse, table: str, first_date: date, last_date: date | None = None
) -> pl.DataFrame:
    schema = PHASE3_TABLES[table]
    last = last_date or first_date
    # Checked before the SELECT, so a missing column is a contract error, not a SQL one.
    actual = warehouse.table_schema(schema.full_name)
    check_columns(schema, actual, first_date)
    columns = schema.present_column_names(actual.names if actual is not None else ())
    rows = warehouse.read(schema.full_name, columns, phase3_window(table, first_date, last))
    return conform_input(schema, rows.to_arrow(), first_date)


@task(name="read-phase3-table", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def read_phase3_task(warehouse_url: str, table: str, analysis_date: date) -> pl.DataFrame:
    """Shared by every processor reading the table: its BigQuery jobs say so in their labels."""
    from prefect.runtime import flow_run

    warehouse = open_warehouse(warehouse_url).with_labels(
        processor="phase3_read",
        slate_date=analysis_date.isoformat(),
        flow_run_id=str(flow_run.get_id() or "local"),
    )
    frame = read_phase3(warehouse, table, analysis_date)
    get_run_logger().info("%s: %d rows for %s", table, frame.height, analysis_date)
    return frame


def read_output(
    warehouse: Warehouse, table: str, first_date: date, last_date: date | None = None
) -> pl.DataFrame:
    """A Phase 4 table's stored partitions first_date..last_date (an unselected upstream)."""
    schema = OUTPUT_TABLES[table]
    assert schema.partition_column is not None
    if warehouse.table_schema(schema.full_name) is None:
        return schema.empty_frame()
    column = schema.partition_column
    where = [Filter(column, ">=", first_date), Filter(column, "<=", last_date or first_date)]
    frame = warehouse.read(schema.full_name, None, where)
    return frame.select(schema.column_names).cast(dict(schema.polars_schema.items()))


def write_partition(warehouse: Warehouse, table: str, day: date, frame: pl.DataFrame) -> int:
    """Replace one partition outside a run (tests seed stored partitions with it)."""
    return warehouse.replace_partitions(OUTPUT_TABLES[table], [day], frame.to_arrow())


def ensure_tables(warehouse: Warehouse) -> list[str]:
    return warehouse.ensure_tables([t for t in all_tables() if t.name not in PHASE3_TABLES])


def read_phase3_frames(
    warehouse: Warehouse, first_date: date, last_date: date, tables: Iterable[str] | None = None
) -> Phase3Frames:
    """The inputs of a range of slate dates in one season, one read per table; a table not
    among `tables` (None: all five) is left empty."""
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


__all__ = ["InputContractError", "WarehouseError"]
