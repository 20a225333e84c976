"""`phase4 status`: the operators' nightly status query, rebuilt from the warehouse."""

from __future__ import annotations

from datetime import date

import polars as pl

from quality.schemas import OUTPUT_TABLES, PROCESSOR_RUNS
from quality.success import STATUS_MARKS
from tasks.warehouse import Filter, Warehouse


def _frame(
    warehouse: Warehouse, table: str, columns: list[str], day_column: str, day: date
) -> pl.DataFrame | None:
    if warehouse.table_schema(table) is None:
        return None
    return warehouse.read(table, columns, [Filter(day_column, "=", day)])


def status_rows(warehouse: Warehouse, day: date) -> list[dict[str, object]]:
    """Per processor: rows in D's partition, last processed_at, and the latest run's status."""
    runs = _frame(
        warehouse,
        PROCESSOR_RUNS.full_name,
        [
            "processor",
            "status",
            "message",
            "started_at",
            "finished_at",
            "run_id",
            "bytes_processed",
            "bytes_billed",
        ],
        "analysis_date",
        day,
    )
    latest: dict[str, dict[str, object]] = {}
    if runs is not None and not runs.is_empty():
        ordered = runs.sort(pl.coalesce("finished_at", "started_at"), nulls_last=False)
        latest = {row["processor"]: row for row in ordered.iter_rows(named=True)}
    rows = []
    for table, schema in OUTPUT_TABLES.items():
        stamp = "created_at" if "created_at" in schema.column_names else "processed_at"
        assert schema.partition_column is not None
        partition = _frame(warehouse, schema.full_name, [stamp], schema.partition_column, day)
        run = latest.get(table, {})
        status = str(run.get("status", "")) if run else ""
        rows.append(
            {
                "processor": table,
                "rows": 0 if partition is None else partition.height,
                "last_processed_at": None
                if partition is None or partition.is_empty()
                else partition[stamp].max(),
                "status": f"{STATUS_MARKS[status]} {status}" if status else "— never run",
                "message": run.get("message"),
                "bytes_billed": run.get("bytes_billed"),  # BigQuery only
            }
        )
    return rows
