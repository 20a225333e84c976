"""The real 2024-25 season loaded into a DuckDB file and backfilled for one week, built once.

Tests of the readers (training sets, features, exports) copy the file and never write the
original. The week 2024-12-09..2024-12-15 holds the season's first DNP/inactive row
(trendonwatford, 2024-12-13) and several pushes (points equal to the line).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
SEASON_2024 = REALDATA / "season_2024_25"
D1, D2 = date(2024, 12, 9), date(2024, 12, 15)


def phase4_cli(url: str, *args: str) -> tuple[int, str]:
    from phase4.cli import app

    result = CliRunner().invoke(app, list(args), env={"PHASE4_WAREHOUSE": url})
    return result.exit_code, result.output


def load_season(path: Path) -> str:
    """Phase 3 of 2024-25 in a new DuckDB file; returns its URL."""
    url = f"duckdb://{path}"
    code, printed = phase4_cli(url, "load-phase3", str(SEASON_2024))
    assert code == 0, printed
    return url


def backfill(url: str, start: date, end: date, *, force: bool = False) -> None:
    """All five processors for start..end through the backfill flow (needs a Prefect API)."""
    args = ["backfill", "--start", str(start), "--end", str(end)] + (["--force"] if force else [])
    code, printed = phase4_cli(url, *args)
    assert code == 0, printed


@functools.cache
def backfilled_week() -> Path:
    """The loaded and backfilled file; callers copy it before use."""
    assert SEASON_2024.is_dir(), f"real data not found at {SEASON_2024}: clone beside ../shared"
    folder = Path(tempfile.mkdtemp(prefix="phase4-season-2024-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "season_2024_25.duckdb"
    backfill(load_season(path), D1, D2)
    return path


def copy_of_week(target: Path) -> str:
    """A private copy of the backfilled week at `target`; returns its URL."""
    shutil.copy(backfilled_week(), target)
    return f"duckdb://{target}"
