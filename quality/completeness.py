"""SPEC 9 off-season and SPEC 11 upstream completeness: did Phase 3 do its job for D?

The schedule is `upcoming_team_game_context` (the games of season S are its game_ids). One pure
function, `upstream_facts`, reduces the Phase 3 frames to the facts about D the rules need, once
per date; `upstream_findings` turns them into WARN/FAIL findings for one processor, and
`with_findings` folds those into the processor's status line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import polars as pl

from features.common import Phase3Frames, season_of
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_DAILY_CACHE,
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_OFFENSE_GAME_SUMMARY,
)

RECENT_DAYS = 30
MAX_LISTED_GAMES = 5
GAME_SUMMARY_TABLES = (
    PLAYER_GAME_SUMMARY.name,
    TEAM_DEFENSE_GAME_SUMMARY.name,
    TEAM_OFFENSE_GAME_SUMMARY.name,
)
# SPEC 11: a missing slate fails every slate processor; teams missing from it warn P3 and P5.
MISSING_SLATE_FAILS = (
    PLAYER_COMPOSITE_FACTORS.name,
    PLAYER_DAILY_CACHE.name,
    ML_FEATURE_STORE_V2.name,
)
PARTIAL_SLATE_WARNS = (PLAYER_COMPOSITE_FACTORS.name, ML_FEATURE_STORE_V2.name)
# P5 still builds a row per slate player from what exists: last night missing only warns it.
BUILDS_FROM_WHAT_EXISTS = (ML_FEATURE_STORE_V2.name,)
INCOMPLETE = "Phase 3 incomplete"

FindingStatus = Literal["WARN", "FAIL"]
LineStatus = Literal["OK", "WARN", "FAIL", "SKIPPED", "NO_GAMES"]


@dataclass(frozen=True)
class UpstreamFacts:
    """What Phase 3 holds around D, compared with the schedule."""

    analysis_date: date
    season_year: int
    scheduled_games: tuple[str, ...]  # game_ids scheduled on D
    teams_without_context: tuple[str, ...]  # scheduled on D, no player context row
    slate_players: int
    recent_games: int  # games of S dated in the 30 days before D (schedule or summaries)
    season_has_games: bool  # any game of S dated D or before
    last_date: date | None  # L: latest date before D with scheduled games
    last_games: tuple[str, ...]  # game_ids scheduled on L
    missing_last: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    missing_older: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_off_season(self) -> bool:
        """No slate on D and no game of S in the 30 days before it (SPEC 9)."""
        return not self.scheduled_games and self.slate_players == 0 and self.recent_games == 0

    @property
    def off_season_message(self) -> str:
        if self.season_has_games:
            return "off-season"
        return f"no Phase 3 data for season {self.season_year}"


@dataclass(frozen=True)
class Finding:
    status: FindingStatus
    message: str


def phase3_inputs() -> Mapping[str, tuple[str, ...]]:
    """Which Phase 3 tables each processor reads, from the registry (its one declaration).

    Imported late: the registry imports the processors, which import the success criteria.
    """
    from features.registry import PROCESSORS

    return {table: tuple(p.phase3.values()) for table, p in PROCESSORS.items()}


def schedule_of(team_context: pl.DataFrame, season_year: int, last: date) -> pl.DataFrame:
    """One row per scheduled game of the season dated `last` or before: game_id, game_date."""
    return (
        team_context.filter((pl.col("season_year") == season_year) & (pl.col("game_date") <= last))
        .group_by("game_id")
        .agg(pl.col("game_date").min())
    )


def games_played(summary: pl.DataFrame, season_year: int, before: date) -> pl.DataFrame:
    """Games with at least one row in a game summary table, dated before D: game_id, game_date."""
    return (
        summary.filter((pl.col("season_year") == season_year) & (pl.col("game_date") < before))
        .group_by("game_id")
        .agg(pl.col("game_date").min())
    )


def games_between(games: pl.DataFrame, first: date, before: date) -> pl.DataFrame:
    """Games dated first <= game_date < before."""
    return games.filter((pl.col("game_date") >= first) & (pl.col("game_date") < before))


def missing_games(expected: pl.DataFrame, present: pl.DataFrame) -> tuple[str, ...]:
    """game_ids of `expected` without a row in `present`, oldest first."""
    missing = expected.join(present.select("game_id"), on="game_id", how="anti")
    return tuple(missing.sort("game_date", "game_id")["game_id"].to_list())


def teams_without_context(
    team_context: pl.DataFrame, player_context: pl.DataFrame, analysis_date: date
) -> tuple[str, ...]:
    """Teams scheduled on D that have no player context row for D."""
    scheduled = team_context.filter(pl.col("game_date") == analysis_date).select("team_abbr")
    covered = player_context.filter(pl.col("game_date") == analysis_date).select("team_abbr")
    lacking = scheduled.join(covered.unique(), on="team_abbr", how="anti")
    return tuple(sorted(lacking["team_abbr"].unique().to_list()))


def upstream_facts(phase3: Phase3Frames, analysis_date: date) -> UpstreamFacts:
    """The facts the completeness and off-season rules need about D, from the Phase 3 frames.

    Frames may hold more dates than D needs (backfill chunks): everything is filtered here.
    """
    season = season_of(analysis_date)
    schedule = schedule_of(phase3.team_context, season, analysis_date)
    before = schedule.filter(pl.col("game_date") < analysis_date)
    on_d = schedule.filter(pl.col("game_date") == analysis_date)
    played = {
        PLAYER_GAME_SUMMARY.name: games_played(phase3.player_games, season, analysis_date),
        TEAM_DEFENSE_GAME_SUMMARY.name: games_played(phase3.team_defense, season, analysis_date),
        TEAM_OFFENSE_GAME_SUMMARY.name: games_played(phase3.team_offense, season, analysis_date),
    }
    known = pl.concat([before, *played.values()]).unique("game_id")
    recent_first = analysis_date - timedelta(days=RECENT_DAYS)
    last_date: date | None = before["game_date"].max()  # type: ignore[assignment]
    if last_date is None:
        last = older = before.clear()
    else:
        last = before.filter(pl.col("game_date") == last_date)
        older = games_between(before, last_date - timedelta(days=RECENT_DAYS), last_date)
    return UpstreamFacts(
        analysis_date=analysis_date,
        season_year=season,
        scheduled_games=tuple(sorted(on_d["game_id"].to_list())),
        teams_without_context=teams_without_context(
            phase3.team_context, phase3.player_context, analysis_date
        ),
        slate_players=phase3.player_context.filter(pl.col("game_date") == analysis_date).height,
        recent_games=games_between(known, recent_first, analysis_date).height,
        season_has_games=known.height > 0 or on_d.height > 0,
        last_date=last_date,
        last_games=tuple(sorted(last["game_id"].to_list())),
        missing_last={t: missing_games(last, games) for t, games in played.items()},
        missing_older={t: missing_games(older, games) for t, games in played.items()},
    )


def listed(game_ids: Sequence[str], limit: int | None = None) -> str:
    shown = list(game_ids if limit is None else game_ids[:limit])
    more = len(game_ids) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def slate_findings(facts: UpstreamFacts, processor: str) -> list[Finding]:
    """Missing slate (P3, P4, P5 FAIL) and scheduled teams without player context (P3, P5 WARN)."""
    if facts.scheduled_games and facts.slate_players == 0:
        if processor not in MISSING_SLATE_FAILS:
            return []
        return [
            Finding(
                "FAIL",
                f"{INCOMPLETE}: no player context for {facts.analysis_date} although "
                f"{len(facts.scheduled_games)} games are scheduled",
            )
        ]
    if facts.teams_without_context and processor in PARTIAL_SLATE_WARNS:
        teams = facts.teams_without_context
        return [
            Finding(
                "WARN",
                f"{INCOMPLETE}: no player context for {len(teams)} team(s) scheduled on "
                f"{facts.analysis_date}: {', '.join(teams)}",
            )
        ]
    return []


def game_findings(facts: UpstreamFacts, processor: str, table: str) -> list[Finding]:
    """Last night's games (L) and the 30 days before L, for one game summary table read."""
    findings: list[Finding] = []
    last_missing = facts.missing_last.get(table, ())
    if facts.last_date is not None and last_missing:
        n = len(facts.last_games)
        if len(last_missing) == n:
            status: FindingStatus = "WARN" if processor in BUILDS_FROM_WHAT_EXISTS else "FAIL"
            message = f"{INCOMPLETE}: {table} has none of the {n} games of {facts.last_date}"
        else:
            status = "WARN"
            message = (
                f"{INCOMPLETE}: {table} is missing {len(last_missing)} of the {n} games of "
                f"{facts.last_date}: {listed(last_missing)}"
            )
        findings.append(Finding(status, message))
    older = facts.missing_older.get(table, ())
    if older:
        findings.append(
            Finding(
                "WARN",
                f"{INCOMPLETE}: {table} is missing {len(older)} scheduled game(s) of the "
                f"{RECENT_DAYS} days before {facts.last_date}: "
                f"{listed(older, MAX_LISTED_GAMES)}",
            )
        )
    return findings


