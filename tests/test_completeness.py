"""SPEC 9 off-season and SPEC 11 upstream completeness: each rule on hand-built frames, then the
real seasons end to end (the 2024-25 season has one game day without player context and eight
games without a player box; 2023-24 has none up to 2024-04-07)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from features import registry
from quality.completeness import (
    Finding,
    UpstreamFacts,
    upstream_facts,
    upstream_findings,
    with_findings,
)
from quality.schemas import Phase3Frames
from quality.success import SlateFacts, evaluate
from tests.conftest import SEASON_2023, SEASON_2024

P1, P2, P3, P4, P5 = (
    "team_defense_zone_analysis",
    "player_shot_zone_analysis",
    "player_composite_factors",
    "player_daily_cache",
    "ml_feature_store_v2",
)
ALL = (P1, P2, P3, P4, P5)
# Last night's player box missing (SPEC 11): its readers P2 and P4 FAIL, P3 on P2 (SPEC 17),
# P5 falls back and WARNs.
AFTER_A_NIGHT_WITHOUT_BOX = {P1: "OK", P2: "FAIL", P3: "FAIL", P4: "FAIL", P5: "WARN"}
PGS, TDG, TOG = (
    "player_game_summary",
    "team_defense_game_summary",
    "team_offense_game_summary",
)
D = date(2025, 1, 15)  # season 2024


def reads_of(processor: str) -> tuple[str, ...]:
    """The Phase 3 tables the processor reads, from the graph's one declaration."""
    return tuple(registry.PROCESSORS[processor].phase3.values())


# --- hand-built frames -------------------------------------------------------------------------

Game = tuple[str, date, str, str]  # game_id, game_date, home, away


def game(n: int, day: date, home: str = "AAA", away: str = "BBB") -> Game:
    return (f"g{n:03d}", day, home, away)


def frames(
    schedule: list[Game],
    *,
    slate_teams: list[str] | None = None,
    missing: dict[str, set[str]] | None = None,
) -> Phase3Frames:
    """Schedule -> team context; games before D -> the three summary tables (minus `missing`);
    player context for D: one player per team in `slate_teams` (default: every team on D)."""
    missing = missing or {}
    team_context = pl.DataFrame(
        [
            {"team_abbr": team, "game_id": gid, "game_date": day, "season_year": 2024}
            for gid, day, home, away in schedule
            for team in (home, away)
        ],
        schema={
            "team_abbr": pl.String,
            "game_id": pl.String,
            "game_date": pl.Date,
            "season_year": pl.Int64,
        },
    )
    played = [(gid, day) for gid, day, _, _ in schedule if day < D]

    def summary(table: str) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {"game_id": gid, "game_date": day, "season_year": 2024}
                for gid, day in played
                if gid not in missing.get(table, set())
            ],
            schema={"game_id": pl.String, "game_date": pl.Date, "season_year": pl.Int64},
        )

    on_d = [t for _, day, home, away in schedule if day == D for t in (home, away)]
    teams = on_d if slate_teams is None else slate_teams
    player_context = pl.DataFrame(
        {
            "player_lookup": [f"p_{t}" for t in teams],
            "team_abbr": teams,
            "game_date": [D] * len(teams),
        },
        schema={"player_lookup": pl.String, "team_abbr": pl.String, "game_date": pl.Date},
    )
    return Phase3Frames(summary(PGS), summary(TDG), summary(TOG), player_context, team_context)


def findings(phase3: Phase3Frames, processor: str) -> list[Finding]:
    return upstream_findings(upstream_facts(phase3, D), processor, reads_of(processor))


def statuses(phase3: Phase3Frames, rows: int = 450) -> dict[str, tuple[str, str]]:
    """Each processor's line as the success criteria give it, with healthy row counts."""
    facts = upstream_facts(phase3, D)
    slate = SlateFacts(D, False, facts.slate_players, 1000, upstream=facts)
    return {
        p: evaluate(
            p,
            slate,
            reads=reads_of(p),
            rows=30 if p == P1 else (rows if facts.slate_players or p == P2 else 0),
            error=None,
            duration_seconds=1.0,
            time_limit_minutes=5,
            avg_quality=90.0,
        )
        for p in ALL
    }


YESTERDAY = D - timedelta(days=1)
SEASON = [game(1, D - timedelta(days=20)), game(2, D - timedelta(days=10), "CCC", "DDD")]
TONIGHT = [game(10, D, "AAA", "BBB"), game(11, D, "CCC", "DDD")]
LAST_NIGHT = [game(20, YESTERDAY, "EEE", "FFF"), game(21, YESTERDAY, "GGG", "HHH")]


