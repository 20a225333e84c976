"""Production warehouse: BigQuery through google-cloud-bigquery, Arrow in and out, no pandas.

Partitions are replaced by a Parquet load into a staging table, then one transaction script
(DELETE, INSERT from staging), not a WRITE_TRUNCATE load to `table$YYYYMMDD`: one transaction
replaces many dates at once (backfills), on every table, and on the emulator, which rejects
partition decorators.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from quality.schemas import (
    BIGQUERY_ALIASES,
    TYPES,
    Column,
    TableSchema,
    all_tables,
    bigquery_float_arrays,
    bigquery_type_of_arrow,
)
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

ENDPOINT_ENV = "PHASE4_BIGQUERY_ENDPOINT"
CREDENTIALS_BLOCK_ENV = "PHASE4_GCP_CREDENTIALS_BLOCK"
READ_API_ENV = "PHASE4_BIGQUERY_READ_API"
MAX_BYTES_BILLED_ENV = "PHASE4_BIGQUERY_MAX_BYTES_BILLED"
# One real season of Phase 3 (2023-24, the five tables, declared columns only) is 11.3 MiB of
# logical bytes, its largest table 5.1 MiB: 1 GiB per query leaves ~90x for several seasons of
# history in unpruned tables, and bounds a runaway query at well under a cent.
DEFAULT_MAX_BYTES_BILLED = 1 << 30
READ_SESSION_ROLE = "roles/bigquery.readSessionUser"
# Waits between attempts of a transaction BigQuery aborted for a concurrent update; after the
# last one the error goes up as TransientWarehouseError and the task's own retries take over.
ABORT_BACKOFF_SECONDS: tuple[float, ...] = (1.0, 4.0)
# A staging table a crashed load could not drop expires by itself after this.
STAGING_EXPIRATION = timedelta(hours=1)
ReadApi = Literal["storage", "rest"]
# Projects whose read sessions were denied in this process: REST from then on, warned once.
_STORAGE_DENIED: set[str] = set()
_LABEL_UNSAFE = re.compile(r"[^a-z0-9_-]")
_log = logging.getLogger(__name__)
T = TypeVar("T")
# A table's part of a staged transaction; its WHERE (None: appended) holds literals, never user
# text: scripts take no query parameters on every backend (the emulator refuses them).
Fields = list[bigquery.SchemaField]
Part = tuple[str, pa.Table, Fields, str | None]


def _arrow_type(field: bigquery.SchemaField) -> pa.DataType:
    kind = BIGQUERY_ALIASES.get(field.field_type.upper(), field.field_type.upper())
    if kind == "DATETIME":
        base = pa.timestamp("us")
    else:
        base = TYPES[kind].arrow if kind in TYPES else pa.string()
    return pa.list_(base) if field.mode == "REPEATED" else base


def _parameter(name: str, value: Any) -> bigquery.ScalarQueryParameter:
    """The parameter's BigQuery type is the declared type of the value's Arrow type."""
    try:
        arrow = pa.scalar(value).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        arrow = pa.null()
    kind = None if pa.types.is_nested(arrow) else bigquery_type_of_arrow(arrow)
    if kind is None:
        raise WarehouseError(f"unsupported filter value {value!r}")
    return bigquery.ScalarQueryParameter(name, kind, value)


def label_value(text: str) -> str:
    """BigQuery label rules: lowercase letters, digits, `_` and `-`, at most 63 characters."""
    return _LABEL_UNSAFE.sub("_", text.lower())[:63]


def job_labels(labels: dict[str, str]) -> dict[str, str]:
    return {"app": "phase4", **{label_value(k): label_value(v) for k, v in labels.items()}}


def read_api_setting(default: ReadApi) -> ReadApi:
    value = os.environ.get(READ_API_ENV, "").strip().lower() or default
    if value not in ("storage", "rest"):
        raise WarehouseError(f"{READ_API_ENV}={value}: expected storage or rest")
    return cast(ReadApi, value)


def max_bytes_billed_setting() -> int:
    value = os.environ.get(MAX_BYTES_BILLED_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_BYTES_BILLED
    with contextlib.suppress(ValueError):  # BigQuery bills 10 MiB a table: less fails all
        if 10 * 2**20 <= (cap := int(value)) < 2**63:
            return cap
    raise WarehouseError(
        f"{MAX_BYTES_BILLED_ENV}={value}: expected a positive whole number of bytes, at least "
        "10485760 (BigQuery bills at least 10 MiB a table, so any lower cap fails every query)"
    )


def _is_aborted(exc: gexc.GoogleAPIError) -> bool:
    """BigQuery cancels one of two transactions that touch the same table (a 400)."""
    text = str(exc).lower()
    return "aborted due to concurrent update" in text or "could not serialize access" in text


def _exceeds_cap(exc: gexc.GoogleAPIError) -> bool:
    reasons = {e.get("reason") for e in getattr(exc, "errors", None) or [] if isinstance(e, dict)}
    return "bytesBilledLimitExceeded" in reasons or "limit for bytes billed" in str(exc).lower()


def _explain(exc: Exception, project: str, what: str, cap: int | None = None) -> WarehouseError:
    """Google API errors as messages that say what to fix, judged by the message too: a load
    into a missing dataset and an aborted transaction both come back as 400."""
    message = " ".join(str(exc).split())
    if isinstance(exc, gexc.GoogleAPIError) and _is_aborted(exc):
        return TransientWarehouseError(
            f"BigQuery aborted a transaction {what} in project {project} because another one "
            f"updated the same table; retrying. {message}"
        )
    if isinstance(exc, gexc.GoogleAPIError) and _exceeds_cap(exc):
        return WarehouseError(
            f"query {what} in project {project} would bill more than the cap of {cap} bytes: "
            f"check the query's filters, or raise {MAX_BYTES_BILLED_ENV}. {message}"
        )
    if isinstance(
        exc,
        gexc.ServiceUnavailable
        | gexc.InternalServerError
        | gexc.TooManyRequests
        | gexc.BadGateway
        | gexc.GatewayTimeout
        | gexc.DeadlineExceeded,
    ):
        return TransientWarehouseError(
            f"BigQuery unavailable {what} in project {project}: {message}"
        )
    if "not found: dataset" in message.lower():  # also "… was not found in location EU"
        return WarehouseError(
            f"dataset not found {what} in project {project}: check PHASE4_WAREHOUSE (its "
            "?location=, if any, must be the datasets'), then load Phase 3 or run `phase4 "
            f"warehouse init`. {message}"
        )
    if isinstance(exc, gexc.PermissionDenied) and "readsession" in message.lower():
        return WarehouseError(
            f"permission denied {what} in project {project}: reading through the Storage Read "
            f"API needs {READ_SESSION_ROLE} on the project (or set {READ_API_ENV}=rest). "
            f"{message}"
        )
    if isinstance(exc, gexc.Forbidden):
        return WarehouseError(
            f"permission denied {what} in project {project}: the account needs "
            "roles/bigquery.jobUser and roles/bigquery.readSessionUser on the project, "
            "roles/bigquery.dataViewer on nba_analytics and roles/bigquery.dataEditor on "
            f"nba_precompute and nba_predictions (docs/bigquery.md). {message}"
        )
    if isinstance(exc, gexc.NotFound) and "project" in message.lower():
        return WarehouseError(
            f"project {project} not found {what}: check PHASE4_WAREHOUSE. {message}"
        )
    return WarehouseError(f"BigQuery error {what} in project {project}: {message}")


def _warn(message: str) -> None:
    """To the Prefect run log when inside a run, else to the module's logger."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        get_run_logger().warning(message)
    except MissingContextError:
        _log.warning(message)


