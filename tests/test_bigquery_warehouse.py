"""The BigQuery warehouse through the real google-cloud-bigquery client and a local emulator.

bqemulator runs as a child process from its own virtualenv (tests/support/bq_emulator.py).
Each test gets its own project id, so tests share one emulator without seeing each other.
"""

from __future__ import annotations

import itertools
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from phase4.loading import load_phase3_directory
from quality.schemas import (
    DATASETS,
    OUTPUT_TABLES,
    PROCESSOR_RUNS,
    TEAM_DEFENSE_ZONE_ANALYSIS,
)
from quality.success import RunLine
from tasks.io import ensure_tables, is_transient
from tasks.readers import read_output
from tasks.report_reads import read_report_frames
from tasks.warehouse import Filter, TransientWarehouseError, WarehouseError, open_warehouse
from tasks.warehouse.base import Replacement, SeasonRows
from tasks.warehouse.bigquery_warehouse import BigQueryWarehouse
from tests.builders import replace_partitions
from tests.conftest import SEASON_2023, SEASON_2024
from tests.support.bq_emulator import EmulatorProcess
from tests.test_duckdb_warehouse import p1_rows
from tests.test_flow_realdata import PHASE4_SOURCE_STAMPS, phase4

D = date(2024, 1, 15)
_projects = itertools.count()


