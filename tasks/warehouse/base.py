"""The small warehouse interface both DuckDB (embedded) and BigQuery (production) implement.

Processors never see which one they talk to: they read filtered tables as Arrow and replace one
date partition of an output table at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import pyarrow as pa

from quality.schemas import TableSchema

Operator = Literal["=", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class Filter:
    """One predicate pushed down into the warehouse's SQL (`column op value`)."""

    column: str
    op: Operator
    value: Any


class WarehouseError(RuntimeError):
    """A warehouse problem an operator can act on (missing table, permissions, bad config)."""


class TableNotFound(WarehouseError):
    def __init__(self, full_name: str, hint: str = "") -> None:
        self.full_name = full_name
        super().__init__(f"table {full_name} does not exist{hint}")


class Warehouse(ABC):
    """Reads tables as Arrow and replaces date partitions atomically."""

    url: str

    @abstractmethod
    def table_schema(self, full_name: str) -> pa.Schema | None:
        """The table's columns as an Arrow schema, or None when the table does not exist."""

    @abstractmethod
    def read(
        self,
        full_name: str,
        columns: Sequence[str] | None = None,
        where: Sequence[Filter] = (),
    ) -> pa.Table:
        """Only the named columns of the rows matching every filter."""

    def replace_partition(self, schema: TableSchema, partition: date, rows: pa.Table) -> int:
        """Replace every row of `partition` with `rows` in one transaction; returns rows written.

        Readers see the old partition or the new one, never a mix or an empty window.
        """
        return self.replace_partitions(schema, [partition], rows)

    @abstractmethod
    def replace_partitions(
        self,
        schema: TableSchema,
        partitions: Sequence[date],
        rows: pa.Table,
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        """Replace several date partitions at once (backfills), in one transaction.

        Every row must belong to one of `partitions`; a partition without rows ends up empty.
        `before_commit` runs just before COMMIT; if it raises, nothing is written.
        """

    @abstractmethod
    def replace_table(self, full_name: str, rows: pa.Table) -> int:
        """Replace a whole table (Phase 3 loads), atomically."""

    @abstractmethod
    def append(self, schema: TableSchema, rows: pa.Table) -> int:
        """Append rows (run history)."""

    @abstractmethod
    def ensure_tables(self, schemas: Iterable[TableSchema]) -> list[str]:
        """Create missing datasets and tables from their declarations; returns what changed."""

    @contextmanager
    def exclusive(self, name: str, timeout_seconds: float) -> Iterator[None]:
        """Hold a named lock so two runs for the same date cannot interleave.

        The default is a Prefect global concurrency limit of 1 named after the lock, created on
        first use: it holds across every process that talks to the same Prefect API (Prefect
        Cloud in production). The embedded warehouse overrides it with a file lock.
        """
        from prefect.client.orchestration import get_client
        from prefect.concurrency.sync import concurrency

        with get_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        with concurrency(name, occupy=1, timeout_seconds=timeout_seconds, strict=True):
            yield

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def filters_sql(where: Sequence[Filter], placeholder: str) -> tuple[str, dict[str, Any]]:
    """Render filters as `WHERE a < @p0 AND ...` with named parameters.

    `placeholder` is the parameter prefix of the dialect (`$` for DuckDB, `@` for BigQuery).
    """
    if not where:
        return "", {}
    clauses, params = [], {}
    for i, f in enumerate(where):
        name = f"p{i}"
        clauses.append(f"{quote_identifier(f.column)} {f.op} {placeholder}{name}")
        params[name] = f.value
    return " WHERE " + " AND ".join(clauses), params


def select_sql(
    table_sql: str, columns: Sequence[str] | None, where: Sequence[Filter], placeholder: str
) -> tuple[str, dict[str, Any]]:
    """`SELECT cols FROM table WHERE ...`: the read both warehouses push down."""
    selected = ", ".join(quote_identifier(c) for c in columns) if columns else "*"
    clause, params = filters_sql(where, placeholder)
    return f"SELECT {selected} FROM {table_sql}{clause}", params


def quote_identifier(name: str) -> str:
    """Identifiers come from our declarations; anything else is refused, never quoted through."""
    if not name.replace("_", "").isalnum():
        raise WarehouseError(f"invalid identifier {name!r}")
    return name


def conform(rows: pa.Table, schema: TableSchema) -> pa.Table:
    """Columns in declared order and type, so every warehouse receives the same Arrow layout."""
    try:
        return rows.select(schema.column_names).cast(schema.arrow_schema)
    except (pa.ArrowInvalid, KeyError) as exc:
        raise ValueError(f"rows for {schema.full_name} do not fit its schema: {exc}") from exc


def check_partitions(schema: TableSchema, partitions: Sequence[date], rows: pa.Table) -> None:
    """A partition replace must not write rows outside the partitions it replaces."""
    assert schema.partition_column is not None, f"{schema.full_name} is not partitioned"
    if not partitions:
        raise ValueError(f"{schema.full_name}: no partitions to replace")
    allowed = set(partitions)
    found = set(rows.column(schema.partition_column).to_pylist())
    stray = sorted(d for d in found if d not in allowed)
    if stray:
        raise ValueError(
            f"{schema.full_name}: rows dated {stray[0]} outside the partitions being replaced"
        )
