"""The embedded warehouse: one DuckDB file, datasets as schemas, BigQuery table names kept."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import pyarrow as pa

from quality.schemas import TableSchema
from tasks.warehouse.base import (
    BeforeCommit,
    Filter,
    SeasonRows,
    TableNotFound,
    TransientWarehouseError,
    Warehouse,
    WarehouseError,
    Write,
    check_identifier,
    check_seasons,
    quote_identifier,
    select_sql,
)

# A writer waits for another writer (a nightly run for the previous date finishing); a
# read-only command (status, export) gives up sooner and says who holds the file.
LOCK_WAIT_SECONDS = 120.0
READ_ONLY_LOCK_WAIT_SECONDS = 10.0
# DuckDB 2.0 races when threads of one process scan registered Arrow tables through separate
# connections to one database ("python_arrow_scan does not exist"); operations are
# milliseconds long, so one process-wide lock costs nothing and removes the race.
_IN_PROCESS = threading.RLock()
# Files this process keeps open (DuckDBWarehouse.held_open), by how many blocks: operations
# take a cursor of the kept connection instead of opening the file. Guarded by _IN_PROCESS.
_HELD: dict[Path, duckdb.DuckDBPyConnection] = {}
_HOLDERS: Counter[Path] = Counter()


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    """A DuckDB identifier, checked and double-quoted (keywords are names too)."""
    return quote_identifier(name, '"')


def _table_name(full_name: str) -> str:
    return ".".join(_quoted(part) for part in full_name.split("."))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def open_error(path: Path, exc: duckdb.Error) -> WarehouseError:
    """What DuckDB's refusal to open the file means for the operator, in one line."""
    text = _first_line(exc)
    lowered = text.lower()  # not just "lock": a damaged file's message says "in block at"
    if "conflicting lock" in lowered or "could not set lock" in lowered:
        # "... Conflicting lock is held in /usr/bin/python3 (PID 123). See also https://..."
        holder = text.partition("lock is held in")[2].partition(". See also")[0].strip()
        return TransientWarehouseError(
            f"warehouse {path} is locked by another process{f' ({holder})' if holder else ''}: "
            "wait for it to finish, or stop it, then retry"
        )
    if "permission denied" in lowered or "read-only file system" in lowered:
        return WarehouseError(
            f"permission denied opening warehouse {path}: give this user read and write access "
            "to the file and its directory, or set PHASE4_WAREHOUSE to a file you own"
        )
    return WarehouseError(  # a damaged catalog too ("Corrupt database file: ...")
        f"cannot open warehouse {path} ({text}): is it a DuckDB file? Set PHASE4_WAREHOUSE "
        "to another file, or move this one away and run `phase4 warehouse init`"
    )