def test_a_complete_day_has_no_findings() -> None:
    phase3 = frames(SEASON + LAST_NIGHT + TONIGHT)
    assert all(findings(phase3, p) == [] for p in ALL)
    assert {p: s for p, (s, _) in statuses(phase3).items()} == dict.fromkeys(ALL, "OK")


def test_missing_slate_fails_p3_p4_p5_never_no_games() -> None:
    phase3 = frames(SEASON + LAST_NIGHT + TONIGHT, slate_teams=[])
    message = "Phase 3 incomplete: no player context for 2025-01-15 although 2 games are scheduled"
    lines = statuses(phase3)
    assert lines[P3] == ("FAIL", message)
    assert lines[P4] == ("FAIL", message)
    assert lines[P5] == ("FAIL", message)
    assert lines[P1] == ("OK", "30 rows") and lines[P2] == ("OK", "450 rows")


def test_scheduled_teams_without_player_context_warn_p3_and_p5_naming_them() -> None:
    phase3 = frames(SEASON + LAST_NIGHT + TONIGHT, slate_teams=["BBB", "CCC"])
    message = (
        "Phase 3 incomplete: no player context for 2 team(s) scheduled on 2025-01-15: AAA, DDD"
    )
    assert findings(phase3, P3) == [Finding("WARN", message)]
    assert findings(phase3, P5) == [Finding("WARN", message)]
    assert findings(phase3, P4) == [] and findings(phase3, P1) == []
    assert statuses(phase3)[P3] == ("WARN", message)


@pytest.mark.parametrize(
    ("table", "readers"),
    [(PGS, (P2, P4)), (TDG, (P1,)), (TOG, (P4,))],
)
def test_a_table_with_none_of_last_nights_games_fails_its_readers_and_warns_p5(
    table: str, readers: tuple[str, ...]
) -> None:
    phase3 = frames(SEASON + LAST_NIGHT + TONIGHT, missing={table: {"g020", "g021"}})
    message = f"Phase 3 incomplete: {table} has none of the 2 games of 2025-01-14"
    lines = statuses(phase3)
    for processor in readers:
        assert lines[processor] == ("FAIL", message), processor
    assert lines[P5] == ("WARN", message)
    for processor in set(ALL) - {*readers, P5}:
        assert lines[processor][0] == "OK", processor


def test_some_of_last_nights_games_missing_warn_listing_them() -> None:
    phase3 = frames(SEASON + LAST_NIGHT + TONIGHT, missing={PGS: {"g021"}})
    message = (
        "Phase 3 incomplete: player_game_summary is missing 1 of the 2 games of 2025-01-14: g021"
    )
    lines = statuses(phase3)
    assert lines[P2] == ("WARN", message)
    assert lines[P4] == ("WARN", message)
    assert lines[P5] == ("WARN", message)
    assert lines[P1][0] == lines[P3][0] == "OK"


def test_last_night_is_the_latest_date_with_scheduled_games() -> None:
    """A day off before D: L is the last game day, not D - 1."""
    three_days_ago = [game(30, D - timedelta(days=3))]
    phase3 = frames(SEASON + three_days_ago + TONIGHT, missing={TDG: {"g030"}})
    assert upstream_facts(phase3, D).last_date == D - timedelta(days=3)
    message = "Phase 3 incomplete: team_defense_game_summary has none of the 1 games of 2025-01-12"
    assert statuses(phase3)[P1] == ("FAIL", message)


def test_older_holes_warn_with_the_count_and_up_to_five_game_ids() -> None:
    """Games dated L-30 .. L-1 count; L-31 only lowers completeness_pct (no finding)."""
    older = [game(40 + i, YESTERDAY - timedelta(days=30 - i)) for i in range(7)]
    too_old = [game(60, YESTERDAY - timedelta(days=31))]
    phase3 = frames(
        older + too_old + LAST_NIGHT + TONIGHT,
        missing={PGS: {g[0] for g in older + too_old}},
    )
    message = (
        "Phase 3 incomplete: player_game_summary is missing 7 scheduled game(s) of the 30 days "
        "before 2025-01-14: g040, g041, g042, g043, g044 and 2 more"
    )
    lines = statuses(phase3)
    assert lines[P2] == ("WARN", message)
    assert lines[P4] == ("WARN", message)
    assert lines[P5] == ("WARN", message)
    assert lines[P1][0] == "OK"


