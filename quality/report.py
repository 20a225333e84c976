"""The figures of `phase4 report` and of the backfill's report artifact: small frames for
display, computed from what the warehouse holds (tasks/report_reads.py reads it). Pure Polars,
so the page builder (phase4/html_report.py) stays frames in, HTML out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from quality.feature_contract import ALL_FEATURE_NAMES, DEFAULTED
from quality.schemas import PROCESSOR_NAMES

QUALITY_READY_SCORE = 70.0
SLOWEST_RUNS = 10
# Grid statuses in display order; MISSING: no processor_runs line for that date and processor.
GRID_STATUSES = ("OK", "WARN", "FAIL", "NO_GAMES", "SKIPPED", "STALE", "MISSING")


@dataclass(frozen=True)
class ReportFrames:
    """The figures of one report, each a small frame sorted for display."""

    start: date
    end: date
    status_grid: pl.DataFrame  # analysis_date, processor, status, rows, duration_seconds, message
    rows_per_processor: pl.DataFrame  # date, processor, rows (counted in the output tables)
    # game_date, rows, avg_quality, quality_ready_share, training_ready_share
    p5_quality: pl.DataFrame
    quality_ready_basis: str  # the P5 column or rule the share comes from
    feature_defaults: pl.DataFrame  # feature_index, feature_name, rows, default_rows, share
    check_outcomes: pl.DataFrame | None  # feature_name, status, dates; None: no checks table
    slowest_runs: pl.DataFrame  # the latest lines with the longest duration_seconds


def latest_lines(runs: pl.DataFrame) -> pl.DataFrame:
    """The latest processor_runs line per (date, processor): what the date's status is now."""
    return (
        runs.sort(pl.coalesce("finished_at", "started_at"), "run_id", nulls_last=False)
        .group_by("analysis_date", "processor", maintain_order=True)
        .last()
        .sort("analysis_date", "processor")
    )


