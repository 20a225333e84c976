"""SPEC 17: a subset of processors reads its unselected upstreams as stored, judged by their
latest run line, on both paths (nightly and backfill), on the real 2023-24 season."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quality.schemas import OUTPUT_TABLES, PROCESSOR_RUNS
from tasks.readers import read_output
from tasks.warehouse import Filter, open_warehouse
from tests.test_flow_realdata import PHASE4_SOURCE_STAMPS, phase4

pytestmark = pytest.mark.usefixtures("prefect_harness", "season_url")
P1, P2, P3, P5 = (
    "team_defense_zone_analysis",
    "player_shot_zone_analysis",
    "player_composite_factors",
    "ml_feature_store_v2",
)
D10, D11, D12 = date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 12)


def business(table: str, day: date) -> pl.DataFrame:
    """A stored partition without its build times, sorted by key."""
    frame = read_output(open_warehouse(), table, day)
    stamp = "created_at" if "created_at" in frame.columns else "processed_at"
    key = list(OUTPUT_TABLES[table].key)
    return frame.drop(stamp, *PHASE4_SOURCE_STAMPS.get(table, ())).sort(key)


def latest(table: str, day: date) -> tuple[str, str]:
    runs = open_warehouse().read(
        PROCESSOR_RUNS.full_name, None, [Filter("analysis_date", "=", day)]
    )
    line = runs.filter(pl.col("processor") == table).sort("finished_at").row(-1, named=True)
    return line["status"], line["message"]


def sql(url: str, statement: str) -> None:
    with duckdb.connect(url.removeprefix("duckdb://")) as con:
        con.execute(statement)


def test_a_subset_backfill_writes_what_the_full_one_wrote() -> None:
    code, printed = phase4("backfill", "--start", "2024-01-05", "--end", "2024-01-14")
    assert code == 0, printed
    full = {d: business(P3, d) for d in (D10, D11, D12)}
    code, printed = phase4(
        "backfill", "--start", str(D10), "--end", str(D12), "--processors", "P3", "--force"
    )
    assert code == 0, printed
    for day, rows in full.items():
        assert_frame_equal(business(P3, day), rows, check_exact=True)
        assert latest(P3, day)[0] == "OK"
    # The degradation this replaced: shot_zone_mismatch_score 0.0 on every row, reported OK.
    assert (business(P3, D11)["shot_zone_mismatch_score"] != 0.0).sum() > 50


def test_a_subset_backfill_fails_or_warns_on_upstreams_not_built_or_stale(
    season_url: str,
) -> None:
    assert phase4("backfill", "--start", str(D10), "--end", str(D12))[0] == 0
    before = {d: read_output(open_warehouse(), P3, d) for d in (D10, D11, D12)}
    sql(  # P1 never built for D11
        season_url,
        f"DELETE FROM {PROCESSOR_RUNS.full_name} WHERE processor = '{P1}' "
        f"AND analysis_date = DATE '{D11}'",
    )
    sql(  # a corrected box score of D11: P2 of D12 (built from it) is stale, D10 and D11 not
        season_url,
        "UPDATE nba_analytics.player_game_summary SET points = points + 1 "
        f"WHERE game_date = DATE '{D11}' AND player_lookup = (SELECT min(player_lookup) "
        f"FROM nba_analytics.player_game_summary WHERE game_date = DATE '{D11}')",
    )
    code, printed = phase4(
        "backfill", "--start", str(D10), "--end", str(D12), "--processors", "P3", "--force"
    )
    assert code == 1, printed
    assert latest(P3, D10) == ("OK", f"{before[D10].height} rows")
    assert latest(P3, D11) == ("FAIL", f"upstream {P1} not built for {D11}")
    assert read_output(open_warehouse(), P3, D11).equals(before[D11])  # left untouched
    status, message = latest(P3, D12)
    assert status == "WARN" and message.endswith(f"upstream {P2} stale for {D12}"), message
    assert read_output(open_warehouse(), P3, D12).height == before[D12].height

    code, printed = phase4(
        "backfill", "--start", str(D11), "--end", str(D11), "--processors", "P5", "--force"
    )
    status, message = latest(P5, D11)
    assert status == "WARN", message
    assert f"upstream {P1} not built for {D11}" in message
    assert f"upstream {P3} not built for {D11}" in message  # its line is FAIL now
    p5 = read_output(open_warehouse(), P5, D11)
    assert p5.height == before[D11].height  # still a row per slate player (SPEC 8)
    assert p5["data_quality_issues"].list.contains(f"{P1}_failed").all()
    assert not p5["is_production_ready"].any()


def test_a_subset_nightly_run_reads_what_is_stored_and_fails_without_it(
    season_url: str,
) -> None:
    day = D10 + timedelta(days=5)
    assert phase4("run", "--date", str(day))[0] == 0
    full = business(P3, day)
    code, printed = phase4("run", "--date", str(day), "--processors", "P3")
    assert code == 0, printed
    assert_frame_equal(business(P3, day), full, check_exact=True)
    stored = read_output(open_warehouse(), P3, day)
    sql(
        season_url,
        f"DELETE FROM {PROCESSOR_RUNS.full_name} WHERE processor = '{P1}' "
        f"AND analysis_date = DATE '{day}'",
    )
    code, printed = phase4("run", "--date", str(day), "--processors", "P3")
    assert code == 1, printed
    assert f"upstream {P1} not built for {day}" in " ".join(printed.split())
    assert latest(P3, day) == ("FAIL", f"upstream {P1} not built for {day}")
    assert read_output(open_warehouse(), P3, day).equals(stored)