def test_last_night_and_older_holes_are_both_reported() -> None:
    phase3 = frames(SEASON + LAST_NIGHT + TONIGHT, missing={PGS: {"g001", "g020", "g021"}})
    status, message = statuses(phase3)[P2]
    assert status == "FAIL"
    assert message == (
        "Phase 3 incomplete: player_game_summary has none of the 2 games of 2025-01-14; "
        "Phase 3 incomplete: player_game_summary is missing 1 scheduled game(s) of the 30 days "
        "before 2025-01-14: g001"
    )


def test_a_day_without_games_keeps_slate_processors_no_games_and_p2_reports_holes() -> None:
    phase3 = frames(SEASON + LAST_NIGHT, missing={PGS: {"g021"}})
    lines = statuses(phase3)
    assert lines[P3] == lines[P4] == lines[P5] == ("NO_GAMES", "no games")
    assert lines[P2][0] == "WARN" and "missing 1 of the 2 games of 2025-01-14: g021" in lines[P2][1]


def test_off_season_every_line_no_games() -> None:
    """No slate and the season's last game 31 days before D: off-season, whatever the rows."""
    phase3 = frames([game(1, D - timedelta(days=60)), game(2, D - timedelta(days=31))])
    facts = upstream_facts(phase3, D)
    assert facts.is_off_season and facts.recent_games == 0
    assert statuses(phase3, rows=0) == dict.fromkeys(ALL, ("NO_GAMES", "off-season"))


def test_a_game_exactly_30_days_before_d_is_still_the_season() -> None:
    phase3 = frames([game(1, D - timedelta(days=30))])
    facts = upstream_facts(phase3, D)
    assert not facts.is_off_season and facts.recent_games == 1
    slate = SlateFacts(D, False, 0, 1000, upstream=facts)
    zero = {"error": None, "duration_seconds": 1.0, "time_limit_minutes": 5}
    assert evaluate(P1, slate, reads=reads_of(P1), rows=0, **zero) == (  # type: ignore[arg-type]
        "FAIL",
        "0 teams while the season has games in the 30 days before D",
    )
    assert evaluate(P2, slate, reads=reads_of(P2), rows=0, **zero)[0] == "FAIL"  # type: ignore[arg-type]


def test_a_season_without_any_data_is_no_games_naming_the_season() -> None:
    phase3 = frames([])
    assert statuses(phase3, rows=0) == dict.fromkeys(
        ALL,
        (
            "NO_GAMES",
            "no Phase 3 data for season 2024 before 2025-01-15"
            " (off-season before its first game, or the season is not loaded)",
        ),
    )


def test_summary_rows_alone_count_as_season_games() -> None:
    """An empty schedule with game rows 10 days before D is not the off-season."""
    phase3 = frames([game(1, D - timedelta(days=10))])
    phase3 = Phase3Frames(
        phase3.player_games,
        phase3.team_defense,
        phase3.team_offense,
        phase3.player_context,
        phase3.team_context.clear(),
    )
    facts = upstream_facts(phase3, D)
    assert facts.recent_games == 1 and not facts.is_off_season and facts.last_date is None


def test_an_error_still_wins_over_off_season() -> None:
    facts = upstream_facts(frames([]), D)
    slate = SlateFacts(D, False, 0, 0, upstream=facts)
    assert evaluate(
        P1,
        slate,
        reads=reads_of(P1),
        rows=None,
        error="boom",
        duration_seconds=None,
        time_limit_minutes=5,
    ) == ("FAIL", "boom")


@pytest.mark.parametrize(
    ("status", "message", "found", "expected"),
    [
        ("OK", "", [Finding("WARN", "w")], ("WARN", "w")),
        ("NO_GAMES", "no games", [Finding("FAIL", "f")], ("FAIL", "f")),
        ("WARN", "only 3 teams", [Finding("WARN", "w")], ("WARN", "w; only 3 teams")),
        ("FAIL", "0 teams", [Finding("WARN", "w")], ("FAIL", "w; 0 teams")),
        ("OK", "", [Finding("WARN", "w"), Finding("FAIL", "f")], ("FAIL", "w; f")),
        ("OK", "", [], ("OK", "")),
    ],
)
def test_findings_take_the_worse_status_and_lead_the_message(
    status: str, message: str, found: list[Finding], expected: tuple[str, str]
) -> None:
    assert with_findings(status, message, found) == expected  # type: ignore[arg-type]


