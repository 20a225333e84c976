"""Backfill: the chunked path equals the per-date path, and the CLI's backfill behaves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.core import build_outputs
from quality.schemas import OUTPUT_TABLES, Phase3Frames
from tasks.freshness import date_chunks
from tasks.readers import read_output, read_phase3_frames
from tasks.warehouse import open_warehouse
from tests.test_flow_realdata import PHASE4_SOURCE_STAMPS, phase4

BUILT_AT = datetime(2026, 1, 1, tzinfo=UTC)
SEASON_DATES = (date(2023, 10, 24), date(2024, 4, 7))


def test_chunks_split_at_season_boundaries_and_size() -> None:
    chunks = date_chunks(date(2024, 7, 30), date(2024, 8, 2), chunk_days=31)
    assert chunks == [[date(2024, 7, 30), date(2024, 7, 31)], [date(2024, 8, 1), date(2024, 8, 2)]]
    long = date_chunks(date(2024, 1, 1), date(2024, 3, 1), chunk_days=31)
    assert [len(c) for c in long] == [31, 30]
    with pytest.raises(ValueError, match="before start"):
        date_chunks(date(2024, 1, 2), date(2024, 1, 1))


def date_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def partition_of(table: str) -> str:
    column = OUTPUT_TABLES[table].partition_column
    assert column is not None
    return column


def _frames_for(frames: Phase3Frames, day: date) -> Phase3Frames:
    """What a run for `day` alone reads: the same filters as tasks.io.phase3_window."""
    before = pl.col("game_date") < day
    return Phase3Frames(
        frames.player_games.filter(before),
        frames.team_defense.filter(before),
        frames.team_offense.filter(before),
        frames.player_context.filter(pl.col("game_date") == day),
        frames.team_context.filter(pl.col("game_date") <= day),
    )


@pytest.mark.usefixtures("season_url")
def test_the_chunked_path_equals_the_per_date_path_on_every_date_of_the_season() -> None:
    warehouse = open_warehouse()
    whole_season = read_phase3_frames(warehouse, *SEASON_DATES)
    days = date_range(*SEASON_DATES)
    season = build_outputs(whole_season, days, BUILT_AT)  # the backfill's one pass
    day, compared = SEASON_DATES[0], 0
    with warehouse.held_open():  # one open file for the 167 dates' reads, as a flow holds it
        while day <= SEASON_DATES[1]:
            chunked = {t: f.filter(pl.col(partition_of(t)) == day) for t, f in season.items()}
            alone = build_outputs(read_phase3_frames(warehouse, day, day), day, BUILT_AT)
            for table, frame in chunked.items():
                assert_frame_equal(frame, alone[table], check_exact=True)
            compared += 1
            day += timedelta(days=1)
    assert compared == (SEASON_DATES[1] - SEASON_DATES[0]).days + 1


@pytest.mark.parametrize("day", [date(2023, 12, 4), date(2024, 1, 15), date(2024, 2, 29)])
@pytest.mark.usefixtures("season_url")
def test_point_in_time_for_all_five_tables(day: date) -> None:
    """Later games, changed or not, never touch D: the whole season vs the season cut at D."""
    frames = read_phase3_frames(open_warehouse(), *SEASON_DATES)
    later = pl.col("game_date") >= day
    scrambled = Phase3Frames(
        frames.player_games.with_columns(
            pl.when(later)
            .then(pl.col("points") * 2 + 7)
            .otherwise(pl.col("points"))
            .alias("points")
        ),
        frames.team_defense.with_columns(
            pl.when(later)
            .then(pl.col("defensive_rating") + 30)
            .otherwise(pl.col("defensive_rating"))
            .alias("defensive_rating")
        ),
        frames.team_offense.with_columns(
            pl.when(later).then(pl.col("pace") - 20).otherwise(pl.col("pace")).alias("pace")
        ),
        frames.player_context,
        frames.team_context,
    )
    full = build_outputs(scrambled, day, BUILT_AT)
    cut = build_outputs(_frames_for(frames, day), day, BUILT_AT)
    for table, frame in full.items():
        assert frame.height > 0, table
        assert_frame_equal(frame, cut[table], check_exact=True)


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_backfill_builds_every_date_skips_completed_ones_and_forces() -> None:
    code, printed = phase4("backfill", "--start", "2024-01-10", "--end", "2024-01-20")
    assert code == 0, printed
    assert "FAIL" not in printed
    for offset in range(11):
        day = date(2024, 1, 10) + timedelta(days=offset)
        assert read_output(open_warehouse(), "team_defense_zone_analysis", day).height == 30
        assert read_output(open_warehouse(), "ml_feature_store_v2", day).height > 0
    first = read_output(open_warehouse(), "player_daily_cache", date(2024, 1, 15))
    code, printed = phase4("backfill", "--start", "2024-01-10", "--end", "2024-01-20")
    assert code == 0 and "11 dates skipped" in printed
    assert "0 rows written; 11 dates skipped" in printed, printed
    code, printed = phase4("backfill", "--start", "2024-01-15", "--end", "2024-01-15", "--force")
    assert code == 0 and "0 dates skipped" in printed
    again = read_output(open_warehouse(), "player_daily_cache", date(2024, 1, 15))
    written = sum(read_output(open_warehouse(), t, date(2024, 1, 15)).height for t in OUTPUT_TABLES)
    assert f"{written} rows written; 0 dates skipped" in printed, printed
    moving = ["processed_at", *PHASE4_SOURCE_STAMPS["player_daily_cache"]]
    key = ["player_lookup"]
    assert_frame_equal(first.drop(moving).sort(key), again.drop(moving).sort(key))


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_backfill_matches_the_nightly_flow() -> None:
    assert phase4("backfill", "--start", "2024-01-15", "--end", "2024-01-15")[0] == 0
    backfilled = {t: read_output(open_warehouse(), t, date(2024, 1, 15)) for t in OUTPUT_TABLES}
    assert phase4("run", "--date", "2024-01-15")[0] == 0
    for table, schema in OUTPUT_TABLES.items():
        nightly = read_output(open_warehouse(), table, date(2024, 1, 15))
        stamp = "created_at" if "created_at" in schema.column_names else "processed_at"
        moving = [stamp, *PHASE4_SOURCE_STAMPS.get(table, ())]
        key = list(schema.key)
        assert_frame_equal(backfilled[table].drop(moving).sort(key), nightly.drop(moving).sort(key))


@pytest.mark.usefixtures("season_url")
def test_row_order_of_the_input_does_not_change_a_bit() -> None:
    """Warehouses return rows in any order: the outputs (and data_hash) must not care."""
    frames = read_phase3_frames(open_warehouse(), *SEASON_DATES)
    shuffled = Phase3Frames(
        *(
            frame.sample(fraction=1.0, shuffle=True, seed=11)
            for frame in (
                frames.player_games,
                frames.team_defense,
                frames.team_offense,
                frames.player_context,
                frames.team_context,
            )
        )
    )
    for day in (date(2023, 11, 20), date(2024, 3, 1)):
        ordered = build_outputs(frames, day, BUILT_AT)
        for table, frame in build_outputs(shuffled, day, BUILT_AT).items():
            assert_frame_equal(frame, ordered[table], check_exact=True)


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_flow_parameters_the_cli_would_refuse_fail_the_run_in_one_line_writing_nothing() -> None:
    """A deployment's run takes its parameters without the CLI's checks: an end before the
    start raised a traceback, 9999-12-31 wrote five FAIL lines ('year 10000 is out of range')."""
    from flows.phase4_backfill import phase4_backfill
    from flows.phase4_precompute import phase4_precompute
    from quality.schemas import PROCESSOR_RUNS

    before = open_warehouse().table_schema(PROCESSOR_RUNS.full_name)
    state = phase4_backfill(date(2024, 1, 12), date(2024, 1, 10), return_state=True)
    assert state.is_failed()
    assert state.message == "end_date 2024-01-10 is before start_date 2024-01-12"
    nightly = phase4_precompute(analysis_date=date(9999, 12, 31), return_state=True)
    assert nightly.is_failed() and "less than or equal to 2999-12-31" in str(nightly.message)
    assert before is None  # a loaded season, never run
    assert open_warehouse().table_schema(PROCESSOR_RUNS.full_name) is None  # nothing written
