"""The small warehouse interface both DuckDB (embedded) and BigQuery (production) implement.

Processors never see which one they talk to: they read filtered tables as Polars frames and
replace date partitions of an output table atomically. Locks live in tasks/warehouse/locks.py,
type names in quality/schemas.py.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, TypeAlias

import polars as pl
import pyarrow as pa

from quality.contracts import IDENTIFIER, stored_table_problem
from quality.schemas import TableSchema, all_tables

Operator = Literal["=", "<", "<=", ">", ">="]
Rows: TypeAlias = pa.Table | pl.DataFrame
BeforeCommit: TypeAlias = Callable[[], None]


@dataclass(frozen=True)
class Filter:
    """One predicate pushed down into the warehouse's SQL (`column op value`)."""

    column: str
    op: Operator
    value: Any


@dataclass(frozen=True)
class SeasonRows:
    """One table's rows for a Phase 3 load: they replace every row of `seasons`."""

    full_name: str
    seasons: Sequence[int]
    rows: Rows


class WarehouseError(RuntimeError):
    """A problem an operator can act on: one line naming the setting, path or table and what to
    do (the CLI prints it and exits 2)."""


class TransientWarehouseError(WarehouseError):
    """A problem that goes away by itself (a lock held by another run, an aborted concurrent
    transaction, a 5xx): the retry condition of the Prefect tasks keys on this class."""


class TableNotFound(WarehouseError):
    def __init__(self, full_name: str, hint: str = "") -> None:
        super().__init__(f"table {full_name} does not exist{hint}")


@dataclass(frozen=True)
class Replacement:
    """The new rows of some partitions of one table (a commit holds several)."""

    schema: TableSchema
    partitions: Sequence[date]
    rows: Rows


# One table's part of a commit, conformed and checked: its partitions (none: appended), its rows.
Write: TypeAlias = tuple[TableSchema, Sequence[date], pa.Table]


class Warehouse(ABC):
    """Reads tables as Polars frames and replaces date partitions atomically. `labels` go on
    every BigQuery job; `bytes_processed` and `bytes_billed` add up what this object's queries
    cost (both stay 0 on DuckDB)."""

    url: str
    read_only: bool = False
    bills_bytes: bool = False  # True where queries are billed by bytes (BigQuery)

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}
        self.bytes_processed = 0
        self.bytes_billed = 0

    def with_labels(self, **labels: str | None) -> Warehouse:
        """A copy whose jobs carry these labels (None drops one) and whose byte counters start
        at 0, so a processor's cost can be read off its own copy."""
        labelled = copy.copy(self)
        labelled.labels = self.labels | {k: v for k, v in labels.items() if v is not None}
        labelled.bytes_processed = 0
        labelled.bytes_billed = 0
        return labelled

    def held_open(self) -> AbstractContextManager[None]:
        """Keep the connection for a run of many short operations (BigQuery: nothing to keep)."""
        return nullcontext()

    @abstractmethod
    def table_schema(self, full_name: str) -> pa.Schema | None:
        """The table's columns as an Arrow schema, or None when the table does not exist."""

    def read(
        self,
        full_name: str,
        columns: Sequence[str] | None = None,
        where: Sequence[Filter] = (),
        *,
        missing_ok: bool = False,
    ) -> pl.DataFrame:
        """The named columns of the rows matching every filter; missing_ok: an absent table reads
        as an empty frame (typed from its declaration if any) instead of raising TableNotFound."""
        try:
            table = self._read_arrow(full_name, columns, where)
        except TableNotFound:
            if not missing_ok:
                raise
            declared = {t.full_name: t for t in all_tables()}.get(full_name)
            if declared is None:
                return pl.DataFrame(schema={c: pl.Null for c in columns or ()})
            return declared.empty_frame().select(columns or declared.column_names)
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    @abstractmethod
    def _read_arrow(
        self, full_name: str, columns: Sequence[str] | None, where: Sequence[Filter]
    ) -> pa.Table:
        """The SELECT itself; raises TableNotFound for an absent table."""

    def commit(
        self,
        replacements: Sequence[Replacement],
        appends: Sequence[tuple[TableSchema, Rows]] = (),
        *,
        before_commit: BeforeCommit | None = None,
    ) -> int:
        """Replace every replacement's partitions and append `appends` (run lines) in ONE
        transaction, so readers never see a mix, an empty window or a partition without its
        line; returns the rows the replacements wrote. A partition without rows ends up empty.
        `before_commit` runs right before the commit: if it raises (a timed-out or interrupted
        run), nothing is committed and the exception propagates."""
        self._check_writable()
        writes = [(r.schema, r.partitions, conform(r.rows, r.schema)) for r in replacements]
        for schema, partitions, rows in writes:
            check_partitions(schema, partitions, rows)
        appended: list[Write] = [(schema, (), conform(rows, schema)) for schema, rows in appends]
        self._commit([*writes, *appended], before_commit)
        return sum(rows.num_rows for _, _, rows in writes)

    @abstractmethod
    def _commit(self, writes: Sequence[Write], before_commit: BeforeCommit | None) -> None:
        """`commit`'s ONE transaction: every write's partitions replaced, or its rows appended."""

    @abstractmethod
    def replace_seasons_of(self, loads: Sequence[SeasonRows]) -> int:
        """Replace the rows of each load's `seasons` (season_year) with its `rows`, every table
        in ONE all-or-nothing step (Phase 3 loads); rows written. An absent table is created in
        the same step (BigQuery: before it, from its declaration), missing columns added."""

    def append(self, schema: TableSchema, rows: Rows) -> None:
        """Append rows (run history) in one transaction, as a commit appends them."""
        self.commit([], [(schema, rows)])

    @abstractmethod
    def ensure_tables(self, schemas: Iterable[TableSchema]) -> list[str]:
        """Create missing datasets, tables and nullable columns; returns what changed."""

    def _check_writable(self) -> None:
        if self.read_only:
            raise WarehouseError(f"{self.url} was opened read-only; this command must not write")