@pytest.fixture
def bq_url(bq_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    """PHASE4_WAREHOUSE and PHASE4_BIGQUERY_ENDPOINT as a user sets them, a fresh project."""
    url = f"bigquery://phase4test{next(_projects)}"
    monkeypatch.setenv("PHASE4_WAREHOUSE", url)
    monkeypatch.setenv("PHASE4_BIGQUERY_ENDPOINT", bq_emulator.endpoint)
    return url


def bq() -> BigQueryWarehouse:
    warehouse = open_warehouse()
    assert isinstance(warehouse, BigQueryWarehouse)
    return warehouse


def test_warehouse_init_creates_datasets_and_tables_and_is_idempotent(bq_url: str) -> None:
    code, printed = phase4("warehouse", "init")
    assert code == 0, printed
    assert "created dataset nba_precompute" in printed
    assert "created nba_predictions.ml_feature_store_v2" in printed
    client = bq().client
    for dataset in ("nba_precompute", "nba_predictions"):
        client.get_dataset(f"{bq().project}.{dataset}")
    table = client.get_table(f"{bq().project}.nba_precompute.player_daily_cache")
    assert table.time_partitioning.type_ == bigquery.TimePartitioningType.DAY
    assert table.time_partitioning.field == "cache_date"
    assert table.clustering_fields == ["player_lookup"]
    assert table.description
    modes = {f.name: f.mode for f in table.schema}
    assert modes["player_lookup"] == "REQUIRED"
    features = client.get_table(f"{bq().project}.nba_predictions.ml_feature_store_v2")
    assert {f.name: f.mode for f in features.schema}["features"] == "REPEATED"
    code, printed = phase4("warehouse", "init")
    assert code == 0 and "already up to date" in printed


@pytest.fixture
def loaded_bq(bq_url: str) -> str:
    assert phase4("warehouse", "init")[0] == 0
    load_phase3_directory(bq(), SEASON_2023)
    return bq_url


def test_phase3_loads_round_trip(loaded_bq: str) -> None:
    rows = bq().read(
        "nba_analytics.player_game_summary",
        ["player_lookup", "game_date", "points"],
        [Filter("game_date", "=", date(2024, 1, 14))],
    )
    expected = pl.read_parquet(SEASON_2023 / "nba_analytics.player_game_summary.parquet").filter(
        pl.col("game_date") == date(2024, 1, 14)
    )
    assert rows.height == expected.height
    assert rows.to_arrow().schema.field("game_date").type == pa.date32()
    assert sum(rows["points"].to_list()) == expected["points"].sum()


def test_replace_seasons_keeps_the_other_seasons_in_one_script(loaded_bq: str) -> None:
    """A second season loads beside the first; reloading a season replaces only its rows."""
    table = "nba_analytics.team_offense_game_summary"
    second = pl.read_parquet(SEASON_2024 / "nba_analytics.team_offense_game_summary.parquet")
    warehouse = bq()
    assert warehouse.replace_seasons_of([SeasonRows(table, [2024], second)]) == 2460
    counts = dict(warehouse.read(table, ["season_year"])["season_year"].value_counts().iter_rows())
    assert counts == {2023: 2460, 2024: 2460}
    fewer = second.filter(pl.col("game_date") < date(2024, 11, 1))
    assert warehouse.replace_seasons_of([SeasonRows(table, [2024], fewer)]) == fewer.height
    counts = dict(warehouse.read(table, ["season_year"])["season_year"].value_counts().iter_rows())
    assert counts == {2023: 2460, 2024: fewer.height}
    with pytest.raises(ValueError, match="season 2024 outside the seasons replaced"):
        warehouse.replace_seasons_of([SeasonRows(table, [2023], second)])
    staging = [
        t.table_id for t in warehouse.client.list_tables(f"{warehouse.project}.nba_analytics")
    ]
    assert not [t for t in staging if t.startswith("_staging")]


def test_replace_partition_replaces_and_drops_its_staging_table(bq_url: str) -> None:
    warehouse = bq()
    ensure_tables(warehouse)
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    replace_partitions(warehouse, schema, [D], p1_rows(D, ["BOS", "LAL", "NYK"]))
    replace_partitions(warehouse, schema, [date(2024, 1, 16)], p1_rows(date(2024, 1, 16), ["MIA"]))
    replace_partitions(warehouse, schema, [D], p1_rows(D, ["LAL"], rating=99.0))
    table = warehouse.read(
        schema.full_name,
        ["team_abbr", "defensive_rating_last_15"],
        [Filter("analysis_date", "=", D)],
    )
    assert table.to_dicts() == [{"team_abbr": "LAL", "defensive_rating_last_15": 99.0}]
    other = warehouse.read(
        schema.full_name, ["team_abbr"], [Filter("analysis_date", "=", date(2024, 1, 16))]
    )
    assert other["team_abbr"].to_list() == ["MIA"]
    assert staging_leftovers(warehouse) == []


def staging_leftovers(warehouse: BigQueryWarehouse) -> list[str]:
    """The staging tables a replace left behind in the output dataset (none, normally)."""
    return [
        t.table_id
        for t in warehouse.client.list_tables(f"{warehouse.project}.nba_precompute")
        if t.table_id.startswith("_staging_")
    ]


class BrokenStaging(BigQueryWarehouse):
    """Stages P1's rows without one column: the INSERT fails after the DELETE ran."""

    def _stage(self, rows: pa.Table, staging: str, fields: list[bigquery.SchemaField]) -> None:
        if DROPPED in rows.column_names and "processor" not in rows.column_names:
            rows = rows.drop_columns([DROPPED])
            fields = [f for f in fields if f.name != DROPPED]
        super()._stage(rows, staging, fields)


DROPPED = "defensive_rating_last_15"


def test_a_failure_inside_the_transaction_leaves_the_old_partition(bq_url: str) -> None:
    warehouse = bq()
    ensure_tables(warehouse)
    schema = TEAM_DEFENSE_ZONE_ANALYSIS
    replace_partitions(warehouse, schema, [D], p1_rows(D, ["BOS", "LAL"]))
    broken = BrokenStaging(warehouse.client, warehouse.project, read_api="rest")
    with pytest.raises(WarehouseError, match="committing nba_precompute.team_defense_zone"):
        replace_partitions(broken, schema, [D], p1_rows(D, ["NYK"]))
    table = warehouse.read(schema.full_name, ["team_abbr"], [Filter("analysis_date", "=", D)])
    assert sorted(table["team_abbr"].to_list()) == ["BOS", "LAL"]
    assert staging_leftovers(warehouse) == []


def run_line(rows: int) -> pl.DataFrame:
    line = RunLine(
        run_id="r",
        processor=TEAM_DEFENSE_ZONE_ANALYSIS.name,
        analysis_date=D,
        status="OK",
        rows=rows,
        duration_seconds=1.0,
        started_at=None,
        finished_at=None,
        message=f"{rows} rows",
    )
    return pl.DataFrame([line.as_row()], schema=PROCESSOR_RUNS.polars_schema)


def test_a_commit_writes_partitions_and_lines_in_one_script_or_nothing(
    bq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = bq()
    ensure_tables(warehouse)
    counting = AbortedTransactions(warehouse.client, warehouse.project, read_api="rest", aborts=0)
    # The emulator does not keep a table's expiration: what the request asks for is checked.
    expiries = []
    update_table = counting.client.update_table

    def recording(table: bigquery.Table, fields: list[str], **kwargs: Any) -> bigquery.Table:
        if table.table_id.startswith("_staging_") and "expires" in fields:
            expiries.append(table.expires)
        return update_table(table, fields, **kwargs)

    monkeypatch.setattr(counting.client, "update_table", recording)
    p1 = Replacement(TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["BOS", "LAL"]))
    staged_at = datetime.now(UTC)
    assert counting.commit([p1], [(PROCESSOR_RUNS, run_line(2))]) == 2
    assert counting.scripts == 1  # partitions and lines: one transaction
    assert len(expiries) == 2  # a staging table per table, each expiring in an hour
    for expires in expiries:
        assert timedelta(minutes=59) < expires - staged_at < timedelta(minutes=61)
    runs = warehouse.read(PROCESSOR_RUNS.full_name, ["rows"], [Filter("analysis_date", "=", D)])
    assert runs["rows"].to_list() == [2]

    broken = BrokenStaging(warehouse.client, warehouse.project, read_api="rest")
    nyk = Replacement(TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["NYK"]))
    with pytest.raises(WarehouseError):
        broken.commit([nyk], [(PROCESSOR_RUNS, run_line(1))])
    table = warehouse.read(
        TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr"], [Filter("analysis_date", "=", D)]
    )
    assert sorted(table["team_abbr"].to_list()) == ["BOS", "LAL"]  # neither partition ...
    runs = warehouse.read(PROCESSOR_RUNS.full_name, ["rows"], [Filter("analysis_date", "=", D)])
    assert runs["rows"].to_list() == [2]  # ... nor line
    assert staging_leftovers(warehouse) == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_full_run_matches_the_duckdb_run_row_for_row(
    loaded_bq: str, loaded_season: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    season_url = f"duckdb://{tmp_path / 'same_input.duckdb'}"
    shutil.copy(loaded_season, tmp_path / "same_input.duckdb")
    code, printed = phase4("run", "--date", str(D))
    assert code == 0, printed
    from_bigquery = {t: read_output(bq(), t, D) for t in OUTPUT_TABLES}
    # The run report records what each processor's own jobs scanned and billed; the
    # emulator reports 0 bytes, so the figures are present and zero; DuckDB records none.
    billed = bq().read(
        PROCESSOR_RUNS.full_name, ["processor", "bytes_processed", "bytes_billed"], []
    )
    assert sorted(billed["processor"].to_list()) == sorted(OUTPUT_TABLES)
    assert billed["bytes_processed"].to_list() == [0] * len(OUTPUT_TABLES)
    assert billed["bytes_billed"].to_list() == [0] * len(OUTPUT_TABLES)
    monkeypatch.setenv("PHASE4_WAREHOUSE", season_url)
    code, printed = phase4("run", "--date", str(D))
    assert code == 0, printed
    local = open_warehouse().read(PROCESSOR_RUNS.full_name, ["bytes_processed", "bytes_billed"])
    assert local.null_count().row(0) == (len(OUTPUT_TABLES), len(OUTPUT_TABLES))
    for table, schema in OUTPUT_TABLES.items():
        from_duckdb = read_output(open_warehouse(), table, D)
        stamp = "created_at" if "created_at" in schema.column_names else "processed_at"
        moving = [stamp, *PHASE4_SOURCE_STAMPS.get(table, ())]
        key = list(schema.key)
        left = from_bigquery[table].drop(moving).sort(key)
        right = from_duckdb.drop(moving).sort(key)
        assert left.height == right.height > 0, table
        assert left.equals(right), table
    # The report's reads, side by side (a job each on BigQuery), give the same figures.
    bigquery = open_warehouse(loaded_bq)
    on_bq, on_duckdb = (read_report_frames(w, D, D) for w in (bigquery, open_warehouse()))
    for figure in ("rows_per_processor", "p5_quality", "feature_defaults", "check_outcomes"):
        assert getattr(on_bq, figure).equals(getattr(on_duckdb, figure)), figure
    grid = ["analysis_date", "processor", "status", "rows"]
    assert on_bq.status_grid.select(grid).equals(on_duckdb.status_grid.select(grid))
    # A re-run replaces the partitions instead of adding to them.
    monkeypatch.setenv("PHASE4_WAREHOUSE", loaded_bq)
    assert phase4("run", "--date", str(D))[0] == 0
    for table in OUTPUT_TABLES:
        assert read_output(bq(), table, D).height == from_bigquery[table].height


def test_a_missing_dataset_says_to_run_warehouse_init(bq_url: str) -> None:
    with pytest.raises(WarehouseError, match="phase4 warehouse init"):
        replace_partitions(bq(), TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["BOS"]))


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_before_loading_phase3_says_to_load_it(bq_url: str) -> None:
    assert phase4("warehouse", "init")[0] == 0
    code, printed = phase4("run", "--date", str(D))
    assert code == 2  # one line, as on DuckDB (it was five failed reads and FAIL lines)
    flat = " ".join(printed.split())
    assert f"the warehouse holds no Phase 3 season, so {D} has nothing to build" in flat
    # A wrong project looks the same: the line names the warehouse it looked in.
    assert f"check that PHASE4_WAREHOUSE names the one you loaded ({bq_url})" in flat