def test_facts_are_plain_values() -> None:
    facts = upstream_facts(frames(SEASON + LAST_NIGHT + TONIGHT), D)
    assert facts == UpstreamFacts(
        analysis_date=D,
        season_year=2024,
        scheduled_games=("g010", "g011"),
        teams_without_context=(),
        slate_players=4,
        recent_games=4,
        season_has_games=True,
        last_date=YESTERDAY,
        last_games=("g020", "g021"),
        missing_last={PGS: (), TDG: (), TOG: ()},
        missing_older={PGS: (), TDG: (), TOG: ()},
    )


# --- the real seasons --------------------------------------------------------------------------


def read_season(directory: Path) -> Phase3Frames:
    def read(table: str) -> pl.DataFrame:
        return pl.read_parquet(directory / f"nba_analytics.{table}.parquet")

    return Phase3Frames(
        read(PGS),
        read(TDG),
        read(TOG),
        read("upcoming_player_game_context"),
        read("upcoming_team_game_context"),
    )


def expected_findings(directory: Path, first: date, last: date) -> tuple[set[date], set[date]]:
    """SPEC 11 worked out in plain Python over sets: (FAIL dates, WARN-only dates)."""
    phase3 = read_season(directory)
    schedule: dict[date, set[str]] = {}
    for gid, day in phase3.team_context.select("game_id", "game_date").unique().iter_rows():
        schedule.setdefault(day, set()).add(gid)
    scheduled_teams: dict[date, set[str]] = {}
    for team, day in phase3.team_context.select("team_abbr", "game_date").iter_rows():
        scheduled_teams.setdefault(day, set()).add(team)
    context_teams: dict[date, set[str]] = {}
    for team, day in phase3.player_context.select("team_abbr", "game_date").iter_rows():
        context_teams.setdefault(day, set()).add(team)
    boxes = set(phase3.player_games["game_id"].to_list())
    # The team summaries hold every scheduled game in both real seasons: only the box can miss.
    for summary in (phase3.team_defense, phase3.team_offense):
        assert set().union(*schedule.values()) <= set(summary["game_id"].to_list())
    no_box = {(gid, day) for day, gids in schedule.items() for gid in gids if gid not in boxes}
    fails, warns = set(), set()
    day = first
    while day <= last:
        previous = [d for d in schedule if d < day]
        night = max(previous) if previous else None
        slate_missing = bool(schedule.get(day)) and not context_teams.get(day)
        night_missing = night is not None and all(g not in boxes for g in schedule[night])
        teams_missing = bool(scheduled_teams.get(day, set()) - context_teams.get(day, set()))
        holes = night is not None and any(
            night - timedelta(days=30) <= d <= night for _, d in no_box
        )
        if slate_missing or night_missing:
            fails.add(day)
        elif teams_missing or holes:
            warns.add(day)
        day += timedelta(days=1)
    return fails, warns


def test_the_2023_24_season_has_no_completeness_finding_up_to_april_7() -> None:
    phase3 = read_season(SEASON_2023)
    day = date(2023, 10, 24)
    while day <= date(2024, 4, 7):
        facts = upstream_facts(phase3, day)
        found = {p: upstream_findings(facts, p, reads_of(p)) for p in ALL}
        assert found == dict.fromkeys(ALL, []), day
        day += timedelta(days=1)


def test_a_day_without_slate_stays_no_games_when_last_night_failed_p2() -> None:
    """2024-04-13 (2023-24): no slate, and P2 FAILs (the player box stops on 2024-04-07). P3 to
    P5 build nothing on it whatever P2 did: NO_GAMES (SPEC 1, 9), not 'upstream not built';
    2024-04-12 has games but no player context: SPEC 11's FAIL, nothing written."""
    from features.core import RunInputs, run

    no_slate, no_context = date(2024, 4, 13), date(2024, 4, 12)
    built = run(RunInputs(read_season(SEASON_2023), (no_context, no_slate)))
    lines = {
        (b.table, x.analysis_date): (x.status, x.rows, x.message)
        for b in built.values()
        for x in b.lines
    }
    assert lines[(P2, no_slate)][0] == "FAIL"
    for processor in (P3, P4, P5):
        assert lines[(processor, no_slate)] == ("NO_GAMES", 0, "no games"), processor
        status, rows, message = lines[(processor, no_context)]
        assert (status, rows) == ("FAIL", None) and "not built" not in message, processor
        assert message.startswith("Phase 3 incomplete: no player context for 2024-04-12")


