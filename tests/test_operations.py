"""Operating the flow unattended: run history, the UI artifact, fail-fast input, safe writes."""

from __future__ import annotations

import pickle
import threading
from datetime import date, datetime
from uuid import UUID

import duckdb
import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.phase4_precompute import phase4_precompute
from quality.schemas import OUTPUT_TABLES, PROCESSOR_RUNS
from quality.success import RunFailed
from tasks.readers import read_output
from tasks.warehouse import Filter, Warehouse, open_warehouse
from tests.support.reports import report_of
from tests.test_flow_realdata import PHASE4_SOURCE_STAMPS, D, phase4

pytestmark = pytest.mark.usefixtures("prefect_harness", "season_url")


def business_rows() -> dict[str, pl.DataFrame]:
    """Every output partition for D without its build time, sorted by key."""
    out = {}
    for table, schema in OUTPUT_TABLES.items():
        frame = read_output(open_warehouse(), table, D)
        moving = ["processed_at", "created_at", *PHASE4_SOURCE_STAMPS.get(table, ())]
        out[table] = frame.drop(moving, strict=False).sort(list(schema.key))
    return out


def sql(warehouse_url: str, statement: str) -> None:
    con = duckdb.connect(warehouse_url.removeprefix("duckdb://"))
    try:
        con.execute(statement)
    finally:
        con.close()


def run_lines(run_id: str) -> pl.DataFrame:
    frame = open_warehouse().read(PROCESSOR_RUNS.full_name, None, [Filter("analysis_date", "=", D)])
    return frame.filter(pl.col("run_id") == run_id)


def test_a_run_records_five_lines_an_artifact_and_a_completed_event() -> None:
    state = phase4_precompute(analysis_date=D, return_state=True)
    assert state.is_completed()
    report = report_of(state)
    lines = run_lines(report.run_id)
    assert sorted(lines["processor"].to_list()) == sorted(OUTPUT_TABLES)
    assert set(lines["status"].to_list()) <= {"OK", "WARN"}
    assert (lines["rows"] > 0).all()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["phase4-run-report"]))
        )
    mine = [a for a in artifacts if str(a.flow_run_id) == report.run_id]
    assert len(mine) == 1
    assert mine[0].type == "table"
    import json

    raw = mine[0].data
    data = json.loads(raw) if isinstance(raw, str) else raw
    assert isinstance(data, list), data
    assert [row["processor"] for row in data] == list(OUTPUT_TABLES)


def test_status_rebuilds_the_report_from_the_warehouse() -> None:
    assert phase4("run", "--date", str(D))[0] == 0
    code, printed = phase4("status", "--date", str(D))
    assert code == 0
    for table in OUTPUT_TABLES:
        assert table in printed
    assert printed.count("OK") + printed.count("WARN") >= 5
    code, printed = phase4("status", "--date", "2024-01-16")
    assert "never run" in printed


BAD_INPUTS = [
    # (SQL that breaks the input, table named, column or rule named, processors not run)
    (
        "DROP TABLE nba_analytics.team_defense_game_summary",
        "nba_analytics.team_defense_game_summary",
        "table is missing",
    ),
    (
        "ALTER TABLE nba_analytics.player_game_summary DROP COLUMN fg_makes",
        "nba_analytics.player_game_summary",
        "column fg_makes; rule: required column is missing",
    ),
    (
        "ALTER TABLE nba_analytics.team_offense_game_summary ALTER pace TYPE VARCHAR",
        "nba_analytics.team_offense_game_summary",
        "column pace; rule: wrong type",
    ),
    (
        "UPDATE nba_analytics.player_game_summary SET player_lookup = NULL "
        "WHERE game_id = (SELECT min(game_id) FROM nba_analytics.player_game_summary "
        "WHERE game_date = DATE '2024-01-10')",
        "nba_analytics.player_game_summary",
        "column player_lookup; rule: key must not be NULL",
    ),
    (
        "INSERT INTO nba_analytics.team_defense_game_summary SELECT * FROM "
        "nba_analytics.team_defense_game_summary WHERE game_date = DATE '2024-01-10' LIMIT 1",
        "nba_analytics.team_defense_game_summary",
        "duplicate key",
    ),
    (
        "UPDATE nba_analytics.player_game_summary SET points = -3 "
        "WHERE game_date = DATE '2024-01-12' AND points > 10",
        "nba_analytics.player_game_summary",
        "column points; rule: counts must not be negative",
    ),
    (
        "UPDATE nba_analytics.team_defense_game_summary "
        "SET opp_paint_makes = opp_paint_attempts + 1 WHERE game_date = DATE '2024-01-12'",
        "nba_analytics.team_defense_game_summary",
        "makes above attempts",
    ),
    (
        "UPDATE nba_analytics.player_game_summary SET minutes_played = 95 "
        "WHERE game_date = DATE '2024-01-12' AND minutes_played > 30",
        "nba_analytics.player_game_summary",
        "column minutes_played; rule: outside 0 to 80",
    ),
]


