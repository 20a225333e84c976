"""The embedded warehouse: one DuckDB file, datasets as schemas, BigQuery table names kept."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from quality.schemas import Column, TableSchema
from tasks.warehouse.base import (
    Filter,
    TableNotFound,
    Warehouse,
    WarehouseError,
    check_partitions,
    conform,
    quote_identifier,
    select_sql,
)

_DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ",
}
LOCK_WAIT_SECONDS = 120.0
# DuckDB 2.0 races when threads of one process scan registered Arrow tables through separate
# connections to one database ("python_arrow_scan does not exist"); operations are
# milliseconds long, so one process-wide lock costs nothing and removes the race.
_IN_PROCESS = threading.RLock()


def duckdb_type(column: Column) -> str:
    base = _DUCKDB_TYPES[column.type]
    return f"{base}[]" if column.mode == "REPEATED" else base


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_name(full_name: str) -> str:
    return ".".join(quote_identifier(part) for part in full_name.split("."))


class DuckDBWarehouse(Warehouse):
    """Opens the file per operation so other processes (status, export) can read between runs.

    DuckDB lets one process at a time hold the file; another process waits for it, up to
    LOCK_WAIT_SECONDS, instead of failing at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"duckdb://{path}"

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with _IN_PROCESS, self._open() as con:
            yield con

    @contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseError(f"cannot open {self.path}: {exc}") from exc
                time.sleep(0.2)
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    @contextmanager
    def exclusive(self, name: str, timeout_seconds: float) -> Iterator[None]:
        """An flock on a file beside the database: holds across processes and threads."""
        lock_dir = self.path.parent / f"{self.path.name}.locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout_seconds
        with open(lock_dir / f"{name}.lock", "w") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} is held by another run") from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def table_schema(self, full_name: str) -> pa.Schema | None:
        with self._connect() as con:
            try:
                return (
                    con.sql(f"SELECT * FROM {_table_name(full_name)} LIMIT 0")
                    .to_arrow_table()
                    .schema
                )
            except duckdb.CatalogException:
                return None

    def read(
        self,
        full_name: str,
        columns: Sequence[str] | None = None,
        where: Sequence[Filter] = (),
    ) -> pa.Table:
        query, params = select_sql(_table_name(full_name), columns, where, "$")
        with self._connect() as con:
            try:
                return con.sql(query, params=params or None).to_arrow_table()
            except duckdb.CatalogException as exc:
                if "Table" in str(exc) and "does not exist" in str(exc):
                    raise TableNotFound(full_name) from exc
                raise WarehouseError(f"reading {full_name}: {exc}") from exc

    def _in_transaction(
        self, con: duckdb.DuckDBPyConnection, statements: Sequence[str | Callable[[], None]]
    ) -> None:
        """A callable among the statements runs in place (a `before_commit` guard, last)."""
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                statement() if callable(statement) else con.execute(statement)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise

    def replace_partitions(
        self,
        schema: TableSchema,
        partitions: Sequence[date],
        rows: pa.Table,
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        staged = conform(rows, schema)
        check_partitions(schema, partitions, staged)
        table = _table_name(schema.full_name)
        days = ", ".join(f"DATE {_sql_literal(d.isoformat())}" for d in sorted(set(partitions)))
        with self._connect() as con:
            con.register("phase4_staged_rows", staged)
            self._in_transaction(
                con,
                [
                    f"DELETE FROM {table} WHERE {schema.partition_column} IN ({days})",
                    f"INSERT INTO {table} BY NAME SELECT * FROM phase4_staged_rows",
                    *([before_commit] if before_commit else []),
                ],
            )
        return staged.num_rows

    def replace_table(self, full_name: str, rows: pa.Table) -> int:
        dataset = quote_identifier(full_name.split(".")[0])
        with self._connect() as con:
            con.register("phase4_staged_rows", rows)
            self._in_transaction(
                con,
                [
                    f"CREATE SCHEMA IF NOT EXISTS {dataset}",
                    f"CREATE OR REPLACE TABLE {_table_name(full_name)} AS "
                    "SELECT * FROM phase4_staged_rows",
                ],
            )
        return rows.num_rows

    def append(self, schema: TableSchema, rows: pa.Table) -> int:
        staged = conform(rows, schema)
        with self._connect() as con:
            con.register("phase4_staged_rows", staged)
            con.execute(
                f"INSERT INTO {_table_name(schema.full_name)} BY NAME "
                "SELECT * FROM phase4_staged_rows"
            )
        return staged.num_rows

    def ensure_tables(self, schemas: Sequence[TableSchema]) -> list[str]:
        changes: list[str] = []
        with self._connect() as con:
            for schema in schemas:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema.dataset)}")
                exists = con.execute(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = ? AND table_name = ?",
                    [schema.dataset, schema.name],
                ).fetchone()
                if exists and exists[0]:
                    continue
                con.execute(create_table_sql(schema))
                changes.append(f"created {schema.full_name}")
        return changes


def create_table_sql(schema: TableSchema) -> str:
    columns = ",\n  ".join(
        f"{quote_identifier(c.name)} {duckdb_type(c)}"
        + (" NOT NULL" if c.mode == "REQUIRED" else "")
        for c in schema.columns
    )
    table = _table_name(schema.full_name)
    comments = "".join(
        f"; COMMENT ON COLUMN {table}.{c.name} IS {_sql_literal(c.description)}"
        for c in schema.columns
        if c.description
    )
    return (
        f"CREATE TABLE {table} (\n  {columns}\n)"
        f"; COMMENT ON TABLE {table} IS {_sql_literal(schema.description)}{comments}"
    )


def open_duckdb(path: str | Path) -> DuckDBWarehouse:
    resolved = Path(path).expanduser().resolve()
    if resolved.is_dir():
        raise WarehouseError(f"PHASE4_WAREHOUSE points at a directory: {resolved}")
    return DuckDBWarehouse(resolved)
