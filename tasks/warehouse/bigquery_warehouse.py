"""Production warehouse: BigQuery through google-cloud-bigquery, Arrow in and out, no pandas.

Partition replacement: the rows are loaded (Parquet load job) into a staging table, then one
multi-statement transaction deletes the partitions and inserts from staging; the staging
table is dropped whatever happens. Readers see the old partition or the new one. We chose this
over a WRITE_TRUNCATE load to `table$YYYYMMDD` because one transaction can replace many dates
at once (backfills), works the same for every partitioned table, and can be exercised against
the local emulator, which rejects partition decorators.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery

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

ENDPOINT_ENV = "PHASE4_BIGQUERY_ENDPOINT"
CREDENTIALS_BLOCK_ENV = "PHASE4_GCP_CREDENTIALS_BLOCK"
_ARROW_FROM_BIGQUERY = {
    "STRING": pa.string(),
    "INT64": pa.int64(),
    "INTEGER": pa.int64(),
    "FLOAT64": pa.float64(),
    "FLOAT": pa.float64(),
    "NUMERIC": pa.float64(),
    "BOOL": pa.bool_(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATETIME": pa.timestamp("us"),
}
_PARAM_TYPES = {bool: "BOOL", int: "INT64", float: "FLOAT64", str: "STRING", date: "DATE"}


def schema_fields(schema: TableSchema) -> list[bigquery.SchemaField]:
    return [
        bigquery.SchemaField(c.name, c.type, mode=c.mode, description=c.description or None)
        for c in schema.columns
    ]


def _arrow_type(field: bigquery.SchemaField) -> pa.DataType:
    base = _ARROW_FROM_BIGQUERY.get(field.field_type.upper(), pa.string())
    return pa.list_(base) if field.mode == "REPEATED" else base


def _parameter(name: str, value: Any) -> bigquery.ScalarQueryParameter:
    kind = next((t for py, t in _PARAM_TYPES.items() if type(value) is py), None)
    if kind is None:
        raise WarehouseError(f"unsupported filter value {value!r}")
    return bigquery.ScalarQueryParameter(name, kind, value)


def _parquet_bytes(rows: pa.Table) -> io.BytesIO:
    buffer = io.BytesIO()
    pq.write_table(rows, buffer, compression="zstd")
    buffer.seek(0)
    return buffer


def _explain(exc: Exception, project: str, what: str) -> WarehouseError:
    """Turn Google API errors into messages that say what to fix.

    Judged by the message as well as the class: a load into a missing dataset comes back as
    400 "Not found: dataset" rather than 404.
    """
    message = str(exc)
    if "not found: dataset" in message.lower():
        return WarehouseError(
            f"dataset not found {what} in project {project}: run `phase4 warehouse init` "
            f"or check PHASE4_WAREHOUSE=bigquery://{project}. {exc}"
        )
    if isinstance(exc, gexc.Forbidden):
        return WarehouseError(
            f"permission denied {what} in project {project}: the account needs "
            "roles/bigquery.jobUser on the project and roles/bigquery.dataEditor on the "
            f"datasets nba_precompute and nba_predictions (dataViewer on nba_analytics). {exc}"
        )
    if isinstance(exc, gexc.NotFound) and "project" in message.lower():
        return WarehouseError(f"project {project} not found {what}: check PHASE4_WAREHOUSE. {exc}")
    return WarehouseError(f"BigQuery error {what} in project {project}: {exc}")


class BigQueryWarehouse(Warehouse):
    def __init__(
        self,
        client: bigquery.Client,
        project: str,
        use_storage_api: bool = True,
    ) -> None:
        self.client = client
        self.project = project
        self.use_storage_api = use_storage_api
        self.url = f"bigquery://{project}"

    def _table_id(self, full_name: str) -> str:
        dataset, table = (quote_identifier(p) for p in full_name.split("."))
        return f"{self.project}.{dataset}.{table}"

    def _query(self, sql: str, params: list[bigquery.ScalarQueryParameter]) -> bigquery.QueryJob:
        job = self.client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params))
        job.result()
        return job

    def table_schema(self, full_name: str) -> pa.Schema | None:
        try:
            table = self.client.get_table(self._table_id(full_name))
        except gexc.NotFound:
            return None
        except gexc.GoogleAPIError as exc:
            raise _explain(exc, self.project, f"describing {full_name}") from exc
        return pa.schema([pa.field(f.name, _arrow_type(f)) for f in table.schema])

    def read(
        self,
        full_name: str,
        columns: Sequence[str] | None = None,
        where: Sequence[Filter] = (),
    ) -> pa.Table:
        sql, values = select_sql(f"`{self._table_id(full_name)}`", columns, where, "@")
        try:
            job = self._query(sql, [_parameter(k, v) for k, v in values.items()])
            table = job.to_arrow(create_bqstorage_client=self.use_storage_api)
        except gexc.NotFound as exc:
            if self.table_schema(full_name) is None:
                raise TableNotFound(full_name, f" in project {self.project}") from exc
            raise _explain(exc, self.project, f"reading {full_name}") from exc
        except gexc.GoogleAPIError as exc:
            raise _explain(exc, self.project, f"reading {full_name}") from exc
        return table

    def _load(
        self,
        rows: pa.Table,
        table_id: str,
        disposition: str,
        fields: list[bigquery.SchemaField] | None,
    ) -> None:
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=disposition,
            schema=fields,
        )
        parquet_options = bigquery.ParquetOptions()
        parquet_options.enable_list_inference = True
        config.parquet_options = parquet_options
        job = self.client.load_table_from_file(_parquet_bytes(rows), table_id, job_config=config)
        job.result()

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
        target = self._table_id(schema.full_name)
        staging = f"{self.project}.{schema.dataset}._staging_{schema.name}_{uuid.uuid4().hex[:12]}"
        columns = ", ".join(schema.column_names)
        try:
            self._load(
                staged, staging, bigquery.WriteDisposition.WRITE_TRUNCATE, schema_fields(schema)
            )
            # Dates go in as literals: scripts take no query parameters on every backend
            # (the emulator refuses them), and they are date objects, never user text.
            days = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(set(partitions)))
            if before_commit is not None:  # the script below commits as soon as it runs
                before_commit()
            self._query(
                "BEGIN TRANSACTION;\n"
                f"DELETE FROM `{target}` WHERE {schema.partition_column} IN ({days});\n"
                f"INSERT INTO `{target}` ({columns}) SELECT {columns} FROM `{staging}`;\n"
                "COMMIT TRANSACTION;",
                [],
            )
        except gexc.GoogleAPIError as exc:
            raise _explain(
                exc, self.project, f"replacing partitions of {schema.full_name}"
            ) from exc
        finally:
            self.client.delete_table(staging, not_found_ok=True)
        return staged.num_rows

    def replace_table(self, full_name: str, rows: pa.Table) -> int:
        """A WRITE_TRUNCATE load job is atomic: the table switches to the new rows at once."""
        dataset = full_name.split(".")[0]
        try:
            self.client.create_dataset(f"{self.project}.{dataset}", exists_ok=True)
            self._load(
                rows,
                self._table_id(full_name),
                bigquery.WriteDisposition.WRITE_TRUNCATE,
                fields_from_arrow(rows.schema),
            )
        except gexc.GoogleAPIError as exc:
            raise _explain(exc, self.project, f"loading {full_name}") from exc
        return rows.num_rows

    def append(self, schema: TableSchema, rows: pa.Table) -> int:
        staged = conform(rows, schema)
        try:
            self._load(
                staged,
                self._table_id(schema.full_name),
                bigquery.WriteDisposition.WRITE_APPEND,
                schema_fields(schema),
            )
        except gexc.GoogleAPIError as exc:
            raise _explain(exc, self.project, f"appending to {schema.full_name}") from exc
        return staged.num_rows

    def ensure_tables(self, schemas: Sequence[TableSchema]) -> list[str]:
        changes: list[str] = []
        try:
            for dataset in sorted({s.dataset for s in schemas}):
                try:
                    self.client.get_dataset(f"{self.project}.{dataset}")
                except gexc.NotFound:
                    self.client.create_dataset(f"{self.project}.{dataset}")
                    changes.append(f"created dataset {dataset}")
            for schema in schemas:
                changes += self._ensure_table(schema)
        except gexc.GoogleAPIError as exc:
            raise _explain(exc, self.project, "creating tables") from exc
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


def fields_from_arrow(schema: pa.Schema) -> list[bigquery.SchemaField]:
    """BigQuery columns for a Phase 3 file as it is (its own columns, all nullable)."""

    def kind(arrow: pa.DataType) -> str:
        for name, candidate in _ARROW_FROM_BIGQUERY.items():
            if candidate == arrow or (pa.types.is_timestamp(arrow) and name == "TIMESTAMP"):
                return name
        if pa.types.is_integer(arrow):
            return "INT64"
        if pa.types.is_floating(arrow):
            return "FLOAT64"
        if pa.types.is_large_string(arrow):
            return "STRING"
        raise WarehouseError(f"no BigQuery type for Arrow {arrow}")

    fields = []
    for field in schema:
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            fields.append(bigquery.SchemaField(field.name, kind(field.type.value_type), "REPEATED"))
        else:
            fields.append(bigquery.SchemaField(field.name, kind(field.type)))
    return fields


def _field(column: Column, nullable: bool = False) -> bigquery.SchemaField:
    mode = "NULLABLE" if nullable and column.mode == "REQUIRED" else column.mode
    return bigquery.SchemaField(
        column.name, column.type, mode=mode, description=column.description or None
    )


def bigquery_table(schema: TableSchema, table_id: str) -> bigquery.Table:
    table = bigquery.Table(table_id, schema=[_field(c) for c in schema.columns])
    table.description = schema.description or None
    if schema.partition_column:
        table.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=schema.partition_column
        )
        table.require_partition_filter = True
    if schema.clustering:
        table.clustering_fields = list(schema.clustering)
    return table


def make_client(project: str, location: str | None) -> tuple[bigquery.Client, bool]:
    """Emulator endpoint, a prefect-gcp credentials block, or Application Default Credentials.

    Returns the client and whether the Storage Read API may be used.
    """
    endpoint = os.environ.get(ENDPOINT_ENV, "").strip()
    if endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        client = bigquery.Client(
            project=project,
            location=location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint),
        )
        return client, False
    block = os.environ.get(CREDENTIALS_BLOCK_ENV, "").strip()
    if block:
        from prefect_gcp import GcpCredentials

        credentials = GcpCredentials.load(block)
        return credentials.get_bigquery_client(project=project, location=location), True
    return bigquery.Client(project=project, location=location), True


def open_bigquery(project: str, location: str | None = None) -> BigQueryWarehouse:
    try:
        client, storage = make_client(project, location)
    except Exception as exc:  # noqa: BLE001 - auth libraries raise many types
        raise WarehouseError(
            f"cannot create a BigQuery client for project {project}: {exc}. Run "
            "`gcloud auth application-default login`, or name a prefect-gcp GcpCredentials "
            f"block in {CREDENTIALS_BLOCK_ENV}, or point {ENDPOINT_ENV} at an emulator."
        ) from exc
    return BigQueryWarehouse(client, project, use_storage_api=storage)