def rows_per_processor(counts: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Rows of each processor's output partition per date, 0 on a date another processor has
    rows for: a night that wrote nothing is a 0 on the chart, not a line drawn across it."""
    frames = [
        frame.group_by(frame.columns[0])
        .len(name="rows")
        .select(
            pl.col(frame.columns[0]).alias("date"),
            pl.lit(table).alias("processor"),
            pl.col("rows").cast(pl.Int64),
        )
        for table, frame in counts.items()
    ]
    empty = pl.DataFrame(schema={"date": pl.Date, "processor": pl.Utf8, "rows": pl.Int64})
    stored = pl.concat([empty, *frames])
    every = (
        stored.select("date")
        .unique()
        .join(pl.DataFrame({"processor": list(counts)}, schema={"processor": pl.Utf8}), how="cross")
    )
    return (
        every.join(stored, on=["date", "processor"], how="left")
        .with_columns(pl.col("rows").fill_null(0))
        .sort("date", "processor")
    )


def quality_ready(p5: pl.DataFrame) -> tuple[pl.Expr, str]:
    """P5's own is_quality_ready when the column exists, else the score rule alone (said so)."""
    if "is_quality_ready" in p5.columns:
        return pl.col("is_quality_ready").fill_null(False), "is_quality_ready"
    rule = f"feature_quality_score >= {QUALITY_READY_SCORE:g} (no is_quality_ready column)"
    return pl.col("feature_quality_score") >= QUALITY_READY_SCORE, rule


def training_ready(p5: pl.DataFrame) -> pl.Expr:
    """SPEC 16.3's is_training_ready; NULL for a P5 table from before the column existed."""
    if "is_training_ready" in p5.columns:
        return pl.col("is_training_ready").fill_null(False).cast(pl.Float64)
    return pl.lit(None, dtype=pl.Float64)


def p5_quality(p5: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """Per game_date: rows, mean feature_quality_score and the shares of quality-ready and
    training-ready rows."""
    ready, basis = quality_ready(p5)
    frame = (
        p5.group_by("game_date")
        .agg(
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col("feature_quality_score").mean().alias("avg_quality"),
            ready.cast(pl.Float64).mean().alias("quality_ready_share"),
            training_ready(p5).mean().alias("training_ready_share"),
        )
        .sort("game_date")
    )
    return frame, basis


# feature_sources_json holds {"0": tag, ..., "59": tag} (SPEC 16.1).
TAGS_JSON = pl.Struct({str(i): pl.String for i in range(len(ALL_FEATURE_NAMES))})


def feature_tags(p5: pl.DataFrame) -> pl.DataFrame:
    """feature_index, tag and the P5 rows giving the feature that tag: the 60 tags of
    feature_sources_json, each distinct string decoded once (~80 in a season's 25,000 rows), or
    for a row stored before that column (NULL or absent) the 25 of feature_sources."""
    has_json = "feature_sources_json" in p5.columns
    array_rows = p5.filter(pl.col("feature_sources_json").is_null()) if has_json else p5
    from_array = (
        array_rows.select(pl.col("feature_sources").alias("tag"))
        .filter(pl.col("tag").list.len() > 0)
        .with_columns(pl.int_ranges(pl.col("tag").list.len()).alias("feature_index"))
        .explode("tag", "feature_index")
        .group_by(pl.col("feature_index").cast(pl.Int64), "tag")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
    )
    if not has_json:
        return from_array
    decoded = (
        p5.group_by("feature_sources_json")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .select(pl.col("feature_sources_json").str.json_decode(TAGS_JSON).struct.unnest(), "rows")
        .filter(pl.any_horizontal(pl.all().exclude("rows").is_not_null()))
    )
    from_json = decoded.unpivot(index="rows", variable_name="feature_index", value_name="tag")
    return pl.concat(
        [from_json.select(pl.col("feature_index").cast(pl.Int64), "tag", "rows"), from_array]
    )


def feature_defaults(p5: pl.DataFrame) -> pl.DataFrame:
    """Per feature (60): the share of P5 rows where it is defaulted, tagged 'default' or
    'missing' (SPEC 16.3)."""
    names = pl.DataFrame(
        {"feature_index": range(len(ALL_FEATURE_NAMES)), "feature_name": ALL_FEATURE_NAMES},
        schema={"feature_index": pl.Int64, "feature_name": pl.String},
    )
    return (
        feature_tags(p5)
        .group_by("feature_index")
        .agg(
            pl.col("rows").sum(),
            pl.col("rows").filter(pl.col("tag").is_in(DEFAULTED)).sum().alias("default_rows"),
        )
        .join(names, on="feature_index", how="left")
        .select("feature_index", "feature_name", "rows", "default_rows")
        .with_columns(default_share=pl.col("default_rows") / pl.col("rows"))
        .sort("feature_index")
    )


def check_outcomes(checks: pl.DataFrame) -> pl.DataFrame:
    """Per feature and status: on how many dates the feature check ended that way."""
    return (
        checks.group_by("feature_index", "feature_name", "status")
        .agg(pl.col("game_date").n_unique().cast(pl.Int64).alias("dates"))
        .with_columns(pl.col("feature_index").cast(pl.Int64))
        .sort("feature_index", "status")
    )


def slowest_runs(lines: pl.DataFrame, n: int = SLOWEST_RUNS) -> pl.DataFrame:
    """The n latest lines that took longest (ties: earlier date, then processor)."""
    return (
        lines.filter(pl.col("duration_seconds").is_not_null())
        .sort("duration_seconds", "analysis_date", "processor", descending=[True, False, False])
        .head(n)
        .select("analysis_date", "processor", "status", "duration_seconds", "rows", "run_id")
    )


def with_stale(lines: pl.DataFrame, freshness: pl.DataFrame) -> pl.DataFrame:
    """A stored line whose inputs changed since it was built shows STALE (SPEC 14), as in
    `phase4 status --start/--end`."""
    stale = freshness.filter(pl.col("state") == "STALE").select(
        "analysis_date", "processor", pl.lit(True).alias("stale")
    )
    return (
        lines.join(stale, on=["analysis_date", "processor"], how="left")
        .with_columns(
            status=pl.when(pl.col("stale")).then(pl.lit("STALE")).otherwise(pl.col("status"))
        )
        .drop("stale")
    )


def full_status_grid(frames: ReportFrames) -> pl.DataFrame:
    """Every date × processor of the range; no processor_runs line reads MISSING."""
    days = pl.date_range(frames.start, frames.end, eager=True).alias("analysis_date").to_frame()
    grid = days.join(pl.DataFrame({"processor": list(PROCESSOR_NAMES)}), how="cross")
    return grid.join(
        frames.status_grid.select("analysis_date", "processor", "status"),
        on=["analysis_date", "processor"],
        how="left",
    ).with_columns(pl.col("status").fill_null("MISSING"))


def status_counts(frames: ReportFrames) -> pl.DataFrame:
    """Per processor: how many dates are in each status (MISSING included), the statuses in
    GRID_STATUSES order (a group-by's order changes from run to run)."""
    counts = (
        full_status_grid(frames)
        .group_by("processor", "status")
        .len(name="dates")
        .pivot(on="status", index="processor", values="dates")
        .fill_null(0)
        .sort("processor")
    )
    return counts.select("processor", *(s for s in GRID_STATUSES if s in counts.columns))


def summary_sentence(frames: ReportFrames) -> str:
    grid = full_status_grid(frames)
    counts = dict(grid.group_by("status").len().iter_rows())
    parts = ", ".join(f"{counts[s]} {s}" for s in GRID_STATUSES if s in counts)
    dates = grid["analysis_date"].n_unique()
    return f"{dates} dates × {len(PROCESSOR_NAMES)} processors: {parts}."


def _markdown_table(frame: pl.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.2f}"
        return "" if value is None else str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def report_markdown(frames: ReportFrames) -> str:
    """The same figures as the HTML page, as markdown tables for a Prefect artifact."""

    def percent(frame: pl.DataFrame) -> pl.DataFrame:  # each *_share column as *_pct
        shares = frame.with_columns(pl.col("^.*_share$") * 100)
        return shares.rename(lambda name: name.replace("_share", "_pct"))

    parts = [
        f"# Phase 4 report {frames.start}..{frames.end}",
        summary_sentence(frames),
        f"`phase4 report --start {frames.start} --end {frames.end} --out report.html`"
        " draws these as charts.",
        "## Status per processor (dates)",
        _markdown_table(status_counts(frames)),
        "## Rows per processor and date",
        _markdown_table(
            frames.rows_per_processor.pivot(on="processor", index="date", values="rows")
        )
        if not frames.rows_per_processor.is_empty()
        else "no rows",
        f"## Feature store quality (ready = {frames.quality_ready_basis})",
        _markdown_table(percent(frames.p5_quality)),
        "## Default share per feature ('default' or 'missing')",
        _markdown_table(percent(frames.feature_defaults)),
        "## Feature checks",
        "no nba_predictions.ml_feature_checks table"
        if frames.check_outcomes is None
        else _markdown_table(frames.check_outcomes),
        "## Slowest runs",
        _markdown_table(frames.slowest_runs),
    ]
    return "\n\n".join(parts)
