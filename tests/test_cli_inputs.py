"""Odd input a careful user tries, as real processes: each is one line naming the value and what
is allowed, exit 2, nothing written (docs/cli.md, "What is checked")."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from phase4.checks import InputError, within_seasons, write_atomically
from quality.schemas import PLAYER_GAME_SUMMARY, PROCESSOR_RUNS
from tasks.warehouse import open_warehouse
from tasks.warehouse.base import SeasonRows
from tests.test_cli_errors import PHASE4, assert_one_line_exit_2, phase4

SEASON_SPAN = "the warehouse holds season(s) 2023-24: give dates from 2023-08-01 to 2024-07-31"
OUT_OF_RANGE = "out of range; give a date from 1900-01-01 to 2999-12-31"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["status", "--start", "2024-01-01", "--end", "9999-12-31"],
            f"--end 9999-12-31: {OUT_OF_RANGE}",
        ),
        (
            ["status", "--start", "2024-01-01", "--end", "2024-12-31"],
            f"--end 2024-12-31 is after the last season loaded; {SEASON_SPAN}",
        ),
        (
            ["backfill", "--start", "1925-01-01", "--end", "2024-01-01"],
            f"--start 1925-01-01 is before the first season loaded; {SEASON_SPAN}",
        ),
        (
            ["backfill", "--start", "2024-01-01", "--end", "9999-12-31"],
            f"--end 9999-12-31: {OUT_OF_RANGE}",
        ),
        (
            ["status", "--start", "2024-01-05", "--end", "2024-01-01"],
            "--end 2024-01-01 is before --start 2024-01-05: give --start <= --end",
        ),
        (["status", "--date", "0001-01-01"], f"--date 0001-01-01: {OUT_OF_RANGE}"),
        (["run", "--date", "0001-01-01"], f"--date 0001-01-01: {OUT_OF_RANGE}"),
        (
            ["status", "--date", "2024-02-30"],
            "--date 2024-02-30: not a date; expected YYYY-MM-DD, e.g. 2024-01-15 "
            "(see `phase4 status --help`)",
        ),
        (["run", "--date", "yesterday"], "--date yesterday: not a date; expected YYYY-MM-DD"),
        (["features", "--dat", "2024-01-10"], "No such option: --dat"),
        (["status"], "give --start and --end (YYYY-MM-DD), or --date for one date"),
        (
            ["status", "--date", "2024-01-10", "--start", "2024-01-01"],
            "give either --date or --start/--end, not both",
        ),
        (
            ["features", "--date", "2024-01-10", "--format", "json", "--out", "x.parquet"],
            "--out is for --format parquet; --format json prints to the terminal",
        ),
        (["features", "--date", "2024-01-10", "--player", " "], "--player is empty"),
        (["features", "--date", "2024-01-10", "--format", "xml"], "'xml' is not one of"),
        (["run", "--processors", "P9"], "--processors"),
        (["demo-data", "--out", "o", "--if-empty"], "--if-empty is for loading"),
        (["nosuch"], "No such command 'nosuch'"),
        (["status", "--date"], "Option '--date' requires an argument."),
        (["load-phase3"], "Missing argument 'directory'."),
        (["demo-data", "--seed", "abc"], "Invalid value for '--seed': Input should be a valid"),
        (
            ["training-set", "--start", "2024-01-08", "--end", "2024-01-12", "--out", "x.csv"],
            "--out x.csv is a .csv name but --format is parquet: pass --format csv or name a "
            ".parquet file",
        ),
        (
            ["training-set", "--start", "2024-01-08", "--end", "2024-01-12", "--format", "xls"],
            "Invalid value for '--format': 'xls' is not one of 'parquet', 'csv'.",
        ),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    season_url: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    result = phase4(*args, warehouse=season_url, cwd=tmp_path)
    assert_one_line_exit_2(result, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]  # nothing new


def test_folders_and_files_as_out_are_refused(season_url: str, tmp_path: Path) -> None:
    a_file = tmp_path / "a.txt"
    a_file.write_text("x")
    cases = [
        (
            ["report", "--start", "2024-01-01", "--end", "2024-01-02", "--out", str(tmp_path)],
            f"--out {tmp_path} is a folder: name a file inside it",
        ),
        (
            ["training-set", "--start", "2024-01-01", "--end", "2024-01-02", "--out", str(a_file)],
            f"--out {a_file} exists: pass --force to replace it, or choose another file",
        ),
        (
            [
                "report",
                "--start",
                "2024-01-01",
                "--end",
                "2024-01-02",
                "--out",
                str(a_file / "r.html"),
            ],
            f"--out {a_file / 'r.html'}: {a_file} is a file, not a folder",
        ),
        (
            ["export", "--date", "2024-01-10", "--out", str(a_file)],
            f"--out {a_file} is a file: name a folder",
        ),
        (["demo-data", "--out", str(a_file)], f"--out {a_file} is a file: name a folder"),
        (["load-phase3", str(a_file)], f"{a_file} is not a folder"),
        (["load-phase3", str(tmp_path / "missing")], f"{tmp_path / 'missing'} is not a folder"),
    ]
    for args, expected in cases:
        assert_one_line_exit_2(phase4(*args, warehouse=season_url, cwd=tmp_path), expected)
    assert a_file.read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = phase4("load-phase3", str(empty), warehouse=season_url, cwd=tmp_path)
    assert_one_line_exit_2(result, f"no Phase 3 files in {empty}; expected some of")


RANGE = ["--start", "2024-01-08", "--end", "2024-01-12"]
NO_FOLDER = "does not exist; create it first or choose another path"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["report", *RANGE, "--out", "typo_dir/r.html"],
            f"--out typo_dir/r.html: folder typo_dir {NO_FOLDER}",
        ),
        (["report", *RANGE, "--out", "~/r.html"], f"--out ~/r.html: folder ~ {NO_FOLDER}"),
        (["training-set", *RANGE, "--out", "a/b/t.parquet"], f"t.parquet: folder a/b {NO_FOLDER}"),
        (
            ["features", "--date", "2024-01-10", "--format", "parquet", "--out", "new/f.parquet"],
            f"--out new/f.parquet: folder new {NO_FOLDER}",
        ),
        (
            ["export", "--date", "2024-01-10", "--out", "typo/ex"],
            f"--out typo/ex: folder typo {NO_FOLDER}",
        ),
        (["demo-data", "--out", "typo/demo"], f"--out typo/demo: folder typo {NO_FOLDER}"),
    ],
)
def test_an_out_in_a_missing_folder_is_refused_and_creates_nothing(
    season_url: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    """A mistyped folder (or a quoted `~`) was made silently, the file written inside it."""
    result = phase4(*args, warehouse=season_url, cwd=tmp_path)
    assert_one_line_exit_2(result, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["warehouse.duckdb"]  # nothing new


def test_demo_data_makes_its_out_folder_inside_one_that_exists(tmp_path: Path) -> None:
    result = phase4("demo-data", "--out", "new", warehouse="duckdb://unused", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "new").glob("nba_analytics.*.parquet"))) == 5


def test_demo_data_files_are_replaced_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    existing = out / "nba_analytics.player_game_summary.parquet"
    existing.write_text("an older export")
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    result = phase4("demo-data", "--out", str(out), warehouse=url, cwd=tmp_path)
    assert_one_line_exit_2(result, f"--out {existing} exists: pass --force to replace it")
    assert existing.read_text() == "an older export"
    assert sorted(p.name for p in out.iterdir()) == [existing.name]
    result = phase4("demo-data", "--out", str(out), "--force", warehouse=url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert pl.read_parquet(existing).height > 20000
    assert len(list(out.iterdir())) == 5 and not list(out.glob(".*.tmp"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("the previous report")

    def half_then_fail(path: Path) -> None:
        path.write_text("<html>half a pa")
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match=f"--out {target}: cannot write it"):
        write_atomically(target, half_then_fail)
    assert target.read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    write_atomically(target, lambda path: path.write_text("the new report"))
    assert target.read_text() == "the new report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_report_refuses_an_existing_file_then_replaces_it_with_force(
    season_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    out.write_text("mine")
    args = ["report", "--start", "2024-01-09", "--end", "2024-01-10", "--out", str(out)]
    assert_one_line_exit_2(phase4(*args, warehouse=season_url, cwd=tmp_path), "--force")
    assert out.read_text() == "mine"
    result = phase4(*args, "--force", warehouse=season_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    # The page's summary on the terminal: nothing is built in the season's fixture warehouse.
    assert result.stdout.strip().endswith("KiB): 2 dates × 5 processors: 10 MISSING.")


def test_a_run_on_a_warehouse_without_phase3_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was five failed reads in Prefect's logs, FAIL lines written and exit 1."""
    monkeypatch.setenv("PHASE4_SERVER", "off")  # refused before Prefect's temporary server
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    result = phase4("run", "--date", "2024-01-16", warehouse=url, cwd=tmp_path)
    assert_one_line_exit_2(result, "the warehouse holds no Phase 3 season, so 2024-01-16 has")
    runs = open_warehouse(url, read_only=True).table_schema(PROCESSOR_RUNS.full_name)
    assert runs is None  # no FAIL lines written, no output table made


