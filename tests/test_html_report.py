"""`phase4 report`: the figures on hand-made frames, then the page against the real warehouse.

The end-to-end test backfills four dates of the real 2023-24 season, writes the page with the
CLI, and compares the JSON embedded in the page with the same figures computed in SQL straight
from the DuckDB file (an independent implementation of every figure).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from phase4.html_report import (
    DATA_SCRIPT_ID,
    build_report_html,
    defaults_figure,
    quality_figure,
)
from quality.report import (
    ReportFrames,
    check_outcomes,
    feature_defaults,
    full_status_grid,
    latest_lines,
    p5_quality,
    report_markdown,
    rows_per_processor,
    slowest_runs,
    status_counts,
)
from tests.test_flow_realdata import phase4

D1, D2 = date(2024, 1, 1), date(2024, 1, 2)


def tags_json(defaulted: dict[int, str]) -> str:
    """feature_sources_json with every feature 'phase4' but those given."""
    return json.dumps({str(i): defaulted.get(i, "phase4") for i in range(60)})


def p5_rows(with_ready: bool) -> pl.DataFrame:
    """Three rows of the 25-feature era (no feature_sources_json); with_ready adds SPEC 12's
    is_quality_ready but no is_training_ready."""
    rows: dict[str, Any] = {
        "game_date": [D1, D1, D2],
        "feature_quality_score": [80.0, 60.0, 75.0],
        "feature_names": [["a", "b", "c"]] * 3,
        "feature_sources": [
            ["phase4", "default", "default"],
            ["default", "default", "phase3"],
            ["phase4", "phase4", "phase4"],
        ],
    }
    if with_ready:
        rows["is_quality_ready"] = [True, False, False]  # D2's row: an early-season placeholder
    return pl.DataFrame(rows)


def v3_rows() -> pl.DataFrame:
    """Four rows: three with the 60 tags of SPEC 16.1, one of the 25-feature era beside them."""
    sources = [["phase4"] * 25, ["phase4"] * 25, ["default"] * 25, ["default"] * 24 + ["phase4"]]
    return pl.DataFrame(
        {
            "game_date": [D1, D1, D1, D2],
            "feature_quality_score": [95.0, 80.0, 40.0, 60.0],
            "feature_names": [["x"] * 25] * 4,
            "feature_sources": sources,
            "is_quality_ready": [True, True, False, False],
            "is_training_ready": [True, False, False, None],
            "feature_sources_json": [
                tags_json({26: "missing", 30: "missing"}),
                tags_json({0: "default", 26: "missing", 59: "missing"}),
                tags_json({i: "default" if i < 25 else "missing" for i in range(60)}),
                None,
            ],
        }
    )


def test_quality_share_uses_is_quality_ready_when_present_else_the_score_rule() -> None:
    quality, basis = p5_quality(p5_rows(with_ready=True))
    assert basis == "is_quality_ready"
    assert quality.to_dicts() == [
        {"game_date": D1, "rows": 2, "avg_quality": 70.0, "quality_ready_share": 0.5,
         "training_ready_share": None},
        {"game_date": D2, "rows": 1, "avg_quality": 75.0, "quality_ready_share": 0.0,
         "training_ready_share": None},
    ]  # fmt: skip
    quality, basis = p5_quality(p5_rows(with_ready=False))
    assert basis == "feature_quality_score >= 70 (no is_quality_ready column)"
    assert quality["quality_ready_share"].to_list() == [0.5, 1.0]


def test_quality_and_training_ready_shares_per_date() -> None:
    quality, basis = p5_quality(v3_rows())
    assert basis == "is_quality_ready"
    assert quality.to_dicts() == [
        {"game_date": D1, "rows": 3, "avg_quality": 215 / 3, "quality_ready_share": 2 / 3,
         "training_ready_share": 1 / 3},
        {"game_date": D2, "rows": 1, "avg_quality": 60.0, "quality_ready_share": 0.0,
         "training_ready_share": 0.0},
    ]  # fmt: skip


def test_default_share_per_feature() -> None:
    defaults = feature_defaults(p5_rows(with_ready=False))
    assert defaults.to_dicts() == [
        {"feature_index": 0, "feature_name": "points_avg_last_5", "rows": 3, "default_rows": 1,
         "default_share": 1 / 3},
        {"feature_index": 1, "feature_name": "points_avg_last_10", "rows": 3, "default_rows": 2,
         "default_share": 2 / 3},
        {"feature_index": 2, "feature_name": "points_avg_season", "rows": 3, "default_rows": 1,
         "default_share": 1 / 3},
    ]  # fmt: skip


def test_default_share_covers_the_60_features_and_counts_missing() -> None:
    defaults = feature_defaults(v3_rows())
    assert defaults["feature_index"].to_list() == list(range(60))
    by_index = {r["feature_index"]: r for r in defaults.iter_rows(named=True)}
    # 0 to 24: four rows (the older row through feature_sources); 25 to 59: the three new rows.
    assert {i: by_index[i]["rows"] for i in (0, 24, 25, 59)} == {0: 4, 24: 4, 25: 3, 59: 3}
    assert (by_index[0]["default_rows"], by_index[0]["default_share"]) == (3, 0.75)
    assert (by_index[24]["default_rows"], by_index[24]["default_share"]) == (1, 0.25)
    assert (by_index[26]["default_rows"], by_index[26]["default_share"]) == (3, 1.0)
    assert by_index[30]["default_rows"] == 2 and by_index[59]["default_rows"] == 2
    assert by_index[25]["default_rows"] == 1 and by_index[25]["default_share"] == 1 / 3
    assert by_index[59]["feature_name"] == "opponent_pace_mismatch"


def runs_frame() -> pl.DataFrame:
    def at(minute: int) -> datetime:
        return datetime(2024, 1, 3, 4, minute, tzinfo=UTC)

    return pl.DataFrame(
        {
            "run_id": ["r1", "r2", "r1", "r3"],
            "processor": ["team_defense_zone_analysis"] * 2 + ["player_daily_cache"] * 2,
            "analysis_date": [D1, D1, D1, D2],
            "status": ["FAIL", "OK", "WARN", "OK"],
            "rows": [0, 30, 400, 410],
            "duration_seconds": [1.5, 2.0, 9.0, None],
            "started_at": [at(0), at(10), at(0), at(20)],
            "finished_at": [at(1), at(11), at(2), None],
            "message": ["boom", "", "slow", ""],
        }
    )


def test_latest_line_per_date_and_processor_and_the_slowest_runs() -> None:
    lines = latest_lines(runs_frame())
    assert lines.select("analysis_date", "processor", "status", "run_id").rows() == [
        (D1, "player_daily_cache", "WARN", "r1"),
        (D1, "team_defense_zone_analysis", "OK", "r2"),  # the rerun replaced the FAIL
        (D2, "player_daily_cache", "OK", "r3"),
    ]
    slow = slowest_runs(lines)
    assert slow.select("processor", "duration_seconds").rows() == [
        ("player_daily_cache", 9.0),
        ("team_defense_zone_analysis", 2.0),
    ]  # r3 has no duration; r1's FAIL line is not the latest


def test_rows_per_processor_shows_a_night_without_rows_as_0() -> None:
    d1, d2 = date(2024, 1, 10), date(2024, 1, 11)
    counts = {
        "team_defense_zone_analysis": pl.DataFrame({"analysis_date": [d1] * 3 + [d2] * 2}),
        "player_daily_cache": pl.DataFrame({"cache_date": [d2]}),
    }
    assert rows_per_processor(counts).rows() == [
        (d1, "player_daily_cache", 0),
        (d1, "team_defense_zone_analysis", 3),
        (d2, "player_daily_cache", 1),
        (d2, "team_defense_zone_analysis", 2),
    ]


def test_grid_fills_missing_lines_and_the_page_embeds_its_data() -> None:
    lines = latest_lines(runs_frame())
    checks = check_outcomes(
        pl.DataFrame(
            {
                "game_date": [D1, D2, D1],
                "feature_index": [0, 0, 1],
                "feature_name": ["a", "a", "b"],
                "status": ["OK", "OK", "WARN"],
            }
        )
    )
    assert checks.rows() == [(0, "a", "OK", 2), (1, "b", "WARN", 1)]
    quality, basis = p5_quality(p5_rows(with_ready=True))
    frames = ReportFrames(
        start=D1,
        end=D2,
        status_grid=lines.select(
            "analysis_date", "processor", "status", "rows", "duration_seconds", "message"
        ),
        rows_per_processor=pl.DataFrame(
            {"date": [D1], "processor": ["player_daily_cache"], "rows": [400]}
        ),
        p5_quality=quality,
        quality_ready_basis=basis,
        feature_defaults=feature_defaults(p5_rows(with_ready=True)),
        check_outcomes=checks,
        slowest_runs=slowest_runs(lines),
    )
    grid = full_status_grid(frames)
    assert grid.height == 10  # 2 dates × 5 processors
    assert grid["status"].value_counts(sort=True).rows() == [("MISSING", 7), ("OK", 2), ("WARN", 1)]
    counts = status_counts(frames)  # statuses in one fixed order, whatever the group-by did
    assert counts.columns == ["processor", "OK", "WARN", "MISSING"]
    assert counts.filter(pl.col("processor") == "player_daily_cache").row(0)[1:] == (1, 1, 0)
    page = build_report_html(frames)
    data = embedded_data(page)
    assert data["check_outcomes"] == [
        {"feature_index": 0, "feature_name": "a", "status": "OK", "dates": 2},
        {"feature_index": 1, "feature_name": "b", "status": "WARN", "dates": 1},
    ]
    assert data["p5_quality"][0] == {
        "game_date": "2024-01-01",
        "rows": 2,
        "avg_quality": 70.0,
        "quality_ready_share": 0.5,
        "training_ready_share": None,
    }
    assert page.count('class="plotly-graph-div"') == 6  # every chart, checks included


def test_the_charts_draw_60_features_and_both_ready_shares() -> None:
    quality, basis = p5_quality(v3_rows())
    frames = ReportFrames(
        start=D1,
        end=D2,
        status_grid=latest_lines(runs_frame()).select(
            "analysis_date", "processor", "status", "rows", "duration_seconds", "message"
        ),
        rows_per_processor=pl.DataFrame(
            schema={"date": pl.Date, "processor": pl.Utf8, "rows": pl.Int64}
        ),
        p5_quality=quality,
        quality_ready_basis=basis,
        feature_defaults=feature_defaults(v3_rows()),
        check_outcomes=None,
        slowest_runs=slowest_runs(latest_lines(runs_frame())),
    )
    bars = defaults_figure(frames).data
    assert [b.name for b in bars] == ["required", "optional"]
    assert len(bars[0].x) + len(bars[1].x) == 60
    assert bars[1].x[0] == "25 vegas_points_line" and bars[0].x[-1] == "36 breakout_flag"
    assert list(bars[1].y[:2]) == [1 / 3 * 100, 100.0]  # 25: 1 of 3 missing; 26: always
    lines = quality_figure(frames).data
    assert [t.name for t in lines] == [
        "avg feature_quality_score",
        "quality-ready rows (%)",
        "training-ready rows (%)",
    ]
    assert list(lines[2].y) == [1 / 3 * 100, 0.0]
    assert "training_ready_pct" in report_markdown(frames)


def embedded_data(page: str) -> dict[str, Any]:
    match = re.search(
        rf'<script type="application/json" id="{DATA_SCRIPT_ID}">(.*?)</script>', page, re.S
    )
    assert match is not None, "no embedded data"
    return json.loads(match.group(1))


def sql(path: Path, query: str) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        frame = pl.from_arrow(con.sql(query).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return json.loads(json.dumps(frame.to_dicts(), default=str))


def add_feature_checks(db: Path) -> None:
    """nba_predictions.ml_feature_checks (created by the run) with a few chosen outcomes."""
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM nba_predictions.ml_feature_checks")
        for day, index, name, status in [
            ("2024-01-10", 0, "points_avg_last_5", "OK"),
            ("2024-01-11", 0, "points_avg_last_5", "OK"),
            ("2024-01-12", 0, "points_avg_last_5", "WARN"),
            ("2024-01-12", 3, "points_std_last_10", "FAIL"),
            ("2024-01-14", 3, "points_std_last_10", "FAIL"),
        ]:
            con.execute(
                "INSERT INTO nba_predictions.ml_feature_checks (game_date, feature_index,"
                " feature_name, rows, default_rows, status, run_id)"
                " VALUES (?, ?, ?, 0, 0, ?, 'r')",
                [day, index, name, status],
            )


@pytest.mark.usefixtures("prefect_harness")
def test_report_page_matches_the_warehouse(season_url: str, tmp_path: Path) -> None:
    code, printed = phase4("backfill", "--start", "2024-01-10", "--end", "2024-01-13")
    assert code == 0, printed
    db = Path(season_url.removeprefix("duckdb://"))
    add_feature_checks(db)
    out = tmp_path / "report.html"
    code, printed = phase4(
        "report", "--start", "2024-01-09", "--end", "2024-01-13", "--out", str(out)
    )
    assert code == 0, printed
    page = out.read_text(encoding="utf-8")
    data = embedded_data(page)
    window = "BETWEEN DATE '2024-01-09' AND DATE '2024-01-13'"

    # Opens offline: plotly's JS is in the page, nothing is fetched.
    assert re.search(r"<script[^>]+src=", page) is None
    assert "plotly.js v" in page and len(page) > 3_000_000

    latest = sql(
        db,
        f"""SELECT analysis_date, processor, status FROM nba_precompute.processor_runs
        WHERE analysis_date {window}
        QUALIFY row_number() OVER (PARTITION BY analysis_date, processor
                                   ORDER BY coalesce(finished_at, started_at) DESC) = 1""",
    )
    grid = {(r["analysis_date"], r["processor"]): r["status"] for r in data["status_grid"]}
    assert len(grid) == 25
    assert {k: v for k, v in grid.items() if k[0] == "2024-01-09"} == {
        ("2024-01-09", p): "MISSING"
        for p in (
            "team_defense_zone_analysis",
            "player_shot_zone_analysis",
            "player_composite_factors",
            "player_daily_cache",
            "ml_feature_store_v2",
        )
    }
    assert latest.height == 20
    for row in latest.iter_rows(named=True):
        assert grid[(row["analysis_date"].isoformat(), row["processor"])] == row["status"]

    counts = sql(
        db,
        f"""
        SELECT analysis_date AS date, 'team_defense_zone_analysis' AS processor, count(*) AS rows
          FROM nba_precompute.team_defense_zone_analysis WHERE analysis_date {window} GROUP BY 1
        UNION ALL SELECT analysis_date, 'player_shot_zone_analysis', count(*)
          FROM nba_precompute.player_shot_zone_analysis WHERE analysis_date {window} GROUP BY 1
        UNION ALL SELECT game_date, 'player_composite_factors', count(*)
          FROM nba_precompute.player_composite_factors WHERE game_date {window} GROUP BY 1
        UNION ALL SELECT cache_date, 'player_daily_cache', count(*)
          FROM nba_precompute.player_daily_cache WHERE cache_date {window} GROUP BY 1
        UNION ALL SELECT game_date, 'ml_feature_store_v2', count(*)
          FROM nba_predictions.ml_feature_store_v2 WHERE game_date {window} GROUP BY 1
        ORDER BY 1, 2""",
    )
    assert counts.height == 20
    assert data["rows_per_processor"] == records(counts)
    tdza = [r["rows"] for r in data["rows_per_processor"] if r["processor"].startswith("team_d")]
    assert tdza == [30, 30, 30, 30]  # the 30 teams, every date

    quality = sql(
        db,
        f"""SELECT game_date, count(*) AS rows, avg(feature_quality_score) AS avg_quality,
                   avg(is_quality_ready::INT) AS quality_ready_share,
                   avg(is_training_ready::INT) AS training_ready_share
            FROM nba_predictions.ml_feature_store_v2 WHERE game_date {window}
            GROUP BY 1 ORDER BY 1""",
    )
    assert quality.height == 4
    got = pl.DataFrame(data["p5_quality"]).with_columns(pl.col("game_date").str.to_date())
    assert_frame_equal(got.select(quality.columns), quality, check_dtypes=False, rel_tol=1e-12)
    assert data["quality_ready_basis"] == "is_quality_ready"
    shares = quality.select("quality_ready_share", "training_ready_share")
    assert ((shares["training_ready_share"] > 0) & (shares["quality_ready_share"] < 1)).all()

    # The 60 tags straight from feature_sources_json; 'missing' counts as defaulted.
    defaults = sql(
        db,
        f"""SELECT i AS feature_index, count(*) AS rows,
                   count(*) FILTER (json_extract_string(feature_sources_json, '$."' || i || '"')
                                    IN ('default', 'missing')) AS default_rows
            FROM nba_predictions.ml_feature_store_v2, range(0, 60) AS t(i)
            WHERE game_date {window} GROUP BY 1 ORDER BY 1""",
    )
    assert defaults.height == 60
    got_defaults = pl.DataFrame(data["feature_defaults"])
    assert_frame_equal(got_defaults.select(defaults.columns), defaults, check_dtypes=False)
    assert got_defaults["default_share"].to_list() == pytest.approx(
        (defaults["default_rows"] / defaults["rows"]).to_list(), rel=1e-12
    )
    assert got_defaults["feature_name"][26] == "vegas_opening_line"
    assert got_defaults["default_share"][26] == 1.0  # not in Phase 3: always missing

    assert data["check_outcomes"] == [
        {"feature_index": 0, "feature_name": "points_avg_last_5", "status": "OK", "dates": 2},
        {"feature_index": 0, "feature_name": "points_avg_last_5", "status": "WARN", "dates": 1},
        {"feature_index": 3, "feature_name": "points_std_last_10", "status": "FAIL", "dates": 1},
    ]  # 2024-01-14 is outside the range

    slowest = sql(
        db,
        f"""SELECT analysis_date, processor, duration_seconds FROM (
              SELECT * FROM nba_precompute.processor_runs WHERE analysis_date {window}
              QUALIFY row_number() OVER (PARTITION BY analysis_date, processor
                                         ORDER BY coalesce(finished_at, started_at) DESC) = 1)
            ORDER BY duration_seconds DESC, analysis_date, processor LIMIT 10""",
    )
    assert [
        (r["analysis_date"], r["processor"], r["duration_seconds"]) for r in data["slowest_runs"]
    ] == [(d.isoformat(), p, s) for d, p, s in slowest.rows()]


@pytest.mark.usefixtures("prefect_harness")
def test_backfill_publishes_the_figures_as_a_markdown_artifact(season_url: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    code, printed = phase4("backfill", "--start", "2024-01-10", "--end", "2024-01-11")
    assert code == 0, printed
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["phase4-report"]))
        )
    assert artifacts, "no phase4-report artifact"
    latest = max(artifacts, key=lambda a: a.created or datetime.min.replace(tzinfo=UTC))
    markdown = str(latest.data)
    assert latest.type == "markdown"
    assert markdown.startswith("# Phase 4 report 2024-01-10..2024-01-11")
    # Status counts per processor: both dates OK or WARN for the 30-team P1, none MISSING.
    assert "| team_defense_zone_analysis |" in markdown
    assert "MISSING" not in markdown
    assert "## Slowest runs" in markdown and "## Default share per feature" in markdown


def test_report_rejects_an_inverted_range(tmp_path: Path) -> None:
    code, printed = phase4(
        "report", "--start", "2024-01-13", "--end", "2024-01-09", "--out", str(tmp_path / "r")
    )
    assert code == 2
    assert "--end 2024-01-09 is before --start 2024-01-13" in printed


def test_a_line_whose_inputs_changed_shows_stale_in_the_grid() -> None:
    from quality.report import with_stale

    lines = pl.DataFrame(
        {
            "analysis_date": [D1, D1, D2],
            "processor": ["player_shot_zone_analysis", "team_defense_zone_analysis"] * 1
            + ["player_shot_zone_analysis"],
            "status": ["OK", "WARN", "FAIL"],
        }
    )
    freshness = pl.DataFrame(
        {
            "analysis_date": [D1, D1, D2],
            "processor": [
                "player_shot_zone_analysis",
                "team_defense_zone_analysis",
                "player_shot_zone_analysis",
            ],
            "state": ["STALE", "WARN", "FAIL"],
            "reason": ["inputs changed", "", ""],
        }
    )
    assert with_stale(lines, freshness)["status"].to_list() == ["STALE", "WARN", "FAIL"]


class _Scripts(HTMLParser):
    """The text of every <script> element, as an HTML parser splits the page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


