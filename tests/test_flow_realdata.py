"""The phase4-precompute flow end to end on the real 2023-24 season, through the CLI."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from phase4.cli import app
from quality.schemas import OUTPUT_TABLES
from tasks.readers import read_output
from tasks.warehouse import open_warehouse

D = date(2024, 1, 15)
P1_P2 = "team_defense_zone_analysis,player_shot_zone_analysis"
runner = CliRunner()


def phase4(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def output(table: str, day: date = D) -> pl.DataFrame:
    return read_output(open_warehouse(), table, day)


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_p1_and_p2_on_the_real_season() -> None:
    code, printed = phase4("run", "--date", str(D), "--processors", P1_P2)
    assert code == 0, printed
    teams = output("team_defense_zone_analysis")
    assert teams.height == 30
    league = teams.row(0, named=True)
    assert 0.55 <= league["league_paint_pct"] <= 0.68
    assert 0.36 <= league["league_mid_range_pct"] <= 0.47
    assert 0.33 <= league["league_three_pt_pct"] <= 0.39
    for zone in ("paint", "mid_range", "three_pt"):
        assert abs(teams[f"{zone}_defense_vs_league_avg"].mean()) <= 1.0  # type: ignore[arg-type]
    players = output("player_shot_zone_analysis")
    assert 400 <= players.height <= 520
    with_shots = players.filter(pl.col("total_shots_last_10") > 0)
    rate_sum = with_shots.select(
        pl.sum_horizontal("paint_rate_last_10", "mid_range_rate_last_10", "three_pt_rate_last_10")
    ).to_series()
    assert rate_sum.len() > 350
    assert ((rate_sum - 100).abs() <= 0.01).all()
    assert (players["games_in_sample_10"] <= players["games_in_sample_20"]).all()


@pytest.mark.usefixtures("prefect_harness")
def test_export_writes_one_parquet_per_output(season_url: str, tmp_path: Path) -> None:
    assert phase4("run", "--date", str(D), "--processors", P1_P2)[0] == 0
    out = tmp_path / "out"
    code, printed = phase4("export", "--date", str(D), "--out", str(out))
    assert code == 0, printed
    part = f"analysis_date={D}/part-0.parquet"
    teams = pl.read_parquet(out / "nba_precompute.team_defense_zone_analysis" / part)
    assert teams.height == 30
    zones = pl.read_parquet(out / "nba_precompute.player_shot_zone_analysis" / part)
    assert zones.height == output("player_shot_zone_analysis").height
    assert sorted(p.name for p in out.iterdir()) == [
        "nba_precompute.player_shot_zone_analysis",
        "nba_precompute.team_defense_zone_analysis",
    ]


def slate_size(day: date) -> int:
    from quality.success import slate_facts
    from tasks.readers import read_phase3_frames

    frames = read_phase3_frames(open_warehouse(), day, day)
    return slate_facts(day, frames).slate_players


@pytest.mark.parametrize("day", [date(2024, 1, 15), date(2024, 3, 1)])
@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_all_five_processors_on_the_real_season(day: date) -> None:
    code, printed = phase4("run", "--date", str(day))
    assert code == 0, printed
    slate = slate_size(day)
    assert slate > 100
    composite = output("player_composite_factors", day)
    assert composite.height == slate
    assert composite["player_lookup"].n_unique() == slate
    assert composite["fatigue_score"].is_between(0, 100).all()
    assert composite["shot_zone_mismatch_score"].is_between(-10, 10).all()
    cache = output("player_daily_cache", day)
    assert slate / 2 <= cache.height <= slate
    features = output("ml_feature_store_v2", day)
    assert features.height == slate
    assert (features["features"].list.len() == 25).all()
    assert (features["feature_sources"].list.len() == 25).all()
    assert features["feature_quality_score"].mean() >= 85  # type: ignore[operator]
    status_code, status = phase4("status", "--date", str(day))
    assert status_code == 0
    for table in OUTPUT_TABLES:
        assert table in status


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_a_rerun_gives_the_same_rows_and_hashes() -> None:
    """Only build times move: processed_at, and the source timestamps of Phase 4 inputs (the
    upstream rows were rebuilt too). Every business column and data_hash stays."""
    assert phase4("run", "--date", str(D))[0] == 0
    first = {t: output(t) for t in OUTPUT_TABLES}
    assert phase4("run", "--date", str(D))[0] == 0
    for table, before in first.items():
        after = output(table)
        stamp = "created_at" if "created_at" in before.columns else "processed_at"
        moving = [stamp, *PHASE4_SOURCE_STAMPS.get(table, ())]
        key = list(OUTPUT_TABLES[table].key)
        assert before.drop(moving).sort(key).equals(after.drop(moving).sort(key)), table
        assert after[stamp].min() > before[stamp].max(), table  # type: ignore[operator]


PHASE4_SOURCE_STAMPS = {
    "player_composite_factors": (
        "source_player_shot_zone_last_updated",
        "source_team_defense_last_updated",
    ),
    "player_daily_cache": ("source_shot_zone_last_updated",),
    "ml_feature_store_v2": (
        "source_daily_cache_last_updated",
        "source_composite_last_updated",
        "source_shot_zones_last_updated",
        "source_team_defense_last_updated",
    ),
}


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_a_processor_run_alone_reads_its_inputs_from_the_warehouse() -> None:
    assert phase4("run", "--date", str(D))[0] == 0
    together = output("ml_feature_store_v2").drop("created_at").sort("player_lookup")
    code, printed = phase4("run", "--date", str(D), "--processors", "ml_feature_store_v2")
    assert code == 0, printed
    alone = output("ml_feature_store_v2").drop("created_at").sort("player_lookup")
    assert alone.equals(together)


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_a_date_without_games_reports_no_games() -> None:
    code, printed = phase4("run", "--date", "2024-02-18")  # All-Star Sunday: no slate
    assert code == 0, printed
    assert "NO_GAMES" in printed
    for table in ("player_composite_factors", "player_daily_cache", "ml_feature_store_v2"):
        assert output(table, date(2024, 2, 18)).height == 0
    assert output("team_defense_zone_analysis", date(2024, 2, 18)).height == 30


@pytest.mark.usefixtures("prefect_harness", "season_url")
def test_a_failing_daily_cache_still_gives_every_slate_player_a_feature_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    from features.registry import PROCESSORS

    def broken_daily_cache(*args: object, **kwargs: object) -> pl.DataFrame:
        raise RuntimeError("daily cache exploded (forced by the test)")

    assert phase4("run", "--date", str(D))[0] == 0
    healthy = output("ml_feature_store_v2")
    entry = replace(PROCESSORS["player_daily_cache"], compute=broken_daily_cache)
    monkeypatch.setitem(PROCESSORS, "player_daily_cache", entry)
    code, printed = phase4("run", "--date", str(D))
    assert code == 1, printed
    assert "player_daily_cache" in printed and "FAIL" in printed
    degraded = output("ml_feature_store_v2")
    assert degraded.height == slate_size(D)
    sources = degraded["feature_sources"].list.get(0).unique().to_list()
    assert "phase4" not in sources  # points_avg_last_5 came from Phase 3 or a default
    assert "phase3" in sources
    assert degraded["feature_quality_score"].mean() < healthy["feature_quality_score"].mean()  # type: ignore[operator]