def run_lines_of(day: date) -> dict[str, tuple[str, str]]:
    from quality.schemas import PROCESSOR_RUNS
    from tasks.warehouse import Filter, open_warehouse

    rows = open_warehouse().read(
        PROCESSOR_RUNS.full_name, None, [Filter("analysis_date", "=", day)]
    )
    latest = rows.sort("finished_at", nulls_last=False).group_by("processor").last()
    return {r["processor"]: (r["status"], r["message"]) for r in latest.iter_rows(named=True)}


@pytest.mark.usefixtures("prefect_harness", "season_2024_url")
def test_phase4_run_on_the_day_without_player_context_and_the_night_after() -> None:
    from tests.test_flow_realdata import phase4

    code, printed = phase4("run", "--date", "2025-02-19")
    assert code == 1, printed
    flat = " ".join(printed.split())
    assert "no player context for 2025-02-19 although 1 games are scheduled" in flat, printed
    lines = run_lines_of(date(2025, 2, 19))
    for processor in (P3, P4, P5):
        assert lines[processor][0] == "FAIL", lines[processor]
        assert lines[processor][1].startswith("Phase 3 incomplete: no player context"), processor
    # The night after: P2 and P4 read player_game_summary and FAIL; P5 builds its rows and WARNs.
    # P2's FAIL line means "not built" for its dependents although it wrote rows (SPEC 15, 17):
    # P3 FAILs on it, P5 falls back and no row is production ready.
    night_after = date(2025, 2, 20)
    code, printed = phase4("run", "--date", str(night_after))
    assert code == 1, printed
    lines = run_lines_of(night_after)
    none_of = "Phase 3 incomplete: player_game_summary has none of the 1 games of 2025-02-19"
    assert {p: s for p, (s, _) in lines.items()} == AFTER_A_NIGHT_WITHOUT_BOX
    assert all(lines[p][1].startswith(none_of) for p in (P2, P4, P5))
    not_built = f"upstream {P2} not built for {night_after}"
    assert lines[P3][1] == not_built and lines[P4][1].endswith(not_built)
    p5 = p5_business_rows(night_after)
    assert p5.height == 192 and not p5["is_production_ready"].any()
    failed = [f"{p}_failed" for p in (P2, P3, P4)]
    issues = p5["data_quality_issues"].list.eval(pl.element().filter(pl.element().is_in(failed)))
    assert issues.to_list() == [failed] * 192
    # P5 alone over what the full run stored judges P2-P4 by their lines: the same rows.
    assert phase4("run", "--date", str(night_after), "--processors", "P5")[0] == 0
    assert p5_business_rows(night_after).equals(p5)


def p5_business_rows(day: date) -> pl.DataFrame:
    from tasks.readers import read_output
    from tasks.warehouse import open_warehouse
    from tests.test_flow_realdata import PHASE4_SOURCE_STAMPS

    rows = read_output(open_warehouse(), P5, day).sort("player_lookup")
    return rows.drop("created_at", *PHASE4_SOURCE_STAMPS[P5])


NOT_LOADED = " (off-season before its first game, or the season is not loaded)"


@pytest.mark.usefixtures("prefect_harness", "season_url")
@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("2024-07-15", "off-season"),
        ("2024-05-20", "off-season"),
        ("2019-01-01", "no Phase 3 data for season 2018 before 2019-01-01" + NOT_LOADED),
        # Two nights before opening night: the run reads nothing dated after D (SPEC 0).
        ("2023-10-22", "no Phase 3 data for season 2023 before 2023-10-22" + NOT_LOADED),
    ],
)
def test_phase4_run_in_the_off_season_exits_0_with_every_line_no_games(
    day: str, message: str
) -> None:
    from tests.test_flow_realdata import phase4

    code, printed = phase4("run", "--date", day)
    assert code == 0, printed
    assert run_lines_of(date.fromisoformat(day)) == dict.fromkeys(ALL, ("NO_GAMES", message))


