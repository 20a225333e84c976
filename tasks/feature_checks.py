"""SPEC 12 in the run: read the drift reference, check P5 of D, write P5 with its checks.

Called by the P5 task between building the frame and writing it. On a FAIL nothing is written
(the previous partition of D stays, in both tables); otherwise P5's partition and the checks'
partition for D are replaced, and the worst status goes into P5's report line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from nba_calendar import SlateCalendar, season_first_day
from quality.feature_checks import (
    FAIL,
    OK,
    PLACEHOLDER_SOURCE,
    check_features,
    checks_markdown,
    dated_feature_values,
    failures,
    figures_by_date,
    raise_on_failure,
    reference_dates,
    reference_slates,
    summary,
)
from quality.schemas import ML_FEATURE_CHECKS, ML_FEATURE_STORE_V2
from tasks.warehouse import Filter, Warehouse

ARTIFACT_KEY = "phase4-feature-checks"
REFERENCE_COLUMNS = ("player_lookup", "game_date", "data_source", "features", "feature_sources")
VALUE_COLUMNS = ("player_lookup", "value", "source", "feature_index")
# SPEC 16.6: the chunk's own figures cover features 25 to 59 too (the drift reference does not).
LATER_VALUE_COLUMNS = tuple(f"feature_{i}_value" for i in range(25, 60))


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


def current_run_id() -> str:
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return str(run_id) if run_id else "local"


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
    """SPEC 12 for every date of a backfill chunk, in date order, as the nightly run checks D.

    Each date's drift reference is the stored P5 rows before the chunk plus the chunk's own
    earlier dates that passed (they are written together with it). Returns the checks of the
    dates that have P5 rows and each such date's worst status and message.
    """
    history = read_reference(warehouse, min(dates))
    # Exploded once: the stored history, and the chunk (whose figures of D do not depend on
    # the reference, so every date's are computed in one pass).
    dated = split_by_date(dated_feature_values(history))
    chunk_values = dated_feature_values(p5.select(*REFERENCE_COLUMNS, *LATER_VALUE_COLUMNS))
    figures = figures_by_date(chunk_values)
    by_date = split_by_date(chunk_values)
    checked: list[pl.DataFrame] = []
    outcomes: dict[date, tuple[str, str]] = {}
    rows_by_date = p5.partition_by("game_date", as_dict=True) if p5.height else {}
    for day in sorted(dates):
        rows = rows_by_date.get((day,))
        if rows is None or rows.is_empty():
            continue
        checks = check_features(
            rows,
            history.clear(),
            day,
            early_season=bool(rows["early_season_flag"].any()),
            run_id=run_id,
            reference_values=reference_of(dated, day),
            figures_of_d=figures.get(day),  # None: no value (all placeholders)
        )
        failed = failures(checks)
        if failed:
            outcomes[day] = (FAIL, "feature checks FAIL, nothing written: " + "; ".join(failed))
            continue
        outcomes[day] = summary(checks)
        checked.append(checks)
        if day in by_date:  # a passed date joins the reference of the later ones
            dated[day] = by_date[day]
    return (pl.concat(checked) if checked else ML_FEATURE_CHECKS.empty_frame()), outcomes


def split_by_date(dated: pl.DataFrame) -> dict[date, pl.DataFrame]:
    """The non-placeholder `dated_feature_values` rows per game_date, in their order (what a
    later date's drift reference is made of); dates without any are left out."""
    real = dated.filter(pl.col("data_source") != PLACEHOLDER_SOURCE)
    return {d: f for (d,), f in real.partition_by("game_date", as_dict=True).items()}


def reference_of(dated: dict[date, pl.DataFrame], game_date: date) -> pl.DataFrame:
    """D's drift reference from the values kept per date (`split_by_date`): the values of its
    `reference_slates`, oldest first."""
    chosen = reference_slates(dated, game_date)
    if not chosen:
        empty = ML_FEATURE_STORE_V2.empty_frame().select(REFERENCE_COLUMNS)
        return dated_feature_values(empty).select(VALUE_COLUMNS)
    return pl.concat([dated[d] for d in chosen]).select(VALUE_COLUMNS)
