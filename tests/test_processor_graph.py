"""The processor registry: graph order, lookups, SPEC limits, and the facts of a slate."""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import date
from typing import get_args

import polars as pl
import pytest

from features import registry
from features.registry import PROCESSORS, ProcessorName, processor, select, topological_order
from quality.schemas import (
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_OFFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
    Phase3Frames,
)
from quality.success import RunLine, RunReport, SlateFacts, Status, slate_facts
from tests.builders import frame

D = date(2024, 11, 5)


def test_the_graph_runs_upstreams_first_in_the_spec_order() -> None:
    assert [(p.id, p.table) for p in PROCESSORS.values()] == [
        ("P1", "team_defense_zone_analysis"),
        ("P2", "player_shot_zone_analysis"),
        ("P3", "player_composite_factors"),
        ("P4", "player_daily_cache"),
        ("P5", "ml_feature_store_v2"),
    ]
    assert {
        p.id: sorted(processor(u).id for u in p.upstream.values()) for p in PROCESSORS.values()
    } == {
        "P1": [],
        "P2": [],
        "P3": ["P1", "P2"],
        "P4": ["P2"],
        "P5": ["P1", "P2", "P3", "P4"],
    }
    assert [p.id for p in PROCESSORS.values() if p.runs_if_upstream_failed] == ["P5"]
    reversed_order = topological_order(reversed(list(PROCESSORS.values())))
    assert [p.id for p in reversed_order] == ["P2", "P4", "P1", "P3", "P5"]


def test_a_cycle_is_refused() -> None:
    p1 = replace(PROCESSORS["team_defense_zone_analysis"], upstream={"x": "ml_feature_store_v2"})
    with pytest.raises(ValueError, match="cycle"):
        topological_order([p1, *list(PROCESSORS.values())[1:]])


def test_spec_time_limits_and_timeouts() -> None:
    limits = {p.id: (p.time_limit_minutes, p.timeout_seconds) for p in PROCESSORS.values()}
    assert limits == {
        "P1": (5, 600),
        "P2": (15, 1800),
        "P3": (20, 2400),
        "P4": (15, 1800),
        "P5": (5, 600),
    }


def test_lookup_by_id_or_table_and_selection_in_run_order() -> None:
    assert processor("P3") is processor("player_composite_factors")
    assert [p.id for p in select(["ml_feature_store_v2", "P1"])] == ["P1", "P5"]
    assert len(select(None)) == len(select([])) == 5
    with pytest.raises(KeyError, match="P1 \\(team_defense_zone_analysis\\)"):
        processor("P9")
    with pytest.raises(ValueError, match="unknown processor\\(s\\) P9, nope"):
        select(["nope", "P2", "P9"])


def test_the_flow_parameter_offers_every_processor() -> None:
    assert get_args(ProcessorName) == tuple(PROCESSORS)


@pytest.mark.parametrize("table", list(PROCESSORS))
def test_each_compute_accepts_its_inputs_by_keyword(table: str) -> None:
    """A renamed parameter in a features module fails here, not in a nightly run."""
    entry = PROCESSORS[table]
    names = ["calendar", "processed_at", *entry.phase3, *entry.upstream]
    inspect.signature(entry.compute).bind(**dict.fromkeys(names))
    assert set(entry.phase3.values()) <= set(registry.PHASE3_KEYWORDS.values())


def test_slate_facts_from_frames() -> None:
    offense = frame(
        TEAM_OFFENSE_GAME_SUMMARY,
        [  # two games of season 2024 before D (two rows each), one on D, one of 2023
            {
                "game_id": "g1",
                "game_date": date(2024, 10, 22),
                "season_year": 2024,
                "team_abbr": "A",
            },
            {
                "game_id": "g1",
                "game_date": date(2024, 10, 22),
                "season_year": 2024,
                "team_abbr": "B",
            },
            {
                "game_id": "g2",
                "game_date": date(2024, 11, 4),
                "season_year": 2024,
                "team_abbr": "C",
            },
            {
                "game_id": "g2",
                "game_date": date(2024, 11, 4),
                "season_year": 2024,
                "team_abbr": "D",
            },
            {"game_id": "g3", "game_date": D, "season_year": 2024, "team_abbr": "A"},
            {"game_id": "g0", "game_date": date(2024, 4, 1), "season_year": 2023, "team_abbr": "A"},
        ],
    )
    schedule = frame(
        UPCOMING_TEAM_GAME_CONTEXT,
        [{"game_date": date(2024, 10, 23), "season_year": 2024, "team_abbr": "A"}],
    )
    players = frame(
        UPCOMING_PLAYER_GAME_CONTEXT,
        [{"player_lookup": p, "game_date": D} for p in ("a", "b", "c")]
        + [{"player_lookup": "a", "game_date": date(2024, 11, 6)}],
    )

    def phase3(
        offense: pl.DataFrame, schedule: pl.DataFrame, players: pl.DataFrame
    ) -> Phase3Frames:
        return Phase3Frames(
            player_games=PLAYER_GAME_SUMMARY.empty_frame(),
            team_defense=TEAM_DEFENSE_GAME_SUMMARY.empty_frame(),
            team_offense=offense,
            player_context=players,
            team_context=schedule,
        )

    facts = slate_facts(D, phase3(offense, schedule, players))
    assert facts == SlateFacts(D, True, 3, 2, date(2024, 10, 22), facts.upstream)
    assert facts.calendar.days_into_season == 14
    assert facts.calendar.season_year == 2024
    empty = slate_facts(D, phase3(offense.clear(), schedule.clear(), players.clear()))
    assert empty == SlateFacts(D, True, 0, 0, D, empty.upstream)


def test_the_run_ends_with_one_summary_line() -> None:
    def line(processor: str, status: Status, rows: int | None) -> RunLine:
        return RunLine(
            run_id="r", processor=processor, analysis_date=D, status=status, rows=rows, message=""
        )

    report = RunReport(
        run_id="r",
        analysis_date=D,
        lines=[
            line("team_defense_zone_analysis", "OK", 30),
            line("player_shot_zone_analysis", "WARN", 1_050),
            line("player_composite_factors", "FAIL", None),
            line("player_daily_cache", "SKIPPED", None),
            line("ml_feature_store_v2", "OK", 18),
        ],
        duration_seconds=3.14,
    )
    assert report.summary() == (
        "phase4 2024-11-05: 2 OK, 1 WARN, 1 FAIL, 1 SKIPPED; 1,098 rows in 3.1 s"
    )
