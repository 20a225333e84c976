"""`phase4 report`: one self-contained HTML page of a date range, and its markdown twin.

Pure: frames in (quality/report.py's figures), text out. The page embeds plotly's JS, so it
opens offline, and its data as JSON in a `<script id="phase4-report-data">` tag, so scripts and
tests can read exactly what the charts draw.
"""

from __future__ import annotations

import html
import json
from datetime import timedelta
from typing import Any

# plotly ships neither py.typed nor stubs (no types-plotly either).
import plotly.graph_objects as go  # type: ignore[import-untyped]
import polars as pl
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from quality.feature_contract import REQUIRED_FEATURES
from quality.report import GRID_STATUSES, ReportFrames, full_status_grid, summary_sentence
from quality.schemas import PROCESSOR_NAMES

DATA_SCRIPT_ID = "phase4-report-data"
COLORS = ["#2e7d32", "#f9a825", "#c62828", "#90a4ae", "#64b5f6", "#8e24aa", "#eeeeee"]
STATUS_COLORS = dict(zip(GRID_STATUSES, COLORS, strict=True))  # in display order


def status_grid_figure(frames: ReportFrames) -> go.Figure:
    grid = full_status_grid(frames).sort("analysis_date")
    codes = {status: i for i, status in enumerate(STATUS_COLORS)}
    n = len(codes)
    # A stepped colour scale: code i fills [i/n, (i+1)/n] with its status colour.
    scale = [
        [edge / n, color] for i, color in enumerate(STATUS_COLORS.values()) for edge in (i, i + 1)
    ]
    ticks = [i + 0.5 for i in range(n)]  # each code's middle
    dates = [d.isoformat() for d in grid["analysis_date"].unique(maintain_order=True)]
    # One row per processor, its statuses in date order.
    text = [grid.filter(pl.col("processor") == p)["status"].to_list() for p in PROCESSOR_NAMES]
    figure = go.Figure(
        go.Heatmap(
            x=dates,
            y=list(PROCESSOR_NAMES),
            z=[[codes[s] + 0.5 for s in row] for row in text],
            text=text,
            hovertemplate="%{x} %{y}: %{text}<extra></extra>",
            colorscale=scale,
            zmin=0,
            zmax=n,
            xgap=1,
            ygap=1,
            colorbar={"tickvals": ticks, "ticktext": list(STATUS_COLORS), "title": "status"},
        )
    )
    figure.update_layout(title="Status of the latest run per date and processor", height=360)
    return figure


def rows_figure(frames: ReportFrames) -> go.Figure:
    figure = go.Figure()
    for processor in PROCESSOR_NAMES:
        part = frames.rows_per_processor.filter(pl.col("processor") == processor)
        x, y = [d.isoformat() for d in part["date"]], part["rows"].to_list()
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=processor))
    figure.update_layout(title="Rows per processor and date", yaxis_title="rows", height=420)
    return over_the_range(figure, frames)


def over_the_range(figure: go.Figure, frames: ReportFrames) -> go.Figure:
    """The x axis spans the requested range (one date alone would get a sub-second axis)."""
    first, last = frames.start - timedelta(days=1), frames.end  # half a day either side
    range_ = [f"{first}T12:00:00", f"{last}T12:00:00"]
    figure.update_xaxes(type="date", range=range_, tickformat="%b %d\n%Y")
    return figure


def quality_figure(frames: ReportFrames) -> go.Figure:
    quality = frames.p5_quality
    dates = [d.isoformat() for d in quality["game_date"]]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(x=dates, y=quality["avg_quality"].to_list(), name="avg feature_quality_score"),
        secondary_y=False,
    )
    for column, label, dash in (
        ("quality_ready_share", "quality-ready rows (%)", "solid"),
        ("training_ready_share", "training-ready rows (%)", "dot"),  # often on top of it
    ):
        y = (quality[column] * 100).to_list()
        figure.add_trace(
            go.Scatter(x=dates, y=y, name=label, line={"dash": dash}), secondary_y=True
        )
    figure.update_yaxes(title_text="avg feature_quality_score", range=[0, 101], secondary_y=False)
    figure.update_yaxes(title_text="% of rows ready", range=[0, 101], secondary_y=True)
    figure.update_layout(
        title=f"ml_feature_store_v2: quality per date (ready = {frames.quality_ready_basis})",
        height=420,
    )
    return over_the_range(figure, frames)


