"""What bqemulator 1.4.0 does when driven through the real google-cloud-bigquery client.

Each test pins one behaviour listed in docs/bqemulator-notes.md, including the divergences from
real BigQuery (those tests are named ``..._diverges`` / ``..._rejected`` / ``..._ignored``): if a
new bqemulator release changes them, the test says so.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import google.auth.credentials
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from tests.support.bq_emulator import EmulatorProcess, start_emulator

PROJECT = "local"
GAME_DAY = date(2025, 1, 15)
OTHER_DAY = date(2025, 1, 16)
PROCESSED_AT = datetime(2025, 1, 16, 6, 30, 0, tzinfo=UTC)

SCHEMA = [
    bigquery.SchemaField("player_lookup", "STRING", mode="REQUIRED", description="player key"),
    bigquery.SchemaField("games", "INT64"),
    bigquery.SchemaField("avg_points", "FLOAT64"),
    bigquery.SchemaField("is_starter", "BOOL"),
    bigquery.SchemaField("game_date", "DATE", description="partition column"),
    bigquery.SchemaField("processed_at", "TIMESTAMP"),
    bigquery.SchemaField("zone_rates", "FLOAT64", mode="REPEATED"),
    bigquery.SchemaField("tags", "STRING", mode="REPEATED"),
]

ARROW_SCHEMA = pa.schema(
    [
        ("player_lookup", pa.string()),
        ("games", pa.int64()),
        ("avg_points", pa.float64()),
        ("is_starter", pa.bool_()),
        ("game_date", pa.date32()),
        ("processed_at", pa.timestamp("us", tz="UTC")),
        ("zone_rates", pa.list_(pa.float64())),
        ("tags", pa.list_(pa.string())),
    ]
)


def rows_table(rows: list[tuple[str, date, float]]) -> pa.Table:
    """Rows as (player, game_date, avg_points); the other columns are derived."""
    return pa.Table.from_pylist(
        [
            {
                "player_lookup": player,
                "games": i + 1,
                "avg_points": points,
                "is_starter": i % 2 == 0,
                "game_date": day,
                "processed_at": PROCESSED_AT,
                "zone_rates": [0.25, 0.5] if i % 2 == 0 else [],
                "tags": ["guard"] if i % 2 == 0 else None,
            }
            for i, (player, day, points) in enumerate(rows)
        ],
        schema=ARROW_SCHEMA,
    )


SAMPLE = rows_table(
    [
        ("lebronjames", GAME_DAY, 27.5),
        ("stephencurry", GAME_DAY, 30.25),
        ("nikolajokic", OTHER_DAY, 26.0),
    ]
)


def parquet_file(table: pa.Table) -> io.BytesIO:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    buf.seek(0)
    return buf


def load_parquet(
    client: bigquery.Client,
    destination: str,
    table: pa.Table,
    *,
    write_disposition: str = bigquery.WriteDisposition.WRITE_APPEND,
    list_inference: bool = True,
    **config: object,
) -> bigquery.LoadJob:
    parquet_options = bigquery.ParquetOptions()
    parquet_options.enable_list_inference = list_inference
    job_config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=write_disposition,
        parquet_options=parquet_options,
        **config,
    )
    job = client.load_table_from_file(parquet_file(table), destination, job_config=job_config)
    job.result()
    return job


def query_arrow(
    client: bigquery.Client, sql: str, *params: bigquery.ScalarQueryParameter
) -> pa.Table:
    job_config = bigquery.QueryJobConfig(query_parameters=list(params))
    return client.query(sql, job_config=job_config).to_arrow(create_bqstorage_client=False)


def run(
    client: bigquery.Client, sql: str, *params: bigquery.ScalarQueryParameter
) -> bigquery.QueryJob:
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=list(params)))
    job.result()
    return job


def date_param(value: date) -> bigquery.ScalarQueryParameter:
    return bigquery.ScalarQueryParameter("d", "DATE", value)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with start_emulator(project=PROJECT) as emu:
        assert emu.startup_seconds < 60
        yield emu


@pytest.fixture
def client(emulator: EmulatorProcess) -> bigquery.Client:
    return bigquery.Client(
        project=PROJECT,
        client_options={"api_endpoint": emulator.endpoint},
        credentials=google.auth.credentials.AnonymousCredentials(),
    )


@pytest.fixture
def dataset(client: bigquery.Client) -> str:
    dataset_id = f"ds_{uuid.uuid4().hex[:10]}"
    client.create_dataset(dataset_id)
    return dataset_id


def create_player_table(client: bigquery.Client, table_id: str) -> bigquery.Table:
    table = bigquery.Table(table_id, schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(
        type_=bigquery.TimePartitioningType.DAY, field="game_date"
    )
    table.clustering_fields = ["player_lookup"]
    table.require_partition_filter = True
    table.description = "player shot zone analysis"
    return client.create_table(table)


@pytest.fixture
def player_table(client: bigquery.Client, dataset: str) -> str:
    table_id = f"{PROJECT}.{dataset}.player_zone"
    create_player_table(client, table_id)
    return table_id


# --------------------------------------------------------------------------- datasets / tables


def test_create_dataset(client: bigquery.Client) -> None:
    dataset_id = f"ds_{uuid.uuid4().hex[:10]}"
    created = client.create_dataset(dataset_id)
    assert (created.project, created.dataset_id) == (PROJECT, dataset_id)
    assert client.get_dataset(dataset_id).dataset_id == dataset_id
    assert dataset_id in {d.dataset_id for d in client.list_datasets()}
    with pytest.raises(gexc.Conflict, match=f"Already Exists: dataset:{PROJECT}.{dataset_id}"):
        client.create_dataset(dataset_id)
    assert client.create_dataset(dataset_id, exists_ok=True).dataset_id == dataset_id


def test_get_table_returns_partitioning_clustering_descriptions(
    client: bigquery.Client, player_table: str
) -> None:
    table = client.get_table(player_table)
    assert table.time_partitioning is not None
    assert table.time_partitioning.type_ == bigquery.TimePartitioningType.DAY
    assert table.time_partitioning.field == "game_date"
    assert table.clustering_fields == ["player_lookup"]
    assert table.description == "player shot zone analysis"
    assert [(f.name, f.field_type, f.mode) for f in table.schema] == [
        (f.name, f.field_type, f.mode) for f in SCHEMA
    ]
    assert table.schema[0].description == "player key"
    assert table.schema[4].description == "partition column"


def test_require_partition_filter_is_neither_stored_nor_enforced_diverges(
    client: bigquery.Client, player_table: str
) -> None:
    assert client.get_table(player_table).require_partition_filter is None
    load_parquet(client, player_table, SAMPLE)
    # Real BigQuery rejects this query (no filter on game_date); the emulator answers it.
    result = query_arrow(client, f"SELECT COUNT(*) AS n FROM `{player_table}`")
    assert result.to_pylist() == [{"n": 3}]


def test_ddl_create_table_partition_by_cluster_by(client: bigquery.Client, dataset: str) -> None:
    job = run(
        client,
        f"""
        CREATE TABLE `{PROJECT}.{dataset}.ddl_made` (
          player_lookup STRING OPTIONS(description = 'player key'),
          game_date DATE NOT NULL,
          avg_points FLOAT64,
          zone_rates ARRAY<FLOAT64>
        )
        PARTITION BY game_date
        CLUSTER BY player_lookup
        OPTIONS(description = 'made by DDL', require_partition_filter = TRUE)
        """,
    )
    assert job.statement_type == "CREATE_TABLE"
    table = client.get_table(f"{PROJECT}.{dataset}.ddl_made")
    assert table.time_partitioning is not None
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("DAY", "game_date")
    # Stored in the deprecated timePartitioning.requirePartitionFilter, not the table field.
    assert table.to_api_repr()["timePartitioning"]["requirePartitionFilter"] is True
    assert table.require_partition_filter is None
    assert table.description == "made by DDL"
    # Lost by the DDL path (kept by the tables.insert path): clustering + column descriptions.
    assert table.clustering_fields is None
    assert table.schema[0].description is None
    assert [(f.name, f.field_type, f.mode) for f in table.schema] == [
        ("player_lookup", "STRING", "NULLABLE"),
        ("game_date", "DATE", "REQUIRED"),
        ("avg_points", "FLOAT", "NULLABLE"),
        ("zone_rates", "FLOAT", "REPEATED"),
    ]
    insert = run(
        client,
        f"INSERT INTO `{PROJECT}.{dataset}.ddl_made` (player_lookup, game_date, avg_points, "
        "zone_rates) VALUES ('lebronjames', @d, 27.5, [0.25, 0.5])",
        date_param(GAME_DAY),
    )
    assert insert.num_dml_affected_rows == 1
    got = query_arrow(client, f"SELECT * FROM `{PROJECT}.{dataset}.ddl_made`").to_pylist()
    assert got == [
        {
            "player_lookup": "lebronjames",
            "game_date": GAME_DAY,
            "avg_points": 27.5,
            "zone_rates": [0.25, 0.5],
        }
    ]


def test_drop_table(client: bigquery.Client, dataset: str, player_table: str) -> None:
    client.delete_table(player_table)
    with pytest.raises(gexc.NotFound, match=r"Not found: table:local\.ds_\w+\.player_zone"):
        client.get_table(player_table)
    client.delete_table(player_table, not_found_ok=True)
    run(client, f"CREATE TABLE `{PROJECT}.{dataset}.scratch` (x INT64)")
    assert run(client, f"DROP TABLE `{PROJECT}.{dataset}.scratch`").statement_type == "DROP_TABLE"
    run(client, f"DROP TABLE IF EXISTS `{PROJECT}.{dataset}.scratch`")
    assert list(client.list_tables(dataset)) == []


# --------------------------------------------------------------------------- load + read


@pytest.mark.parametrize("list_inference", [True, False])
def test_parquet_load_then_parameterised_query_to_arrow(
    client: bigquery.Client, player_table: str, list_inference: bool
) -> None:
    job = load_parquet(client, player_table, SAMPLE, list_inference=list_inference)
    assert job.state == "DONE"
    assert job.output_rows == 3
    assert client.get_table(player_table).num_rows == 3

    result = query_arrow(
        client,
        f"SELECT * FROM `{player_table}` WHERE game_date = @d AND avg_points > @p "
        "ORDER BY player_lookup",
        date_param(GAME_DAY),
        bigquery.ScalarQueryParameter("p", "FLOAT64", 20.0),
    )
    # Proper Arrow types over REST: date32, tz-aware timestamp, list columns.
    assert [f.name for f in result.schema] == ARROW_SCHEMA.names
    types = {f.name: f.type for f in result.schema}
    assert types["player_lookup"] == pa.string()
    assert types["games"] == pa.int64()
    assert types["avg_points"] == pa.float64()
    assert types["is_starter"] == pa.bool_()
    assert types["game_date"] == pa.date32()
    assert types["processed_at"] == pa.timestamp("us", tz="UTC")
    assert pa.types.is_list(types["zone_rates"])
    assert types["zone_rates"].value_type == pa.float64()
    assert pa.types.is_list(types["tags"])
    assert types["tags"].value_type == pa.string()
    rows = result.to_pylist()
    assert [r["player_lookup"] for r in rows] == ["lebronjames", "stephencurry"]
    assert rows[0]["zone_rates"] == [0.25, 0.5]
    assert rows[0]["tags"] == ["guard"]
    assert rows[1]["zone_rates"] == []
    assert rows[1]["tags"] == []  # a NULL list is read back as [] (BigQuery semantics)
    assert rows[1]["avg_points"] == 30.25
    assert rows[1]["processed_at"] == PROCESSED_AT
    assert rows[1]["game_date"] == GAME_DAY
    assert rows[1]["is_starter"] is False


def test_write_truncate_load_replaces_table_and_keeps_metadata(
    client: bigquery.Client, player_table: str
) -> None:
    load_parquet(client, player_table, SAMPLE)
    replacement = rows_table([("kevindurant", OTHER_DAY, 28.0)])
    job = load_parquet(
        client,
        player_table,
        replacement,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
    )
    assert job.output_rows == 1
    table = client.get_table(player_table)
    assert table.num_rows == 1
    assert table.time_partitioning is not None and table.time_partitioning.field == "game_date"
    assert table.clustering_fields == ["player_lookup"]
    got = query_arrow(client, f"SELECT player_lookup FROM `{player_table}`")
    assert got.to_pylist() == [{"player_lookup": "kevindurant"}]
    with pytest.raises(gexc.BadRequest, match="is not empty and writeDisposition is WRITE_EMPTY"):
        load_parquet(
            client,
            player_table,
            replacement,
            write_disposition=bigquery.WriteDisposition.WRITE_EMPTY,
        )


def test_load_to_partition_decorator_rejected(client: bigquery.Client, player_table: str) -> None:
    load_parquet(client, player_table, SAMPLE)
    with pytest.raises(gexc.BadRequest, match=r"Invalid table id for SQL: 'player_zone\$20250115'"):
        load_parquet(
            client,
            f"{player_table}$20250115",
            rows_table([("kevindurant", GAME_DAY, 28.0)]),
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
    assert client.get_table(player_table).num_rows == 3


def test_load_creates_missing_table_only_with_explicit_schema(
    client: bigquery.Client, dataset: str
) -> None:
    with pytest.raises(
        gexc.BadRequest, match="Catalog Error: Table with name new_a does not exist"
    ):
        load_parquet(client, f"{PROJECT}.{dataset}.new_a", SAMPLE)  # no schema autodetect
    job = load_parquet(
        client,
        f"{PROJECT}.{dataset}.new_b",
        SAMPLE,
        schema=SCHEMA,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
    )
    assert job.output_rows == 3
    created = client.get_table(f"{PROJECT}.{dataset}.new_b")
    assert [f.field_type for f in created.schema] == [f.field_type for f in SCHEMA]


def test_query_destination_table_is_ignored_diverges(client: bigquery.Client, dataset: str) -> None:
    destination = f"{PROJECT}.{dataset}.query_out"
    job = client.query(
        "SELECT 1 AS one",
        job_config=bigquery.QueryJobConfig(
            destination=destination,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        ),
    )
    assert job.result().total_rows == 1
    assert job.destination is not None and job.destination.table_id == "query_out"
    with pytest.raises(gexc.NotFound):  # real BigQuery would have written the table
        client.get_table(destination)


def test_query_and_wait_arrow_results_format_returns_no_rows_diverges(
    client: bigquery.Client,
) -> None:
    sql = "SELECT 1 AS x UNION ALL SELECT 2"
    arrow_format = client.query_and_wait(sql, query_results_format="ARROW")
    assert arrow_format.total_rows == 2
    assert arrow_format.to_arrow(create_bqstorage_client=False).num_rows == 0  # silently empty
    plain = client.query_and_wait(sql).to_arrow(create_bqstorage_client=False)
    assert sorted(plain.column("x").to_pylist()) == [1, 2]


@pytest.mark.filterwarnings("ignore:Retrieving Arrow record batches:PendingDeprecationWarning")
def test_storage_read_api_serves_tables_not_query_results(
    client: bigquery.Client, emulator: EmulatorProcess, player_table: str, dataset: str
) -> None:
    load_parquet(client, player_table, SAMPLE)
    read_client = emulator.bqstorage_client()

    table = client.list_rows(player_table).to_arrow(bqstorage_client=read_client)
    table = table.sort_by("player_lookup")
    assert table.column("player_lookup").to_pylist() == [
        "lebronjames",
        "nikolajokic",
        "stephencurry",
    ]
    assert table.schema.field("game_date").type == pa.date32()
    assert table.schema.field("processed_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("zone_rates").type.value_type == pa.float64()
    # Over the Storage API a NULL list stays NULL (REST and BigQuery give []).
    assert table.column("tags").to_pylist() == [["guard"], ["guard"], None]

    # Query results live in an anonymous table the emulator never materialises.
    job = client.query(f"SELECT * FROM `{player_table}` WHERE game_date = DATE '2025-01-15'")
    with pytest.raises(gexc.NotFound, match="Table read failed"):
        job.to_arrow(bqstorage_client=read_client)

    # Workaround for big results: materialise, then read the table over the Storage API.
    run(
        client,
        f"CREATE OR REPLACE TABLE `{PROJECT}.{dataset}.result` AS "
        f"SELECT player_lookup, avg_points FROM `{player_table}` WHERE game_date = @d",
        date_param(GAME_DAY),
    )
    materialised = client.list_rows(f"{PROJECT}.{dataset}.result").to_arrow(
        bqstorage_client=read_client
    )
    assert sorted(materialised.column("avg_points").to_pylist()) == [27.5, 30.25]


# --------------------------------------------------------------------------- partition replace


def staged_partition_replace(
    client: bigquery.Client, dataset: str, player_table: str
) -> tuple[str, pa.Table]:
    """Main table holds SAMPLE; staging holds the new rows for GAME_DAY."""
    load_parquet(client, player_table, SAMPLE)
    staging = f"{PROJECT}.{dataset}.player_zone_staging"
    create_player_table(client, staging)
    new_rows = rows_table([("kevindurant", GAME_DAY, 28.0), ("jaytatum", GAME_DAY, 26.5)])
    load_parquet(
        client,
        staging,
        new_rows,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
    )
    return staging, new_rows


def players_by_day(client: bigquery.Client, player_table: str) -> dict[date, list[str]]:
    rows = query_arrow(
        client,
        f"SELECT game_date, player_lookup FROM `{player_table}` ORDER BY player_lookup",
    ).to_pylist()
    out: dict[date, list[str]] = {}
    for row in rows:
        out.setdefault(row["game_date"], []).append(row["player_lookup"])
    return out


def test_transaction_partition_replace_with_literal_date(
    client: bigquery.Client, dataset: str, player_table: str
) -> None:
    staging, _ = staged_partition_replace(client, dataset, player_table)
    day = GAME_DAY.isoformat()  # from a datetime.date, so safe to inline
    job = run(
        client,
        f"""
        BEGIN TRANSACTION;
        DELETE FROM `{player_table}` WHERE game_date = DATE '{day}';
        INSERT INTO `{player_table}` SELECT * FROM `{staging}`;
        COMMIT TRANSACTION;
        """,
    )
    assert job.statement_type == "SCRIPT"
    assert players_by_day(client, player_table) == {
        GAME_DAY: ["jaytatum", "kevindurant"],
        OTHER_DAY: ["nikolajokic"],
    }
    # DECLARE'd script variables work too.
    run(
        client,
        f"""
        DECLARE target DATE DEFAULT DATE '{day}';
        BEGIN TRANSACTION;
        DELETE FROM `{player_table}` WHERE game_date = target;
        INSERT INTO `{player_table}` SELECT * FROM `{staging}` WHERE game_date = target;
        COMMIT TRANSACTION;
        """,
    )
    assert client.get_table(player_table).num_rows == 3


def test_transaction_rolls_back_when_a_statement_fails(
    client: bigquery.Client, dataset: str, player_table: str
) -> None:
    staging, _ = staged_partition_replace(client, dataset, player_table)
    before = players_by_day(client, player_table)
    failing_inserts = [
        # (INSERT that fails inside the transaction, the error BigQuery reports)
        (
            f"INSERT INTO `{player_table}` (player_lookup, game_date, avg_points) "
            f"SELECT player_lookup, game_date, CAST('oops' AS FLOAT64) FROM `{staging}`",
            (gexc.BadRequest, "Could not convert string 'oops' to DOUBLE"),
        ),
        (
            f"INSERT INTO `{PROJECT}.{dataset}.missing` SELECT * FROM `{staging}`",
            (gexc.NotFound, "Not found: Table local.ds_.*missing was not found"),
        ),
    ]
    for insert, (error, message) in failing_inserts:
        with pytest.raises(error, match=message):
            run(
                client,
                f"""
                BEGIN TRANSACTION;
                DELETE FROM `{player_table}` WHERE game_date = DATE '2025-01-15';
                {insert};
                COMMIT TRANSACTION;
                """,
            )
        assert players_by_day(client, player_table) == before
    run(
        client,
        f"BEGIN TRANSACTION; DELETE FROM `{player_table}` WHERE TRUE; ROLLBACK TRANSACTION;",
    )
    assert players_by_day(client, player_table) == before


def test_transaction_with_query_parameters_rejected(
    client: bigquery.Client, dataset: str, player_table: str
) -> None:
    staging, _ = staged_partition_replace(client, dataset, player_table)
    before = players_by_day(client, player_table)
    with pytest.raises(
        gexc.BadRequest,
        match="Values were not provided for the following prepared statement parameters: d",
    ):
        run(
            client,
            f"""
            BEGIN TRANSACTION;
            DELETE FROM `{player_table}` WHERE game_date = @d;
            INSERT INTO `{player_table}` SELECT * FROM `{staging}`;
            COMMIT TRANSACTION;
            """,
            date_param(GAME_DAY),
        )
    assert players_by_day(client, player_table) == before


def test_single_statement_dml_accepts_parameters(
    client: bigquery.Client, dataset: str, player_table: str
) -> None:
    staging, _ = staged_partition_replace(client, dataset, player_table)
    deleted = run(
        client, f"DELETE FROM `{player_table}` WHERE game_date = @d", date_param(GAME_DAY)
    )
    assert (deleted.statement_type, deleted.num_dml_affected_rows) == ("DELETE", 2)
    inserted = run(
        client,
        f"INSERT INTO `{player_table}` SELECT * FROM `{staging}` WHERE game_date = @d",
        date_param(GAME_DAY),
    )
    assert (inserted.statement_type, inserted.num_dml_affected_rows) == ("INSERT", 2)
    assert players_by_day(client, player_table)[GAME_DAY] == ["jaytatum", "kevindurant"]


# --------------------------------------------------------------------------- errors


def test_error_shapes(
    client: bigquery.Client, emulator: EmulatorProcess, player_table: str
) -> None:
    dataset = player_table.split(".")[1]
    with pytest.raises(gexc.NotFound, match=r"Not found: dataset:local\.nope"):
        client.get_dataset("nope")
    with pytest.raises(gexc.NotFound, match=rf"Not found: table:local\.{dataset}\.nope"):
        client.get_table(f"{PROJECT}.{dataset}.nope")
    with pytest.raises(gexc.NotFound, match=rf"Not found: table:local\.{dataset}\.nope"):
        client.delete_table(f"{PROJECT}.{dataset}.nope")
    with pytest.raises(
        gexc.NotFound,
        match=rf"Not found: Table local\.{dataset}\.nope was not found in location US",
    ):
        run(client, f"SELECT * FROM `{PROJECT}.{dataset}.nope`")
    # Missing dataset / other project inside SQL: 403, where BigQuery says 404 for a dataset.
    with pytest.raises(
        gexc.Forbidden,
        match=r"Access Denied: Table local:nope\.t: User does not have permission to query table",
    ):
        run(client, "SELECT * FROM `local.nope.t`")
    with pytest.raises(gexc.Forbidden, match=r"Access Denied: Table other:.*\.player_zone"):
        run(client, f"SELECT * FROM `other.{dataset}.player_zone`")
    with pytest.raises(gexc.NotFound, match=rf"Not found: table:other\.{dataset}\.player_zone"):
        client.get_table(f"other.{dataset}.player_zone")
    with pytest.raises(gexc.NotFound, match=rf"Not found: dataset:other\.{dataset}"):
        emulator.bigquery_client(project="other").get_dataset(dataset)
    with pytest.raises(gexc.BadRequest, match='Syntax error: Unexpected identifier "SELEC"'):
        run(client, "SELEC 1")
    with pytest.raises(gexc.BadRequest, match=r"schema \"local__nope\" does not exist"):
        load_parquet(client, f"{PROJECT}.nope.t", SAMPLE)
    with pytest.raises(gexc.BadRequest, match="table player_zone has 8 columns but 1 values"):
        load_parquet(client, player_table, pa.table({"player_lookup": ["x"]}))
    # All of them are GoogleAPICallError with .code / .errors like real BigQuery errors.
    with pytest.raises(gexc.GoogleAPICallError) as info:
        client.get_table(f"{PROJECT}.{dataset}.nope")
    assert info.value.code == 404
    assert info.value.errors[0]["reason"] == "notFound"
