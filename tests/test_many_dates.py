"""The many-date engine (issue 14): a date's rows never depend on which dates are built with it.

Every day of both real seasons, built all at once, equals the same day built alone, bit for
bit (data_hash included); and any split of the season into chunks gives the same rows.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.core import build_outputs
from features.registry import PROCESSORS
from tests.conftest import SEASON_2023, SEASON_2024, season_frames

BUILT_AT = datetime(2026, 1, 1, tzinfo=UTC)


def _by_date(outputs: dict[str, pl.DataFrame], day: date) -> dict[str, pl.DataFrame]:
    return {
        t: f.filter(pl.col(PROCESSORS[t].schema.partition_column or "") == day)
        for t, f in outputs.items()
    }


@pytest.mark.parametrize("folder", [SEASON_2023, SEASON_2024], ids=["2023-24", "2024-25"])
def test_every_date_built_with_the_season_equals_the_date_built_alone(folder: Path) -> None:
    frames, days = season_frames(folder)
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
    frames, days = season_frames(SEASON_2023)
    whole = build_outputs(frames, days, BUILT_AT)
    cuts = sorted(random.Random(14).sample(range(1, len(days)), 9))
    chunks = [days[a:b] for a, b in zip([0, *cuts], [*cuts, len(days)], strict=True)]
    parts = [build_outputs(frames, chunk, BUILT_AT) for chunk in chunks]
    for table, frame in whole.items():
        assert_frame_equal(pl.concat([p[table] for p in parts]), frame, check_exact=True)
