"""Odd input beyond the named cases, as real processes: an output table an older version left
with another type or without a column, an empty --processors, an --out that is not a regular
file, a misspelt Phase 3 file, a season_year that is not its game_date's season, and control
characters in a value. Each is refused with one line (or the load's problem list), exit 2,
and the warehouse file is left byte for byte as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from phase4.checks import stored_tables
from phase4.cli import parse_processors
from quality.contracts import contract_problems, finite_problems, season_problems
from quality.schemas import (
    ML_FEATURE_CHECKS,
    ML_FEATURE_STORE_V2,
    OUTPUT_TABLES,
    PLAYER_GAME_SUMMARY,
    PROCESSOR_RUNS,
)
from tasks.readers import read_p5
from tasks.warehouse import WarehouseError, open_warehouse
from tests.conftest import SEASON_2023
from tests.support.bq_emulator import EmulatorProcess
from tests.support.season_2024 import copy_of_week
from tests.test_cli_errors import PGS, PHASE4, assert_one_line_exit_2, phase4

RANGE = ["--start", "2024-01-08", "--end", "2024-01-12"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def altered(url: str, statement: str) -> Path:
    """The season's warehouse with every output table, then one altered as an older version
    might have left it."""
    open_warehouse(url).ensure_tables([*OUTPUT_TABLES.values(), ML_FEATURE_CHECKS, PROCESSOR_RUNS])
    path = Path(url.removeprefix("duckdb://"))
    with duckdb.connect(str(path)) as con:
        con.execute(statement)
    return path


READ_COMMANDS = [
    ["status", "--date", "2024-01-10"],
    ["status", *RANGE],
    ["features", "--date", "2024-01-10"],
    ["training-set", *RANGE, "--out", "t.parquet"],
    ["report", *RANGE, "--out", "r.html"],
    ["export", *RANGE, "--out", "ex"],
]


def test_an_output_table_of_another_type_is_named_by_every_read_command(
    season_url: str, tmp_path: Path
) -> None:
    path = altered(
        season_url,
        "ALTER TABLE nba_precompute.team_defense_zone_analysis "
        "ALTER COLUMN analysis_date TYPE VARCHAR",
    )
    before = digest(path)
    for args in READ_COMMANDS:
        result = phase4(*args, warehouse=season_url, cwd=tmp_path)
        assert_one_line_exit_2(
            result,
            "nba_precompute.team_defense_zone_analysis.analysis_date: wrong type: expected "
            "DATE, found string",
            "drop the table, then rebuild it with `phase4 backfill`",
        )
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]  # no WAL, no file


def test_an_output_table_without_a_column_is_named(season_url: str, tmp_path: Path) -> None:
    path = altered(season_url, "ALTER TABLE nba_precompute.processor_runs DROP COLUMN status")
    before = digest(path)
    for args in READ_COMMANDS[:3]:
        result = phase4(*args, warehouse=season_url, cwd=tmp_path)
        assert_one_line_exit_2(
            result,
            "nba_precompute.processor_runs has no column status (created by an older version): "
            "run `phase4 warehouse init` to add the new columns",
        )
    assert digest(path) == before


def test_the_p5_reader_names_an_older_tables_missing_column(season_url: str) -> None:
    """`tasks.readers` (training sets and the slate's features, also a library) runs the same
    check as the CLI: one line naming the column and the fix, not a SQL error."""
    altered(season_url, "ALTER TABLE nba_predictions.ml_feature_store_v2 DROP COLUMN features")
    with pytest.raises(WarehouseError) as refused:
        read_p5(open_warehouse(season_url), [])
    assert str(refused.value) == (
        "nba_predictions.ml_feature_store_v2 has no column features (created by an older "
        "version): run `phase4 warehouse init` to add the new columns, then `phase4 backfill` "
        "over the dates to fill them"
    )


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_an_empty_processors_list_is_refused_not_read_as_all(
    season_url: str, tmp_path: Path, value: str
) -> None:
    result = phase4("backfill", *RANGE, "--processors", value, warehouse=season_url, cwd=tmp_path)
    assert_one_line_exit_2(result, "--processors is empty: give P1..P5 or table names")


def test_processors_take_spaces_as_well_as_commas() -> None:
    assert parse_processors(["P3 p1,  nba_predictions.ml_feature_store_v2"]) == [
        "team_defense_zone_analysis",
        "player_composite_factors",
        "ml_feature_store_v2",
    ]
    assert parse_processors(None) is None


def test_an_out_that_is_a_pipe_is_refused_even_with_force(season_url: str, tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.html"
    os.mkfifo(pipe)
    result = phase4(
        "report", *RANGE, "--out", str(pipe), "--force", warehouse=season_url, cwd=tmp_path
    )
    assert_one_line_exit_2(result, f"--out {pipe} is not a regular file: name a file to write")
    assert stat.S_ISFIFO(pipe.lstat().st_mode)  # not replaced by a regular file
    result = phase4(
        "features",
        "--date",
        "2024-01-10",
        "--format",
        "parquet",
        "--out",
        "/dev/null",
        "--force",
        warehouse=season_url,
        cwd=tmp_path,
    )
    assert_one_line_exit_2(result, "--out /dev/null is not a regular file")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize(
    "name",
    [
        "nba_analytics.player_game_sumary.parquet",
        # these two were skipped without a word: the other tables loaded, exit 0
        "player_game_summary.parquet",
        "nba_analytics.player_game_summary.PARQUET",
    ],
)
def test_a_misspelt_phase3_file_is_named_and_nothing_is_loaded(
    season_url: str, tmp_path: Path, name: str
) -> None:
    named = "not a Phase 3 file; name it nba_analytics.<table>.parquet, a table of player_game"
    folder = tmp_path / "season"
    shutil.copytree(SEASON_2023, folder)
    misspelt = folder / name
    (folder / PGS).rename(misspelt)
    path = Path(season_url.removeprefix("duckdb://"))
    before = digest(path)
    for args in (["load-phase3", str(folder)], ["load-phase3", "--check", str(folder)]):
        result = phase4(*args, warehouse=season_url, cwd=tmp_path)
        assert_one_line_exit_2(result, f"{misspelt}: {named}")
    assert digest(path) == before


def test_a_season_year_that_is_not_the_game_dates_season_is_refused() -> None:
    rows = pl.DataFrame(
        {
            "player_lookup": ["a", "b", "c", "d", "e"],
            "game_id": ["g1", "g2", "g3", "g4", "g5"],
            "game_date": [
                date(2024, 7, 31),  # 2023: season 2023 runs to July 2024
                date(2024, 8, 1),  # 2024: August starts season 2024
                date(2024, 8, 1),  # 2023: wrong
                date(2023, 10, 24),  # 2019: wrong
                None,  # no date: the NULL rule names it, not this one
            ],
            "season_year": [2023, 2024, 2023, 2019, 2023],
        }
    )
    [problem] = season_problems(PLAYER_GAME_SUMMARY, rows)
    assert problem.column == "season_year" and problem.rows == 2
    assert problem.key == "player_lookup=c, game_id=g3, game_date=2024-08-01, season_year=2023"
    assert season_problems(PLAYER_GAME_SUMMARY, rows.head(2)) == []


def test_nan_and_infinity_in_a_float_column_are_refused() -> None:
    rows = pl.DataFrame(
        {
            "player_lookup": ["a", "b", "c", "d", "e"],
            "game_id": ["g1", "g2", "g3", "g4", "g5"],
            "usage_rate": [0.25, float("nan"), float("inf"), None, float("-inf")],
            "points": [10, 0, 3, 4, 5],  # INT64: never NaN, not looked at
        }
    )
    [problem] = finite_problems(PLAYER_GAME_SUMMARY, rows)
    assert (problem.column, problem.rows, problem.key) == (
        "usage_rate",
        3,
        "player_lookup=b, game_id=g2",
    )
    assert "NaN or infinity; write NULL for an unknown value" in str(problem)
    assert finite_problems(PLAYER_GAME_SUMMARY, rows[[0, 3]]) == []  # a NULL is no NaN
    # minutes_played has a range (0 to 80), which refuses NaN itself: one problem, not two.
    box = pl.read_parquet(SEASON_2023 / PGS).head(20)
    nan = (
        pl.when(pl.int_range(pl.len()) == 3).then(float("nan")).otherwise(pl.col("minutes_played"))
    )
    problems = contract_problems(PLAYER_GAME_SUMMARY, box.with_columns(nan.alias("minutes_played")))
    assert [(p.column, p.rule) for p in problems] == [("minutes_played", "outside 0 to 80")]


def test_loading_a_row_of_another_season_is_refused(season_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "season"
    shutil.copytree(SEASON_2023, folder)
    frame = pl.read_parquet(folder / PGS)
    first = pl.int_range(pl.len()) == 0
    season = pl.when(first).then(2019).otherwise(pl.col("season_year"))
    frame.with_columns(season.alias("season_year")).write_parquet(folder / PGS)
    path = Path(season_url.removeprefix("duckdb://"))
    before = digest(path)
    result = phase4("load-phase3", str(folder), warehouse=season_url, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "1 contract problem(s), nothing loaded" in result.stderr
    assert "column season_year; rule: season_year is not the season of game_date" in result.stderr
    assert digest(path) == before


def test_control_characters_in_a_value_are_printed_as_escapes(
    season_url: str, tmp_path: Path
) -> None:
    result = phase4("load-phase3", "x\x1b[2Jy\x07", warehouse=season_url, cwd=tmp_path)
    assert_one_line_exit_2(result, "x\\x1b[2Jy\\x07 is not a folder")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr  # not piped as they are


def test_a_duckdb_url_is_read_as_written(season_url: str, tmp_path: Path) -> None:
    """`#` or `?` in a duckdb:// URL is refused (a URL parser would open another file: `a`
    for `a#b.duckdb`); the scheme's case does not matter, as for the check of the setting."""
    for suffix in ("#b.duckdb", "?b=1"):
        result = phase4(
            "status", "--date", "2024-01-10", warehouse=season_url + suffix, cwd=tmp_path
        )
        assert_one_line_exit_2(result, "a duckdb:// URL takes no ?parameters or #fragment")
    upper = "DUCKDB" + season_url.removeprefix("duckdb")
    result = phase4("status", "--date", "2024-01-10", "--json", warehouse=upper, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "player_composite_factors" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]


