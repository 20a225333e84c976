"""SPEC 9/11 slate facts of many dates in one pass equal the per-date facts, field for field.

`per_date_upstream_facts` and `per_date_slate_facts` below are the per-date code the one-pass
`upstream_facts_of` / `slate_facts_of` replaced (quality/completeness.py, quality/success.py
before it), kept here as the reference: about 20 Polars filters per date. Facts are compared by
`repr` too, so a bool for an int or a reordered tuple or mapping would fail.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from nba_calendar import season_of, slate_calendar
from quality.completeness import RECENT_DAYS, UpstreamFacts, upstream_facts, upstream_facts_of
from quality.schemas import (
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_OFFENSE_GAME_SUMMARY,
    Phase3Frames,
)
from quality.success import SlateFacts, slate_facts, slate_facts_of
from tasks import backfill
from tests.conftest import SEASON_2023, SEASON_2024, season_frames

# --- the per-date reference ----------------------------------------------------------------------


def _schedule_of(team_context: pl.DataFrame, season_year: int, last: date) -> pl.DataFrame:
    return (
        team_context.filter((pl.col("season_year") == season_year) & (pl.col("game_date") <= last))
        .group_by("game_id")
        .agg(pl.col("game_date").min())
    )


def _games_played(summary: pl.DataFrame, season_year: int, before: date) -> pl.DataFrame:
    return (
        summary.filter((pl.col("season_year") == season_year) & (pl.col("game_date") < before))
        .group_by("game_id")
        .agg(pl.col("game_date").min())
    )


def _games_between(games: pl.DataFrame, first: date, before: date) -> pl.DataFrame:
    return games.filter((pl.col("game_date") >= first) & (pl.col("game_date") < before))


def _missing_games(expected: pl.DataFrame, present: pl.DataFrame) -> tuple[str, ...]:
    missing = expected.join(present.select("game_id"), on="game_id", how="anti")
    return tuple(missing.sort("game_date", "game_id")["game_id"].to_list())


def _teams_without_context(
    team_context: pl.DataFrame, player_context: pl.DataFrame, analysis_date: date
) -> tuple[str, ...]:
    scheduled = team_context.filter(pl.col("game_date") == analysis_date).select("team_abbr")
    covered = player_context.filter(pl.col("game_date") == analysis_date).select("team_abbr")
    lacking = scheduled.join(covered.unique(), on="team_abbr", how="anti")
    return tuple(sorted(lacking["team_abbr"].unique().to_list()))


def per_date_upstream_facts(phase3: Phase3Frames, analysis_date: date) -> UpstreamFacts:
    season = season_of(analysis_date)
    schedule = _schedule_of(phase3.team_context, season, analysis_date)
    before = schedule.filter(pl.col("game_date") < analysis_date)
    on_d = schedule.filter(pl.col("game_date") == analysis_date)
    played = {
        PLAYER_GAME_SUMMARY.name: _games_played(phase3.player_games, season, analysis_date),
        TEAM_DEFENSE_GAME_SUMMARY.name: _games_played(phase3.team_defense, season, analysis_date),
        TEAM_OFFENSE_GAME_SUMMARY.name: _games_played(phase3.team_offense, season, analysis_date),
    }
    known = pl.concat([before, *played.values()]).unique("game_id")
    recent_first = analysis_date - timedelta(days=RECENT_DAYS)
    last_date: date | None = before["game_date"].max()  # type: ignore[assignment]
    if last_date is None:
        last = older = before.clear()
    else:
        last = before.filter(pl.col("game_date") == last_date)
        older = _games_between(before, last_date - timedelta(days=RECENT_DAYS), last_date)
    return UpstreamFacts(
        analysis_date=analysis_date,
        season_year=season,
        scheduled_games=tuple(sorted(on_d["game_id"].to_list())),
        teams_without_context=_teams_without_context(
            phase3.team_context, phase3.player_context, analysis_date
        ),
        slate_players=phase3.player_context.filter(pl.col("game_date") == analysis_date).height,
        recent_games=_games_between(known, recent_first, analysis_date).height,
        season_has_games=known.height > 0 or on_d.height > 0,
        last_date=last_date,
        last_games=tuple(sorted(last["game_id"].to_list())),
        missing_last={t: _missing_games(last, games) for t, games in played.items()},
        missing_older={t: _missing_games(older, games) for t, games in played.items()},
    )


def per_date_slate_facts(analysis_date: date, phase3: Phase3Frames) -> SlateFacts:
    calendar = slate_calendar(analysis_date, phase3.team_offense, phase3.team_context)
    played = phase3.team_offense.filter(
        (pl.col("season_year") == calendar.season_year) & (pl.col("game_date") < analysis_date)
    )
    slate = phase3.player_context.filter(pl.col("game_date") == analysis_date)
    return SlateFacts(
        analysis_date,
        calendar.is_early_season,
        slate.height,
        played["game_id"].n_unique(),
        calendar.season_start,
        per_date_upstream_facts(phase3, analysis_date),
    )


def assert_same(new: object, old: object) -> None:
    assert new == old
    assert repr(new) == repr(old)


# --- the real seasons ----------------------------------------------------------------------------


@pytest.mark.parametrize("folder", [SEASON_2023, SEASON_2024], ids=["2023-24", "2024-25"])
def test_every_day_of_a_season_in_one_pass_equals_the_per_date_facts(folder: Path) -> None:
    frames, days = season_frames(folder)
    together = slate_facts_of(days, frames)
    chunked = backfill.slate_facts_of(days, frames)
    upstream = upstream_facts_of(frames, days)
    assert list(together) == days
    for day in days:
        old = per_date_slate_facts(day, frames)
        assert_same(together[day], old)
        assert_same(chunked[day], old)
        assert_same(upstream[day], old.upstream)
        assert_same(slate_facts(day, frames), old)
        assert_same(upstream_facts(frames, day), old.upstream)
    # The seasons exercise the rules: off-season days, gaps, and SPEC 11's holes (2024-25).
    assert any(f.upstream is not None and f.upstream.is_off_season for f in together.values())
    assert sum(f.slate_players > 0 for f in together.values()) > 150


def test_two_seasons_in_one_call() -> None:
    """Frames of two seasons, dates of both in one call: each date sees its own season only."""
    (a, days_a), (b, days_b) = season_frames(SEASON_2023), season_frames(SEASON_2024)

    def both(field: str) -> pl.DataFrame:
        return pl.concat([getattr(a, field), getattr(b, field)])

    frames = Phase3Frames(
        both("player_games"),
        both("team_defense"),
        both("team_offense"),
        both("player_context"),
        both("team_context"),
    )
    days = (days_a + days_b)[::5]
    together = slate_facts_of(days, frames)
    for day in days:
        assert_same(together[day], per_date_slate_facts(day, frames))


# --- a hand-built season: schedule and box scores disagree ---------------------------------------

GameRow = tuple[str, date, int]  # game_id, game_date, season_year


def _summary(rows: list[GameRow]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"game_id": g, "game_date": d, "season_year": s} for g, d, s in rows],
        schema={"game_id": pl.String, "game_date": pl.Date, "season_year": pl.Int64},
    )


def _team_rows(rows: list[tuple[str, date, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"game_id": g, "game_date": d, "season_year": s, "team_abbr": t} for g, d, s, t in rows],
        schema={
            "game_id": pl.String,
            "game_date": pl.Date,
            "season_year": pl.Int64,
            "team_abbr": pl.String,
        },
    )


def _disagreeing_frames() -> Phase3Frames:
    """Season 2024 (and a stray 2023 game):
    g001 Dec 20, everywhere on Dec 20;
    g002 scheduled Jan 10, box scores dated Jan 11 (postponed) in all three tables;
    g003 scheduled Jan 12, player box dated Jan 9, defense Jan 12, no offense row;
    g004 scheduled Jan 12 and again Jan 14 (a second team context row), played Jan 12;
    g005 never scheduled, offense only, Jan 5;
    g006 scheduled Jan 20, never played; g007 Feb 1 everywhere; g008 Feb 1, offense Feb 2;
    g900 a 2023-24 game on 2024-01-10 (another season, the same month and day as g002).
    Player context: Feb 1 for AAA and BBB only (CCC, DDD lack it), none on Jan 12, 2023 rows.
    """
    jan, feb = date(2025, 1, 1), date(2025, 2, 1)
    schedule = [
        ("g001", date(2024, 12, 20), 2024, "AAA"),
        ("g001", date(2024, 12, 20), 2024, "BBB"),
        ("g002", date(2025, 1, 10), 2024, "AAA"),
        ("g002", date(2025, 1, 10), 2024, "CCC"),
        ("g003", date(2025, 1, 12), 2024, "BBB"),
        ("g003", date(2025, 1, 12), 2024, "DDD"),
        ("g004", date(2025, 1, 14), 2024, "AAA"),
        ("g004", date(2025, 1, 12), 2024, "CCC"),
        ("g006", date(2025, 1, 20), 2024, "BBB"),
        ("g006", date(2025, 1, 20), 2024, "CCC"),
        ("g007", feb, 2024, "AAA"),
        ("g007", feb, 2024, "BBB"),
        ("g008", feb, 2024, "CCC"),
        ("g008", feb, 2024, "DDD"),
        ("g900", date(2024, 1, 10), 2023, "AAA"),
        ("g900", date(2024, 1, 10), 2023, "BBB"),
    ]
    common = [("g001", date(2024, 12, 20), 2024), ("g002", date(2025, 1, 11), 2024)]
    common += [("g004", jan + timedelta(days=11), 2024), ("g007", feb, 2024)]
    common += [("g900", date(2024, 1, 10), 2023)]
    player = [*common, ("g003", date(2025, 1, 9), 2024)]
    defense = [*common, ("g003", date(2025, 1, 12), 2024), ("g008", feb, 2024)]
    offense = [*common, ("g005", date(2025, 1, 5), 2024), ("g008", date(2025, 2, 2), 2024)]
    context = [("x", feb, 2024, "AAA"), ("y", feb, 2024, "BBB"), ("z", feb, 2024, "AAA")]
    context += [("w", date(2024, 1, 10), 2023, "AAA")]
    return Phase3Frames(
        _summary(player),
        _summary(defense),
        _summary(offense),
        _team_rows(context).rename({"game_id": "player_lookup"}),
        _team_rows(schedule),
    )


def test_schedule_and_box_score_dates_that_differ() -> None:
    frames = _disagreeing_frames()
    start = date(2024, 11, 20)
    days = [start + timedelta(days=i) for i in range(100)] + [date(2024, 1, 10), date(2024, 1, 11)]
    together = slate_facts_of(days, frames)
    for day in days:
        old = per_date_slate_facts(day, frames)
        assert_same(together[day], old)
        assert_same(slate_facts(day, frames), old)
    # The cases are reached: a postponed game missing on the night after its scheduled date,
    # a game dated only by its box score, the window edge where schedule and box score differ.
    jan11 = together[date(2025, 1, 11)].upstream
    assert jan11 is not None and jan11.missing_last[PLAYER_GAME_SUMMARY.name] == ("g002",)
    feb1 = together[date(2025, 2, 1)].upstream
    assert feb1 is not None and feb1.teams_without_context == ("CCC", "DDD")
    recent = {d: f.upstream.recent_games for d, f in together.items() if f.upstream}
    # Feb 10 counts [Jan 11, Feb 10): g002 by its schedule date (Jan 10) is out, g003..g008
    # but g005 (Jan 5) in; Feb 9 counts [Jan 10, Feb 9): g002 in, g003 by its schedule date.
    assert (recent[date(2025, 2, 9)], recent[date(2025, 2, 10)]) == (6, 5)


def test_no_frames_at_all() -> None:
    empty = _disagreeing_frames()
    empty = Phase3Frames(*(getattr(empty, f).clear() for f in empty.__dataclass_fields__))
    days = [date(2025, 1, 15), date(2024, 7, 1)]
    together = slate_facts_of(days, empty)
    for day in days:
        assert_same(together[day], per_date_slate_facts(day, empty))
