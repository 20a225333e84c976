"""Ctrl-C mid-backfill: a real SIGINT to a real `phase4 backfill` process group.

The CLI starts its managed Prefect server on first use (in the test's folder) and the SIGINT
goes to the CLI's own process group, as a terminal sends it; the server, in its own session,
survives it. Expected: exit 130 within 10 s, a summary of what was written, every partition
either the old one (none here) or the new one with its run line (its rows are the rows the
line reports; never a partition without its line), and a re-run that resumes.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from phase4.server import server_home, stop_server
from quality.schemas import OUTPUT_TABLES
from tests.support.managed_server import api_post

PHASE4 = str(Path(sys.executable).parent / "phase4")
# The player box of 2023-24 ends on 2024-04-07: later dates FAIL SPEC 11 (last night missing).
START, END = date(2023, 10, 24), date(2024, 4, 7)
WRITTEN = re.compile(r"interrupted; written: (\d+) date\(s\) (\S+)\.\.(\S+), (\d+) rows")


@pytest.fixture
def cli_folder(tmp_path: Path) -> Iterator[Path]:
    """The CLI's working folder: its managed server lives in .phase4/prefect/ here."""
    yield tmp_path
    stop_server(server_home(tmp_path))


@pytest.fixture
def backfill(season_url: str, cli_folder: Path) -> Iterator[subprocess.Popen[str]]:
    """A real `phase4 backfill` of the season in its own process group, ended if a test
    leaves it running."""
    process = subprocess.Popen(
        [PHASE4, "backfill", "--start", str(START), "--end", str(END)],
        cwd=cli_folder,
        env=cli_env(season_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cli_env(season_url: str) -> dict[str, str]:
    env = {**os.environ, "PHASE4_WAREHOUSE": season_url, "PREFECT_LOGGING_LEVEL": "INFO"}
    env.pop("PREFECT_API_URL", None)
    env.pop("PHASE4_SERVER", None)
    return env


def frame(url: str, sql: str) -> pl.DataFrame:
    import duckdb

    with duckdb.connect(url.removeprefix("duckdb://"), read_only=True) as con:
        return pl.from_arrow(con.sql(sql).to_arrow_table())  # type: ignore[return-value]


def assert_each_partition_has_its_line(season_url: str, runs: pl.DataFrame) -> None:
    run_dates = set(runs["analysis_date"].to_list())
    for processor, schema in OUTPUT_TABLES.items():
        column = schema.partition_column
        stored = frame(
            season_url, f"SELECT {column} AS d, count(*) AS n FROM {schema.full_name} GROUP BY 1"
        )
        expected = runs.filter(pl.col("processor") == processor)
        assert set(stored["d"].to_list()) <= run_dates, processor
        by_date = dict(zip(stored["d"].to_list(), stored["n"].to_list(), strict=True))
        for day, rows in zip(expected["analysis_date"], expected["rows"], strict=True):
            assert by_date.get(day, 0) == rows, (processor, day)


def test_ctrl_c_mid_backfill_stops_within_10_s_and_the_rerun_resumes(
    season_url: str, cli_folder: Path, backfill: subprocess.Popen[str]
) -> None:
    process = backfill  # in its own process group, like a shell job
    stderr_lines: list[str] = []
    first_write = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr_lines.append(line)
            if "backfill-write-chunk" in line and "Completed" in line:
                first_write.set()

    stdout_lines: list[str] = []

    def read_stdout() -> None:
        assert process.stdout is not None
        stdout_lines.extend(process.stdout)

    # One reader per pipe: `communicate` would read stderr too and take lines from this reader.
    readers = [threading.Thread(target=read, daemon=True) for read in (read_stderr, read_stdout)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 600
    while not first_write.wait(timeout=0.5):
        assert process.poll() is None, "ended before a write:\n" + "".join(stderr_lines[-20:])
        assert time.monotonic() < deadline, "no write in 600 s:\n" + "".join(stderr_lines[-20:])
    assert process.poll() is None, "the backfill ended before the interrupt"

    interrupted_at = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=30)
    elapsed = time.monotonic() - interrupted_at
    for reader in readers:
        reader.join(timeout=5)
    stdout, stderr = "".join(stdout_lines), "".join(stderr_lines)

    assert process.returncode == 130, (process.returncode, stdout, stderr[-2000:])
    assert elapsed < 10.0, elapsed
    assert "Traceback" not in stdout + stderr
    match = WRITTEN.search(stderr)
    assert match, stderr[-2000:]
    count, first, last = int(match[1]), date.fromisoformat(match[2]), date.fromisoformat(match[3])
    assert first == START and count == (last - first).days + 1
    assert 1 <= count < (END - START).days + 1
    assert "Re-run the same command to resume." in " ".join(stderr.split())  # no --force given

    # What the summary says was written is exactly what the run lines record ...
    runs = frame(
        season_url,
        "SELECT analysis_date, processor, status, rows FROM nba_precompute.processor_runs",
    )
    run_dates = set(runs["analysis_date"].to_list())
    assert run_dates == {first + timedelta(days=i) for i in range(count)}
    assert set(runs["status"].to_list()) <= {"OK", "WARN", "NO_GAMES"}
    # ... and every partition holds exactly the rows of its run line: nothing half-written,
    # nothing written beyond what was reported.
    assert_each_partition_has_its_line(season_url, runs)

    # The flow run is marked Cancelled on the managed server, which survived the Ctrl-C.
    runs = api_post(server_home(cli_folder), "/flow_runs/filter", {"sort": "START_TIME_ASC"})
    states = [run["state_type"] for run in runs]
    assert states == ["CANCELLED"]

    # The re-run resumes: the dates written are skipped, the rest is built.
    rerun = subprocess.run(
        [PHASE4, "--quiet", "backfill", "--start", str(START), "--end", str(END)],
        cwd=cli_folder,
        env=cli_env(season_url),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{count} dates skipped" in rerun.stdout
    total = (END - START).days + 1
    done = frame(
        season_url, "SELECT count(DISTINCT analysis_date) AS n FROM nba_precompute.processor_runs"
    )
    assert done["n"][0] == total


def test_the_server_killed_mid_backfill_ends_it_with_one_line(
    season_url: str, cli_folder: Path, backfill: subprocess.Popen[str]
) -> None:
    """Without the CLI's watch on its server, Prefect's client retried the dead API for
    minutes (62 s a call), then drained its events at exit 7 s each."""
    process = backfill
    assert process.stderr is not None
    for line in process.stderr:  # the flow runs on the server: kill the server now
        if "Beginning flow run" in line:
            break
    server = int((server_home(cli_folder) / "server.pid").read_text().split()[0])
    os.killpg(server, signal.SIGKILL)
    killed_at = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - killed_at < 10.0
    assert process.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: the managed Prefect server (pid {server}) stopped during the command: start it "
        f"(log {server_home(cli_folder)}/server.log) and re-run it; each partition committed "
        "has its run line"
    ]
    runs = frame(
        season_url, "SELECT analysis_date, processor, rows FROM nba_precompute.processor_runs"
    )
    assert_each_partition_has_its_line(season_url, runs)


def test_sigterm_mid_backfill_stops_it_and_keeps_each_partition_with_its_line(
    season_url: str, backfill: subprocess.Popen[str]
) -> None:
    """SIGTERM (systemd, cron, k8s) stops like Ctrl-C: exit 130 and the summary within 10 s,
    nothing half-written, also when Prefect's handler, active inside the flow, raised in the
    middle of a commit's DuckDB query (the next test); before, the process died of the signal
    (-15) with no summary."""
    process = backfill
    assert process.stderr is not None
    for line in process.stderr:
        if "backfill-write-chunk" in line and "Completed" in line:
            break
    process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - stopped_at < 10.0
    assert process.returncode == 130, stderr[-2000:]
    match = WRITTEN.search(stderr)
    assert match and date.fromisoformat(match[2]) == START, stderr[-2000:]
    runs = frame(
        season_url, "SELECT analysis_date, processor, rows FROM nba_precompute.processor_runs"
    )
    assert len(runs) >= 5
    assert_each_partition_has_its_line(season_url, runs)


def test_a_sigterm_that_a_duckdb_query_swallowed_still_stops_like_ctrl_c() -> None:
    """Prefect's SIGTERM handler raises inside the query under way; DuckDB replaces that with
    its own `Query interrupted` and no handler of ours runs (the run used to end Failed, exit
    1). The signal's number on Python's wakeup fd still tells the CLI when the flow ends."""
    import duckdb
    from prefect.utilities.engine import capture_sigterm

    from phase4 import cli
    from tasks.processors import STOP

    levels = {n: logging.getLogger(n).level for n in cli.PREFECT_LOGGERS}
    # One thread: the query's thread is the one that checks for signals between its tasks, so
    # the interrupt is heard at once (with workers it could be heard only as the query ended).
    con = duckdb.connect(config={"threads": 1})
    try:
        with cli._interrupts("backfill") as interrupt:
            with capture_sigterm():  # as the flow engine runs the flow
                threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
                with pytest.raises(RuntimeError, match="Query interrupted"):
                    con.sql(
                        "SELECT count(*) FROM range(10_000_000_000) t(i) WHERE i % 7 = 3"
                    ).fetchall()
            assert STOP.wait(5)  # heard at once: nothing more commits
            assert interrupt.count == 0  # but no handler of ours ran
        assert (interrupt.count, interrupt.signal) == (1, signal.SIGTERM)
        assert STOP.is_set()
    finally:
        interrupt.finished = True  # its watchdog would end the process
        STOP.clear()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_ctrl_c_mid_load_phase3_says_so_and_leaves_no_table_half_loaded(tmp_path: Path) -> None:
    """Outside a run's handler Ctrl-C was exit 130 with nothing printed at all."""
    from tests.conftest import SEASON_2023

    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    env = {**cli_env(url), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [PHASE4, "load-phase3", str(SEASON_2023)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("warehouse: ")  # the command has begun
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.splitlines() == [
        "error: interrupted: nothing more is written; a write under way rolled back whole"
    ]
    assert "replaced" not in stdout  # interrupted before the load's commit: nothing loaded
    loaded = (tmp_path / "w.duckdb").exists() and frame(url, "FROM duckdb_tables()").height
    assert not loaded


def test_a_ctrl_c_that_a_duckdb_query_swallowed_is_still_a_ctrl_c() -> None:
    """Outside a run (load-phase3, export, a read) DuckDB turns the KeyboardInterrupt raised
    inside a query into `RuntimeError: Query interrupted`: it was a traceback and exit 1."""
    import duckdb
    import typer

    from phase4 import cli

    def long_query() -> None:  # one thread: the interrupt heard at once, as above
        duckdb.connect(config={"threads": 1}).sql(
            "SELECT count(*) FROM range(10_000_000_000) t(i) WHERE i % 7 = 3"
        ).fetchall()

    before = signal.getsignal(signal.SIGINT)
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(typer.Exit) as stopped:
        cli.clean_errors(long_query)()
    assert stopped.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is before  # the command's handler is gone with it


def test_ctrl_c_during_a_loads_commit_lets_it_end_whole_and_says_it_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C inside the commit was DuckDB's rollback and a traceback; just after it, the
    command said `a write under way rolled back whole` of a season it had loaded."""
    import typer

    from phase4 import cli
    from phase4.loading import load_phase3_frames
    from quality.schemas import TEAM_OFFENSE_GAME_SUMMARY
    from tasks.warehouse import open_warehouse
    from tests.conftest import SEASON_2023

    warehouse = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    commit = warehouse.replace_seasons_of

    def ctrl_c_then_commit(loads: Any) -> int:
        os.kill(os.getpid(), signal.SIGINT)  # pressed as the write begins
        return commit(loads)

    monkeypatch.setattr(warehouse, "replace_seasons_of", ctrl_c_then_commit)
    table = TEAM_OFFENSE_GAME_SUMMARY.name
    frames = {table: pl.read_parquet(SEASON_2023 / f"nba_analytics.{table}.parquet")}
    with pytest.raises(typer.Exit) as stopped:
        cli.clean_errors(load_phase3_frames)(warehouse, frames)
    assert stopped.value.exit_code == 130
    assert capsys.readouterr().err.startswith(
        f"error: interrupted after the write committed: replaced {table} season(s) 2023: 0 -> "
    )
    stored = warehouse.read(TEAM_OFFENSE_GAME_SUMMARY.full_name, ["season_year"])
    assert stored.height == frames[table].height  # loaded whole


def test_ctrl_c_after_the_flow_returned_says_what_the_run_wrote(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Ctrl-C while the summary printed (the flow done, its handler gone) said `nothing more
    is written; a write under way rolled back whole` of a backfill that had written 174 dates."""
    from datetime import UTC, datetime

    import typer

    from phase4 import cli
    from quality.success import RunLine
    from tasks.processors import committed_listener

    at = datetime(2024, 1, 11, tzinfo=UTC)
    lines = [
        RunLine(
            run_id="r",
            processor=table,
            analysis_date=day,
            status="OK",
            rows=rows,
            duration_seconds=0.1,
            started_at=at,
            finished_at=at,
            message="",
        )
        for day in (date(2024, 1, 10), date(2024, 1, 11))
        for table, rows in (("team_defense_zone_analysis", 30), ("player_daily_cache", 200))
    ]

    def backfill_then_summary() -> None:
        with cli._interrupts("backfill"):
            listener = committed_listener.get()
            assert listener is not None
            listener(lines)  # as each chunk's commit reports its lines
        raise KeyboardInterrupt  # pressed while the table prints

    with pytest.raises(typer.Exit) as stopped:
        cli.clean_errors(backfill_then_summary)()
    assert stopped.value.exit_code == 130
    assert capsys.readouterr().err.strip() == (
        "error: interrupted after the backfill finished; written: 2 date(s) "
        "2024-01-10..2024-01-11, 460 rows, to team_defense_zone_analysis, player_daily_cache "
        "and processor_runs; each partition with its line"
    )
    cli.options.finished = None


def test_a_sigterm_waits_for_the_commit_landing_so_the_summary_counts_it() -> None:
    """Prefect's SIGTERM handler raises in the main thread: the backfill committed a chunk
    there, and the exception could land between the commit and its report, so the summary left
    that chunk out (6 of 13 SIGTERMs 3.5-3.8 s into a season). The commit now runs in a task
    thread (flows/phase4_backfill.py), which the handler cannot interrupt; the CLI waits for
    it."""
    import contextvars
    from datetime import UTC, datetime

    from prefect.exceptions import TerminationSignal

    from phase4 import cli
    from quality.success import RunLine
    from tasks.processors import commit_built

    at = datetime(2024, 1, 10, tzinfo=UTC)
    lines = [
        RunLine(
            run_id="r",
            processor="team_defense_zone_analysis",
            analysis_date=date(2024, 1, 10),
            status="OK",
            rows=30,
            duration_seconds=0.1,
            started_at=at,
            finished_at=at,
            message="",
        )
    ]
    landing = threading.Event()

    class SlowCommit:  # past its guard: the transaction ends whole, 0.5 s later
        def commit(self, replacements: Any, appends: Any, *, before_commit: Any) -> int:
            before_commit()
            landing.set()
            time.sleep(0.5)
            return 0

    with cli._interrupts("backfill") as interrupt:
        context = contextvars.copy_context()  # the task thread's, as Prefect copies it
        threading.Thread(target=context.run, args=(commit_built, SlowCommit(), [], lines)).start()
        assert landing.wait(5)
        raise TerminationSignal(signal.SIGTERM)  # as Prefect's handler ends the flow
    assert interrupt.committed == lines