def test_rows_older_than_a_column_warehouse_init_added_are_named(
    prefect_harness: None, tmp_path: Path
) -> None:
    """`phase4 warehouse init` adds a new column as NULL to the rows already stored: features
    names the column and the dates to rebuild; status shows such a run line's status as NULL."""
    url = copy_of_week(tmp_path / "week.duckdb")
    path = Path(url.removeprefix("duckdb://"))
    with duckdb.connect(str(path)) as con:
        con.execute(
            "ALTER TABLE nba_predictions.ml_feature_store_v2 DROP COLUMN feature_quality_score"
        )
        con.execute("ALTER TABLE nba_precompute.processor_runs DROP COLUMN status")
    open_warehouse(url).ensure_tables([ML_FEATURE_STORE_V2, PROCESSOR_RUNS])  # as init does
    before = digest(path)
    result = phase4("features", "--date", "2024-12-10", warehouse=url, cwd=tmp_path)
    assert_one_line_exit_2(
        result,
        "nba_predictions.ml_feature_store_v2.feature_quality_score: NULL in a NOT NULL column (",
        " row(s) of 2024-12-10..2024-12-10, written before the column existed?): rebuild with "
        "`phase4 backfill --start 2024-12-10 --end 2024-12-10 --force`",
    )
    result = phase4("status", "--date", "2024-12-10", "--json", warehouse=url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    states = {t: row["state"] for t, row in json.loads(result.stdout)["processors"].items()}
    assert states == dict.fromkeys(OUTPUT_TABLES)  # NULL, as stored (the table shows `? NULL`)
    assert digest(path) == before


def test_an_export_folder_that_cannot_be_made_is_one_line(
    prefect_harness: None, tmp_path: Path
) -> None:
    """/proc takes no new folders, even from root (ENOENT), like a folder without permission."""
    url = copy_of_week(tmp_path / "week.duckdb")
    args = ["export", "--date", "2024-12-10", "--out", "/proc/x"]
    assert_one_line_exit_2(
        phase4(*args, warehouse=url, cwd=tmp_path),
        "--out /proc/x: cannot write in it (No such file or directory); choose a folder this "
        "user can write in",
    )


def test_bigquery_tables_as_declared_pass_the_table_check(
    bq_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check reads BigQuery's column types (through the real client) as DuckDB's: the
    tables `warehouse init` makes are never refused."""
    monkeypatch.setenv("PHASE4_BIGQUERY_ENDPOINT", bq_emulator.endpoint)
    warehouse = open_warehouse("bigquery://phase4oddtables")
    warehouse.ensure_tables([*OUTPUT_TABLES.values(), ML_FEATURE_CHECKS, PROCESSOR_RUNS])
    stored_tables(warehouse)
    assert warehouse.table_schema(PROCESSOR_RUNS.full_name) is not None


def test_a_warehouse_under_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "a.txt"
    a_file.write_text("x")
    url = f"duckdb://{a_file / 'w.duckdb'}"
    result = phase4("warehouse", "init", warehouse=url, cwd=tmp_path)
    assert_one_line_exit_2(
        result, f"{a_file} is a file, not a folder (PHASE4_WAREHOUSE={url}): move the file away"
    )
    assert a_file.read_text() == "x"


@pytest.mark.parametrize(
    "args", [["warehouse", "init"], ["run", "--date", "2024-01-10"], ["server", "start"]]
)
def test_a_file_named_phase4_where_its_folder_goes_is_one_line(
    tmp_path: Path, args: list[str]
) -> None:
    """`.phase4` (the default warehouse's and the managed server's folder) made a file by
    hand was `cannot write …/.phase4 (File exists)`, exit 1, and nothing said what to do."""
    (tmp_path / ".phase4").write_text("x")
    env = {k: v for k, v in os.environ.items() if k not in ("PHASE4_WAREHOUSE", "PREFECT_HOME")}
    warehouse = {} if args[0] == "warehouse" else {"PHASE4_WAREHOUSE": f"duckdb://{tmp_path}/w"}
    result = subprocess.run(
        [PHASE4, "--quiet", *args],
        cwd=tmp_path,
        env={**env, **warehouse},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_one_line_exit_2(result, f"{tmp_path}/.phase4 is a file, not a folder", "move")
    assert (tmp_path / ".phase4").read_text() == "x"


def test_a_newline_in_a_key_prints_as_an_escape_in_the_problem_list(tmp_path: Path) -> None:
    """A value holding a newline split its problem line in two, the second a fake `error:`
    line, and an escape sequence reached the terminal as it was."""
    folder = tmp_path / "season"
    folder.mkdir()
    evil = "evil\nerror: fake\x1b[31m"
    rows = pl.read_parquet(SEASON_2023 / PGS).head(1).with_columns(player_lookup=pl.lit(evil))
    pl.concat([rows, rows]).write_parquet(folder / PGS)  # a duplicate key, with the value in it
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    result = phase4("load-phase3", str(folder), warehouse=url, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "error: 2 contract problem(s), nothing loaded:"  # and the key's form
    assert len(lines) == 3 and "duplicate key" in lines[1] and "not written as" in lines[2]
    assert all("player_lookup=evil\\x0aerror: fake\\x1b[31m" in line for line in lines[1:])
    assert "\x1b" not in result.stderr


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(
    ("statement", "named"),
    [
        (
            "DROP TABLE nba_analytics.team_offense_game_summary",
            "invalid input nba_analytics.team_offense_game_summary; rule: table is missing "
            "(load Phase 3 first); date 2024-01-08",
        ),
        (
            "ALTER TABLE nba_analytics.player_game_summary ALTER COLUMN points TYPE VARCHAR",
            "column points; rule: wrong type: expected INT64, found string",
        ),
    ],
)
def test_a_backfill_over_bad_phase3_tables_is_one_line(
    season_url: str, tmp_path: Path, statement: str, named: str
) -> None:
    """The flow raised the input contract's error: Prefect printed its traceback (68 lines)
    and its task's failure before the CLI's line."""
    from prefect.settings import PREFECT_API_URL

    with duckdb.connect(season_url.removeprefix("duckdb://")) as con:
        con.execute(statement)
    result = phase4(
        "backfill", *RANGE, warehouse=season_url, cwd=tmp_path, api=PREFECT_API_URL.value()
    )
    assert_one_line_exit_2(result, named)


BAD_NAME = os.fsdecode(b"bad\xff")
PRINTED = "bad\\udcff"  # the undecodable byte as the error line escapes it


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["load-phase3", BAD_NAME], f"folder {PRINTED}: not a UTF-8 name"),
        (["load-phase3", "--check", BAD_NAME], f"folder {PRINTED}: not a UTF-8 name"),
        (["export", *RANGE, "--out", f"{BAD_NAME}/ex"], f"--out {PRINTED}/ex: not a UTF-8"),
        (["demo-data", "--out", f"{BAD_NAME}/demo"], f"--out {PRINTED}/demo: not a UTF-8"),
        (["warehouse", "init"], "PHASE4_WAREHOUSE="),
        (["status", "--date", "2024-01-10"], "PHASE4_WAREHOUSE="),
    ],
)
def test_a_path_that_is_no_utf8_name_is_one_line_and_makes_nothing(
    season_url: str, tmp_path: Path, args: list[str], named: str
) -> None:
    """Polars and DuckDB take UTF-8 paths only: each was a traceback (TypeError, a C++
    bad_cast), and export and demo-data left a folder behind."""
    work = tmp_path / "work"
    work.mkdir()
    url = season_url if "PHASE4_WAREHOUSE" not in named else f"duckdb://{work}/{BAD_NAME}/w.duckdb"
    line = assert_one_line_exit_2(phase4(*args, warehouse=url, cwd=work), named)
    assert "not a UTF-8 name" in line
    assert list(work.iterdir()) == []


def test_a_check_that_cannot_read_the_warehouse_does_not_count_its_rows(tmp_path: Path) -> None:
    """With a warehouse it could not open, `load-phase3 --check` printed `0 -> 25143 rows; 0
    rows of other seasons kept` as fact. A DuckDB file not made yet is said so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "PHASE4_"))}
    table = "would replace player_game_summary season(s) 2023"
    unread = phase4(
        "load-phase3",
        "--check",
        str(SEASON_2023),
        warehouse="bigquery://no-such-project-123",
        cwd=tmp_path,
        env=env,
    )
    assert unread.returncode == 0, unread.stderr
    assert f"{table} with 25143 rows\n" in unread.stdout
    assert "the warehouse's rows are not counted: cannot create a BigQuery client" in unread.stdout
    assert "information.. Run" not in unread.stdout  # Google's sentence ends with its own stop
    new_file = phase4(
        "load-phase3",
        "--check",
        str(SEASON_2023),
        warehouse=f"duckdb://{tmp_path}/new.duckdb",
        cwd=tmp_path,
        env=env,
    )
    assert new_file.returncode == 0, new_file.stderr
    assert f"{table} with 25143 rows\n" in new_file.stdout
    assert (
        f"the warehouse's rows are not counted: no warehouse at {tmp_path}/new" in new_file.stdout
    )
    assert list(tmp_path.iterdir()) == []  # a check writes nothing, not even the file