HOSTILE = "x <!--<script>alert(1)</script> & </SCRIPT> y"


def test_the_data_block_holds_any_string_and_ends_where_it_should() -> None:
    lines = latest_lines(runs_frame())
    quality, basis = p5_quality(p5_rows(with_ready=True))
    frames = ReportFrames(
        start=D1,
        end=D2,
        status_grid=lines.select(
            "analysis_date", "processor", "status", "rows", "duration_seconds", "message"
        ),
        rows_per_processor=pl.DataFrame(
            {"date": [D1], "processor": ["player_daily_cache"], "rows": [400]}
        ),
        p5_quality=quality,
        quality_ready_basis=basis,
        feature_defaults=feature_defaults(p5_rows(with_ready=True)),
        check_outcomes=check_outcomes(
            pl.DataFrame(
                {
                    "game_date": [D1],
                    "feature_index": [0],
                    "feature_name": [HOSTILE],
                    "status": ["OK"],
                }
            )
        ),
        slowest_runs=slowest_runs(lines),
    )
    page = build_report_html(frames)
    block = page.split(f'id="{DATA_SCRIPT_ID}">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block
    assert "\\u003c!--\\u003cscript\\u003ealert(1)\\u003c/script\\u003e \\u0026" in block
    parser = _Scripts()
    parser.feed(page)
    data_blocks = [text for attrs, text in parser.scripts if attrs.get("id") == DATA_SCRIPT_ID]
    assert len(data_blocks) == 1  # nothing in the strings ended or opened an element
    data = json.loads(data_blocks[0])
    assert data["check_outcomes"][0]["feature_name"] == HOSTILE
    assert page.rstrip().endswith("</script>\n</body></html>")
