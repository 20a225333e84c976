"""SPEC 12's reads and writes: the stored drift reference, the checks of a stored date, the
artifact. The checks themselves run in the run core (features/core.py: `check_dates`); a
FAIL keeps the previous partition of D in both tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from features.core import REFERENCE_COLUMNS, check_dates
from nba_calendar import SlateCalendar, season_first_day
from quality.feature_checks import (
    OK,
    PLACEHOLDER_SOURCE,
    check_features,
    checks_markdown,
    raise_on_failure,
    reference_dates,
    summary,
)
from quality.schemas import ML_FEATURE_CHECKS, ML_FEATURE_STORE_V2
from tasks.warehouse import Filter, Warehouse

ARTIFACT_KEY = "phase4-feature-checks"


def read_reference(warehouse: Warehouse, game_date: date) -> pl.DataFrame:
    """Stored, non-placeholder P5 rows of the 14 most recent earlier slates of D's season.

    Two reads, both with the date window in the SQL: the dates (two narrow columns), then the
    features of the chosen dates only.
    """
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


def check_partition(
    warehouse: Warehouse, p5: pl.DataFrame, calendar: SlateCalendar, run_id: str
) -> pl.DataFrame:
    """The checks of P5 for D against the stored reference; raises on FAIL (nothing written)."""
    reference = read_reference(warehouse, calendar.analysis_date)
    checks = check_features(
        p5,
        reference,
        calendar.analysis_date,
        early_season=calendar.is_early_season,
        run_id=run_id,
    )
    raise_on_failure(checks, calendar.analysis_date)
    return checks


def write_checks(warehouse: Warehouse, game_date: date, checks: pl.DataFrame) -> int:
    """Replace the checks partition of D (an empty slate leaves it empty)."""
    return warehouse.replace_partition(ML_FEATURE_CHECKS, game_date, checks.to_arrow())


def report_notes(checks: pl.DataFrame) -> tuple[str, ...]:
    """P5's report line gains a note (and so a WARN) only when a check WARNs."""
    status, message = summary(checks)
    return () if status == OK else (message,)


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
    if warehouse.table_schema(ML_FEATURE_CHECKS.full_name) is None:
        return ML_FEATURE_CHECKS.empty_frame()
    rows = warehouse.read(ML_FEATURE_CHECKS.full_name, None, [Filter("game_date", "=", game_date)])
    return (
        rows.select(ML_FEATURE_CHECKS.column_names)
        .cast(dict(ML_FEATURE_CHECKS.polars_schema.items()))
        .sort("feature_index")
    )


def check_chunk(
    warehouse: Warehouse, p5: pl.DataFrame, dates: Sequence[date], run_id: str
) -> tuple[pl.DataFrame, dict[date, tuple[str, str]]]:
    """SPEC 12 for every date of a backfill chunk against the stored reference before it
    (`features.core.check_dates`, what the run core does)."""
    return check_dates(p5, dates, read_reference(warehouse, min(dates)), run_id)