class BigQueryWarehouse(Warehouse):
    bills_bytes = True

    def __init__(
        self,
        client: bigquery.Client,
        project: str,
        *,
        read_api: ReadApi = "storage",
        read_only: bool = False,
        max_bytes_billed: int = DEFAULT_MAX_BYTES_BILLED,
    ) -> None:
        super().__init__()
        self.client = client
        self.project = project
        self.read_api: ReadApi = read_api
        self.read_only = read_only
        self.max_bytes_billed = max_bytes_billed
        self.abort_backoff_seconds = ABORT_BACKOFF_SECONDS
        self.url = f"bigquery://{project}"

    def _table_id(self, full_name: str) -> str:
        """project.dataset.table, for the client's calls and inside backticks in SQL."""
        dataset, table = (check_identifier(p) for p in full_name.split("."))
        return f"{self.project}.{dataset}.{table}"

    def _query(self, sql: str, params: list[bigquery.ScalarQueryParameter]) -> bigquery.QueryJob:
        """Every query job carries our labels and the byte cap."""
        config = bigquery.QueryJobConfig(
            query_parameters=params,
            labels=job_labels(self.labels),
            maximum_bytes_billed=self.max_bytes_billed,
        )
        job = self.client.query(sql, job_config=config)
        try:
            job.result()
        finally:
            self.account(job)
        return job

    def account(self, job: bigquery.QueryJob) -> None:
        """Add a finished job's bytes to this object's counters (None counts as 0)."""
        self.bytes_processed += job.total_bytes_processed or 0
        self.bytes_billed += job.total_bytes_billed or 0

    def table_schema(self, full_name: str) -> pa.Schema | None:
        try:
            table = self.client.get_table(self._table_id(full_name))
        except gexc.NotFound:
            return None
        except gexc.GoogleAPIError as exc:
            raise self._explain(exc, f"describing {full_name}") from exc
        return pa.schema([pa.field(f.name, _arrow_type(f)) for f in table.schema])

    def _explain(self, exc: Exception, what: str) -> WarehouseError:
        return _explain(exc, self.project, what, self.max_bytes_billed)

    def _read_arrow(
        self, full_name: str, columns: Sequence[str] | None, where: Sequence[Filter]
    ) -> pa.Table:
        sql, values = select_sql(f"`{self._table_id(full_name)}`", columns, where, "@", "`")
        try:
            read = self._fetch(self._query(sql, [_parameter(k, v) for k, v in values.items()]))
            return bigquery_float_arrays(read, to_nan=False)
        except gexc.GoogleAPIError as exc:
            if isinstance(exc, gexc.NotFound) and self.table_schema(full_name) is None:
                raise TableNotFound(full_name, f" in project {self.project}") from exc
            raise self._explain(exc, f"reading {full_name}") from exc

    def _fetch(self, job: bigquery.QueryJob) -> pa.Table:
        """Query results through the Storage Read API, or REST once read sessions are denied."""
        if self.read_api != "rest" and self.project not in _STORAGE_DENIED:
            try:
                return self._fetch_storage(job)
            except gexc.PermissionDenied as exc:
                _STORAGE_DENIED.add(self.project)
                _warn(
                    f"BigQuery Storage Read API denied in project {self.project} (grant "
                    f"{READ_SESSION_ROLE} on the project, or set {READ_API_ENV}=rest): reading "
                    f"through REST for the rest of this run. {' '.join(str(exc).split())}"
                )
        return job.to_arrow(create_bqstorage_client=False)

    def _fetch_storage(self, job: bigquery.QueryJob) -> pa.Table:
        return job.to_arrow(create_bqstorage_client=True)

    def _with_backoff(self, attempt: Callable[[], T], what: str) -> T:
        """Retry what BigQuery aborted for a concurrent update, waiting longer each time."""
        waits = list(self.abort_backoff_seconds)
        while True:
            try:
                return attempt()
            except gexc.GoogleAPIError as exc:
                error = self._explain(exc, what)
                if not isinstance(error, TransientWarehouseError) or not waits:
                    raise error from exc
                _warn(f"{error}; next attempt in {waits[0]:g} s")
                time.sleep(waits.pop(0))

    def _commit(self, writes: Sequence[Write], before_commit: BeforeCommit | None) -> None:
        parts: list[Part] = []
        for schema, partitions, rows in writes:
            days = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(set(partitions)))
            where = f"{schema.partition_column} IN ({days})" if partitions else None
            parts.append((schema.full_name, rows, [_field(c) for c in schema.columns], where))
        what = "committing " + ", ".join(sorted({name for name, _, _, _ in parts}))
        self._transaction(parts, what, before_commit)

    def replace_seasons_of(self, loads: Sequence[SeasonRows]) -> int:
        self._check_writable()
        staged = [check_seasons(load) for load in loads]
        for rows, _ in staged:
            for name in rows.column_names:
                check_identifier(name)
        what = f"replacing seasons of {', '.join(load.full_name for load in loads)}"
        parts: list[Part] = []
        try:
            for load, (rows, seasons) in zip(loads, staged, strict=True):
                fields = fields_from_arrow(rows.schema)
                self._ensure_phase3_table(load.full_name, fields)
                where = f"season_year IN ({', '.join(map(str, seasons))})"
                parts.append((load.full_name, rows, fields, where))
        except gexc.GoogleAPIError as exc:
            raise self._explain(exc, what) from exc
        self._transaction(parts, what)
        return sum(rows.num_rows for rows, _ in staged)

    def _transaction(
        self, parts: Sequence[Part], what: str, before_commit: BeforeCommit | None = None
    ) -> None:
        """Every part's rows staged, then ONE script of their DELETEs and INSERTs; before_commit
        runs right before it is submitted (a raise submits nothing). The staging tables are
        dropped whatever happens, and expire by themselves in case the drop never runs."""
        script, stagings = ["BEGIN TRANSACTION;"], []
        try:
            for full_name, rows, fields, where in parts:
                target = self._table_id(full_name)
                if where is not None:
                    script.append(f"DELETE FROM `{target}` WHERE {where};")
                if rows.num_rows:
                    staging = f"{target.rsplit('.', 1)[0]}._staging_{uuid.uuid4().hex[:12]}"
                    stagings.append(staging)
                    self._stage(rows, staging, fields)
                    columns = ", ".join(quote_identifier(c, "`") for c in rows.column_names)
                    script.append(
                        f"INSERT INTO `{target}` ({columns}) SELECT {columns} FROM `{staging}`;"
                    )
            script.append("COMMIT TRANSACTION;")
            if before_commit is not None:
                before_commit()
            self._with_backoff(lambda: self._query("\n".join(script), []), what)
        except gexc.GoogleAPIError as exc:
            raise self._explain(exc, what) from exc
        finally:
            for staging in stagings:
                self.client.delete_table(staging, not_found_ok=True)

    def _ensure_phase3_table(self, full_name: str, fields: Fields) -> None:
        """Create the table from its declaration when absent (a WRITE_TRUNCATE load would let a
        second first load overwrite it), then add the columns it lacks (nullable). Outside the
        transaction, which takes no DDL: a failed load leaves only nullable columns behind."""
        table_id = self._table_id(full_name)
        self.client.create_dataset(table_id.rsplit(".", 1)[0], exists_ok=True)
        try:
            existing = self.client.get_table(table_id)
        except gexc.NotFound:
            declared = {t.full_name: t for t in all_tables()}.get(full_name)
            if declared is None:
                table = bigquery.Table(table_id, schema=fields)
            else:
                table = bigquery_table(declared, table_id, nullable=True)
                # Phase 3 loads and season counts filter on season_year, not the date.
                table.require_partition_filter = False
            existing = self.client.create_table(table, exists_ok=True)
        known = {f.name.lower() for f in existing.schema}
        for field in [f for f in fields if f.name.lower() not in known]:
            kind = f"ARRAY<{field.field_type}>" if field.mode == "REPEATED" else field.field_type
            # DDL, one column a statement (the emulator takes one ALTER per statement, and
            # its query engine sees the column only when added this way).
            self._query(
                f"ALTER TABLE `{table_id}` ADD COLUMN IF NOT EXISTS "
                f"{quote_identifier(field.name, '`')} {kind}",
                [],
            )

    def _stage(self, rows: pa.Table, staging: str, fields: Fields) -> None:
        """Loaded before its expiration is set, so a load into a missing dataset says so
        (creating the table first gets a retried 500 from the emulator, not BigQuery's 404)."""
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=fields,
            labels=job_labels(self.labels),
            parquet_options=bigquery.ParquetOptions.from_api_repr({"enableListInference": True}),
        )
        parquet = io.BytesIO()
        pq.write_table(bigquery_float_arrays(rows, to_nan=True), parquet, compression="zstd")
        parquet.seek(0)
        self.client.load_table_from_file(parquet, staging, job_config=config).result()
        table = bigquery.Table(staging)
        table.expires = datetime.now(UTC) + STAGING_EXPIRATION
        self.client.update_table(table, ["expires"])

    def ensure_tables(self, schemas: Iterable[TableSchema]) -> list[str]:
        self._check_writable()
        declared = list(schemas)
        changes: list[str] = []
        try:
            for dataset in sorted({s.dataset for s in declared}):
                try:
                    self.client.get_dataset(f"{self.project}.{dataset}")
                except gexc.NotFound:
                    self.client.create_dataset(f"{self.project}.{dataset}")
                    changes.append(f"created dataset {dataset}")
            for schema in declared:
                changes += self._ensure_table(schema)
        except gexc.GoogleAPIError as exc:
            raise self._explain(exc, "creating tables") from exc
        return changes

    def _ensure_table(self, schema: TableSchema) -> list[str]:
        table_id = self._table_id(schema.full_name)
        try:
            existing = self.client.get_table(table_id)
        except gexc.NotFound:
            self.client.create_table(bigquery_table(schema, table_id))
            return [f"created {schema.full_name}"]
        missing = [c for c in schema.columns if c.name not in {f.name for f in existing.schema}]
        if missing:
            existing.schema = [*existing.schema, *(_field(c, nullable=True) for c in missing)]
            self.client.update_table(existing, ["schema"])
            return [f"added {', '.join(c.name for c in missing)} to {schema.full_name}"]
        return []