def test_ranges_are_bounded_by_every_loaded_season(tmp_path: Path) -> None:
    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    with pytest.raises(InputError, match="^the warehouse holds no Phase 3 season, so "):
        within_seasons(warehouse, date(2024, 1, 1), date(2024, 1, 2))
    table = PLAYER_GAME_SUMMARY.full_name
    warehouse.replace_seasons_of(
        [SeasonRows(table, [2021, 2023], pl.DataFrame({"season_year": [2021, 2023]}))]
    )
    within_seasons(warehouse, date(2021, 8, 1), date(2024, 7, 31))  # the seasons' whole span
    held = re.escape("season(s) 2021-22, 2023-24: give dates from 2021-08-01 to 2024-07-31")
    with pytest.raises(
        InputError, match=f"^--start 2021-07-31 is before .*; the warehouse holds {held}$"
    ):
        within_seasons(warehouse, date(2021, 7, 31), date(2022, 1, 1))
    with pytest.raises(
        InputError, match=f"^--date 2024-08-01 is after .*; the warehouse holds {held}$"
    ):
        within_seasons(warehouse, date(2024, 8, 1), date(2024, 8, 1), one_date=True)


@pytest.mark.parametrize(
    "command",
    [["run", "--date", "2024-01-15"], ["backfill", "--start", "2024-01-01", "--end", "2024-01-02"]],
)
def test_a_bad_warehouse_setting_is_refused_before_the_managed_server_starts(
    command: list[str], tmp_path: Path
) -> None:
    result = phase4(*command, warehouse="nonsense://x", cwd=tmp_path)
    assert_one_line_exit_2(result, "PHASE4_WAREHOUSE=nonsense://x", "unknown scheme")
    assert not (tmp_path / ".phase4").exists()  # no server state folder, no warehouse file