def test_bad_warehouse_urls_say_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASE4_WAREHOUSE", "bigquery://")
    code, printed = phase4("warehouse", "init")
    assert code == 2
    assert "no project after bigquery://" in " ".join(printed.split())


def test_every_dataset_is_declared() -> None:
    assert set(DATASETS) == {"nba_analytics", "nba_precompute", "nba_predictions"}


def test_a_missing_table_is_named_with_its_project(bq_url: str) -> None:
    with pytest.raises(WarehouseError, match="does not exist in project phase4test"):
        bq().read(
            "nba_precompute.team_defense_zone_analysis",
            ["team_abbr"],
            [Filter("analysis_date", "=", D)],
        )


def test_a_permission_error_names_the_roles_needed() -> None:
    # The emulator grants everything, so the 403 BigQuery sends is built here, not received.
    from google.api_core.exceptions import Forbidden

    from tasks.warehouse.bigquery_warehouse import _explain

    message = str(_explain(Forbidden("Access Denied: Table p:nba_precompute.x"), "p", "writing x"))
    assert "permission denied writing x in project p" in message
    assert "roles/bigquery.jobUser" in message and "roles/bigquery.dataEditor" in message


# --- labels, byte cap, bytes counters, Storage Read fallback, aborted transactions ---


class RecordingClient(bigquery.Client):
    """The real client against the emulator; it remembers the jobs it submitted so a test can
    read their configurations (the emulator keeps load-job labels, drops query-job ones)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: list[bigquery.QueryJob | bigquery.LoadJob] = []

    def query(self, *args: Any, **kwargs: Any) -> bigquery.QueryJob:
        job = super().query(*args, **kwargs)
        self.jobs.append(job)
        return job

    def load_table_from_file(self, *args: Any, **kwargs: Any) -> bigquery.LoadJob:
        job = super().load_table_from_file(*args, **kwargs)
        self.jobs.append(job)
        return job


def recording(warehouse: BigQueryWarehouse, endpoint: str) -> RecordingClient:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return RecordingClient(
        project=warehouse.project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )


FLOW_RUN = "0b6f2c1e-7d3a-4c55-9e1b-2f0c8d4a6b7e"


def test_every_job_carries_the_labels_and_the_byte_cap(
    bq_url: str, bq_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHASE4_BIGQUERY_MAX_BYTES_BILLED", "250000000")
    opened = bq()
    assert opened.max_bytes_billed == 250_000_000
    ensure_tables(opened)
    client = recording(opened, bq_emulator.endpoint)
    base = BigQueryWarehouse(client, opened.project, read_api="rest", max_bytes_billed=250_000_000)
    warehouse = base.with_labels(
        processor="team_defense_zone_analysis", slate_date=str(D), flow_run_id=FLOW_RUN
    )
    assert isinstance(warehouse, BigQueryWarehouse) and base.labels == {}
    replace_partitions(warehouse, TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["BOS"]))
    frame = warehouse.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr"], [])
    assert frame["team_abbr"].to_list() == ["BOS"]
    runs = pl.DataFrame(
        [
            {
                "run_id": FLOW_RUN,
                "processor": "team_defense_zone_analysis",
                "analysis_date": D,
                "status": "OK",
            }
        ],
        schema={
            k: PROCESSOR_RUNS.polars_schema[k]
            for k in ("run_id", "processor", "analysis_date", "status")
        },
    )
    full = runs.with_columns(
        pl.lit(None, dtype).alias(name)
        for name, dtype in PROCESSOR_RUNS.polars_schema.items()
        if name not in runs.columns
    ).select(PROCESSOR_RUNS.column_names)
    warehouse.append(PROCESSOR_RUNS, full)
    expected = {
        "app": "phase4",
        "processor": "team_defense_zone_analysis",
        "slate_date": "2024-01-15",
        "flow_run_id": FLOW_RUN,
    }
    kinds = sorted(type(job).__name__ for job in client.jobs)
    # A staging load and a script for the replace and for the append; the read.
    assert kinds == ["LoadJob", "LoadJob", "QueryJob", "QueryJob", "QueryJob"]
    for job in client.jobs:
        assert job.labels == expected, job.job_id
        if isinstance(job, bigquery.QueryJob):
            assert job.maximum_bytes_billed == 250_000_000
        else:  # the emulator stores load-job labels: read them back from the server
            assert client.get_job(job.job_id).labels == expected
    # The emulator reports 0 bytes processed and no bytes billed: the counters add up to that.
    assert (warehouse.bytes_processed, warehouse.bytes_billed) == (0, 0)


def test_labels_follow_bigquerys_rules() -> None:
    from tasks.warehouse.bigquery_warehouse import job_labels

    labels = job_labels(
        {"processor": "Player Daily/Cache", "slate_date": "2025-01-15", "x": "a" * 70}
    )
    assert labels == {
        "app": "phase4",
        "processor": "player_daily_cache",
        "slate_date": "2025-01-15",
        "x": "a" * 63,
    }


def test_the_default_cap_is_one_gib_and_a_bad_setting_is_one_line(
    bq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bq().max_bytes_billed == 1 << 30
    monkeypatch.setenv("PHASE4_BIGQUERY_MAX_BYTES_BILLED", "lots")
    with pytest.raises(WarehouseError) as exc:
        bq()
    assert str(exc.value) == (
        "PHASE4_BIGQUERY_MAX_BYTES_BILLED=lots: expected a positive whole number of bytes, at "
        "least 10485760 (BigQuery bills at least 10 MiB a table, so any lower cap fails every "
        "query)"
    )


def test_bytes_of_finished_jobs_add_up_on_the_labelled_copy(bq_url: str) -> None:
    warehouse = bq().with_labels(processor="player_daily_cache")
    assert isinstance(warehouse, BigQueryWarehouse)
    for processed, billed in ((123_456, 10_485_760), (2_000_000, None)):
        statistics: dict[str, Any] = {"query": {"totalBytesProcessed": str(processed)}}
        if billed is not None:
            statistics["query"]["totalBytesBilled"] = str(billed)
        resource = {
            "jobReference": {"projectId": warehouse.project, "jobId": f"j{processed}"},
            "configuration": {"query": {"query": "SELECT 1"}},
            "statistics": statistics,
        }
        warehouse.account(bigquery.QueryJob.from_api_repr(resource, warehouse.client))
    assert (warehouse.bytes_processed, warehouse.bytes_billed) == (2_123_456, 10_485_760)
    assert (bq().bytes_processed, bq().bytes_billed) == (0, 0)


class OverTheCap(BigQueryWarehouse):
    """BigQuery refuses a query above maximum_bytes_billed before it runs (a 400); the
    emulator does not enforce the cap, so the real exception BigQuery sends is raised here."""

    def _query(self, sql: str, params: list[bigquery.ScalarQueryParameter]) -> bigquery.QueryJob:
        raise gexc.from_http_status(
            400,
            "Query exceeded limit for bytes billed: 1000000. 10485760 or higher required.",
            errors=[{"reason": "bytesBilledLimitExceeded", "message": "Query exceeded limit"}],
        )


def test_a_query_over_the_cap_names_the_cap_and_the_setting(bq_url: str) -> None:
    capped = OverTheCap(bq().client, bq().project, read_api="rest", max_bytes_billed=1_000_000)
    with pytest.raises(WarehouseError) as exc:
        capped.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr"])
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(
        "query reading nba_precompute.team_defense_zone_analysis in project phase4test"
    )
    assert "would bill more than the cap of 1000000 bytes" in text
    assert "raise PHASE4_BIGQUERY_MAX_BYTES_BILLED" in text


class DeniedReadSessions(BigQueryWarehouse):
    """The Storage Read API answers PermissionDenied (gRPC 403) when the account lacks
    bigquery.readsessions.create; the emulator grants everything, so the real exception
    class is raised at the point the client would raise it."""

    storage_attempts = 0

    def _fetch_storage(self, job: bigquery.QueryJob) -> pa.Table:
        type(self).storage_attempts += 1
        raise gexc.PermissionDenied(
            "request failed: the user does not have 'bigquery.readsessions.create' "
            f"permission for 'projects/{self.project}'"
        )


def test_a_denied_read_session_falls_back_to_rest_with_one_warning(
    loaded_bq: str, caplog: pytest.LogCaptureFixture
) -> None:
    opened = bq()
    denied = DeniedReadSessions(opened.client, opened.project, read_api="storage")
    window = [Filter("game_date", "=", date(2024, 1, 14))]
    with caplog.at_level("WARNING"):
        first = denied.read("nba_analytics.player_game_summary", ["points"], window)
        second = denied.with_labels(processor="player_daily_cache").read(
            "nba_analytics.player_game_summary", ["points"], window
        )
    expected = pl.read_parquet(SEASON_2023 / "nba_analytics.player_game_summary.parquet").filter(
        pl.col("game_date") == date(2024, 1, 14)
    )
    assert first.height == second.height == expected.height
    assert first["points"].sum() == expected["points"].sum()
    assert DeniedReadSessions.storage_attempts == 1  # REST from then on in this process
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"BigQuery Storage Read API denied in project {opened.project} "
        "(grant roles/bigquery.readSessionUser on the project, or set "
        "PHASE4_BIGQUERY_READ_API=rest): reading through REST for the rest of this run."
    )


def test_an_endpoint_with_a_trailing_slash_is_the_same_emulator(
    bq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`http://host:port/` sent every call to `//bigquery/v2/...` (a 404): `status` showed every
    processor "never run" and `run` found no Phase 3, exit 0, on a loaded warehouse."""
    bq().ensure_tables([PROCESSOR_RUNS])
    monkeypatch.setenv("PHASE4_BIGQUERY_ENDPOINT", os.environ["PHASE4_BIGQUERY_ENDPOINT"] + "/")
    assert bq().table_schema(PROCESSOR_RUNS.full_name) is not None


