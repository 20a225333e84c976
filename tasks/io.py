"""Prefect tasks that move data between the warehouse and Polars.

Reads carry the point-in-time window into the warehouse's SQL so only the rows a run needs
leave it, and every Phase 3 read is checked against the input contract before use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypedDict

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from quality.contracts import InputContractError, check_columns, conform_input
from quality.schemas import (
    OUTPUT_TABLES,
    PHASE3_TABLES,
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_OFFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
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


def read_output(warehouse: Warehouse, table: str, analysis_date: date) -> pl.DataFrame:
    """A Phase 4 partition for D, for a processor run without its upstream in the same run."""
    schema = OUTPUT_TABLES[table]
    assert schema.partition_column is not None
    if warehouse.table_schema(schema.full_name) is None:
        return schema.empty_frame()
    frame = warehouse.read(
        schema.full_name, None, [Filter(schema.partition_column, "=", analysis_date)]
    )
    return frame.select(schema.column_names).cast(dict(schema.polars_schema.items()))


@task(name="read-phase4", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def read_output_task(warehouse_url: str, table: str, analysis_date: date) -> pl.DataFrame:
    return read_output(open_warehouse(warehouse_url), table, analysis_date)


def write_partition(
    warehouse: Warehouse,
    table: str,
    analysis_date: date,
    frame: pl.DataFrame,
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Replace D's partition; `before_commit` raising rolls the transaction back."""
    schema = OUTPUT_TABLES[table]
    return warehouse.replace_partitions(
        schema, [analysis_date], frame.to_arrow(), before_commit=before_commit
    )


def ensure_tables(warehouse: Warehouse) -> list[str]:
    return warehouse.ensure_tables([t for t in all_tables() if t.name not in PHASE3_TABLES])


def read_phase3_frames(warehouse: Warehouse, first_date: date, last_date: date) -> Phase3Frames:
    """All five inputs for a range of slate dates in one season: one read per table."""
    read = {t: read_phase3(warehouse, t, first_date, last_date) for t in PHASE3_TABLES}
    return Phase3Frames(
        player_games=read[PLAYER_GAME_SUMMARY.name],
        team_defense=read[TEAM_DEFENSE_GAME_SUMMARY.name],
        team_offense=read[TEAM_OFFENSE_GAME_SUMMARY.name],
        player_context=read[UPCOMING_PLAYER_GAME_CONTEXT.name],
        team_context=read[UPCOMING_TEAM_GAME_CONTEXT.name],
    )


__all__ = ["InputContractError", "WarehouseError"]
