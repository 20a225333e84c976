"""Bad warehouse settings and files: one line that names the setting or path and what to do.

Read-only opens never create or write anything. Runs as root here, so "permission denied" is
produced with mode bits, which the warehouse honours even for root.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from quality.schemas import TEAM_DEFENSE_ZONE_ANALYSIS
from tasks.io import ensure_tables
from tasks.warehouse import (
    TransientWarehouseError,
    WarehouseError,
    open_warehouse,
)
from tasks.warehouse.duckdb_warehouse import DuckDBWarehouse
from tests.builders import replace_partitions
from tests.test_duckdb_warehouse import D1, p1_rows


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_an_unknown_scheme_names_the_setting_and_the_expected_forms() -> None:
    with pytest.raises(WarehouseError) as exc:
        open_warehouse("nonsense://x")
    assert one_line(exc) == (
        "PHASE4_WAREHOUSE=nonsense://x: unknown scheme; expected duckdb:///absolute/path.duckdb "
        "or bigquery://PROJECT[?location=US]"
    )


def test_a_missing_directory_is_named_and_never_created(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "w.duckdb"
    with pytest.raises(WarehouseError) as exc:
        open_warehouse(f"duckdb://{target}")
    text = one_line(exc)
    assert text.startswith(f"directory {tmp_path / 'nowhere'} does not exist")
    assert f"PHASE4_WAREHOUSE=duckdb://{target}" in text
    assert not (tmp_path / "nowhere").exists()


def test_the_default_phase4_directory_is_the_one_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHASE4_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    warehouse = open_warehouse()
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.path == tmp_path / ".phase4" / "warehouse.duckdb"
    assert ensure_tables(warehouse)
    assert warehouse.path.is_file()


def test_a_relative_path_is_refused_and_nothing_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("duckdb://w.duckdb", "duckdb://data/w.duckdb"):
        with pytest.raises(WarehouseError) as exc:
            open_warehouse(url)
        text = one_line(exc)
        assert text.startswith(f"PHASE4_WAREHOUSE={url}: relative path")
        assert f"duckdb://{tmp_path}/" in text
    assert list(tmp_path.iterdir()) == []


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    warehouse = open_warehouse("duckdb://~/w.duckdb")
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.path == tmp_path / "w.duckdb"


def test_read_only_open_of_an_absent_file_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "w.duckdb"
    with pytest.raises(WarehouseError) as exc:
        open_warehouse(f"duckdb://{target}", read_only=True)
    assert one_line(exc).startswith(f"no warehouse at {target} (PHASE4_WAREHOUSE=duckdb://")
    assert list(tmp_path.iterdir()) == []


def test_the_default_directory_is_not_created_by_a_read_only_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHASE4_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WarehouseError, match="no warehouse at"):
        open_warehouse(read_only=True)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def built(tmp_path: Path) -> Iterator[Path]:
    """A warehouse file holding one P1 row for D1; its mode is restored afterwards."""
    path = tmp_path / "w.duckdb"
    warehouse = open_warehouse(f"duckdb://{path}")
    ensure_tables(warehouse)
    replace_partitions(warehouse, TEAM_DEFENSE_ZONE_ANALYSIS, [D1], p1_rows(D1, ["BOS"]))
    yield path
    path.chmod(0o644)
    tmp_path.chmod(0o755)


def test_a_read_only_open_reads_and_refuses_every_write(built: Path) -> None:
    before = built.read_bytes()
    warehouse = open_warehouse(f"duckdb://{built}", read_only=True)
    frame = warehouse.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr"])
    assert frame["team_abbr"].to_list() == ["BOS"]
    with pytest.raises(WarehouseError) as exc:
        replace_partitions(warehouse, TEAM_DEFENSE_ZONE_ANALYSIS, [D1], p1_rows(D1, ["LAL"]))
    assert one_line(exc) == f"duckdb://{built} was opened read-only; this command must not write"
    with pytest.raises(WarehouseError, match="opened read-only"):
        ensure_tables(warehouse)
    assert built.read_bytes() == before


def test_a_read_only_file_is_refused_for_writing_but_opens_for_reading(built: Path) -> None:
    built.chmod(0o444)
    with pytest.raises(WarehouseError) as exc:
        open_warehouse(f"duckdb://{built}")
    text = one_line(exc)
    assert text.startswith(f"warehouse {built} is read-only (PHASE4_WAREHOUSE=duckdb://{built})")
    assert "chmod u+w" in text
    reader = open_warehouse(f"duckdb://{built}", read_only=True)
    assert reader.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name, ["team_abbr"]).height == 1


def test_an_unreadable_file_is_permission_denied(built: Path) -> None:
    built.chmod(0o000)
    with pytest.raises(WarehouseError) as exc:
        open_warehouse(f"duckdb://{built}", read_only=True)
    assert one_line(exc).startswith(f"permission denied reading warehouse {built}")


def test_an_unwritable_directory_is_permission_denied(built: Path) -> None:
    built.parent.chmod(0o555)
    with pytest.raises(WarehouseError) as exc:
        open_warehouse(f"duckdb://{built}")
    assert one_line(exc).startswith(f"permission denied: cannot write in {built.parent}")


@pytest.mark.parametrize("name", ["w.duckdb", "t.parquet", "e.csv", "empty.duckdb"])
def test_a_file_that_is_not_duckdb_says_so_and_is_left_as_it_was(tmp_path: Path, name: str) -> None:
    """DuckDB 2 opens an existing Parquet, CSV or JSON file as an empty in-memory database:
    `load-phase3` said 'replaced ... 25143 rows' and kept nothing."""
    path = tmp_path / name
    if name == "t.parquet":
        pl.DataFrame({"a": [1]}).write_parquet(path)
    else:
        path.write_text("" if name.startswith("e") else "not a database\n" * 50)
    before = path.read_bytes()
    for read_only in (False, True):
        with pytest.raises(WarehouseError) as exc:
            open_warehouse(f"duckdb://{path}", read_only=read_only)
        assert one_line(exc).startswith(f"{path} is not a DuckDB file (PHASE4_WAREHOUSE=")
        assert one_line(exc).endswith("point PHASE4_WAREHOUSE at a .duckdb file")
    assert path.read_bytes() == before


def test_a_home_that_does_not_exist_is_named() -> None:
    with pytest.raises(WarehouseError) as exc:  # a RuntimeError traceback from expanduser
        open_warehouse("duckdb://~nosuchuser4/w.duckdb")
    assert one_line(exc).startswith(
        "PHASE4_WAREHOUSE=duckdb://~nosuchuser4/w.duckdb: relative path ~nosuchuser4/w.duckdb; "
        "write an absolute one"
    )


def test_a_file_locked_by_another_process_is_a_transient_one_liner(built: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(built)!r})\n"
            "print('holding', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        for read_only in (False, True):
            warehouse = open_warehouse(f"duckdb://{built}", read_only=read_only)
            assert isinstance(warehouse, DuckDBWarehouse)
            warehouse.lock_wait_seconds = 0.5
            with pytest.raises(TransientWarehouseError) as exc:
                warehouse.read(TEAM_DEFENSE_ZONE_ANALYSIS.full_name)
            text = one_line(exc)
            assert text.startswith(f"warehouse {built} is locked by another process (")
            assert f"(PID {holder.pid})): wait" in text and "See also" not in text
            assert text.endswith("wait for it to finish, or stop it, then retry")
    finally:
        holder.kill()
        holder.wait()


def test_a_read_only_open_waits_less_than_a_writer(built: Path) -> None:
    reader = open_warehouse(f"duckdb://{built}", read_only=True)
    writer = open_warehouse(f"duckdb://{built}")
    assert isinstance(reader, DuckDBWarehouse) and isinstance(writer, DuckDBWarehouse)
    assert (reader.lock_wait_seconds, writer.lock_wait_seconds) == (10.0, 120.0)


@pytest.mark.parametrize("where", ["catalog", "data"])
@pytest.mark.parametrize("read_only", [True, False])
def test_a_damaged_file_is_said_in_one_line(tmp_path: Path, where: str, read_only: bool) -> None:
    """DuckDB finds a damaged block when it opens the file (the catalog) or when a read reaches
    it (the data): the first was 'locked by another process' after a 10 or 120 s wait ("in
    block at location" holds "lock"), the second a `_duckdb.Error` traceback in `status`,
    `training-set` and `report`."""
    import duckdb

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE SCHEMA s; "
            "CREATE TABLE s.t AS SELECT range AS x, md5(range::varchar) AS z FROM range(300000)"
        )
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(64 * 1024 if where == "catalog" else size // 2)
        file.write(b"\xa5" * (size - 64 * 1024 if where == "catalog" else 5000))
    started = time.monotonic()
    with pytest.raises(WarehouseError) as exc:
        open_warehouse(f"duckdb://{path}", read_only=read_only).read("s.t", ["z"], [])
    assert time.monotonic() - started < 5  # not waited on as a lock
    if where == "catalog":
        assert one_line(exc).startswith(f"cannot open warehouse {path} (Corrupt database file: ")
        assert one_line(exc).endswith("or move this one away and run `phase4 warehouse init`")
    else:
        assert one_line(exc).startswith(f"warehouse {path} is damaged (Corrupt database file: ")
        assert one_line(exc).endswith("(`phase4 load-phase3`, then `phase4 backfill`)")
