"""SPEC 9 off-season and SPEC 11 upstream completeness: did Phase 3 do its job for D?

The schedule is `upcoming_team_game_context` (the games of season S are its game_ids). One pure
function, `upstream_facts`, reduces the Phase 3 frames to the facts about D the rules need, once
per date; `upstream_findings` turns them into WARN/FAIL findings for one processor, and
`with_findings` folds those into the processor's status line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import polars as pl

from nba_calendar import ENGINE, season_of
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_DAILY_CACHE,
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_OFFENSE_GAME_SUMMARY,
    Phase3Frames,
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
        """SPEC 9's two messages. A run for D reads nothing dated after D (SPEC 0), so a night
        before opening night cannot tell a season about to start from one not loaded: it says so."""
        if self.season_has_games:
            return "off-season"
        return (
            f"no Phase 3 data for season {self.season_year} before {self.analysis_date}"
            " (off-season before its first game, or the season is not loaded)"
        )


@dataclass(frozen=True)
class Finding:
    status: FindingStatus
    message: str


# Each game's first date in the schedule and in each game summary table (null: no row of it).
SCHEDULED = "scheduled_on"
FIRST_DATES = {
    PLAYER_GAME_SUMMARY.name: "player_games_on",
    TEAM_DEFENSE_GAME_SUMMARY.name: "team_defense_on",
    TEAM_OFFENSE_GAME_SUMMARY.name: "team_offense_on",
}


def first_dates(frame: pl.DataFrame, column: str) -> pl.LazyFrame:
    """season_year, game_id and the game's earliest game_date among the frame's rows (the
    first row of each game by date: a group-by took twice as long on a season's rows)."""
    return (
        frame.lazy()
        .select("season_year", "game_id", pl.col("game_date").alias(column))
        .drop_nulls(["season_year", column])
        .sort(column)
        .unique(["season_year", "game_id"], keep="first")
    )


def season_games(phase3: Phase3Frames) -> pl.LazyFrame:
    """Every game of every season, dated once per table: season_year, game_id, SCHEDULED and
    FIRST_DATES's columns. A game is scheduled before D when SCHEDULED < D, a table holds it
    before D when its column is < D (what the per-date filters of `game_date < D` found)."""
    games = first_dates(phase3.team_context, SCHEDULED)
    summaries = (phase3.player_games, phase3.team_defense, phase3.team_offense)
    for frame, column in zip(summaries, FIRST_DATES.values(), strict=True):
        games = games.join(
            first_dates(frame, column), on=["season_year", "game_id"], how="full", coalesce=True
        )
    return games


def dated_facts(phase3: Phase3Frames, dates: Sequence[date]) -> pl.DataFrame:
    """One row per date D with the game facts of its season S, vectorised over dates x games.

    A game's date as D knows it is the schedule's if it is scheduled before D, else the first
    game summary table's (player, defense, offense) that holds it before D: the rows the
    per-date code concatenated in that order and kept the first of.
    Lists are in (scheduled date, game_id) order.
    """
    day = pl.col("analysis_date")
    scheduled = pl.col(SCHEDULED)
    known = pl.coalesce(
        pl.when(pl.col(c) < day).then(pl.col(c)) for c in (SCHEDULED, *FIRST_DATES.values())
    )
    recent = pl.col("known").is_between(day - pl.duration(days=RECENT_DAYS), day, "left")
    last = pl.col("last_date")
    in_last = scheduled == last
    in_older = (scheduled >= last - pl.duration(days=RECENT_DAYS)) & (scheduled < last)
    on_d = scheduled == day
    offense = pl.col(FIRST_DATES[TEAM_OFFENSE_GAME_SUMMARY.name])
    ids = pl.col("game_id")

    def missing(column: str) -> pl.Expr:
        return pl.col(column).is_null() | (pl.col(column) >= day)

    every = sorted(set(dates))
    days = pl.LazyFrame(
        {"analysis_date": every, "season_year": [season_of(d) for d in every]},
        schema={"analysis_date": pl.Date, "season_year": pl.Int64},
    )
    games = season_games(phase3).sort(SCHEDULED, "game_id", nulls_last=True)
    return (
        days.join(games, on="season_year", how="left", maintain_order="left_right")
        .with_columns(
            known=known,
            last_date=scheduled.filter(scheduled < day).max().over("analysis_date"),
        )
        .group_by("analysis_date", maintain_order=True)
        .agg(
            pl.col("season_year").first(),
            scheduled_games=ids.filter(on_d),
            recent_games=recent.sum().cast(pl.Int64),
            season_has_games=pl.col("known").is_not_null().any() | on_d.any(),
            last_date=last.first(),
            last_games=ids.filter(in_last),
            **{f"last:{t}": ids.filter(in_last & missing(c)) for t, c in FIRST_DATES.items()},
            **{f"older:{t}": ids.filter(in_older & missing(c)) for t, c in FIRST_DATES.items()},
            season_games_before=(offense < day).sum().cast(pl.Int64),
        )
        .collect(engine=ENGINE)
    )


def slate_teams(
    team_context: pl.DataFrame, player_context: pl.DataFrame, dates: Sequence[date]
) -> tuple[dict[date, int], dict[date, tuple[str, ...]]]:
    """Per date: the player context rows dated D, and the teams scheduled on D (team context)
    without a player context row for D, sorted. Every season's rows count, as for one date."""
    days = sorted(set(dates))
    slate = (
        player_context.lazy()
        .select("game_date", "team_abbr")
        .filter(pl.col("game_date").is_in(days))
    )
    players = dict(slate.group_by("game_date").len().collect(engine=ENGINE).iter_rows())
    lacking = (
        team_context.lazy()
        .select("game_date", "team_abbr")
        .filter(pl.col("game_date").is_in(days))
        .join(slate.unique(), on=["game_date", "team_abbr"], how="anti")
        .group_by("game_date")
        .agg(pl.col("team_abbr").unique().sort())
        .collect(engine=ENGINE)
    )
    teams = {day: tuple(abbrs) for day, abbrs in lacking.iter_rows()}
    return players, teams


def upstream_facts_of(
    phase3: Phase3Frames, dates: Sequence[date], dated: pl.DataFrame | None = None
) -> dict[date, UpstreamFacts]:
    """The facts the completeness and off-season rules need about each date, in one pass:
    each season's games are dated once per table, then every date's facts are read from those
    (`dated_facts`, computed here unless given).

    Frames may hold more dates than the dates need (backfill chunks): everything is filtered here.
    """
    if dated is None:
        dated = dated_facts(phase3, dates)
    players, teams = slate_teams(phase3.team_context, phase3.player_context, dates)
    facts: dict[date, UpstreamFacts] = {}
    for row in dated.iter_rows(named=True):
        day = row["analysis_date"]
        facts[day] = UpstreamFacts(
            analysis_date=day,
            season_year=row["season_year"],
            scheduled_games=tuple(row["scheduled_games"]),
            teams_without_context=teams.get(day, ()),
            slate_players=players.get(day, 0),
            recent_games=row["recent_games"],
            season_has_games=row["season_has_games"],
            last_date=row["last_date"],
            last_games=tuple(row["last_games"]),
            missing_last={t: tuple(row[f"last:{t}"]) for t in GAME_SUMMARY_TABLES},
            missing_older={t: tuple(row[f"older:{t}"]) for t in GAME_SUMMARY_TABLES},
        )
    return facts


def upstream_facts(phase3: Phase3Frames, analysis_date: date) -> UpstreamFacts:
    """The facts of one date D: `upstream_facts_of` with that date alone (the nightly run)."""
    return upstream_facts_of(phase3, [analysis_date])[analysis_date]


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