@pytest.mark.parametrize(("breakage", "table", "rule"), BAD_INPUTS)
def test_bad_input_fails_fast_and_leaves_the_warehouse_as_it_was(
    season_url: str, breakage: str, table: str, rule: str
) -> None:
    assert phase4("run", "--date", str(D))[0] == 0
    before = business_rows()
    sql(season_url, breakage)
    code, printed = phase4("run", "--date", str(D))
    flat = " ".join(printed.split())
    assert code == 1, printed
    assert table in flat and rule in flat and "date 2024-01-15" in flat, printed
    assert "FAIL" in printed
    after = business_rows()
    for name, frame in before.items():
        changed = [c for c in frame.columns if not after[name][c].equals(frame[c])]
        assert changed == [], name


def test_processors_behind_a_bad_input_are_reported_not_run(season_url: str) -> None:
    sql(season_url, "DROP TABLE nba_analytics.team_defense_game_summary")
    state = phase4_precompute(analysis_date=D, return_state=True)
    assert state.is_failed()
    report = report_of(state, raise_on_failure=False)
    # Its data is an exception carrying the report: anything else made Prefect raise a
    # TypeError where the flow ran (a worker's log named no run, only `Unexpected result`).
    with pytest.raises(RunFailed, match="^Phase 4 for 2024-01-15 failed: ") as failed:
        state.result()
    assert (
        failed.value.outcome == report
        and pickle.loads(pickle.dumps(failed.value)).outcome == report
    )
    statuses = {line.processor: line.status for line in report.lines}
    assert statuses["team_defense_zone_analysis"] == "FAIL"
    assert statuses["player_composite_factors"] == "SKIPPED"
    assert statuses["ml_feature_store_v2"] == "FAIL"  # it reads team defense itself
    assert statuses["player_shot_zone_analysis"] == "OK"
    skipped = next(line for line in report.lines if line.processor == "player_composite_factors")
    assert "team_defense_zone_analysis" in skipped.message


def test_a_team_without_history_still_gives_its_players_rows(season_url: str) -> None:
    sql(
        season_url,
        "UPDATE nba_analytics.upcoming_player_game_context SET opponent_team_abbr = "
        "'XYZ' WHERE game_date = DATE '2024-01-15' AND team_abbr = 'BOS'",
    )
    code, printed = phase4("run", "--date", str(D))
    assert code == 0, printed
    composite = read_output(open_warehouse(), "player_composite_factors", D)
    flagged = composite.filter(pl.col("opponent_team_abbr") == "XYZ")
    assert flagged.height > 0
    assert flagged["warning_details"].str.contains("MISSING_ZONE_DATA").all()
    features = read_output(open_warehouse(), "ml_feature_store_v2", D)
    assert features.filter(pl.col("opponent_team_abbr") == "XYZ").height == flagged.height


def test_an_entity_that_disappears_from_the_input_disappears_from_the_rerun(
    season_url: str,
) -> None:
    assert phase4("run", "--date", str(D))[0] == 0
    slate = read_output(open_warehouse(), "ml_feature_store_v2", D)
    gone = slate["player_lookup"][0]
    sql(
        season_url,
        f"DELETE FROM nba_analytics.upcoming_player_game_context "
        f"WHERE game_date = DATE '2024-01-15' AND player_lookup = '{gone}'",
    )
    assert phase4("run", "--date", str(D))[0] == 0
    for table in ("player_composite_factors", "ml_feature_store_v2"):
        rerun = read_output(open_warehouse(), table, D)
        assert gone not in rerun["player_lookup"].to_list()
        assert rerun.height == slate.height - 1


