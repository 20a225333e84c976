"""Pick the warehouse from PHASE4_WAREHOUSE: `duckdb:///abs/path.duckdb` or `bigquery://PROJECT`."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tasks.warehouse.base import Filter, TableNotFound, Warehouse, WarehouseError

DEFAULT_WAREHOUSE_PATH = Path(".phase4") / "warehouse.duckdb"
WAREHOUSE_ENV = "PHASE4_WAREHOUSE"


def warehouse_url(url: str | None = None) -> str:
    """The configured URL; unset means the DuckDB file under the current directory."""
    configured = url or os.environ.get(WAREHOUSE_ENV, "").strip()
    if not configured:
        return f"duckdb://{(Path.cwd() / DEFAULT_WAREHOUSE_PATH).resolve()}"
    return configured


def open_warehouse(url: str | None = None) -> Warehouse:
    resolved = warehouse_url(url)
    parsed = urlparse(resolved)
    if parsed.scheme == "duckdb":
        from tasks.warehouse.duckdb_warehouse import open_duckdb

        path = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
        if not path:
            raise WarehouseError(f"{WAREHOUSE_ENV}={resolved}: no file path after duckdb://")
        return open_duckdb(path)
    if parsed.scheme == "bigquery":
        if not parsed.netloc:
            raise WarehouseError(f"{WAREHOUSE_ENV}={resolved}: no project after bigquery://")
        from tasks.warehouse.bigquery_warehouse import open_bigquery

        location = parse_qs(parsed.query).get("location", [None])[0]
        return open_bigquery(parsed.netloc, location=location)
    raise WarehouseError(
        f"{WAREHOUSE_ENV}={resolved}: expected duckdb:///absolute/path.duckdb "
        "or bigquery://PROJECT[?location=US]"
    )


__all__ = ["Filter", "TableNotFound", "Warehouse", "WarehouseError", "open_warehouse"]
