"""Pick the warehouse from PHASE4_WAREHOUSE: `duckdb:///abs/path.duckdb` or `bigquery://PROJECT`.

Every bad setting is a one-line WarehouseError naming the setting and what to do
(docs/warehouse.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tasks.warehouse.base import (
    Filter,
    TableNotFound,
    TransientWarehouseError,
    Warehouse,
    WarehouseError,
    check_stored_columns,
)
from tasks.warehouse.locks import exclusive

WAREHOUSE_ENV = "PHASE4_WAREHOUSE"
EXPECTED = "expected duckdb:///absolute/path.duckdb or bigquery://PROJECT[?location=US]"


def warehouse_url(url: str | None = None) -> str:
    """The configured URL; unset means the DuckDB file under the current directory."""
    return (
        url or os.environ.get(WAREHOUSE_ENV, "").strip() or f"duckdb://{default_warehouse_path()}"
    )


def default_warehouse_path() -> Path:
    return (Path.cwd() / ".phase4" / "warehouse.duckdb").resolve()


def is_utf8(path: str | Path) -> bool:
    """Polars and DuckDB take UTF-8 paths only (a TypeError or a C++ bad_cast otherwise); an
    undecodable byte of a name arrives as a lone surrogate (os.fsdecode)."""
    return not any("\ud800" <= c <= "\udfff" for c in str(path))


def duckdb_path(url: str) -> Path:
    """The absolute file of a duckdb:// URL. Relative paths are refused rather than resolved
    against whatever directory a command happens to run in (`~` is expanded)."""
    parsed = urlparse(url)
    raw = (parsed.netloc + parsed.path) if parsed.netloc else parsed.path
    if not raw:
        raise WarehouseError(f"{WAREHOUSE_ENV}={url}: no file path after duckdb://; {EXPECTED}")
    if parsed.query or parsed.fragment:  # else `a#b.duckdb` would open the file `a`
        raise WarehouseError(
            f"{WAREHOUSE_ENV}={url}: a duckdb:// URL takes no ?parameters or #fragment; rename "
            "a file whose name holds ? or #"
        )
    if not is_utf8(raw):
        raise WarehouseError(f"{WAREHOUSE_ENV}={url}: not a UTF-8 name; name the file in UTF-8")
    path = Path(os.path.expanduser(raw))  # `~nosuchuser` stays as it is (Path's raises)
    if not path.is_absolute():
        raise WarehouseError(
            f"{WAREHOUSE_ENV}={url}: relative path {raw}; write an absolute one with three "
            f"slashes, e.g. duckdb://{Path.cwd() / raw}"
        )
    return Path(os.path.normpath(path))


# A Google Cloud project id (letters, digits, dashes; `domain.com:project` for the old
# domain-scoped ones) and a BigQuery location (`US`, `EU`, `europe-west1`, ...).
PROJECT = re.compile(r"(?:[a-z0-9.-]+:)?[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")  # no `-` at its end
LOCATION = re.compile(r"[A-Za-z]+(?:-[a-z]+[0-9]*)?")


def bigquery_target(url: str) -> tuple[str, str | None]:
    """The project and location of a bigquery:// URL, each checked; one line when bad."""
    parsed = urlparse(url)
    if not parsed.netloc:
        raise WarehouseError(f"{WAREHOUSE_ENV}={url}: no project after bigquery://; {EXPECTED}")
    if not PROJECT.fullmatch(parsed.netloc) or parsed.path not in ("", "/"):
        raise WarehouseError(
            f"{WAREHOUSE_ENV}={url}: {parsed.netloc + parsed.path} is not a project id "
            "(lowercase letters, digits and dashes, starting with a letter); " + EXPECTED
        )
    query = parse_qs(parsed.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"location"})
    if unknown:
        raise WarehouseError(
            f"{WAREHOUSE_ENV}={url}: unknown parameter {unknown[0]}; only ?location= is taken"
        )
    location = query.get("location", [None])[-1]
    if location is not None and not LOCATION.fullmatch(location):
        raise WarehouseError(
            f"{WAREHOUSE_ENV}={url}: location {location!r} is not a BigQuery location "
            "such as US, EU or europe-west1"
        )
    return parsed.netloc, location


def open_warehouse(url: str | None = None, *, read_only: bool = False) -> Warehouse:
    """The configured warehouse. read_only: never creates, never writes (status, export)."""
    resolved = checked_warehouse_url(url)
    if urlparse(resolved).scheme == "duckdb":  # DUCKDB:// too, as checked_warehouse_url
        from tasks.warehouse.duckdb_warehouse import open_duckdb

        path = duckdb_path(resolved)
        return open_duckdb(path, read_only=read_only, create_dir=path == default_warehouse_path())
    project, location = bigquery_target(resolved)
    from tasks.warehouse.bigquery_warehouse import open_bigquery

    return open_bigquery(project, location=location, read_only=read_only)


def checked_warehouse_url(url: str | None = None) -> str:
    """The configured URL once its form is checked, without opening anything: a command can
    refuse a bad setting before it starts a server or imports a client."""
    resolved = warehouse_url(url)
    scheme = urlparse(resolved).scheme
    if scheme == "duckdb":
        duckdb_path(resolved)
    elif scheme == "bigquery":
        bigquery_target(resolved)
    else:
        raise WarehouseError(f"{WAREHOUSE_ENV}={resolved}: unknown scheme; {EXPECTED}")
    return resolved


__all__ = [
    "Filter",
    "TableNotFound",
    "TransientWarehouseError",
    "Warehouse",
    "WarehouseError",
    "check_stored_columns",
    "checked_warehouse_url",
    "exclusive",
    "open_warehouse",
    "warehouse_url",
]
