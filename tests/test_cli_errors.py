"""Every documented bad input: one line naming the file or setting, exit 2, no traceback.

The CLI runs as a real process (its real stderr), except the locked warehouse, which runs
in-process so the wait for the lock can be shortened. Tests run as root, so "unreadable" and
"read-only" are made real for root too: a folder where a Parquet file should be, a read-only
bind mount in a private mount namespace, and sysfs (EACCES even for root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import SEASON_2023

PHASE4 = str(Path(sys.executable).parent / "phase4")
PGS = "nba_analytics.player_game_summary.parquet"


def phase4(
    *args: str,
    warehouse: str,
    cwd: Path,
    wrap: list[str] | None = None,
    api: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`phase4 --quiet ARGS` as a process; `api`: a running server's (else the CLI's own);
    `env`: the environment instead of this process's."""
    env = {**(os.environ if env is None else env), "PHASE4_WAREHOUSE": warehouse}
    env.pop("PREFECT_API_URL", None)
    if api is not None:
        env["PREFECT_API_URL"] = api
    return subprocess.run(
        [*(wrap or []), PHASE4, "--quiet", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], *names: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture
def season_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "season"
    shutil.copytree(SEASON_2023, folder)
    return folder


def test_a_corrupted_parquet_file_is_named_and_nothing_is_loaded(
    tmp_path: Path, season_copy: Path
) -> None:
    bad = season_copy / PGS
    bad.write_bytes(bad.read_bytes()[:1000])  # cut mid-file: no footer
    warehouse = tmp_path / "w.duckdb"
    result = phase4(
        "load-phase3", str(season_copy), warehouse=f"duckdb://{warehouse}", cwd=tmp_path
    )
    line = assert_one_line_exit_2(result, str(bad), "not a readable Parquet file", "re-export")
    assert f"warehouse duckdb://{warehouse}" in line  # --quiet: the warehouse only on error
    assert result.stdout == ""


def test_an_unreadable_parquet_file_is_named(tmp_path: Path, season_copy: Path) -> None:
    unreadable = season_copy / PGS
    unreadable.unlink()
    unreadable.mkdir()  # root reads any file, but not a folder as Parquet
    result = phase4(
        "load-phase3", str(season_copy), warehouse=f"duckdb://{tmp_path}/w.duckdb", cwd=tmp_path
    )
    assert_one_line_exit_2(result, str(unreadable), "not a readable file")


def test_an_unknown_scheme_names_the_setting(tmp_path: Path) -> None:
    result = phase4("status", "--date", "2024-01-15", warehouse="nonsense://x", cwd=tmp_path)
    assert_one_line_exit_2(result, "PHASE4_WAREHOUSE=nonsense://x", "duckdb://")


def test_a_missing_directory_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    url = f"duckdb://{missing}/w.duckdb"
    for command in (["status", "--date", "2024-01-15"], ["warehouse", "init"]):
        result = phase4(*command, warehouse=url, cwd=tmp_path)
        assert_one_line_exit_2(result, str(missing))
        assert not (tmp_path / "no").exists()


def test_a_read_only_command_never_creates_the_warehouse(tmp_path: Path) -> None:
    absent = tmp_path / "absent.duckdb"
    result = phase4("status", "--date", "2024-01-15", warehouse=f"duckdb://{absent}", cwd=tmp_path)
    assert_one_line_exit_2(result, str(absent))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A folder holding a real warehouse file, to be bind-mounted read-only by `unshare -m`."""
    folder = tmp_path / "ro"
    folder.mkdir()
    from tasks.warehouse import open_warehouse

    open_warehouse(f"duckdb://{folder / 'w.duckdb'}").ensure_tables([])
    yield folder


def test_a_read_only_warehouse_file_is_named(
    tmp_path: Path, season_copy: Path, read_only_mount: Path
) -> None:
    ro = str(read_only_mount)
    wrap = ["unshare", "-m", "sh", "-c", f"mount --bind {ro} {ro} && "
            f"mount -o remount,bind,ro {ro} && exec \"$0\" \"$@\""]  # fmt: skip
    result = phase4(
        "load-phase3",
        str(season_copy),
        warehouse=f"duckdb://{read_only_mount / 'w.duckdb'}",
        cwd=tmp_path,
        wrap=wrap,
    )
    assert_one_line_exit_2(result, str(read_only_mount / "w.duckdb"))


def test_permission_denied_is_named(tmp_path: Path, season_copy: Path) -> None:
    # sysfs refuses to create files even for root: a real EACCES.
    result = phase4(
        "load-phase3", str(season_copy), warehouse="duckdb:///sys/phase4.duckdb", cwd=tmp_path
    )
    line = assert_one_line_exit_2(result, "/sys/phase4.duckdb")
    assert "ermission denied" in line


def test_a_locked_warehouse_is_named(
    tmp_path: Path, season_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.warehouse.duckdb_warehouse as duckdb_warehouse
    from phase4.cli import app

    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(120)", str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(duckdb_warehouse, "LOCK_WAIT_SECONDS", 0.5)
        defaults = duckdb_warehouse.DuckDBWarehouse.__init__.__kwdefaults__ or {}
        if "lock_wait_seconds" in defaults:  # the wait became a keyword default (wh branch)
            monkeypatch.setitem(defaults, "lock_wait_seconds", 0.5)
        monkeypatch.setenv("PHASE4_WAREHOUSE", f"duckdb://{path}")
        result = CliRunner().invoke(app, ["--quiet", "load-phase3", str(season_copy)])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(path) in lines[0] and "lock" in lines[0].lower()
