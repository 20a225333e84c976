"""`make bench`: the figures of the backfill-and-performance issue, printed and saved as JSON.

(a) compute-only time of all five processors for one mid-season date (median of repeats);
(b) end-to-end `phase4 run` for one date, against a running Prefect server and with the
    temporary one; (c) full-season backfill wall time and peak memory; (d) the same with 2 and
    4 synthetic seasons of history; (e) the one-player-at-a-time baseline for P2 and P4.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from benchmarks.cli_times import TARGETS as CLI_TARGETS
from benchmarks.cli_times import cli_times
from benchmarks.naive import naive_daily_cache, naive_shot_zones
from features.common import Phase3Frames
from features.player_daily_cache import player_daily_cache
from features.player_shot_zone_analysis import player_shot_zone_analysis
from features.registry import build_outputs, calendar_for

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata" / "season_2023_24"
RESULTS = REPO / "benchmarks" / "results"
BIN = Path(sys.executable).parent
BENCH_DATE = date(2024, 1, 15)
SEASON = (date(2023, 10, 24), date(2024, 4, 7))
TARGETS = {"compute_ms": 150.0, "backfill_s": 30.0, "backfill_peak_mb": 1536.0, "speedup": 100.0}


def read_realdata() -> Phase3Frames:
    def read(table: str) -> pl.DataFrame:
        return pl.read_parquet(REALDATA / f"nba_analytics.{table}.parquet")

    return Phase3Frames(
        read("player_game_summary"),
        read("team_defense_game_summary"),
        read("team_offense_game_summary"),
        read("upcoming_player_game_context"),
        read("upcoming_team_game_context"),
    )


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        clock = time.perf_counter()
        fn()
        times.append((time.perf_counter() - clock) * 1000)
    return statistics.median(times)


def bench_compute(frames: Phase3Frames) -> dict[str, float]:
    now = datetime.now(UTC)
    return {"compute_ms": median_ms(lambda: build_outputs(frames, BENCH_DATE, now), repeats=15)}


def bench_baseline(frames: Phase3Frames, work: Path) -> dict[str, float]:
    """P2 and P4 as the old processors ran them (a query per player) against ours."""
    from phase4.loading import load_phase3_directory
    from tasks.warehouse import open_warehouse

    warehouse = open_warehouse(f"duckdb://{work / 'baseline.duckdb'}")
    load_phase3_directory(warehouse, REALDATA)
    now = datetime.now(UTC)
    calendar = calendar_for(frames, BENCH_DATE)
    fast_p2 = median_ms(lambda: player_shot_zone_analysis(frames.player_games, calendar, now), 7)
    zones = player_shot_zone_analysis(frames.player_games, calendar, now)
    fast_p4 = median_ms(
        lambda: player_daily_cache(
            frames.player_games, frames.team_offense, frames.player_context, zones, calendar, now
        ),
        7,
    )
    slow_p2 = median_ms(lambda: naive_shot_zones(warehouse, BENCH_DATE), 1)
    slow_p4 = median_ms(lambda: naive_daily_cache(warehouse, BENCH_DATE), 1)
    return {
        "p2_polars_ms": fast_p2,
        "p2_naive_ms": slow_p2,
        "p2_speedup": slow_p2 / fast_p2,
        "p4_polars_ms": fast_p4,
        "p4_naive_ms": slow_p4,
        "p4_speedup": slow_p4 / fast_p4,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    return env


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=base_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{api}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"Prefect server did not start; see {home / 'server.log'}")
        yield api
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def phase4(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run the CLI; returns (wall seconds, peak RSS MB of that child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    clock = time.perf_counter()
    done = subprocess.run([str(BIN / "phase4"), *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - clock
    if done.returncode not in (0,):
        raise RuntimeError(
            f"phase4 {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def bench_end_to_end(work: Path) -> dict[str, float]:
    env = base_env(work / "prefect-home")
    env["PHASE4_WAREHOUSE"] = f"duckdb://{work / 'real.duckdb'}"
    phase4(["load-phase3", str(REALDATA)], env)
    figures: dict[str, float] = {}
    figures["run_temporary_server_s"], _ = phase4(["run", "--date", str(BENCH_DATE)], env)
    with prefect_server(work / "prefect-home") as api:
        env["PREFECT_API_URL"] = api
        phase4(["run", "--date", str(BENCH_DATE)], env)  # warm the server's caches
        figures["run_running_server_s"], _ = phase4(["run", "--date", str(BENCH_DATE)], env)
        wall, peak = phase4(
            ["backfill", "--start", str(SEASON[0]), "--end", str(SEASON[1]), "--force"], env
        )
        figures["backfill_s"], figures["backfill_peak_mb"] = wall, peak
        figures["backfill_dates"] = (SEASON[1] - SEASON[0]).days + 1
        for seasons in (2, 4):
            figures.update(bench_synthetic_history(work, env, seasons))
    return figures


def bench_synthetic_history(work: Path, env: dict[str, str], seasons: int) -> dict[str, float]:
    """Backfill every date of `seasons` synthetic seasons: how cost grows with history."""
    from phase4.demo_data import generate_season

    folder = work / f"synthetic-{seasons}"
    folder.mkdir()
    first_season = 2024 - seasons + 1
    parts = [generate_season(seed=100 + s, season_year=first_season + s) for s in range(seasons)]
    for table in parts[0]:
        pl.concat([p[table] for p in parts]).write_parquet(
            folder / f"nba_analytics.{table}.parquet"
        )
    local = dict(env, PHASE4_WAREHOUSE=f"duckdb://{work / f'synthetic-{seasons}.duckdb'}")
    phase4(["load-phase3", str(folder)], local)
    dates = pl.concat([p["upcoming_player_game_context"]["game_date"] for p in parts])
    wall_total, peak = 0.0, 0.0
    for s in range(seasons):
        season_dates = parts[s]["upcoming_player_game_context"]["game_date"]
        wall, peak_s = phase4(
            [
                "backfill",
                "--start",
                str(season_dates.min()),
                "--end",
                str(season_dates.max()),
                "--force",
            ],
            local,
        )
        wall_total, peak = wall_total + wall, max(peak, peak_s)
    return {
        f"synthetic_{seasons}_seasons_backfill_s": wall_total,
        f"synthetic_{seasons}_seasons_dates": float(dates.n_unique()),
        f"synthetic_{seasons}_seasons_peak_mb": peak,
    }


def main() -> None:
    frames = read_realdata()
    figures: dict[str, float] = {}
    figures.update(bench_compute(frames))
    with tempfile.TemporaryDirectory(prefix="phase4-bench-") as work:
        figures.update(bench_baseline(frames, Path(work)))
        figures.update(bench_end_to_end(Path(work)))
    figures.update({f"cli_{k}_s": v for k, v in cli_times().items()})
    checks = {
        "(a) compute <= 150 ms": figures["compute_ms"] <= TARGETS["compute_ms"],
        "(c) backfill <= 30 s": figures["backfill_s"] <= TARGETS["backfill_s"],
        "(c) peak <= 1.5 GB": figures["backfill_peak_mb"] <= TARGETS["backfill_peak_mb"],
        "(e) P2 >= 100x": figures["p2_speedup"] >= TARGETS["speedup"],
        "(e) P4 >= 100x": figures["p4_speedup"] >= TARGETS["speedup"],
        "(cli) 2nd command <= 3 s": figures["cli_second_s"] <= CLI_TARGETS["second"],
        "(cli) against a running server <= 1.5 s": figures["cli_third_s"] <= CLI_TARGETS["third"],
    }
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "figures": figures,
        "targets_met": checks,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(k) for k in figures)
    print(f"Phase 4 benchmarks ({result['machine']}, {result['measured_at']})")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value:12.2f}")
    for check, ok in checks.items():
        print(f"  {'MET ' if ok else 'MISS'} {check}")
    print(f"saved {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