def fields_from_arrow(schema: pa.Schema) -> Fields:
    """BigQuery columns for a Phase 3 file as it is (its own columns, all nullable)."""
    fields = []
    for field in schema:
        repeated = pa.types.is_list(field.type) or pa.types.is_large_list(field.type)
        arrow = field.type.value_type if repeated else field.type
        kind = bigquery_type_of_arrow(arrow)
        if kind is None:
            raise WarehouseError(f"no BigQuery type for Arrow {arrow}")
        fields.append(
            bigquery.SchemaField(field.name, kind, "REPEATED" if repeated else "NULLABLE")
        )
    return fields


def _field(column: Column, nullable: bool = False) -> bigquery.SchemaField:
    mode = "NULLABLE" if nullable and column.mode == "REQUIRED" else column.mode
    if column.description:
        return bigquery.SchemaField(column.name, column.type, mode, column.description)
    return bigquery.SchemaField(column.name, column.type, mode)


def bigquery_table(schema: TableSchema, table_id: str, *, nullable: bool = False) -> bigquery.Table:
    """The declared table; nullable: every column NULLABLE (Phase 3, checked by its contract)."""
    table = bigquery.Table(table_id, schema=[_field(c, nullable) for c in schema.columns])
    table.description = schema.description or None
    if schema.partition_column:
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=schema.partition_column
        )
        table.require_partition_filter = True
    if schema.clustering:
        table.clustering_fields = list(schema.clustering)
    return table


