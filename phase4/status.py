"""`phase4 status`: the operators' nightly status query, rebuilt from the warehouse."""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import polars as pl
from rich.table import Table

from features import registry
from quality.freshness import REBUILD_STATES
from quality.schemas import OUTPUT_TABLES, PROCESSOR_RUNS
from quality.success import STATUS_MARKS
from tasks.report_reads import read_range
from tasks.warehouse import Warehouse

# The grid's marks; STALE and MISSING are SPEC 14's, the others the run statuses'.
STATE_MARKS: dict[str, str] = {**STATUS_MARKS, "STALE": "♻️", "MISSING": "·"}
# The feature checks' columns `status --date` shows, in the table and in its JSON.
CHECK_COLUMNS = (
    "feature_index",
    "feature_name",
    "rows",
    "default_rows",
    "mean",
    "ref_mean",
    "status",
    "message",
)


def status_rows(warehouse: Warehouse, day: date) -> list[dict[str, object]]:
    """Per processor: rows in D's partition, last processed_at, and the latest run's status:
    `state` the plain word (the grid's: MISSING when D has no line; None for a line an older
    version left without one), `status` the table's mark and word."""
    columns = ["processor", "status", "message", "started_at", "finished_at", "bytes_billed"]
    runs = read_range(warehouse, PROCESSOR_RUNS.full_name, columns, "analysis_date", day, day)
    ordered = runs.sort(pl.coalesce("finished_at", "started_at"), nulls_last=False)
    latest = {row["processor"]: row for row in ordered.iter_rows(named=True)}
    rows = []
    for table, schema in OUTPUT_TABLES.items():
        stamp = "created_at" if "created_at" in schema.column_names else "processed_at"
        partition = read_range(warehouse, schema.full_name, [stamp], schema.date_column, day, day)
        run = latest.get(table, {})
        status = str(run.get("status") or "NULL") if run else ""  # NULL: an older line
        rows.append(
            {
                "processor": table,
                "rows": partition.height,
                "last_processed_at": partition[stamp].max(),
                "state": (run.get("status") or None) if run else "MISSING",
                "status": f"{STATUS_MARKS.get(status, '?')} {status}" if status else "— never run",
                "message": run.get("message"),
                "bytes_billed": run.get("bytes_billed"),  # BigQuery only
            }
        )
    return rows


def day_document(
    day: date, rows: list[dict[str, object]], checks: pl.DataFrame
) -> dict[str, object]:
    """`status --date D --json`: the tables as plain values for scripts: the grid's state words
    (`grid_json`) without marks, ISO 8601 times, D's feature checks (SPEC 12) one per feature."""
    kept = ("state", "rows", "last_processed_at", "message", "bytes_billed")
    processors = {str(r["processor"]): {k: _plain(r[k]) for k in kept} for r in rows}
    features = [
        {column: _plain(check[column]) for column in CHECK_COLUMNS}
        for check in checks.iter_rows(named=True)
    ]
    return {"date": day.isoformat(), "processors": processors, "feature_checks": features}


def _plain(value: object) -> object:
    """A value JSON holds as such: a time in ISO 8601, NaN or infinity as null (JSON has none)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def grid_table(grid: pl.DataFrame, title: str) -> Table:
    """One row per date, one column per processor (P1..P5), then what needs rebuilding."""
    table = Table(title=title)
    table.add_column("date")
    ids = {p.table: p.id for p in registry.PROCESSORS.values()}
    for pid in ids.values():
        table.add_column(pid, header_style="bold")
    table.add_column("why", overflow="fold")
    for (day,), rows in grid.group_by("analysis_date", maintain_order=True):
        cells = {r["processor"]: r for r in rows.iter_rows(named=True)}
        why: dict[str, list[str]] = {}
        for p, r in cells.items():
            if r["state"] in REBUILD_STATES and r["state"] != "MISSING":
                why.setdefault(r["reason"], []).append(ids[p])
        table.add_row(
            str(day),
            *(f"{STATE_MARKS[cells[p]['state']]} {cells[p]['state']}" for p in ids),
            "; ".join(f"{','.join(who)}: {reason}" for reason, who in why.items()),
        )
    return table


def grid_json(grid: pl.DataFrame) -> str:
    """{"dates": [{"date", "processors": {table: {"state", "reason"}}, "rebuild"}], "counts"}"""
    dates = []
    for (day,), rows in grid.group_by("analysis_date", maintain_order=True):
        states = {
            r["processor"]: {"state": r["state"], "reason": r["reason"]}
            for r in rows.iter_rows(named=True)
        }
        rebuild = any(s["state"] in REBUILD_STATES for s in states.values())
        dates.append({"date": str(day), "processors": states, "rebuild": rebuild})
    counts = {str(k): int(v) for k, v in grid.group_by("state").len().iter_rows()}
    return json.dumps({"dates": dates, "counts": counts}, indent=2)