@pytest.mark.usefixtures("prefect_harness", "season_2024_url")
def test_the_2024_25_backfill_fails_and_warns_exactly_on_the_dates_spec_11_names() -> None:
    from flows.phase4_backfill import phase4_backfill
    from quality.success import BackfillSummary, RunFailed

    first, last = date(2024, 10, 22), date(2025, 4, 13)
    fails, warns = expected_findings(SEASON_2024, first, last)
    assert fails == {date(2025, 2, 19), date(2025, 2, 20)}
    assert {date(2025, 1, 28), date(2025, 2, 28), date(2025, 4, 13)} <= warns  # ATL-HOU, holes
    assert date(2025, 1, 27) not in warns and len(warns) == 74
    state = phase4_backfill(start_date=first, end_date=last, return_state=True)
    assert state.is_failed()
    outcome = state.result(raise_on_failure=False)
    assert isinstance(outcome, RunFailed) and str(outcome) == state.message
    summary = outcome.outcome
    assert isinstance(summary, BackfillSummary)
    incomplete = {
        line.analysis_date for line in summary.lines if "Phase 3 incomplete" in line.message
    }
    failed = {line.analysis_date for line in summary.lines if line.status == "FAIL"}
    assert failed == fails
    assert incomplete == fails | warns
    for line in summary.lines:
        if line.message == f"upstream {P2} not built for {line.analysis_date}":
            assert (line.processor, line.status, line.analysis_date) == (P3, "FAIL", max(fails))
        elif "Phase 3 incomplete" in line.message and line.analysis_date in warns:
            assert line.status == "WARN", line
        elif line.status in ("WARN", "FAIL") and "Phase 3 incomplete" not in line.message:
            # Only SPEC 9's volume rules of the season's first days warn besides SPEC 11.
            assert line.analysis_date <= date(2024, 11, 1), line
            assert line.status == "WARN" and line.message.startswith("only "), line
    on_20th = {x.processor: x.status for x in summary.lines if x.analysis_date == date(2025, 2, 20)}
    assert on_20th == AFTER_A_NIGHT_WITHOUT_BOX
    # The lines reach processor_runs as well.
    status, message = run_lines_of(date(2025, 2, 20))[P5]
    assert status == "WARN"
    assert message.startswith(
        "Phase 3 incomplete: player_game_summary has none of the 1 games of 2025-02-19; "
        "Phase 3 incomplete: player_game_summary is missing 1 scheduled game(s) of the 30 days "
        "before 2025-02-19: 0022400532; "
        + "; ".join(f"upstream {p} not built for 2025-02-20" for p in (P2, P3, P4))
    ), message


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_rerun_on_broken_phase3_keeps_the_good_partitions(season_url: str) -> None:
    """A FAIL line writes nothing: re-running a built date after Phase 3 lost its player
    context, or last night's box scores, leaves every good partition and its checks as they
    were, and the FAIL lines say what was built and not written."""
    import duckdb

    from tasks.readers import read_output
    from tasks.warehouse import open_warehouse
    from tests.test_flow_realdata import phase4

    day = date(2024, 1, 15)
    assert phase4("run", "--date", str(day))[0] == 0
    before = {t: read_output(open_warehouse(), t, day) for t in ALL}
    assert all(frame.height > 0 for frame in before.values())
    database = season_url.removeprefix("duckdb://")
    checks = f"SELECT * FROM nba_predictions.ml_feature_checks WHERE game_date = DATE '{day}'"
    with duckdb.connect(database, read_only=True) as con:
        checked = con.sql(checks).pl()
    assert checked.height == 60
    with duckdb.connect(database) as con:  # last night's player box scores go missing
        con.execute(
            "DELETE FROM nba_analytics.player_game_summary WHERE game_date = DATE '2024-01-14'"
        )
    code, printed = phase4("run", "--date", str(day))
    assert code == 1, printed
    lines = run_lines_of(day)
    assert {p: s for p, (s, _) in lines.items()} == AFTER_A_NIGHT_WITHOUT_BOX
    kept = f"; {before[P2].height} rows built, not written (the partition stays as it was)"
    assert lines[P2][1].endswith(kept), lines[P2]
    for table in (P2, P3, P4):
        assert read_output(open_warehouse(), table, day).equals(before[table]), table
    with duckdb.connect(database) as con:  # then the slate's player context too
        con.execute(
            f"DELETE FROM nba_analytics.upcoming_player_game_context WHERE game_date = DATE '{day}'"
        )
    code, printed = phase4("run", "--date", str(day))
    assert code == 1, printed
    assert {s for s, _ in run_lines_of(day).values()} == {"OK", "FAIL"}
    for table in (P2, P3, P4):
        assert read_output(open_warehouse(), table, day).equals(before[table]), table
    assert read_output(open_warehouse(), P5, day).height == before[P5].height  # the WARN run's
    with duckdb.connect(database, read_only=True) as con:
        assert con.sql(checks).pl().height == 60