@contextmanager
def _session(con: duckdb.DuckDBPyConnection, path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """One operation's connection or cursor: timestamps in UTC, closed afterwards; a damaged
    block, found when a read reaches it (a damaged catalog when the file opens), said."""
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    except duckdb.Error as exc:
        if not _first_line(exc).startswith("Corrupt database file"):
            raise
        raise WarehouseError(
            f"warehouse {path} is damaged ({_first_line(exc)}): restore it from a backup, or "
            "move it away and rebuild it (`phase4 load-phase3`, then `phase4 backfill`)"
        ) from exc
    finally:
        con.close()


class DuckDBWarehouse(Warehouse):
    """Opens the file per operation so other processes (status, export) can read between runs;
    one process at a time holds it, another waits up to lock_wait_seconds (then transient)."""

    def __init__(
        self, path: Path, *, read_only: bool = False, lock_wait_seconds: float = LOCK_WAIT_SECONDS
    ) -> None:
        super().__init__()
        self.path = path
        self.read_only = read_only
        self.lock_wait_seconds = lock_wait_seconds
        self.url = f"duckdb://{path}"

    @contextmanager
    def held_open(self) -> Iterator[None]:
        """Keep the file open until the block ends: operations inside, from any thread, take a
        cursor of it (~1 ms) instead of opening the file (30-100 ms: the catalog is loaded on
        open, a checkpoint written on close). Blocks may nest or overlap: the last closes it."""
        with _IN_PROCESS:
            if not _HOLDERS[self.path]:
                _HELD[self.path] = self._connect_file()
            _HOLDERS[self.path] += 1
        try:
            yield
        finally:
            with _IN_PROCESS:
                _HOLDERS[self.path] -= 1
                if not _HOLDERS[self.path]:
                    held = _HELD.pop(self.path)
                    # DuckDB refuses to close while a thread still reads through a cursor (a block
                    # ended by an error or a signal): wait (10 s at most: the exit closes it), or
                    # that refusal replaces the error.
                    for _ in range(1000):
                        try:
                            held.close()
                            break
                        except duckdb.ResourceInUseException:
                            time.sleep(0.01)

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One operation at a time, on a cursor of the kept connection (even a read-only
        warehouse's: DuckDB opens a file one way per process), else on the file opened."""
        with _IN_PROCESS:
            held = _HELD.get(self.path)
            con = held.cursor() if held is not None else self._connect_file()
            with _session(con, self.path) as session:
                yield session

    @contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Reads of a kept connection run side by side (each on its own cursor, a snapshot);
        writes and file opens still go one at a time."""
        with _IN_PROCESS:
            held = _HELD.get(self.path)
            cursor = held.cursor() if held is not None else None
        with self._connect() if cursor is None else _session(cursor, self.path) as con:
            yield con

    def _connect_file(self) -> duckdb.DuckDBPyConnection:
        if self.read_only and not self.path.exists():
            raise WarehouseError(
                f"no warehouse at {self.path}: set PHASE4_WAREHOUSE, or create it with "
                "`phase4 warehouse init` (read-only commands never create it)"
            )
        deadline = time.monotonic() + self.lock_wait_seconds
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.Error as exc:
                error = open_error(self.path, exc)
                if not isinstance(error, TransientWarehouseError) or time.monotonic() > deadline:
                    raise error from exc
                time.sleep(0.2)

    def table_schema(self, full_name: str) -> pa.Schema | None:
        sql = f"SELECT * FROM {_table_name(full_name)} LIMIT 0"
        with self._reading() as con:
            try:
                return con.sql(sql).to_arrow_table().schema
            except duckdb.CatalogException:
                return None

    def _read_arrow(
        self, full_name: str, columns: Sequence[str] | None, where: Sequence[Filter]
    ) -> pa.Table:
        query, params = select_sql(_table_name(full_name), columns, where, "$")
        with self._reading() as con:
            try:
                return con.sql(query, params=params or None).to_arrow_table()
            except duckdb.CatalogException as exc:
                if "Table" in str(exc) and "does not exist" in str(exc):
                    raise TableNotFound(full_name) from exc
                raise WarehouseError(f"reading {full_name}: {_first_line(exc)}") from exc

    def _in_transaction(
        self,
        con: duckdb.DuckDBPyConnection,
        statements: Sequence[str],
        before_commit: BeforeCommit | None = None,
    ) -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            if before_commit is not None:
                before_commit()
            con.execute("COMMIT")
        except BaseException:
            # A query interrupted by a signal (Prefect's SIGTERM handler raises in the middle
            # of it) has ended the transaction already: the error that ended it is raised.
            with suppress(duckdb.TransactionException):
                con.execute("ROLLBACK")
            raise

    def _commit(self, writes: Sequence[Write], before_commit: BeforeCommit | None) -> None:
        # A chunk of dates (a backfill's) skips DuckDB's vacuum when its commit checkpoints: it
        # merged row groups for 0.3-0.4 s a chunk, and a chunk's rows are whole row groups.
        chunk = len({day for _, partitions, _ in writes for day in partitions}) > 1
        statements = []
        with self._connect() as con:  # per table: one DELETE of its dates, one INSERT
            con.execute("SET max_vacuum_tasks = 0" if chunk else "RESET max_vacuum_tasks")
            for i, (schema, partitions, rows) in enumerate(writes):
                table = _table_name(schema.full_name)
                if partitions:
                    days = ", ".join(f"DATE '{d}'" for d in sorted(set(partitions)))
                    statements.append(
                        f"DELETE FROM {table} WHERE {schema.partition_column} IN ({days})"
                    )
                if rows.num_rows:
                    view = f"phase4_staged_{i}"
                    con.register(view, rows)
                    statements.append(f"INSERT INTO {table} BY NAME SELECT * FROM {view}")
            self._in_transaction(con, statements, before_commit)

    def replace_seasons_of(self, loads: Sequence[SeasonRows]) -> int:
        """Every table's DDL, DELETE and INSERT in one transaction: all or nothing."""
        self._check_writable()
        staged = [(load.full_name, *check_seasons(load)) for load in loads]
        statements: list[str] = []
        with self._connect() as con:
            for i, (full_name, rows, seasons) in enumerate(staged):
                view = f"phase4_staged_rows_{i}"
                con.register(view, rows)
                dataset, name = (check_identifier(p) for p in full_name.split("."))
                table = _table_name(full_name)
                existing = {column.lower() for column in _columns(con, dataset, name)}
                if not existing:  # a new table takes the file's columns and types
                    statements += [
                        f"CREATE SCHEMA IF NOT EXISTS {_quoted(dataset)}",
                        f"CREATE TABLE {table} AS SELECT * FROM {view}",
                    ]
                    continue
                describe = f"SELECT column_name, column_type FROM (DESCRIBE {view})"
                types = dict(con.execute(describe).fetchall())
                statements += [
                    f"ALTER TABLE {table} ADD COLUMN {_quoted(c)} {types[c]}"
                    for c in rows.column_names
                    if c.lower() not in existing
                ]
                statements += [
                    f"DELETE FROM {table} WHERE season_year IN ({', '.join(map(str, seasons))})",
                    f"INSERT INTO {table} BY NAME SELECT * FROM {view}",
                ]
            try:
                self._in_transaction(con, statements)
            except duckdb.Error as exc:
                tables = ", ".join(full_name for full_name, _, _ in staged)
                raise WarehouseError(
                    f"replacing seasons of {tables} failed, every table left as it was: "
                    f"{_first_line(exc)}"
                ) from exc
        return sum(rows.num_rows for _, rows, _ in staged)

    def ensure_tables(self, schemas: Iterable[TableSchema]) -> list[str]:
        self._check_writable()
        changes: list[str] = []
        with self._connect() as con:
            for schema in schemas:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quoted(schema.dataset)}")
                existing = set(_columns(con, schema.dataset, schema.name))
                if not existing:
                    con.execute(create_table_sql(schema))
                    changes.append(f"created {schema.full_name}")
                    continue
                # Columns declared after the table was created (nullable), as BigQuery does.
                missing = [c for c in schema.columns if c.name not in existing]
                for column in missing:
                    con.execute(
                        f"ALTER TABLE {_table_name(schema.full_name)} ADD COLUMN "
                        f"{_quoted(column.name)} {column.duckdb_type}"
                    )
                if missing:
                    names = ", ".join(c.name for c in missing)
                    changes.append(f"added {names} to {schema.full_name}")
        return changes


def _columns(con: duckdb.DuckDBPyConnection, dataset: str, name: str) -> list[str]:
    sql = "SELECT column_name FROM information_schema.columns WHERE table_schema=? AND table_name=?"
    return [column for (column,) in con.execute(sql, [dataset, name]).fetchall()]


def create_table_sql(schema: TableSchema) -> str:
    columns = ",\n  ".join(
        f"{_quoted(c.name)} {c.duckdb_type}" + (" NOT NULL" if c.mode == "REQUIRED" else "")
        for c in schema.columns
    )
    table = _table_name(schema.full_name)
    comments = "".join(
        f"; COMMENT ON COLUMN {table}.{_quoted(c.name)} IS {_sql_literal(c.description)}"
        for c in schema.columns
        if c.description
    )
    return (
        f"CREATE TABLE {table} (\n  {columns}\n)"
        f"; COMMENT ON TABLE {table} IS {_sql_literal(schema.description)}{comments}"
    )


def _allows(path: Path, access: int) -> bool:
    """os.access, and the mode bits too: root passes os.access, but a file someone made
    read-only (chmod a-w) is still meant to stay unwritten."""
    bits = 0o444 if access == os.R_OK else 0o222
    return os.access(path, access) and bool(path.stat().st_mode & bits)


def open_duckdb(
    path: Path, *, read_only: bool = False, create_dir: bool = False
) -> DuckDBWarehouse:
    """Check the file before any connection, so each bad input gets its own one-line message;
    only the default `.phase4/` directory is ever created (create_dir), never when read-only."""
    where = "the default path" if create_dir else f"PHASE4_WAREHOUSE=duckdb://{path}"
    if path.is_dir():
        raise WarehouseError(f"{path} is a directory ({where}): name a .duckdb file inside it")
    # DuckDB 2 opens an existing Parquet, CSV or JSON file (even empty) as a throwaway
    # in-memory database; a DuckDB file has "DUCK" at byte 8. Absent: DuckDB creates it.
    with suppress(OSError), path.open("rb") as file:
        if file.read(12)[8:] != b"DUCK":
            raise WarehouseError(
                f"{path} is not a DuckDB file ({where}; DuckDB would open it as an empty "
                "in-memory database and keep no write): point PHASE4_WAREHOUSE at a .duckdb file"
            )
    if read_only:
        if not path.exists():
            raise WarehouseError(
                f"no warehouse at {path} ({where}): this command only reads; create it with "
                "`phase4 warehouse init` or `phase4 load-phase3`, or point PHASE4_WAREHOUSE "
                "at an existing file"
            )
        if not _allows(path, os.R_OK):
            raise WarehouseError(
                f"permission denied reading warehouse {path} ({where}): give this user read "
                "access, or point PHASE4_WAREHOUSE at a file you can read"
            )
        return DuckDBWarehouse(path, read_only=True, lock_wait_seconds=READ_ONLY_LOCK_WAIT_SECONDS)
    if not path.parent.is_dir():
        if path.parent.exists():  # a file where the folder should be (`.phase4` made by hand)
            raise WarehouseError(
                f"{path.parent} is a file, not a folder ({where}): move the file away, or "
                "point PHASE4_WAREHOUSE at a file elsewhere"
            )
        if not create_dir:
            raise WarehouseError(
                f"directory {path.parent} does not exist ({where}): create it first, or fix "
                "the path (it is never created for you)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not _allows(path, os.W_OK):
        raise WarehouseError(
            f"warehouse {path} is read-only ({where}): make it writable (chmod u+w), or use a "
            "read-only command such as `phase4 status`"
        )
    if not _allows(path.parent, os.W_OK):
        raise WarehouseError(
            f"permission denied: cannot write in {path.parent} ({where}): DuckDB needs to write "
            "the file and its .wal beside it; fix the permissions or choose another directory"
        )
    return DuckDBWarehouse(path)
