"""The warehouse reads behind `phase4 report` and the backfill's report artifact; the figures
they become are quality/report.py's."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date

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
from quality.schemas import ML_FEATURE_CHECKS, ML_FEATURE_STORE_V2, OUTPUT_TABLES, PROCESSOR_RUNS
from tasks.freshness import status_grid
from tasks.warehouse import Filter, Warehouse, open_warehouse

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
    """Every figure of the report, read once each and side by side (on BigQuery a job each);
    `fingerprints` of the range's Phase 3 rows, when the caller has them, spare their read."""

    def dated(full_name: str, columns: list[str], day: str) -> Future[pl.DataFrame]:
        return pool.submit(read_range, warehouse, full_name, columns, day, start, end)

    checked = ["game_date", "feature_index", "feature_name", "status"]
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="report-read") as pool:
        runs = dated(PROCESSOR_RUNS.full_name, RUN_COLUMNS, "analysis_date")
        counts = {}
        for table, schema in OUTPUT_TABLES.items():
            counts[table] = dated(schema.full_name, [schema.date_column], schema.date_column)
        p5_read = pool.submit(_read_p5, warehouse, start, end)
        raw = dated(ML_FEATURE_CHECKS.full_name, checked, "game_date")
        grid = pool.submit(status_grid, warehouse, start, end, fingerprints)
        no_checks = warehouse.table_schema(ML_FEATURE_CHECKS.full_name) is None
    lines, p5 = latest_lines(runs.result()), p5_read.result()
    quality, basis = p5_quality(p5)
    return ReportFrames(
        start=start,
        end=end,
        status_grid=with_stale(
            lines.select(
                "analysis_date", "processor", "status", "rows", "duration_seconds", "message"
            ),
            grid.result(),
        ),
        rows_per_processor=rows_per_processor({t: f.result() for t, f in counts.items()}),
        p5_quality=quality,
        quality_ready_basis=basis,
        feature_defaults=feature_defaults(p5),
        check_outcomes=None if no_checks else check_outcomes(raw.result()),
        slowest_runs=slowest_runs(lines),
    )


def _read_p5(warehouse: Warehouse, start: date, end: date) -> pl.DataFrame:
    columns = ["game_date", "feature_quality_score", "feature_names", "feature_sources"]
    schema = warehouse.table_schema(ML_FEATURE_STORE_V2.full_name)
    later = ("is_quality_ready", "is_training_ready", "feature_sources_json")
    columns += [c for c in later if schema is not None and c in schema.names]
    return read_range(warehouse, ML_FEATURE_STORE_V2.full_name, columns, "game_date", start, end)


def publish_report_artifact(url: str, start: date, end: date, fingerprints: pl.DataFrame) -> None:
    """The report as a markdown artifact on the backfill's run, from the fingerprints it hashed."""
    from prefect.artifacts import create_markdown_artifact

    frames = read_report_frames(open_warehouse(url), start, end, fingerprints)
    create_markdown_artifact(
        key="phase4-report",
        markdown=report_markdown(frames),
        description=f"Phase 4 report {start}..{end} (`phase4 report` draws the same figures)",
    )
