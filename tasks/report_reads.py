"""The warehouse reads behind `phase4 report` and the backfill's report artifact; the figures
they become are quality/report.py's."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from quality.report import (
    ReportFrames,
    check_outcomes,
    feature_defaults,
    latest_lines,
    p5_quality,
    report_markdown,
    rows_per_processor,
    slowest_runs,
    with_stale,
)
from quality.schemas import ML_FEATURE_STORE_V2, OUTPUT_TABLES, PROCESSOR_RUNS
from tasks.freshness import status_grid
from tasks.warehouse import Filter, Warehouse, open_warehouse

FEATURE_CHECKS = "nba_predictions.ml_feature_checks"
RUN_COLUMNS = ["run_id", "processor", "analysis_date", "status", "rows", "duration_seconds"]
RUN_COLUMNS += ["started_at", "finished_at", "message"]


def read_range(
    warehouse: Warehouse, full_name: str, columns: list[str], day: str, start: date, end: date
) -> pl.DataFrame:
    """The rows of [start, end]; none, typed as declared, when the table does not exist (yet)."""
    where = [Filter(day, ">=", start), Filter(day, "<=", end)]
    return warehouse.read(full_name, columns, where, missing_ok=True)


def read_report_frames(
    warehouse: Warehouse, start: date, end: date, fingerprints: pl.DataFrame | None = None
) -> ReportFrames:
    """Every figure of the report for slate dates [start, end], read once each (`fingerprints`
    of the range's Phase 3 rows, when the caller has them, spare their read)."""
    runs = read_range(warehouse, PROCESSOR_RUNS.full_name, RUN_COLUMNS, "analysis_date", start, end)
    lines = latest_lines(runs)
    counts: dict[str, pl.DataFrame] = {}
    for table, schema in OUTPUT_TABLES.items():
        day = schema.partition_column
        assert day is not None
        counts[table] = read_range(warehouse, schema.full_name, [day], day, start, end)
    p5 = _read_p5(warehouse, start, end)
    quality, basis = p5_quality(p5)
    checked = ["game_date", "feature_index", "feature_name", "status"]
    raw = read_range(warehouse, FEATURE_CHECKS, checked, "game_date", start, end)
    no_checks = warehouse.table_schema(FEATURE_CHECKS) is None
    return ReportFrames(
        start=start,
        end=end,
        status_grid=with_stale(
            lines.select(
                "analysis_date", "processor", "status", "rows", "duration_seconds", "message"
            ),
            status_grid(warehouse, start, end, fingerprints),
        ),
        rows_per_processor=rows_per_processor(counts),
        p5_quality=quality,
        quality_ready_basis=basis,
        feature_defaults=feature_defaults(p5),
        check_outcomes=None if no_checks else check_outcomes(raw),
        slowest_runs=slowest_runs(lines),
    )


def _read_p5(warehouse: Warehouse, start: date, end: date) -> pl.DataFrame:
    columns = ["game_date", "feature_quality_score", "feature_names", "feature_sources"]
    schema = warehouse.table_schema(ML_FEATURE_STORE_V2.full_name)
    later = ("is_quality_ready", "is_training_ready", "feature_sources_json")
    columns += [c for c in later if schema is not None and c in schema.names]
    return read_range(warehouse, ML_FEATURE_STORE_V2.full_name, columns, "game_date", start, end)


def publish_report_artifact(
    url: str, start: date, end: date, fingerprints: pl.DataFrame | None = None
) -> Any:
    """The report's figures as a markdown artifact on the current flow run (backfill); the
    backfill passes the fingerprints it hashed, so Phase 3 is not read again."""
    from prefect.artifacts import create_markdown_artifact

    frames = read_report_frames(open_warehouse(url), start, end, fingerprints)
    return create_markdown_artifact(
        key="phase4-report",
        markdown=report_markdown(frames),
        description=f"Phase 4 report {start}..{end} (`phase4 report` draws the same figures)",
    )