def upstream_findings(facts: UpstreamFacts, processor: str, inputs: Sequence[str]) -> list[Finding]:
    """SPEC 11 findings for one processor reading the Phase 3 tables `inputs`.

    A slate processor on a date without any scheduled game stays NO_GAMES: it built nothing
    that older holes could lower, so only P1 and P2 report them then.
    """
    if facts.is_off_season:
        return []
    findings = slate_findings(facts, processor)
    idle = not facts.scheduled_games and processor in MISSING_SLATE_FAILS
    if not idle:
        for table in GAME_SUMMARY_TABLES:
            if table in inputs:
                findings += game_findings(facts, processor, table)
    return findings


STATUS_RANK: dict[LineStatus, int] = {"NO_GAMES": 0, "OK": 1, "SKIPPED": 1, "WARN": 2, "FAIL": 3}


def with_findings(
    status: LineStatus, message: str, findings: Sequence[Finding]
) -> tuple[LineStatus, str]:
    """The worse of a line's status and its findings; the findings' messages lead."""
    if not findings:
        return status, message
    worst = max((f.status for f in findings), key=STATUS_RANK.__getitem__)
    kept = [message] if status in ("WARN", "FAIL") and message else []
    combined = "; ".join([*(f.message for f in findings), *kept])
    if STATUS_RANK[worst] > STATUS_RANK[status]:
        return worst, combined
    return status, combined