def test_the_read_api_is_chosen_by_setting(bq_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bq().read_api == "rest"  # the emulator serves the Storage API for tables only
    monkeypatch.setenv("PHASE4_BIGQUERY_READ_API", "storage")
    assert bq().read_api == "storage"
    monkeypatch.setenv("PHASE4_BIGQUERY_READ_API", "grpc")
    with pytest.raises(WarehouseError, match="PHASE4_BIGQUERY_READ_API=grpc: expected storage"):
        bq()


def aborted(project: str) -> gexc.GoogleAPICallError:
    """What job.result() raises when BigQuery cancels a conflicting transaction."""
    return gexc.from_http_status(
        400,
        "Query error: Transaction is aborted due to concurrent update against table "
        f"{project}:nba_precompute.team_defense_zone_analysis. Transaction ID: 6a1b at [3:1]",
        errors=[{"reason": "invalidQuery", "message": "Transaction is aborted"}],
    )


class AbortedTransactions(BigQueryWarehouse):
    """The first `aborts` transaction scripts are cancelled as BigQuery cancels the loser of
    two concurrent transactions on one table; the rest run on the emulator."""

    def __init__(self, *args: Any, aborts: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aborts, self.scripts = aborts, 0

    def _query(self, sql: str, params: list[bigquery.ScalarQueryParameter]) -> bigquery.QueryJob:
        if sql.startswith("BEGIN TRANSACTION"):
            self.scripts += 1
            if self.scripts <= self.aborts:
                raise aborted(self.project)
        return super()._query(sql, params)


def aborting(aborts: int) -> tuple[BigQueryWarehouse, AbortedTransactions]:
    """D holds BOS; the second warehouse's first `aborts` transactions are aborted."""
    opened = bq()
    ensure_tables(opened)
    replace_partitions(opened, TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["BOS"]))
    wrapped = AbortedTransactions(opened.client, opened.project, read_api="rest", aborts=aborts)
    wrapped.abort_backoff_seconds = (0.05, 0.05)
    return opened, wrapped


def test_an_aborted_transaction_is_retried_with_backoff(bq_url: str) -> None:
    opened, retried = aborting(1)
    assert replace_partitions(retried, TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["LAL"])) == 1
    assert retried.scripts == 2
    frame = opened.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr"])
    assert frame["team_abbr"].to_list() == ["LAL"]


