"""The many-date engine: a date's rows never depend on which dates are built with it.

Every day of both real seasons, built all at once, equals the same day built alone, bit for
bit (data_hash included); and any split of the season into chunks gives the same rows.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime

import polars as pl
from polars.testing import assert_frame_equal

from features.core import build_outputs
from features.registry import PROCESSORS
from features.windows import GAME_NUMBER, Window, as_of, entity_dates, game_sequence, windowed
from tests.conftest import SEASON_2023, SEASON_2024, season_frames

BUILT_AT = datetime(2026, 1, 1, tzinfo=UTC)


def _by_date(outputs: dict[str, pl.DataFrame], day: date) -> dict[str, pl.DataFrame]:
    return {
        t: f.filter(pl.col(PROCESSORS[t].schema.partition_column or "") == day)
        for t, f in outputs.items()
    }


def test_every_date_built_with_the_season_equals_the_date_built_alone() -> None:
    """2024-25 here; 2023-24 is compared the same way, each date alone read through its own
    warehouse read window, in tests/test_backfill.py (one whole-season comparison a season)."""
    frames, days = season_frames(SEASON_2024)
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


# Team A's games (a NULL score, a NULL minutes; 11-20 is after every date built) and B's one.
HAND_GAMES = pl.DataFrame(
    {
        "team": ["A", "B", "A", "A", "A", "A"],
        "season_year": [2023] * 6,
        "game_date": [date(2023, 11, d) for d in (7, 2, 1, 20, 5, 3)],
        "game_id": ["g4", "g6", "g1", "g5", "g3", "g2"],
        "points": [30, 7, 10, 99, 20, None],
        "minutes": [10.0, 12.5, 30.0, 48.0, None, 20.0],
    }
)
HAND_DATES = pl.DataFrame(
    {"analysis_date": [date(2023, 11, 4), date(2023, 11, 10)], "season_year": [2023, 2023]}
)
# As of 11-04: A has g1, g2; as of 11-10: g1..g4. B has g6 for both.
HAND_EXPECTED = pl.DataFrame(
    {
        "analysis_date": [date(2023, 11, 4)] * 2 + [date(2023, 11, 10)] * 2,
        "team": ["A", "B", "A", "B"],
        "points_last_2": [10, 7, 50, 7],  # NULL skipped; g3 + g4
        "games_last_3": [2, 1, 3, 1],
        "points_mean_season": [10.0, 7.0, 20.0, 7.0],  # (10 + 20 + 30) / 3 known
        "minutes_mean_last_3": [25.0, 12.5, 15.0, 12.5],  # g2..g4: (20 + 10) / 2
        "minutes_std_season": [math.sqrt(50.0), None, 10.0, None],  # under 2 values: NULL
        "points_1_to_3_ago": [10, None, 30, None],  # g1..g3 as of g4; none known for B
        "minutes_max_last_2": [30.0, 12.5, 10.0, 12.5],
    }
)


def _hand_windows() -> tuple[Window, Window, Window, Window]:
    return Window(2), Window(3), Window(None), Window(4, 1)


def test_windowed_aggregates_by_hand() -> None:
    """The rolling aggregates of `windowed`, read as of each date by `as_of`."""
    last_2, last_3, season, older = _hand_windows()
    points, minutes = pl.col("points"), pl.col("minutes")
    sequence = game_sequence(HAND_GAMES, "team", HAND_DATES)
    assert sequence.collect()["game_id"].to_list() == ["g1", "g2", "g3", "g4", "g6"]
    aggregates = [
        last_2.agg_sum(points).alias("points_last_2"),
        last_3.agg_count().alias("games_last_3"),
        season.agg_integer_mean(points).alias("points_mean_season"),
        last_3.agg_mean(minutes).alias("minutes_mean_last_3"),
        season.agg_std(minutes).alias("minutes_std_season"),
        older.agg_sum(points).alias("points_1_to_3_ago"),
        last_2.agg_max(minutes).alias("minutes_max_last_2"),
    ]
    windows = windowed(sequence, ("team", "season_year", "game_date", GAME_NUMBER), aggregates)
    rows = as_of(entity_dates(HAND_GAMES, "team", HAND_DATES), windows, "team")
    got = rows.select(HAND_EXPECTED.columns).sort("analysis_date", "team").collect()
    assert_frame_equal(got, HAND_EXPECTED, check_exact=True)
