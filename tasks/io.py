"""Prefect tasks that move data between the warehouse and Polars; the Phase 3 reads they
run (each window pushed into the SQL, checked against the input contract) are tasks/readers'."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypedDict

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from quality.contracts import InputContractError
from quality.schemas import PHASE3_TABLES, all_tables
from tasks.readers import read_phase3
from tasks.warehouse import TransientWarehouseError, Warehouse, open_warehouse


class ProcessorTimeout(TimeoutError):
    """A processor ran past twice its SPEC limit: Prefect records the task run as TimedOut."""


def is_transient(exc: BaseException) -> bool:
    """Retry warehouse hiccups, never bad input, logic errors or a processor's own timeout."""
    if isinstance(exc, ProcessorTimeout):
        return False  # a processor past twice its limit is stopped, not started again
    if isinstance(exc, InputContractError | ValueError | KeyError | TypeError | AssertionError):
        return False
    # Only a transient WarehouseError; OSError covers connection errors and timeouts.
    return isinstance(exc, TransientWarehouseError | OSError)


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


@task(name="read-phase3-table", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def read_phase3_task(warehouse_url: str, table: str, analysis_date: date) -> pl.DataFrame:
    """Shared by every processor reading the table: its BigQuery jobs say so in their labels."""
    warehouse = open_warehouse(warehouse_url).with_labels(
        processor="phase3_read",
        slate_date=analysis_date.isoformat(),
        flow_run_id=str(flow_run.get_id() or "local"),
    )
    frame = read_phase3(warehouse, table, analysis_date)
    get_run_logger().info("%s: %d rows for %s", table, frame.height, analysis_date)
    return frame


def ensure_tables(warehouse: Warehouse) -> list[str]:
    return warehouse.ensure_tables([t for t in all_tables() if t.name not in PHASE3_TABLES])