def test_a_transaction_aborted_every_time_is_a_transient_error(bq_url: str) -> None:
    opened, stuck = aborting(99)
    with pytest.raises(TransientWarehouseError) as exc:
        replace_partitions(stuck, TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["LAL"]))
    assert stuck.scripts == 3  # the first try and two waits
    assert isinstance(exc.value.__cause__, gexc.BadRequest)
    assert str(exc.value).startswith(
        "BigQuery aborted a transaction committing "
        f"nba_precompute.team_defense_zone_analysis in project {opened.project}"
    )
    assert is_transient(exc.value)
    frame = opened.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr"])
    assert frame["team_abbr"].to_list() == ["BOS"]
    assert staging_leftovers(opened) == []


def test_before_commit_raising_submits_no_transaction(bq_url: str) -> None:
    opened = bq()
    ensure_tables(opened)
    replace_partitions(opened, TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["BOS"]))
    counting = AbortedTransactions(opened.client, opened.project, read_api="rest", aborts=0)

    def timed_out() -> None:
        raise TimeoutError("processor past its time limit (raised by the test)")

    with pytest.raises(TimeoutError):
        replace_partitions(
            counting, TEAM_DEFENSE_ZONE_ANALYSIS, [D], p1_rows(D, ["LAL"]), before_commit=timed_out
        )
    assert counting.scripts == 0
    assert opened.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr"])[
        "team_abbr"
    ].to_list() == ["BOS"]