def _answers(endpoint: str, timeout: float = 5.0) -> None:
    """An emulator endpoint that refuses connections: one line now, not the client's retries
    for ten minutes (its default deadline) before the same line."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except OSError as exc:
        raise WarehouseError(
            f"{ENDPOINT_ENV}={endpoint} does not answer ({exc.strerror or exc}): start the "
            "emulator there, or fix or unset the setting"
        ) from exc


def credentials_block_setting() -> str | None:
    """The prefect-gcp GcpCredentials block named, checked; None: none is."""
    block = os.environ.get(CREDENTIALS_BLOCK_ENV, "").strip()
    if block and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", block):
        raise WarehouseError(
            f"{CREDENTIALS_BLOCK_ENV}={block}: expected a GcpCredentials block name "
            "(lowercase letters, digits and dashes; unset: Application Default Credentials)"
        )
    return block or None


def make_client(project: str, location: str | None) -> tuple[bigquery.Client, bool]:
    """Emulator endpoint, a prefect-gcp credentials block, or Application Default Credentials;
    and whether the Storage Read API is the default (the emulator serves it for tables only)."""
    endpoint = os.environ.get(ENDPOINT_ENV, "").strip().rstrip("/")  # `//bigquery/...`: 404
    if endpoint and not re.fullmatch(r"https?://[A-Za-z0-9.\[\]:-]+(:\d{1,5})?", endpoint):
        raise WarehouseError(
            f"{ENDPOINT_ENV}={endpoint}: expected the emulator's base URL, e.g. "
            "http://127.0.0.1:9050 (unset: the real BigQuery API)"
        )
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        _answers(endpoint)
        client = bigquery.Client(
            project=project,
            location=location,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
        return client, False
    if block := credentials_block_setting():
        from prefect_gcp import GcpCredentials  # type: ignore[import-untyped]  # no stubs

        credentials = GcpCredentials.load(block)
        return credentials.get_bigquery_client(project=project, location=location), True
    return bigquery.Client(project=project, location=location), True


def open_bigquery(
    project: str, location: str | None = None, *, read_only: bool = False
) -> BigQueryWarehouse:
    """read_only: writes are refused (BigQuery creates nothing on a read anyway)."""
    cap = max_bytes_billed_setting()
    read_api_setting("storage")  # checked before any client is made
    try:
        client, storage = make_client(project, location)
    except WarehouseError:
        raise
    except Exception as exc:  # noqa: BLE001 - auth libraries raise many types
        raise WarehouseError(
            f"cannot create a BigQuery client for project {project}: {str(exc).rstrip('.')}. Run "
            "`gcloud auth application-default login`, or name a prefect-gcp GcpCredentials "
            f"block in {CREDENTIALS_BLOCK_ENV}, or point {ENDPOINT_ENV} at an emulator."
        ) from exc
    return BigQueryWarehouse(
        client,
        project,
        read_api=read_api_setting("storage" if storage else "rest"),
        read_only=read_only,
        max_bytes_billed=cap,
    )