def defaults_figure(frames: ReportFrames) -> go.Figure:
    """One bar per feature (60), required and optional ones apart (SPEC 16.3)."""
    defaults = frames.feature_defaults.with_columns(
        pl.format("{} {}", "feature_index", "feature_name")
        .fill_null(pl.col("feature_index").cast(pl.String))
        .alias("label"),
        pl.col("feature_index").is_in(REQUIRED_FEATURES).alias("required"),
    )
    figure = go.Figure()
    for required, name, color in ((True, "required", "#c62828"), (False, "optional", "#90a4ae")):
        part = defaults.filter(pl.col("required") == required)
        x, y = part["label"].to_list(), (part["default_share"] * 100).to_list()
        hover = "%{x}: %{y:.2f}% default or missing<extra></extra>"
        figure.add_trace(go.Bar(x=x, y=y, name=name, marker_color=color, hovertemplate=hover))
    figure.update_layout(
        title="Share of ml_feature_store_v2 rows with each feature defaulted or missing",
        yaxis_title="% of rows",
        yaxis_range=[0, 101],
        height=560,
    )
    figure.update_xaxes(
        tickangle=-60,
        categoryorder="array",
        categoryarray=defaults["label"].to_list(),
        tickfont={"size": 10},
    )
    return figure


def checks_figure(checks: pl.DataFrame) -> go.Figure:
    figure = go.Figure()
    for status in ("OK", "WARN", "FAIL"):
        part = checks.filter(pl.col("status") == status)
        label = pl.format("{} {}", "feature_index", "feature_name")
        x, y = part.select(label).to_series().to_list(), part["dates"].to_list()
        figure.add_trace(go.Bar(x=x, y=y, name=status, marker_color=STATUS_COLORS[status]))
    figure.update_layout(
        barmode="stack",
        title="Feature checks (nba_predictions.ml_feature_checks): dates per outcome",
        yaxis_title="dates",
        height=460,
    )
    return figure


def slowest_figure(frames: ReportFrames) -> go.Figure:
    slow = frames.slowest_runs.reverse()  # longest at the top of a horizontal bar chart
    labels = [f"{d} {p}" for d, p in zip(slow["analysis_date"], slow["processor"], strict=True)]
    figure = go.Figure(
        go.Bar(
            x=slow["duration_seconds"].to_list(),
            y=labels,
            orientation="h",
            text=slow["status"].to_list(),
            hovertemplate="%{y}: %{x:.2f} s (%{text})<extra></extra>",
        )
    )
    figure.update_layout(
        title="Slowest processor runs (latest run per date)",
        xaxis_title="seconds",
        height=120 + 30 * max(slow.height, 1),
    )
    return figure


def report_data(frames: ReportFrames) -> dict[str, Any]:
    """What the page draws, as plain JSON values (dates as ISO strings)."""

    def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
        return json.loads(json.dumps(frame.to_dicts(), default=str))

    tables = ["rows_per_processor", "p5_quality", "feature_defaults", "slowest_runs"]
    return {
        "start": frames.start.isoformat(),
        "end": frames.end.isoformat(),
        "status_grid": records(full_status_grid(frames)),
        **{name: records(getattr(frames, name)) for name in tables},
        "quality_ready_basis": frames.quality_ready_basis,
        "check_outcomes": None if frames.check_outcomes is None else records(frames.check_outcomes),
    }


def build_report_html(frames: ReportFrames) -> str:
    """The whole page: plotly's JS once (first chart), the data once, six sections."""
    figures: list[tuple[str, go.Figure | None, str]] = [
        ("Status grid", status_grid_figure(frames), ""),
        ("Rows per processor", rows_figure(frames), ""),
        (
            "Feature store quality",
            quality_figure(frames),
            f"Quality-ready share computed from {html.escape(frames.quality_ready_basis)}; "
            "training-ready from is_training_ready (score >= 85, matchup >= 70, player "
            "history >= 80, no required feature defaulted).",
        ),
        ("Default features", defaults_figure(frames), ""),
        (
            "Feature checks",
            None if frames.check_outcomes is None else checks_figure(frames.check_outcomes),
            "No nba_predictions.ml_feature_checks table in this warehouse."
            if frames.check_outcomes is None
            else "",
        ),
        ("Slowest runs", slowest_figure(frames), ""),
    ]
    sections, js_included, config = [], False, {"displaylogo": False}
    for title, figure, note in figures:
        body = f"<p>{note}</p>" if note else ""
        if figure is not None:
            body += figure.to_html(full_html=False, include_plotlyjs=not js_included, config=config)
            js_included = True
        sections.append(f"<section><h2>{html.escape(title)}</h2>\n{body}\n</section>")
    data = script_json(report_data(frames))
    title = f"Phase 4 report {frames.start}..{frames.end}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            "<style>body{font-family:sans-serif;margin:1.5em;max-width:1400px}"
            "h2{border-bottom:1px solid #ccc}</style>",
            "</head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{html.escape(summary_sentence(frames))}</p>",
            *sections,
            f'<script type="application/json" id="{DATA_SCRIPT_ID}">{data}</script>',
            "</body></html>",
        ]
    )


def script_json(value: object) -> str:
    """JSON safe inside a <script> element: `<`, `>` and `&` escaped (the same JSON value), so
    no `</script>` or `<!--` in its strings can end or change the element."""
    text = json.dumps(value, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
