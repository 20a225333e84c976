"""The CLI's manners: the warehouse line, --quiet, --version, P1-P5, the next slate, summaries,
and the managed Prefect server (a real one, started and stopped)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from phase4.cli import app, human_counts, parse_processors
from phase4.server import server_home, server_status, start_server, stop_server
from tests.test_cli_errors import PHASE4


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version_names_the_package_and_its_engines() -> None:
    code, out, _ = invoke("--version")
    assert code == 0
    assert out.startswith("phase4 0.1.0 (prefect 3.9.1, polars 2.1.0, duckdb 2.0.1, python 3.11")


def test_processors_accept_ids_and_table_names_in_run_order() -> None:
    assert parse_processors(["P3,p1"]) == [
        "team_defense_zone_analysis",
        "player_composite_factors",
    ]
    assert parse_processors(["player_daily_cache, P2,P4"]) == [
        "player_shot_zone_analysis",
        "player_daily_cache",
    ]
    assert parse_processors(["nba_predictions.ml_feature_store_v2"]) == ["ml_feature_store_v2"]
    assert parse_processors(None) is None  # an empty value is refused (test_cli_odd_inputs)


def test_processors_are_named_in_any_case_and_the_option_may_repeat() -> None:
    assert parse_processors(["P1", "p3"]) == [  # --processors P1 --processors p3: both
        "team_defense_zone_analysis",
        "player_composite_factors",
    ]
    assert parse_processors(["Player_Composite_Factors,NBA_PRECOMPUTE.PLAYER_DAILY_CACHE"]) == [
        "player_composite_factors",
        "player_daily_cache",
    ]


def test_a_processor_under_another_dataset_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as refused:  # P5 lives in nba_predictions
        parse_processors(["nba_precompute.ml_feature_store_v2"])
    assert refused.value.exit_code == 2
    assert "unknown processor(s) nba_precompute.ml_feature_store_v2;" in capsys.readouterr().err


def test_an_unknown_processor_is_one_line_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke("run", "--date", "2024-01-15", "--processors", "P1,P9")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: --processors: unknown processor(s) P9; choose from "
        "P1 (team_defense_zone_analysis), P2 (player_shot_zone_analysis), "
        "P3 (player_composite_factors), P4 (player_daily_cache), "
        "P5 (ml_feature_store_v2)"
    ]
    assert not (tmp_path / ".phase4").exists()  # no server, no warehouse


def test_backfill_counts_read_as_words_worst_first() -> None:
    assert human_counts({"OK": 150, "NO_GAMES": 12, "WARN": 1}) == "1 WARN, 12 NO_GAMES, 150 OK"
    assert human_counts({}) == "nothing to do"


def test_the_warehouse_is_the_first_line_and_quiet_drops_it(season_url: str) -> None:
    code, out, _ = invoke("status", "--date", "2024-01-15")
    assert code == 0
    assert out.splitlines()[0] == f"warehouse: {season_url}"
    code, out, _ = invoke("--quiet", "status", "--date", "2024-01-15")
    assert code == 0 and "warehouse:" not in out
    assert "Phase 4 status for 2024-01-15" in out


def test_run_without_a_date_builds_the_next_slate(
    season_url: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.phase4_precompute import next_slate_date

    monkeypatch.setenv("PHASE4_SERVER", "off")  # the session's test harness serves Prefect
    code, out, err = invoke("run", "--processors", "P1")
    day = next_slate_date()
    assert code == 0, out + err
    assert f"no --date: building the next slate, {day}" in out
    assert f"Phase 4 run for {day}" in out


def test_the_managed_server_starts_once_serves_its_ui_on_its_port_and_stops(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = server_home(tmp_path)
    try:
        started = start_server(home)
        assert started.healthy and started.pid and started.port
        again = start_server(home)  # the second command reuses it
        assert (again.pid, again.port) == (started.pid, started.port)
        environ = dict(
            item.split("=", 1)
            for item in Path(f"/proc/{started.pid}/environ").read_text().split("\0")
            if "=" in item
        )
        api = f"http://127.0.0.1:{started.port}/api"
        assert environ["PREFECT_API_URL"] == api and environ["PREFECT_UI_API_URL"] == api
        assert environ["PREFECT_HOME"] == str(home)
        assert os.getsid(started.pid) == started.pid  # its own session: Ctrl-C never reaches it
        assert (home / "server.log").is_file()

    finally:
        assert stop_server(home)
    assert not server_status(home).running
    assert not (home / "server.pid").exists()
    assert not stop_server(home)


def test_quiet_after_the_command_says_where_it_goes() -> None:
    phase4 = Path(sys.executable).parent / "phase4"  # usage errors are the script's own lines
    done = subprocess.run([phase4, "status", "--date", "2024-01-01", "-q"], capture_output=True)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "error: No such option: -q; it goes before the command: `phase4 -q status …`"
    ]


def test_a_command_in_a_terminal_sends_no_prefect_telemetry_and_prints_no_notice(
    tmp_path: Path,
) -> None:
    """In a terminal Prefect's SDK printed a 4-line usage-data notice above a command's output
    (and marked it shown in the Prefect home) on its first import; the CLI asks for no
    telemetry, on the client as on the server (DO_NOT_TRACK, unless the operator sets it)."""
    import pty

    from prefect._internal.analytics.ci_detection import CI_ENV_VARS

    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {*CI_ENV_VARS, "DO_NOT_TRACK"}}
    env.update(PREFECT_HOME=str(home), PHASE4_WAREHOUSE=f"duckdb://{tmp_path / 'none.duckdb'}")
    leader, follower = pty.openpty()  # standard output and error are a terminal
    with subprocess.Popen(
        [PHASE4, "status", "--date", "2024-01-15"],
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=tmp_path,
    ) as process:
        os.close(follower)
        printed = b""
        with contextlib.suppress(OSError):  # the terminal closes with the process
            while chunk := os.read(leader, 4096):
                printed += chunk
    os.close(leader)
    text = printed.decode()
    assert process.returncode == 2 and "no warehouse at" in text, text
    assert "usage data" not in text and "telemetry" not in text, text
    assert list(home.iterdir()) == []
