"""SPEC 14 freshness: fingerprints by hand, the state grid, and Phase 3 reloads.

Pure cases first (hand-computed hashes, sums and states), then real seasons on DuckDB:
two seasons side by side, a synthetic-then-real reload, and a corrected box score.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from hashlib import blake2b
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from demo_data import generate_season
from features import registry
from phase4.cli import app
from phase4.loading import Phase3LoadError, load_phase3_directory, load_phase3_frames
from quality.freshness import (
    daily_sums,
    dates_to_build,
    freshness_grid,
    input_fingerprints,
    row_hashes,
    table_part,
    windowed_sums,
)
from quality.schemas import OUTPUT_TABLES, PHASE3_TABLES, PROCESSOR_RUNS
from tasks.freshness import RUN_COLUMNS, status_grid
from tasks.readers import read_output
from tasks.warehouse import open_warehouse
from tests.conftest import SEASON_2023, SEASON_2024
from tests.test_flow_realdata import PHASE4_SOURCE_STAMPS

runner = CliRunner()
P1, P2, P3, P4, P5 = (p.table for p in registry.PROCESSORS.values())
PROCESSORS = list(registry.PROCESSORS.values())


def phase4(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def blake64(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")


# ---------------------------------------------------------------- fingerprints by hand


def test_a_row_hash_is_blake2b_of_the_rows_text() -> None:
    frame = pl.DataFrame({"a": ["x", None], "b": [1, 2]})
    assert row_hashes(frame, ["a", "b"]).to_list() == [blake64("x\x1f1"), blake64("\\N\x1f2")]


def test_a_table_part_folds_the_two_halves_mod_2_64() -> None:
    assert table_part(3, 5, 1) == "3:0000000100000005"
    # (2^32 - 1) * 2^32 + 2^32 = 2^64, which wraps to 0
    assert table_part(1, 2**32, 2**32 - 1) == "1:0000000000000000"


def test_windows_sum_exactly_the_rows_a_build_for_d_reads() -> None:
    """Game tables: season S before D; player context: dated D; team context: S through D."""
    frames = {t: pl.read_parquet(SEASON_2024 / f"nba_analytics.{t}.parquet") for t in PHASE3_TABLES}
    day = date(2025, 1, 15)
    for table, keep in {
        "team_offense_game_summary": pl.col("game_date") < day,
        "upcoming_player_game_context": pl.col("game_date") == day,
        "upcoming_team_game_context": pl.col("game_date") <= day,
    }.items():
        frame = frames[table].select(PHASE3_TABLES[table].column_names)
        rows = frame.filter(keep & (pl.col("season_year") == 2024))
        hashed = PHASE3_TABLES[table].contract_column_names  # the optional lines: P5's part
        expected = sum(row_hashes(rows, hashed).to_list())
        sums = windowed_sums(daily_sums(frame, table), table, [day]).row(0)
        assert sums[1] == rows.height > 0
        assert table_part(sums[1], sums[2], sums[3]) == (f"{rows.height}:{expected % 2**64:016x}")


def test_only_p5_sees_a_changed_line_and_its_feature_version() -> None:
    """SPEC 16: P5 reads the lines of S dated before D (and D's); P3 and P4 do not."""
    frames = {t: pl.read_parquet(SEASON_2024 / f"nba_analytics.{t}.parquet") for t in PHASE3_TABLES}
    days = [date(2025, 1, 10), date(2025, 1, 20)]
    before = input_fingerprints(frames, days, PROCESSORS)
    context = frames["upcoming_player_game_context"]
    moved = context.with_columns(
        pl.when(pl.col("game_date") == date(2025, 1, 12))
        .then(pl.col("current_points_line") + 0.5)
        .otherwise(pl.col("current_points_line"))
        .alias("current_points_line")
    )
    after = input_fingerprints({**frames, "upcoming_player_game_context": moved}, days, PROCESSORS)
    changed = before.join(after, on=["analysis_date", "processor"]).filter(
        pl.col("input_fingerprint") != pl.col("input_fingerprint_right")
    )
    assert changed.select("analysis_date", "processor").rows() == [
        (date(2025, 1, 20), "ml_feature_store_v2")
    ]
    without = {
        **frames,
        "upcoming_player_game_context": context.drop("current_points_line"),
        "upcoming_team_game_context": frames["upcoming_team_game_context"].drop(
            "game_total", "game_spread"
        ),
    }
    assert input_fingerprints(without, days, PROCESSORS).height == 10


def test_a_p5_partition_of_another_feature_version_is_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SPEC 16.1: P5's fingerprint carries its feature_version, so a line recorded by the
    25-feature version no longer matches and the date is rebuilt."""
    import quality.freshness as freshness

    frames = {t: pl.read_parquet(SEASON_2024 / f"nba_analytics.{t}.parquet") for t in PHASE3_TABLES}
    days = [date(2025, 1, 10)]
    now = input_fingerprints(frames, days, PROCESSORS)
    monkeypatch.setitem(freshness.VERSIONS, "ml_feature_store_v2", "v1_baseline_25")
    old = input_fingerprints(frames, days, PROCESSORS)
    differs = now.join(old, on=["analysis_date", "processor"]).filter(
        pl.col("input_fingerprint") != pl.col("input_fingerprint_right")
    )
    assert differs["processor"].to_list() == ["ml_feature_store_v2"]


def test_fingerprints_ignore_row_order_and_see_one_changed_value() -> None:
    frames = {t: pl.read_parquet(SEASON_2024 / f"nba_analytics.{t}.parquet") for t in PHASE3_TABLES}
    days = [date(2025, 1, 10), date(2025, 1, 15), date(2025, 1, 20)]
    ordered = input_fingerprints(frames, days, PROCESSORS)
    shuffled = {t: f.sample(fraction=1.0, shuffle=True, seed=3) for t, f in frames.items()}
    assert_frame_equal(input_fingerprints(shuffled, days, PROCESSORS), ordered)
    assert ordered.height == 15 and ordered["input_fingerprint"].str.len_chars().min() == 32

    games = frames["player_game_summary"]
    first = games.filter(pl.col("game_date") == date(2025, 1, 14)).row(0, named=True)
    corrected = with_points_added(games, first, 1)
    changed = input_fingerprints({**frames, "player_game_summary": corrected}, days, PROCESSORS)
    differs = ordered.join(changed, on=["analysis_date", "processor"]).filter(
        pl.col("input_fingerprint") != pl.col("input_fingerprint_right")
    )
    # player_game_summary feeds P2, P4 and P5; 2025-01-10 is before the corrected game.
    assert sorted(differs.select("analysis_date", "processor").rows()) == sorted(
        (d, p) for d in days[1:] for p in (P2, P4, P5)
    )


# ---------------------------------------------------------------- the state grid by hand

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)


def _runs(rows: list[tuple[date, str, str, int, str | None]]) -> pl.DataFrame:
    """(date, processor, status, minute finished, fingerprint) -> processor_runs lines."""
    return pl.DataFrame(
        [
            {
                "analysis_date": d,
                "processor": p,
                "status": s,
                "started_at": T0 + timedelta(minutes=m) - timedelta(seconds=1),
                "finished_at": T0 + timedelta(minutes=m),
                "input_fingerprint": f,
            }
            for d, p, s, m, f in rows
        ],
        schema={c: PROCESSOR_RUNS.polars_schema[c] for c in RUN_COLUMNS},
    )


def test_the_grid_marks_missing_failed_stale_and_done_dates() -> None:
    d1, d2, d3, d4, d5, d6, d7 = (date(2025, 1, i) for i in range(1, 8))
    order = [P1, P2, P3, P4, P5]
    current = pl.DataFrame(
        [(d, p, f"{p}@{d}") for d in (d1, d2, d3, d4, d5, d6, d7) for p in order],
        schema={"analysis_date": pl.Date, "processor": pl.String, "input_fingerprint": pl.String},
        orient="row",
    )

    def built(day: date, minute: int, **overrides: tuple[str, int, str | None]) -> list:
        lines = []
        for i, p in enumerate(order):
            status, at, fp = overrides.get(p, ("OK", minute + i, f"{p}@{day}"))
            lines.append((day, p, status, at, fp))
        return lines

    runs = _runs(
        built(d2, 0, **{P5: ("WARN", 4, f"{P5}@{d2}")})
        + built(d3, 0, **{P2: ("OK", 1, "old rows")})
        # d4: P1 failed first, then was rebuilt alone after P3 and P5 were built
        + built(d4, 0, **{P1: ("FAIL", 0, f"{P1}@{d4}")})
        + [(d4, P1, "OK", 30, f"{P1}@{d4}")]
        + built(d5, 0, **{P4: ("OK", 3, None)})
        # d6: P2 re-run alone after the others and FAILed: it wrote nothing, so rebuilt nothing
        + built(d6, 0)
        + [(d6, P2, "FAIL", 30, f"{P2}@{d6}")]
        # d7: P2 rebuilt after P3 and P4, then a re-run FAILed: the rebuild still counts
        + built(d7, 0)
        + [(d7, P2, "OK", 20, f"{P2}@{d7}"), (d7, P2, "FAIL", 30, f"{P2}@{d7}")]
    )
    grid = freshness_grid(runs, current, [d1, d2, d3, d4, d5, d6, d7], PROCESSORS)
    states = {(r[0], r[1]): (r[2], r[3]) for r in grid.rows()}
    assert {states[d1, p][0] for p in order} == {"MISSING"}
    assert [states[d2, p][0] for p in order] == ["OK", "OK", "OK", "OK", "WARN"]
    assert [states[d3, p] for p in order] == [
        ("OK", ""),
        ("STALE", "Phase 3 inputs changed since it was built"),
        ("STALE", f"upstream {P2} is stale"),
        ("STALE", f"upstream {P2} is stale"),
        ("STALE", f"upstream {P2} is stale"),
    ]
    assert [states[d4, p] for p in order] == [
        ("OK", ""),
        ("OK", ""),
        ("STALE", f"upstream {P1} rebuilt after it"),
        ("OK", ""),
        ("STALE", f"upstream {P1} rebuilt after it"),
    ]
    assert states[d5, P4] == ("STALE", "built before fingerprints were recorded")
    assert states[d5, P5] == ("STALE", f"upstream {P4} is stale")
    assert [states[d6, p] for p in order] == [
        ("OK", ""),
        ("FAIL", "last run FAIL"),
        ("OK", ""),
        ("OK", ""),
        ("OK", ""),
    ]
    rebuilt = ("STALE", f"upstream {P2} rebuilt after it")
    assert [states[d7, p] for p in (P3, P4)] == [rebuilt, rebuilt]
    assert dates_to_build(grid, order) == [d1, d3, d4, d5, d6, d7]
    assert dates_to_build(grid, [P1]) == [d1]


# ---------------------------------------------------------------- loads, on real seasons


def test_two_seasons_loaded_one_after_the_other_are_both_present(warehouse_url: str) -> None:
    code, printed = phase4("load-phase3", str(SEASON_2023))
    assert code == 0, printed
    code, printed = phase4("load-phase3", str(SEASON_2024))
    assert code == 0, printed
    assert (
        "replaced player_game_summary season(s) 2024: 0 -> 26143 rows; 25143 rows of other "
        "seasons kept" in printed
    )
    warehouse = open_warehouse()
    for table, schema in PHASE3_TABLES.items():
        seasons = warehouse.read(schema.full_name, ["season_year"])["season_year"]
        counts = dict(seasons.value_counts().iter_rows())
        for season, folder in ((2023, SEASON_2023), (2024, SEASON_2024)):
            assert (
                counts[season]
                == pl.scan_parquet(folder / f"nba_analytics.{table}.parquet")
                .select(pl.len())
                .collect()
                .item()
            ), (table, season)
    # Reloading 2023-24 replaces it (same rows) and keeps 2024-25.
    code, printed = phase4("load-phase3", str(SEASON_2023))
    assert "season(s) 2023: 25143 -> 25143 rows; 26143 rows of other seasons kept" in printed


def test_check_writes_nothing_and_every_problem_of_every_file_is_reported(
    warehouse_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(SEASON_2024, bad)
    games = pl.read_parquet(bad / "nba_analytics.player_game_summary.parquet")
    games.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(-1).otherwise(pl.col("points")).alias("points"),
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.col("fg_attempts") + 1)
        .otherwise(pl.col("fg_makes"))
        .alias("fg_makes"),
    ).write_parquet(bad / "nba_analytics.player_game_summary.parquet")
    teams = pl.read_parquet(bad / "nba_analytics.team_offense_game_summary.parquet")
    teams.drop("pace", "win_flag").write_parquet(
        bad / "nba_analytics.team_offense_game_summary.parquet"
    )

    code, printed = phase4("load-phase3", str(bad), "--check")
    assert code == 2
    flat = " ".join(printed.split())
    assert "4 contract problem(s), nothing loaded" in flat
    for part in (
        "column points; rule: counts must not be negative",
        "column fg_makes; rule: makes above attempts (fg_makes > fg_attempts)",
        "column pace; rule: required column is missing",
        "column win_flag; rule: required column is missing",
    ):
        assert part in flat
    with pytest.raises(Phase3LoadError):
        load_phase3_directory(open_warehouse(), bad)
    assert not Path(warehouse_url.removeprefix("duckdb://")).exists() or (
        open_warehouse().table_schema(PHASE3_TABLES["player_game_summary"].full_name) is None
    )
    code, printed = phase4("load-phase3", str(SEASON_2024), "--check")
    assert code == 0, printed
    assert "would replace player_game_summary season(s) 2024 with 26143 rows" in printed
    assert "the warehouse's rows are not counted: no warehouse at" in printed  # none made
    assert open_warehouse().table_schema(PHASE3_TABLES["player_game_summary"].full_name) is None


# ---------------------------------------------------------------- stale dates, rebuilt

DAY = date(2025, 1, 15)


def grid_states(first: date, last: date) -> dict[tuple[date, str], str]:
    grid = status_grid(open_warehouse(read_only=True), first, last)
    return {(d, p): s for d, p, s, _ in grid.rows()}


@pytest.mark.usefixtures("prefect_harness")
def test_a_synthetic_then_real_reload_marks_the_date_stale_and_backfill_rebuilds_it(
    warehouse_url: str,
) -> None:
    load_phase3_frames(open_warehouse(), generate_season())
    assert phase4("run", "--date", str(DAY))[0] == 0
    synthetic = set(read_output(open_warehouse(), P5, DAY)["player_lookup"])
    assert {grid_states(DAY, DAY)[DAY, p] for p in OUTPUT_TABLES} == {"OK"}

    assert phase4("load-phase3", str(SEASON_2024))[0] == 0
    code, printed = phase4("status", "--start", "2025-01-14", "--end", "2025-01-16", "--json")
    assert code == 0, printed
    by_date = {d["date"]: d for d in json.loads(printed)["dates"]}
    assert {v["state"] for v in by_date["2025-01-15"]["processors"].values()} == {"STALE"}
    assert {v["state"] for v in by_date["2025-01-14"]["processors"].values()} == {"MISSING"}

    code, printed = phase4("backfill", "--start", "2025-01-15", "--end", "2025-01-15")
    assert code == 0 and "0 dates skipped" in printed, printed
    real = set(
        pl.read_parquet(SEASON_2024 / "nba_analytics.upcoming_player_game_context.parquet").filter(
            pl.col("game_date") == DAY
        )["player_lookup"]
    )
    rebuilt = set(read_output(open_warehouse(), P5, DAY)["player_lookup"])
    assert rebuilt == real and not rebuilt & (synthetic - real)
    assert {grid_states(DAY, DAY)[DAY, p] for p in OUTPUT_TABLES} == {"OK"}
    code, printed = phase4("backfill", "--start", "2025-01-15", "--end", "2025-01-15")
    assert code == 0 and "1 dates skipped" in printed, printed


def _outputs(first: date, last: date) -> dict[str, pl.DataFrame]:
    warehouse, frames = open_warehouse(), {}
    for table, schema in OUTPUT_TABLES.items():
        stamp = "created_at" if "created_at" in schema.column_names else "processed_at"
        moving = [stamp, *PHASE4_SOURCE_STAMPS.get(table, ())]
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        frame = pl.concat([read_output(warehouse, table, d) for d in days])
        assert schema.partition_column is not None
        frames[table] = frame.drop(moving).sort(schema.partition_column, *schema.key)
    return frames


def with_points_added(games: pl.DataFrame, row: dict[str, object], points: int) -> pl.DataFrame:
    """A box score corrected after the fact: `points` more for one player's game."""
    game = (pl.col("player_lookup") == row["player_lookup"]) & (pl.col("game_id") == row["game_id"])
    return games.with_columns(
        pl.when(game).then(pl.col("points") + points).otherwise(pl.col("points")).alias("points")
    )


@pytest.mark.usefixtures("prefect_harness")
def test_a_corrected_points_value_marks_exactly_the_later_dates_stale(
    season_2024_url: str, tmp_path: Path
) -> None:
    first, last, corrected_day = date(2025, 1, 12), date(2025, 1, 17), date(2025, 1, 14)
    assert phase4("backfill", "--start", str(first), "--end", str(last))[0] == 0
    player_games = pl.read_parquet(SEASON_2024 / "nba_analytics.player_game_summary.parquet")
    target = player_games.filter(
        (pl.col("game_date") == corrected_day) & (pl.col("points") > 10)
    ).row(0, named=True)
    fixed = with_points_added(player_games, target, 3)
    load_phase3_frames(open_warehouse(), {"player_game_summary": fixed})

    states = grid_states(first, last)
    stale = sorted((d, p) for (d, p), s in states.items() if s == "STALE")
    later = [first + timedelta(days=i) for i in range(3, 6)]  # 01-15, 01-16, 01-17
    assert stale == sorted((d, p) for d in later for p in (P2, P3, P4, P5))
    assert {s for (d, _), s in states.items() if d not in later} <= {"OK", "WARN", "NO_GAMES"}

    code, printed = phase4("backfill", "--start", str(first), "--end", str(last))
    assert code == 0 and "3 dates skipped" in printed, printed
    rebuilt = _outputs(first, last)
    assert {s for s in grid_states(first, last).values()} <= {"OK", "WARN", "NO_GAMES"}

    # A fresh build from the corrected rows gives the same rows.
    fresh = tmp_path / "fresh.duckdb"
    load_phase3_directory(open_warehouse(f"duckdb://{fresh}"), SEASON_2024)
    load_phase3_frames(open_warehouse(f"duckdb://{fresh}"), {"player_game_summary": fixed})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHASE4_WAREHOUSE", f"duckdb://{fresh}")
        assert phase4("backfill", "--start", str(first), "--end", str(last))[0] == 0
        expected = _outputs(first, last)
    for table in OUTPUT_TABLES:
        assert_frame_equal(rebuilt[table], expected[table], check_exact=True)