def test_processor_runs_has_nullable_byte_columns(bq_url: str) -> None:
    ensure_tables(bq())
    table = bq().client.get_table(f"{bq().project}.{PROCESSOR_RUNS.full_name}")
    fields = {f.name: (f.field_type, f.mode) for f in table.schema}
    for name in ("bytes_processed", "bytes_billed"):
        assert fields[name] in {("INTEGER", "NULLABLE"), ("INT64", "NULLABLE")}, name


def test_a_denied_read_session_outside_the_fallback_names_the_read_session_role() -> None:
    from tasks.warehouse.bigquery_warehouse import _explain

    denied = gexc.PermissionDenied("the user does not have 'bigquery.readsessions.create'")
    message = str(_explain(denied, "p", "reading x"))
    assert message.startswith(
        "permission denied reading x in project p: reading through the Storage Read API needs "
        "roles/bigquery.readSessionUser on the project (or set PHASE4_BIGQUERY_READ_API=rest)."
    )


def test_an_emulator_endpoint_that_refuses_connections_is_one_line_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client retried it for its default ten minutes before saying the same."""
    import socket

    from tasks.warehouse.bigquery_warehouse import make_client

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("PHASE4_BIGQUERY_ENDPOINT", endpoint)
    try:
        with pytest.raises(WarehouseError, match=f"={endpoint} does not answer \\(Connection"):
            make_client("someproj", None)
    finally:
        closed.close()


def test_a_credentials_block_setting_that_is_no_block_name_is_refused_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tasks.warehouse.bigquery_warehouse import open_bigquery

    monkeypatch.delenv("PHASE4_BIGQUERY_ENDPOINT", raising=False)
    monkeypatch.setenv("PHASE4_GCP_CREDENTIALS_BLOCK", "My Block")
    with pytest.raises(WarehouseError, match="^PHASE4_GCP_CREDENTIALS_BLOCK=My Block: expected a"):
        open_bigquery("someproj")


@pytest.mark.usefixtures("prefect_harness")
def test_a_credentials_block_the_prefect_api_lacks_is_one_line_naming_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tasks.warehouse.bigquery_warehouse import open_bigquery

    monkeypatch.delenv("PHASE4_BIGQUERY_ENDPOINT", raising=False)
    monkeypatch.setenv("PHASE4_GCP_CREDENTIALS_BLOCK", "phase4-nosuch")
    with pytest.raises(WarehouseError) as refused:
        open_bigquery("someproj")
    message = str(refused.value)
    assert message.startswith("cannot create a BigQuery client for project someproj: ")
    assert "phase4-nosuch" in message
    assert "PHASE4_GCP_CREDENTIALS_BLOCK" in message and "\n" not in message


@pytest.mark.usefixtures("prefect_harness")
def test_a_placeholders_null_features_are_stored_as_nan_and_read_back_as_null(
    loaded_bq: str,
) -> None:
    """BigQuery holds no NULL inside an ARRAY (a query returning one fails): SPEC 8's 25 NULL
    features of an early-season placeholder made every REST read of `features` end in the
    client's `TypeError` (`features`, `training-set`, `export` over the season's first days)."""
    import math

    day = date(2023, 10, 26)
    code, printed = phase4("run", "--date", str(day))
    assert code in (0, 1), printed
    rows = read_output(bq(), "ml_feature_store_v2", day)
    held = rows.filter(pl.col("data_source") == "early_season")["features"].to_list()
    assert len(held) == rows.height > 0 and held == [[None] * 25] * len(held)  # all of them
    table = f"`{bq().project}.nba_predictions.ml_feature_store_v2`"
    query = f"SELECT features FROM {table} WHERE data_source = 'early_season'"
    raw = bq().client.query(query).to_arrow(create_bqstorage_client=False)
    assert raw.num_rows == len(held)
    assert all(math.isnan(v) for row in raw["features"].to_pylist() for v in row)
    code, printed = phase4("features", "--date", str(day), "--format", "json")
    assert code == 0, printed


def test_float_arrays_round_trip_whatever_their_chunks_and_nulls() -> None:
    """NULL elements become NaN and back; NULL and empty lists stay; slices and chunks too."""
    from quality.schemas import bigquery_float_arrays

    lists = pa.array([[1.5, None], None, [None] * 3, []], pa.list_(pa.float64()))
    rows = pa.concat_tables([pa.table({"f": lists, "x": [1, 2, 3, 4]})] * 2).slice(1, 6)
    stored = bigquery_float_arrays(rows, to_nan=True)["f"].to_pylist()
    assert [None if r is None else [str(v) for v in r] for r in stored] == [
        None, ["nan"] * 3, [], ["1.5", "nan"], None, ["nan"] * 3,
    ]  # fmt: skip
    back = bigquery_float_arrays(bigquery_float_arrays(rows, to_nan=True), to_nan=False)
    assert back.equals(rows.combine_chunks())