def test_status_and_report_leave_prefect_home_unmade(season_url: str, tmp_path: Path) -> None:
    """Read commands write nothing: `status` and `report` imported Prefect (for a task
    defined beside the freshness grid), which makes PREFECT_HOME, and took 1.6 s, not 0.7."""
    home = tmp_path / "prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    for args in (READ_COMMANDS[0], READ_COMMANDS[1], ["report", *RANGE, "--out", "r.html"]):
        result = phase4(*args, warehouse=season_url, cwd=tmp_path, env=env)
        assert result.returncode == 0, (args, result.stderr)
        assert not home.exists(), args


@pytest.mark.parametrize("default", [False, True])
def test_a_warehouse_path_that_is_a_directory_is_one_line(tmp_path: Path, default: bool) -> None:
    """Named by its path and where it came from: the setting, or the default path (the
    message named an unset PHASE4_WAREHOUSE)."""
    folder = tmp_path / (".phase4/warehouse.duckdb" if default else "w.duckdb")
    folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PHASE4_WAREHOUSE"}
    if not default:
        env["PHASE4_WAREHOUSE"] = f"duckdb://{folder}"
    result = subprocess.run(
        [PHASE4, "--quiet", "warehouse", "init"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    where = "the default path" if default else f"PHASE4_WAREHOUSE=duckdb://{folder}"
    assert_one_line_exit_2(result, f"{folder} is a directory ({where}): name a .duckdb file")
    assert list(folder.iterdir()) == []


def test_server_stop_with_a_file_named_phase4_says_nothing_runs(tmp_path: Path) -> None:
    """It unlinked server.pid and server.port even when absent: `Not a directory`, exit 1
    (a read-only folder: `Read-only file system`)."""
    (tmp_path / ".phase4").write_text("x")
    result = subprocess.run(
        [PHASE4, "server", "stop"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "no managed Prefect server was running" in result.stdout
    assert (tmp_path / ".phase4").read_text() == "x"
