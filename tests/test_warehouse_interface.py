"""The warehouse interface on DuckDB: missing_ok reads, before_commit, labelled copies, the one
type table, columns added to existing tables, the slate lock, and what counts as transient."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from quality.schemas import (
    PROCESSOR_RUNS,
    TEAM_DEFENSE_ZONE_ANALYSIS,
    TYPES,
    Column,
    TableSchema,
    bigquery_type_of_arrow,
)
from tasks.io import TRANSIENT_RETRIES, RetryOptions, is_transient
from tasks.warehouse import (
    TableNotFound,
    TransientWarehouseError,
    WarehouseError,
    exclusive,
    open_warehouse,
)
from tasks.warehouse.duckdb_warehouse import DuckDBWarehouse, create_table_sql
from tasks.warehouse.locks import lock_file
from tests.builders import replace_partitions
from tests.test_duckdb_warehouse import D1, D2, p1_rows, read_p1


def test_a_missing_table_reads_as_an_empty_declared_frame_only_when_asked(
    tmp_path: Path,
) -> None:
    empty = open_warehouse(f"duckdb://{tmp_path / 'empty.duckdb'}")
    with pytest.raises(TableNotFound, match="table nba_precompute.processor_runs does not exist"):
        empty.read(PROCESSOR_RUNS.full_name, ["processor", "rows"])
    frame = empty.read(PROCESSOR_RUNS.full_name, ["processor", "rows"], missing_ok=True)
    assert frame.shape == (0, 2)
    assert frame.schema == pl.Schema({"processor": pl.String(), "rows": pl.Int64()})
    whole = empty.read(PROCESSOR_RUNS.full_name, missing_ok=True)
    assert whole.columns == PROCESSOR_RUNS.column_names
    undeclared = empty.read("nba_analytics.nothing_here", ["a"], missing_ok=True)
    assert undeclared.shape == (0, 1)


def test_read_returns_polars_with_the_declared_types(warehouse: DuckDBWarehouse) -> None:
    replace_partitions(warehouse, TEAM_DEFENSE_ZONE_ANALYSIS, [D1], p1_rows(D1, ["BOS"]))
    frame = warehouse.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name)
    assert isinstance(frame, pl.DataFrame)
    assert frame.schema == TEAM_DEFENSE_ZONE_ANALYSIS.polars_schema


def test_before_commit_runs_inside_the_transaction_and_a_raise_keeps_the_old_rows(
    warehouse: DuckDBWarehouse,
) -> None:
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    replace_partitions(warehouse, schema, [D2], p1_rows(D2, ["BOS", "LAL"]))
    seen: list[list[str]] = []

    def look_then_allow() -> None:
        # Another connection of this process still sees the committed partition.
        other = duckdb.connect(str(warehouse.path))
        try:
            rows = other.sql(
                f"SELECT team_abbr FROM {schema.full_name} WHERE analysis_date = DATE '{D2}' "
                "ORDER BY team_abbr"
            ).fetchall()
        finally:
            other.close()
        seen.append([r[0] for r in rows])

    written = replace_partitions(
        warehouse, schema, [D2], p1_rows(D2, ["NYK"]), before_commit=look_then_allow
    )
    assert written == 1
    assert seen == [["BOS", "LAL"]]
    assert read_p1(warehouse, D2)["team_abbr"].to_list() == ["NYK"]

    def timed_out() -> None:
        raise TimeoutError("processor past its time limit (raised by the test)")

    with pytest.raises(TimeoutError, match="raised by the test"):
        replace_partitions(
            warehouse, schema, [D2], pl.from_arrow(p1_rows(D2, ["MIA"])), before_commit=timed_out
        )
    assert read_p1(warehouse, D2)["team_abbr"].to_list() == ["NYK"]


def test_with_labels_is_a_copy_and_duckdb_counts_no_bytes(warehouse: DuckDBWarehouse) -> None:
    labelled = warehouse.with_labels(
        processor="team_defense_zone_analysis", slate_date="2025-01-15"
    )
    assert labelled is not warehouse and isinstance(labelled, DuckDBWarehouse)
    assert labelled.labels == {
        "processor": "team_defense_zone_analysis",
        "slate_date": "2025-01-15",
    }
    assert warehouse.labels == {}
    replace_partitions(labelled, TEAM_DEFENSE_ZONE_ANALYSIS, [D1], p1_rows(D1, ["BOS"]))
    assert labelled.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name).height == 1
    assert (labelled.bytes_processed, labelled.bytes_billed) == (0, 0)
    again = labelled.with_labels(flow_run_id=None, processor="player_daily_cache")
    assert again.labels["processor"] == "player_daily_cache" and "flow_run_id" not in again.labels


@pytest.mark.parametrize(
    ("declared", "duckdb_type", "arrow", "polars"),
    [
        ("STRING", "VARCHAR", pa.string(), pl.String()),
        ("INT64", "BIGINT", pa.int64(), pl.Int64()),
        ("FLOAT64", "DOUBLE", pa.float64(), pl.Float64()),
        ("BOOL", "BOOLEAN", pa.bool_(), pl.Boolean()),
        ("DATE", "DATE", pa.date32(), pl.Date()),
        ("TIMESTAMP", "TIMESTAMPTZ", pa.timestamp("us", tz="UTC"), pl.Datetime("us", "UTC")),
    ],
)
def test_one_table_maps_each_declared_type(
    declared: str, duckdb_type: str, arrow: pa.DataType, polars: pl.DataType
) -> None:
    column = Column("x", declared)  # type: ignore[arg-type]
    assert (column.duckdb_type, column.arrow_type, column.polars_type) == (
        duckdb_type,
        arrow,
        polars,
    )
    repeated = Column("x", declared, "REPEATED")  # type: ignore[arg-type]
    assert repeated.duckdb_type == f"{duckdb_type}[]"
    assert repeated.arrow_type == pa.list_(arrow)
    assert bigquery_type_of_arrow(arrow) == declared
    assert set(TYPES) == {"STRING", "INT64", "FLOAT64", "BOOL", "DATE", "TIMESTAMP"}


def test_arrow_widths_map_to_the_declared_type() -> None:
    assert bigquery_type_of_arrow(pa.int32()) == "INT64"
    assert bigquery_type_of_arrow(pa.float32()) == "FLOAT64"
    assert bigquery_type_of_arrow(pa.large_string()) == "STRING"
    assert bigquery_type_of_arrow(pa.timestamp("ns")) == "TIMESTAMP"
    assert bigquery_type_of_arrow(pa.binary()) is None


def test_duckdb_tables_use_the_mapped_types(warehouse: DuckDBWarehouse) -> None:
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'nba_precompute' AND table_name = 'processor_runs'"
            ).fetchall()
        )
    finally:
        con.close()
    assert types["analysis_date"] == "DATE"
    assert types["duration_seconds"] == "DOUBLE"
    assert types["bytes_billed"] == "BIGINT"
    assert types["started_at"] == "TIMESTAMP WITH TIME ZONE"


def test_ensure_tables_adds_declared_columns_to_an_older_table(tmp_path: Path) -> None:
    older = TableSchema(
        PROCESSOR_RUNS.dataset,
        PROCESSOR_RUNS.name,
        tuple(c for c in PROCESSOR_RUNS.columns if not c.name.startswith("bytes_")),
    )
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA nba_precompute")
    con.execute(create_table_sql(older))
    con.close()
    warehouse = open_warehouse(f"duckdb://{path}")
    changes = warehouse.ensure_tables([PROCESSOR_RUNS])
    assert changes == ["added bytes_processed, bytes_billed to nba_precompute.processor_runs"]
    assert warehouse.ensure_tables([PROCESSOR_RUNS]) == []
    row = {c: None for c in PROCESSOR_RUNS.column_names} | {
        "run_id": "r1",
        "processor": "player_daily_cache",
        "analysis_date": D1,
        "status": "OK",
        "bytes_billed": 10485760,
    }
    warehouse.append(PROCESSOR_RUNS, pl.DataFrame([row], schema=PROCESSOR_RUNS.polars_schema))
    read = warehouse.read(PROCESSOR_RUNS.full_name, ["bytes_processed", "bytes_billed"])
    assert read.to_dicts() == [{"bytes_processed": None, "bytes_billed": 10485760}]


def test_the_duckdb_slate_lock_is_a_file_lock_across_threads(
    warehouse: DuckDBWarehouse,
) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with exclusive(warehouse, "phase4-slate-2025-01-15", 5):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        assert lock_file(warehouse.path, "phase4-slate-2025-01-15").exists()
        blocked = pytest.raises(
            TimeoutError, match="phase4-slate-2025-01-15 is held by another run"
        )
        with blocked, exclusive(warehouse, "phase4-slate-2025-01-15", 0.3):
            pass
        with exclusive(warehouse, "phase4-slate-2025-01-16", 0.3):
            pass  # another date is not blocked
    finally:
        release.set()
        holder.join()
    with exclusive(warehouse, "phase4-slate-2025-01-15", 0.3):
        pass


def test_the_duckdb_slate_lock_holds_across_processes(warehouse: DuckDBWarehouse) -> None:
    path = lock_file(warehouse.path, "phase4-slate-2025-01-15")
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom filelock import FileLock\n"
            f"with FileLock({str(path)!r}):\n"
            "    print('holding', flush=True)\n    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        blocked = pytest.raises(TimeoutError, match="held by another run")
        with blocked, exclusive(warehouse, "phase4-slate-2025-01-15", 0.3):
            pass
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (TransientWarehouseError("warehouse x is locked by another process"), True),
        (WarehouseError("cannot open warehouse x: lock timeout in the text"), False),
        (TableNotFound("nba_analytics.player_game_summary"), False),
        (ConnectionError("reset"), True),
        (ValueError("bad rows"), False),
    ],
)
def test_retries_key_on_the_error_class_not_its_text(error: BaseException, retried: bool) -> None:
    assert is_transient(error) is retried


@pytest.mark.usefixtures("prefect_harness")
def test_a_task_with_transient_retries_retries_a_transient_warehouse_error() -> None:
    attempts: list[int] = []

    no_wait: RetryOptions = {**TRANSIENT_RETRIES, "retry_delay_seconds": [0, 0]}

    @task(cache_policy=NO_CACHE, **no_wait)
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise TransientWarehouseError("BigQuery aborted a transaction (raised by the test)")
        return len(attempts)

    @task(cache_policy=NO_CACHE, **no_wait)
    def broken() -> int:
        attempts.append(1)
        raise WarehouseError("dataset not found (raised by the test)")

    @flow
    def both() -> tuple[int, bool]:
        first = flaky()
        second = broken(return_state=True)
        return first, second.is_failed()

    assert both() == (2, True)
    assert len(attempts) == 3  # flaky twice, broken once


def test_dates_as_partitions_are_checked(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(ValueError, match="rows dated 2025-01-15 outside the partitions"):
        replace_partitions(
            warehouse, TEAM_DEFENSE_ZONE_ANALYSIS, [date(2025, 1, 14)], p1_rows(D2, ["BOS"])
        )
