"""One run per slate date at a time. DuckDB lives on one machine: a file lock beside the
database. BigQuery runs can start anywhere: a Prefect global concurrency limit of 1, which holds
across every process that talks to the same Prefect API (Prefect Cloud in production).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.warehouse.base import Warehouse


@contextmanager
def exclusive(warehouse: Warehouse, name: str, timeout_seconds: float) -> Iterator[None]:
    """Hold the lock `name`; TimeoutError after timeout_seconds if another run keeps it."""
    from tasks.warehouse.duckdb_warehouse import DuckDBWarehouse

    if isinstance(warehouse, DuckDBWarehouse):
        from filelock import FileLock
        from filelock import Timeout as LockTimeout

        path = lock_file(warehouse.path, name)
        try:
            with FileLock(path, timeout=timeout_seconds):
                yield
        except LockTimeout:
            raise TimeoutError(f"{path.stem} is held by another run (lock file {path})") from None
    else:
        from prefect.client.orchestration import get_client
        from prefect.concurrency.sync import concurrency

        with get_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        with concurrency(name, occupy=1, timeout_seconds=timeout_seconds, strict=True):
            yield


def lock_file(database: Path, name: str) -> Path:
    return database.parent / f"{database.name}.locks" / f"{name}.lock"
