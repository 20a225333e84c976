"""SPEC 12's reads: the stored drift reference and the stored checks of a date; the artifact.
The checks themselves run in the run core (features/core.py: `feature_checked`), and a FAIL
keeps the previous partition of D in both tables (the commit leaves the date out).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from features.core import REFERENCE_COLUMNS
from nba_calendar import season_first_day
from quality.feature_checks import PLACEHOLDER_SOURCE, checks_markdown, reference_dates
from quality.schemas import ML_FEATURE_CHECKS, ML_FEATURE_STORE_V2
from tasks.warehouse import Filter, Warehouse

ARTIFACT_KEY = "phase4-feature-checks"


def read_reference(warehouse: Warehouse, game_date: date) -> pl.DataFrame:
    """Stored, non-placeholder P5 rows of the 14 most recent earlier slates of D's season: two
    reads, the dates (two narrow columns), then the features of the chosen dates only."""
    empty = ML_FEATURE_STORE_V2.empty_frame().select(REFERENCE_COLUMNS)
    if warehouse.table_schema(ML_FEATURE_STORE_V2.full_name) is None:
        return empty
    before = [Filter("game_date", "<", game_date)]
    stamps = warehouse.read(
        ML_FEATURE_STORE_V2.full_name,
        ["game_date", "data_source"],
        [Filter("game_date", ">=", season_first_day(game_date)), *before],
    )
    dates = reference_dates(stamps, game_date)
    if not dates:
        return empty
    rows = warehouse.read(
        ML_FEATURE_STORE_V2.full_name,
        list(REFERENCE_COLUMNS),
        [Filter("game_date", ">=", dates[0]), *before],
    )
    return rows.filter(
        pl.col("game_date").is_in(dates) & (pl.col("data_source") != PLACEHOLDER_SOURCE)
    ).cast(dict(empty.schema.items()))


def publish_artifact(checks: pl.DataFrame) -> None:
    """The Prefect markdown artifact listing every feature's figures for D."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=checks_markdown(checks),
        description="SPEC 12 feature checks of ml_feature_store_v2",
    )


def feature_checks_of(warehouse: Warehouse, game_date: date) -> pl.DataFrame:
    """The stored checks of D, for `phase4 status`; empty when D has none (or no table)."""
    where = [Filter("game_date", "=", game_date)]
    rows = warehouse.read(ML_FEATURE_CHECKS.full_name, None, where, missing_ok=True)
    return ML_FEATURE_CHECKS.typed(rows).sort("feature_index")
