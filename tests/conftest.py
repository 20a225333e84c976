"""One Prefect test harness per session, with a throwaway PREFECT_HOME and no telemetry."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if "PREFECT_HOME" not in os.environ:
    _home = tempfile.mkdtemp(prefix="phase4-prefect-home-")
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
    os.environ["PREFECT_HOME"] = _home
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import polars as pl  # noqa: E402
import pytest  # noqa: E402

from quality.schemas import Phase3Frames  # noqa: E402

if TYPE_CHECKING:
    from tasks.warehouse.duckdb_warehouse import DuckDBWarehouse
    from tests.support.bq_emulator import EmulatorProcess

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
SEASON_2023 = REALDATA / "season_2023_24"
SEASON_2024 = REALDATA / "season_2024_25"


# The longest tests and modules (seconds on two idle cores), started first: under pytest-xdist
# (`make test`) a long one picked up last leaves the other cores idle at the end. Everything
# else keeps its collection order after these.
LONGEST_FIRST = (
    "tests/test_deployment_e2e.py::",  # ~3 min: a server, deploys, three runs, the deadline
    "tests/test_backfill.py::test_the_chunked_path_equals_the_per_date_path",  # ~1.5 min
    "tests/test_many_dates.py::test_every_date_built_with_the_season",  # ~1 min
    "tests/test_cli_interrupt.py::",  # ~1.5 min: a managed server, a backfill twice
    "tests/test_bigquery_warehouse.py::test_a_full_run_matches_the_duckdb_run",
    "tests/test_cli.py::test_the_managed_server_starts_once",
    "tests/test_server_security.py::",
    "tests/test_freshness.py::test_a_synthetic_then_real_reload",
    "tests/test_freshness.py::test_a_corrected_points_value",
    "tests/test_worker_query.py::",
    "tests/test_completeness.py::test_the_2024_25_backfill",
    "tests/test_backfill_chunk.py::",
    "tests/test_many_dates.py::test_any_chunking",
    "tests/test_feature_checks.py::test_real_seasons_give_no_feature_check",
    "tests/test_cli_inputs.py::",
)
# Modules whose tests share a module-scoped fixture (a server with its deployments, a managed
# server, an emulator's built slate, a generated season): xdist gives all of a module's tests
# to one worker, so the fixture is built once (and a test that relies on an earlier one of
# its module sees it). Checked against the fixtures at collection.
SHARED_FIXTURE_MODULES = frozenset(
    f"tests/test_{name}.py"
    for name in (
        "bq_emulator_smoke",
        "demo_data",
        "deployment_e2e",
        "feature_store_v3",
        "server_security",
        "worker_query",
    )
)


def _rank(nodeid: str) -> int:
    return next(
        (i for i, prefix in enumerate(LONGEST_FIRST) if nodeid.startswith(prefix)),
        len(LONGEST_FIRST),
    )


def _module(nodeid: str) -> str:
    return nodeid.split("::")[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first; a module with a module-scoped fixture must be in SHARED_FIXTURE_MODULES."""
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: the rest keep their order
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.values() if info is not None else ()
        shared = any(d.scope == "module" for defs in definitions for d in defs)
        if shared and _module(item.nodeid) not in SHARED_FIXTURE_MODULES:
            raise pytest.UsageError(
                f"{item.nodeid} uses a module-scoped fixture: add its module to "
                "SHARED_FIXTURE_MODULES in tests/conftest.py"
            )


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`-n N`: the tests one by one in collection order (longest first), each module of
    SHARED_FIXTURE_MODULES as one unit, and one test queued per worker beyond the running
    one (xdist's default queues three: a long test would wait behind another one on a busy
    worker while another worker is free)."""
    from xdist.scheduler import LoadScopeScheduling

    class LongestFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return module if module in SHARED_FIXTURE_MODULES else nodeid

        def _reschedule(self, node: Any) -> None:
            busy = self._pending_of(self.assigned_work[node]) > 1
            if busy and self.workqueue and not node.shutting_down:
                return
            super()._reschedule(node)

    config.option.loadscopereorder = False  # keep the collection order
    return LongestFirst(config, log)


@pytest.fixture(scope="session", autouse=True)
def default_server_port_held() -> Iterator[None]:
    """The managed server's default port (4200) bound by the test session, so the managed
    servers the tests start (on several workers at once, beside other checkouts' tests) take
    OS-assigned free ports: two starting at once could otherwise both find 4200 free, and
    the second would report the first one's server as its own."""
    from phase4.server import DEFAULT_PORT

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        with contextlib.suppress(OSError):  # bound by another worker or process: taken anyway
            holder.bind(("127.0.0.1", DEFAULT_PORT))
        yield


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def bq_emulator() -> Iterator[EmulatorProcess]:
    """One real bqemulator per session (per xdist worker); each test works in its own project."""
    from tests.support.bq_emulator import start_emulator

    with start_emulator(project="local") as emulator:
        yield emulator


@pytest.fixture
def warehouse_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh DuckDB warehouse per test, selected the way users select it."""
    url = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    monkeypatch.setenv("PHASE4_WAREHOUSE", url)
    return url


def load_season_file(tmp_path_factory: pytest.TempPathFactory, season: Path) -> Path:
    """A real season loaded once into its own DuckDB file; tests work on copies of it."""
    from phase4.loading import load_phase3_directory
    from tasks.warehouse import open_warehouse

    assert season.is_dir(), f"real data not found at {season}: clone beside ../shared"
    path = tmp_path_factory.mktemp("season") / f"{season.name}.duckdb"
    load_phase3_directory(open_warehouse(f"duckdb://{path}"), season)
    return path


def copy_into(loaded: Path, warehouse_url: str) -> str:
    shutil.copy(loaded, warehouse_url.removeprefix("duckdb://"))
    return warehouse_url


@pytest.fixture(scope="session")
def loaded_season(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 2023-24 season, loaded once per session."""
    return load_season_file(tmp_path_factory, SEASON_2023)


@pytest.fixture(scope="session")
def loaded_season_2024(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 2024-25 season, loaded once per session."""
    return load_season_file(tmp_path_factory, SEASON_2024)


@pytest.fixture
def season_url(loaded_season: Path, warehouse_url: str) -> str:
    return copy_into(loaded_season, warehouse_url)


@pytest.fixture
def season_2024_url(loaded_season_2024: Path, warehouse_url: str) -> str:
    return copy_into(loaded_season_2024, warehouse_url)


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    """An empty DuckDB warehouse of its own with every output table created."""
    from tasks.io import ensure_tables
    from tasks.warehouse import open_warehouse
    from tasks.warehouse.duckdb_warehouse import DuckDBWarehouse

    w = open_warehouse(f"duckdb://{tmp_path / 'w.duckdb'}")
    assert isinstance(w, DuckDBWarehouse)
    ensure_tables(w)
    return w


def season_frames(folder: Path) -> tuple[Phase3Frames, list[date]]:
    """A real season's Phase 3 files as frames, and its days: from a week before the opener
    (no games yet) to two days after the last scheduled game."""

    def read(table: str) -> pl.DataFrame:
        return pl.read_parquet(folder / f"nba_analytics.{table}.parquet")

    frames = Phase3Frames(
        read("player_game_summary"),
        read("team_defense_game_summary"),
        read("team_offense_game_summary"),
        read("upcoming_player_game_context"),
        read("upcoming_team_game_context"),
    )
    first, last = frames.team_context["game_date"].min(), frames.team_context["game_date"].max()
    assert isinstance(first, date) and isinstance(last, date)
    start = first - timedelta(days=7)
    return frames, [start + timedelta(days=i) for i in range((last - start).days + 3)]


def write_partition(warehouse: Any, table: str, day: date, frame: pl.DataFrame) -> int:
    """Replace one partition outside a run: tests seed stored partitions with it."""
    from quality.schemas import OUTPUT_TABLES
    from tests.builders import replace_partitions

    return int(replace_partitions(warehouse, OUTPUT_TABLES[table], [day], frame.to_arrow()))