def test_demo_data_replaces_a_season_the_warehouse_holds_only_with_force(tmp_path: Path) -> None:
    """It replaced a real 2024-25 season with synthetic rows without a word."""
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    real = pl.DataFrame({"season_year": [2024, 2024, 2023]})
    open_warehouse(url).replace_seasons_of(
        [SeasonRows(PLAYER_GAME_SUMMARY.full_name, [2023, 2024], real)]
    )
    result = phase4("demo-data", warehouse=url, cwd=tmp_path)
    assert_one_line_exit_2(
        result,
        "the warehouse holds season 2024-25 (2 rows in player_game_summary); demo-data would "
        "replace it with synthetic rows: pass --force",
    )
    kept = open_warehouse(url, read_only=True).read(PLAYER_GAME_SUMMARY.full_name, ["season_year"])
    assert kept.height == 3


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        # features writes parquet only: no --format csv to offer
        ("slate.csv", "--out slate.csv is a .csv name but --format is parquet: name a .parquet"),
        (os.fsdecode(b"\xff.parquet"), ".parquet: not a UTF-8 name; name it in UTF-8"),
        ("WAREHOUSE", "is the warehouse's own file: name another file"),
    ],
)
def test_a_parquet_out_that_is_no_parquet_name_or_the_warehouse_is_refused(
    season_url: str, tmp_path: Path, out: str, expected: str
) -> None:
    """Parquet bytes went into a .csv name; a non-UTF-8 name was a Polars TypeError traceback;
    `--force` replaced the warehouse file itself with the slate's features."""
    warehouse = season_url.removeprefix("duckdb://")
    target = warehouse if out == "WAREHOUSE" else out
    before = Path(warehouse).read_bytes()
    args = ["features", "--date", "2024-01-10", "--format", "parquet", "--out", target, "--force"]
    assert_one_line_exit_2(phase4(*args, warehouse=season_url, cwd=tmp_path), expected)
    assert Path(warehouse).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]


def test_an_output_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """`> /dev/full` (or a closed pipe) was an OSError traceback."""
    with open("/dev/full", "w") as full:
        done = subprocess.run([PHASE4, "--version"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert done.stderr == "error: cannot write the output (No space left on device)\n"