def as_arrow(rows: Rows) -> pa.Table:
    return rows.to_arrow() if isinstance(rows, pl.DataFrame) else rows


def select_sql(
    table_sql: str,
    columns: Sequence[str] | None,
    where: Sequence[Filter],
    placeholder: str,
    quote: str = '"',
) -> tuple[str, dict[str, Any]]:
    """`SELECT cols FROM table WHERE "a" < @p0 AND ...`, the read both warehouses push down:
    `placeholder` is the dialect's parameter prefix (`$`, `@`), `quote` its identifier quote."""
    selected = ", ".join(quote_identifier(c, quote) for c in columns) if columns else "*"
    clauses = " AND ".join(
        f"{quote_identifier(f.column, quote)} {f.op} {placeholder}p{i}" for i, f in enumerate(where)
    )
    clause = f" WHERE {clauses}" if where else ""
    params = {f"p{i}": f.value for i, f in enumerate(where)}
    return f"SELECT {selected} FROM {table_sql}{clause}", params


def check_identifier(name: str) -> str:
    """A name of the form IDENTIFIER (as the input contract demands of Phase 3 columns)."""
    if not IDENTIFIER.fullmatch(name):
        raise WarehouseError(
            f"invalid identifier {name!r}: use letters, digits and underscores, starting with "
            "a letter or underscore (at most 300)"
        )
    return name


def quote_identifier(name: str, quote: str) -> str:
    """The name checked and quoted: a keyword (`order`) is a name too; IDENTIFIER has no quote."""
    return f"{quote}{check_identifier(name)}{quote}"


def conform(rows: Rows, schema: TableSchema) -> pa.Table:
    """Columns in declared order and type, so every warehouse receives the same Arrow layout."""
    try:
        return as_arrow(rows).select(schema.column_names).cast(schema.arrow_schema)
    except (pa.ArrowInvalid, KeyError) as exc:
        raise ValueError(f"rows for {schema.full_name} do not fit its schema: {exc}") from exc


def check_seasons(load: SeasonRows) -> tuple[pa.Table, list[int]]:
    """The load's rows as Arrow and the seasons to replace, sorted; a row outside them would be
    written unreplaced."""
    full_name, rows = load.full_name, as_arrow(load.rows)
    if not load.seasons:
        raise ValueError(f"{full_name}: no seasons to replace")
    if "season_year" not in rows.column_names:
        raise ValueError(f"{full_name}: rows have no season_year column")
    allowed = sorted({int(s) for s in load.seasons})
    found = rows.column("season_year").unique().to_pylist()
    stray = sorted(set(found) - set(allowed), key=str)
    if stray:
        raise ValueError(f"{full_name}: rows of season {stray[0]} outside the seasons replaced")
    return rows, allowed


def check_partitions(schema: TableSchema, partitions: Sequence[date], rows: pa.Table) -> None:
    """A partition replace must not write rows outside the partitions it replaces."""
    if not partitions:
        raise ValueError(f"{schema.full_name}: no partitions to replace")
    found = rows.column(schema.date_column).unique().to_pylist()  # Arrow's, not a loop
    stray = sorted(set(found) - set(partitions))
    if stray:
        raise ValueError(
            f"{schema.full_name}: rows dated {stray[0]} outside the partitions being replaced"
        )


def check_stored_columns(warehouse: Warehouse, schemas: Iterable[TableSchema]) -> None:
    """Refuse a stored table an older version left with other columns: every read and write
    of it would fail deep inside a query (`stored_table_problem`). An absent table passes."""
    for schema in schemas:
        problem = stored_table_problem(schema, warehouse.table_schema(schema.full_name))
        if problem is not None:
            raise WarehouseError(problem)