def test_two_runs_for_the_same_date_do_not_interleave() -> None:
    states = []

    def run() -> None:
        states.append(phase4_precompute(analysis_date=D, return_state=True))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert [s.is_completed() for s in states] == [True, True]
    spans = []
    for state in states:
        lines = run_lines(report_of(state).run_id)
        started, finished = lines["started_at"].min(), lines["finished_at"].max()
        assert isinstance(started, datetime) and isinstance(finished, datetime), lines
        spans.append((started, finished))
    first, second = sorted(spans)
    assert first[1] <= second[0], f"runs overlapped: {spans}"


def _read_task_runs(flow_run_id: str) -> list[tuple[str, int]]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
        )
    return [(run.name, run.run_count) for run in runs]


def test_a_transient_warehouse_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.io

    real_read, calls = tasks.io.read_phase3, []

    def flaky_read(
        warehouse: Warehouse, table: str, first_date: date, last_date: date | None = None
    ) -> pl.DataFrame:
        calls.append(table)
        if table == "team_defense_game_summary" and calls.count(table) == 1:
            raise ConnectionError("connection reset by peer (forced by the test)")
        return real_read(warehouse, table, first_date, last_date)

    monkeypatch.setattr(tasks.io, "read_phase3", flaky_read)
    state = phase4_precompute(
        analysis_date=D, processors=["team_defense_zone_analysis"], return_state=True
    )
    assert state.is_completed()
    assert calls.count("team_defense_game_summary") == 2
    runs = dict(_read_task_runs(report_of(state).run_id))
    reads = [c for name, c in runs.items() if name.startswith("read-team_defense_game_summary")]
    assert max(reads) == 2


def test_bad_input_is_not_retried(season_url: str) -> None:
    sql(season_url, "DROP TABLE nba_analytics.team_defense_game_summary")
    state = phase4_precompute(
        analysis_date=D, processors=["team_defense_zone_analysis"], return_state=True
    )
    assert state.is_failed()
    runs = _read_task_runs(report_of(state, raise_on_failure=False).run_id)
    assert [count for name, count in runs if name.startswith("read-team_defense_game")] == [1]


def test_a_processor_past_its_timeout_is_stopped_and_its_write_rolled_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The timeout (twice the SPEC limit in production) is shortened to 1 s for the test.

    Compute and write run in one worker thread that the timeout cannot stop: the computation
    carries on after the task FAILs and reaches the write, whose commit refuses (the deadline
    passed) and rolls back. D keeps the previous partition.
    """
    import time
    from dataclasses import replace

    from features.registry import PROCESSORS

    assert phase4("run", "--date", str(D), "--processors", "team_defense_zone_analysis")[0] == 0
    before = read_output(open_warehouse(), "team_defense_zone_analysis", D)
    entry = PROCESSORS["team_defense_zone_analysis"]
    reached_write = []

    def slow(*args: object, **kwargs: object) -> pl.DataFrame:
        time.sleep(3)
        reached_write.append(True)
        return entry.compute(*args, **kwargs)

    # A limit of 1/120 minute: the task is stopped at twice it, 1 s.
    slow_entry = replace(entry, compute=slow, time_limit_minutes=1 / 120)
    monkeypatch.setitem(PROCESSORS, "team_defense_zone_analysis", slow_entry)
    state = phase4_precompute(
        analysis_date=D, processors=["team_defense_zone_analysis"], return_state=True
    )
    assert state.is_failed()
    line = report_of(state, raise_on_failure=False).lines[0]
    assert (line.processor, line.status) == ("team_defense_zone_analysis", "FAIL")
    assert "Timeout" in line.message or "timed out" in line.message.lower()
    runs = _read_task_runs(report_of(state, raise_on_failure=False).run_id)
    assert [n for name, n in runs if name.startswith("build-team_defense_zone_analysis")] == [1]
    time.sleep(4)  # the abandoned computation finishes and tries to write: it must roll back
    assert reached_write == [True]
    after = read_output(open_warehouse(), "team_defense_zone_analysis", D)
    assert after["processed_at"].to_list() == before["processed_at"].to_list()
    assert after.equals(before)
    # The FAIL line (it never finished: no rows, no duration) is D's latest for status and
    # freshness, so the next backfill rebuilds D; a line without times sorted as the oldest.
    from phase4.status import status_rows

    states = {r["processor"]: r["state"] for r in status_rows(open_warehouse(), D)}
    assert states["team_defense_zone_analysis"] == "FAIL"
