"""The many-date engine (issue 14): a date's rows never depend on which dates are built with it.

Every day of both real seasons, built all at once, equals the same day built alone, bit for
bit (data_hash included); and any split of the season into chunks gives the same rows.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.common import Phase3Frames
from features.registry import PROCESSORS, build_outputs
from tests.conftest import SEASON_2023, SEASON_2024

BUILT_AT = datetime(2026, 1, 1, tzinfo=UTC)


def _season(folder: Path) -> tuple[Phase3Frames, list[date]]:
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
    # From a week before the opener (no games yet) to two days after the last scheduled game.
    start = first - timedelta(days=7)
    return frames, [start + timedelta(days=i) for i in range((last - start).days + 3)]


def _by_date(outputs: dict[str, pl.DataFrame], day: date) -> dict[str, pl.DataFrame]:
    return {
        t: f.filter(pl.col(PROCESSORS[t].schema.partition_column or "") == day)
        for t, f in outputs.items()
    }


@pytest.mark.parametrize("folder", [SEASON_2023, SEASON_2024], ids=["2023-24", "2024-25"])
def test_every_date_built_with_the_season_equals_the_date_built_alone(folder: Path) -> None:
    frames, days = _season(folder)
    together = build_outputs(frames, days, BUILT_AT)
    rows = 0
    for day in days:
        alone = build_outputs(frames, day, BUILT_AT)
        for table, frame in _by_date(together, day).items():
            assert_frame_equal(frame, alone[table], check_exact=True)
            rows += frame.height
    assert rows == sum(f.height for f in together.values())
    assert together["ml_feature_store_v2"]["game_date"].n_unique() > 150


def test_any_chunking_of_the_season_gives_the_same_rows() -> None:
    frames, days = _season(SEASON_2023)
    whole = build_outputs(frames, days, BUILT_AT)
    cuts = sorted(random.Random(14).sample(range(1, len(days)), 9))
    chunks = [days[a:b] for a, b in zip([0, *cuts], [*cuts, len(days)], strict=True)]
    parts = [build_outputs(frames, chunk, BUILT_AT) for chunk in chunks]
    for table, frame in whole.items():
        assert_frame_equal(pl.concat([p[table] for p in parts]), frame, check_exact=True)
