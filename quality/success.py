"""Success criteria of SPEC section 9: one status line per processor per run, and the run's
and a backfill's status from their lines (the flows return them; the CLI prints them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Literal

import polars as pl

from nba_calendar import SlateCalendar, season_of, season_starts
from quality.completeness import (
    UpstreamFacts,
    dated_facts,
    upstream_facts_of,
    upstream_findings,
    with_findings,
)
from quality.schemas import (
    ML_FEATURE_STORE_V2,
    PLAYER_COMPOSITE_FACTORS,
    PLAYER_DAILY_CACHE,
    PLAYER_SHOT_ZONE_ANALYSIS,
    PROCESSOR_RUNS,
    TEAM_DEFENSE_ZONE_ANALYSIS,
    GraphNode,
    Phase3Frames,
)

Status = Literal["OK", "WARN", "FAIL", "SKIPPED", "NO_GAMES"]
STATUS_MARKS: dict[str, str] = {
    "OK": "✅",
    "WARN": "⚠️",
    "FAIL": "❌",
    "SKIPPED": "⏭️",
    "NO_GAMES": "💤",
}
STATUS_ORDER = ("FAIL", "WARN", "SKIPPED", "NO_GAMES", "OK")  # worst first
SLATE_PROCESSORS = {
    PLAYER_COMPOSITE_FACTORS.name,
    PLAYER_DAILY_CACHE.name,
    ML_FEATURE_STORE_V2.name,
}
RUN_TIME_LIMIT_MINUTES = 60
MIN_TEAMS = 20
MIN_PLAYERS = 400
MIN_PLAYERS_EARLY = 100
MIN_CACHE_PLAYERS = 100
MIN_AVERAGE_QUALITY = 70.0


@dataclass(frozen=True)
class SlateFacts:
    """What the processors and the criteria need to know about D, derived once per run."""

    analysis_date: date
    is_early_season: bool
    slate_players: int
    season_games_before: int
    season_start: date | None = None  # None only in facts written by hand (tests)
    upstream: UpstreamFacts | None = None  # SPEC 9 off-season and SPEC 11 completeness

    @property
    def calendar(self) -> SlateCalendar:
        """The calendar the processors build D with (SPEC section 0)."""
        start = self.season_start or self.analysis_date
        return SlateCalendar(self.analysis_date, season_of(self.analysis_date), start)


def slate_facts_of(dates: Sequence[date], phase3: Phase3Frames) -> dict[date, SlateFacts]:
    """The facts of each date from the Phase 3 frames a run read (frames may hold more dates),
    in one pass: each season's games are dated once per table, then every date's facts are read
    from those (`dated_facts`).

    Season games are counted in team_offense_game_summary alone: it is the table SPEC section 0
    dates the season by, so "season S has games before D" and the season start agree, and a
    broken team_defense_game_summary fails only the processors that read it (the nightly flow
    used max(offense, defense) rows, the backfill offense rows; both only ever compared > 0).
    The season start is nba_calendar's (SPEC 0), the one the processors build with.
    """
    dated = dated_facts(phase3, dates)
    upstream = upstream_facts_of(phase3, dates, dated)
    starts = season_starts(dates, phase3.team_offense, phase3.team_context)
    facts: dict[date, SlateFacts] = {}
    for day, played in dated.select("analysis_date", "season_games_before").iter_rows():
        calendar = SlateCalendar(day, season_of(day), starts[day])
        facts[day] = SlateFacts(
            analysis_date=day,
            is_early_season=calendar.is_early_season,
            slate_players=upstream[day].slate_players,
            season_games_before=played,
            season_start=calendar.season_start,
            upstream=upstream[day],
        )
    return facts


def slate_facts(analysis_date: date, phase3: Phase3Frames) -> SlateFacts:
    """The facts of one date D: `slate_facts_of` with that date alone (the nightly run)."""
    return slate_facts_of([analysis_date], phase3)[analysis_date]


@dataclass(frozen=True, kw_only=True)
class RunLine:
    run_id: str
    processor: str
    analysis_date: date
    status: Status
    rows: int | None = None  # None: nothing written (a line that never ran has no figures)
    duration_seconds: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str
    bytes_processed: int | None = None  # BigQuery only: what the processor's own jobs scanned
    bytes_billed: int | None = None
    input_fingerprint: str | None = None  # SPEC 14: digest of the Phase 3 rows read for D

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def _has_recent_games(facts: SlateFacts) -> bool:
    """SPEC 9 amended P1/P2 rule: 0 rows fail only while S has games in the 30 days before D."""
    if facts.upstream is None:
        return facts.season_games_before > 0
    return facts.upstream.recent_games > 0


def _volume_check(
    processor: str, rows: int, facts: SlateFacts, avg_quality: float | None
) -> tuple[Status, str]:
    early = facts.is_early_season
    has_history = _has_recent_games(facts)
    if processor == TEAM_DEFENSE_ZONE_ANALYSIS.name:
        if rows == 0 and has_history:
            return "FAIL", "0 teams while the season has games in the 30 days before D"
        if rows < MIN_TEAMS and not early:
            return "WARN", f"only {rows} teams (< {MIN_TEAMS})"
    elif processor == PLAYER_SHOT_ZONE_ANALYSIS.name:
        if rows == 0 and has_history:
            return "FAIL", "0 players while the season has games in the 30 days before D"
        floor = MIN_PLAYERS_EARLY if early else MIN_PLAYERS
        if rows < floor:
            return "WARN", f"only {rows} players (< {floor})"
    elif facts.slate_players == 0:
        return "NO_GAMES", "no games"
    elif processor in (PLAYER_COMPOSITE_FACTORS.name, ML_FEATURE_STORE_V2.name):
        if rows < facts.slate_players:
            return "FAIL", f"{rows} rows for {facts.slate_players} slate players"
        if (
            processor == ML_FEATURE_STORE_V2.name
            and not early
            and avg_quality is not None
            and avg_quality < MIN_AVERAGE_QUALITY
        ):
            return "WARN", f"average quality {avg_quality:.1f} < {MIN_AVERAGE_QUALITY:g}"
    elif processor == PLAYER_DAILY_CACHE.name:
        if rows == 0 and not early:
            return "FAIL", "0 rows on a game day"
        cache_floor = min(MIN_CACHE_PLAYERS, facts.slate_players / 2)
        if rows < cache_floor:
            return "WARN", f"only {rows} players cached (< {cache_floor:g})"
    return "OK", ""


def evaluate(
    processor: str,
    facts: SlateFacts,
    *,
    reads: Sequence[str],
    rows: int | None,
    error: str | None,
    duration_seconds: float | None,
    time_limit_minutes: float,
    avg_quality: float | None = None,
) -> tuple[Status, str]:
    """Status and message for one processor's outcome; `reads`: the Phase 3 tables it reads
    (SPEC 11 judges those)."""
    if error is not None:
        return "FAIL", error
    assert rows is not None
    if facts.upstream is not None and facts.upstream.is_off_season:
        return "NO_GAMES", facts.upstream.off_season_message
    status, message = _volume_check(processor, rows, facts, avg_quality)
    if facts.upstream is not None:
        findings = upstream_findings(facts.upstream, processor, reads)
        status, message = with_findings(status, message, findings)
    if duration_seconds is not None and duration_seconds > time_limit_minutes * 60:
        slow = f"took {duration_seconds / 60:.1f} min (limit {time_limit_minutes:g})"
        if status == "OK":
            return "WARN", slow
        message = f"{message}; {slow}"
    return status, message or f"{rows} rows"


def output_figures(
    entry: GraphNode, frame: pl.DataFrame, column: str
) -> dict[date, tuple[int, float | None]]:
    """Each date's rows in a many-date output and, for P5, their average feature quality
    (SPEC 9): one group-by for every date; a date without rows is absent."""
    quality = (
        pl.col("feature_quality_score").mean()
        if entry.table == ML_FEATURE_STORE_V2.name
        else pl.lit(None, dtype=pl.Float64)
    )
    counted = frame.group_by(column).agg(pl.len().cast(pl.Int64), quality.alias("quality"))
    return {day: (rows, avg) for day, rows, avg in counted.iter_rows()}


def evaluate_output(
    entry: GraphNode,
    facts: SlateFacts,
    rows: int,
    avg_quality: float | None,
    duration_seconds: float,
) -> tuple[Status, str]:
    """Status of a processor that produced `rows` for D (`output_figures`) in
    `duration_seconds`."""
    return evaluate(
        entry.table,
        facts,
        reads=tuple(entry.phase3.values()),
        rows=rows,
        error=None,
        duration_seconds=duration_seconds,
        time_limit_minutes=entry.time_limit_minutes,
        avg_quality=avg_quality,
    )


def upstream_not_built(entry: GraphNode, facts: SlateFacts, notes: str) -> tuple[Status, str]:
    """FAIL of a processor not built for D because an upstream was not (SPEC 17), its own SPEC 11
    findings first: SPEC 11 names every reader of an incomplete table, whatever else failed."""
    reads = tuple(entry.phase3.values())
    found = [] if facts.upstream is None else upstream_findings(facts.upstream, entry.table, reads)
    return with_findings("FAIL", notes, found)


def run_failed(lines: list[RunLine]) -> bool:
    return any(line.status == "FAIL" for line in lines)


def lines_by_date(lines: Sequence[RunLine]) -> dict[date, list[RunLine]]:
    """Each date's lines, dates in order, each date's lines in run order."""
    by_date: dict[date, list[RunLine]] = {}
    for line in sorted(lines, key=lambda line: line.analysis_date):  # stable: run order kept
        by_date.setdefault(line.analysis_date, []).append(line)
    return by_date


def date_status(lines: Sequence[RunLine]) -> str:
    """The worst status among a date's lines."""
    statuses = {line.status for line in lines}
    return next((s for s in STATUS_ORDER if s in statuses), "OK")


def run_rows(lines: Sequence[RunLine]) -> pl.DataFrame:
    """processor_runs rows of `lines`, each field to its column by name."""
    return pl.DataFrame([line.as_row() for line in lines], schema=PROCESSOR_RUNS.polars_schema)


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """A nightly run's lines and its status (SPEC 9), as its flow returns them."""

    run_id: str
    analysis_date: date
    lines: list[RunLine] = field(default_factory=list)
    duration_seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return run_failed(self.lines)

    @property
    def too_slow(self) -> bool:
        """SPEC section 9: a whole run over 60 minutes is a WARN."""
        return self.duration_seconds > RUN_TIME_LIMIT_MINUTES * 60

    @property
    def status(self) -> str:
        slate_lines = [line for line in self.lines if line.processor in SLATE_PROCESSORS]
        if self.failed:
            return "FAIL"
        if self.too_slow or any(line.status == "WARN" for line in self.lines):
            return "WARN"
        if slate_lines and all(line.status == "NO_GAMES" for line in slate_lines):
            return "NO_GAMES"
        return "OK"

    def summary(self) -> str:
        """One log line: "phase4 2024-01-15: 5 OK, 0 WARN, 0 FAIL; 1,098 rows in 3.1 s"."""
        counts = {s: sum(line.status == s for line in self.lines) for s in STATUS_MARKS}
        shown = [f"{n} {s}" for s, n in counts.items() if n or s in ("OK", "WARN", "FAIL")]
        rows = sum(line.rows or 0 for line in self.lines)
        return (
            f"phase4 {self.analysis_date}: {', '.join(shown)}; "
            f"{rows:,} rows in {self.duration_seconds:.1f} s"
        )

    def table_rows(self) -> list[dict[str, str]]:
        """Display rows for the artifact, the CLI and `phase4 status`."""
        return [
            {
                "processor": line.processor,
                "status": f"{STATUS_MARKS[line.status]} {line.status}",
                "rows": "" if line.rows is None else str(line.rows),
                "duration_s": ""
                if line.duration_seconds is None
                else f"{line.duration_seconds:.2f}",
                "message": line.message,
            }
            for line in self.lines
        ]


@dataclass
class BackfillSummary:
    """A backfill's committed lines and the dates it skipped, summed up per date."""

    start_date: date
    end_date: date
    lines: list[RunLine] = field(default_factory=list)
    skipped_dates: list[date] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        """Rows of the committed lines (a FAIL line writes nothing and has no rows)."""
        return sum(line.rows or 0 for line in self.lines)

    def per_date(self) -> list[dict[str, object]]:
        rows = [
            {
                "date": d.isoformat(),
                "status": date_status(ls),
                "rows": sum(line.rows or 0 for line in ls),
                "message": "; ".join(
                    f"{line.processor}: {line.message}"
                    for line in ls
                    if line.status in ("WARN", "FAIL")
                ),
            }
            for d, ls in lines_by_date(self.lines).items()
        ]
        rows += [
            {"date": d.isoformat(), "status": "SKIPPED", "rows": 0, "message": "up to date"}
            for d in self.skipped_dates
        ]
        return sorted(rows, key=lambda r: str(r["date"]))

    @property
    def failed_dates(self) -> list[date]:
        return sorted({line.analysis_date for line in self.lines if line.status == "FAIL"})

    def counts(self) -> dict[str, int]:
        return dict(Counter(str(row["status"]) for row in self.per_date()))


class RunFailed(Exception):
    """A run or backfill that ended Failed, with its report or summary as `outcome`. A Failed
    state's data must be an exception: for anything else Prefect raised a TypeError where the
    flow ran (a worker's log ended in `Unexpected result for failed state: RunReport(…)`); the
    traceback Prefect logs for a failed flow run there now ends in the run's own message."""

    def __init__(self, message: str, outcome: RunReport | BackfillSummary) -> None:
        super().__init__(message)
        self.outcome = outcome

    def __reduce__(self) -> tuple[type[RunFailed], tuple[str, RunReport | BackfillSummary]]:
        return type(self), (str(self), self.outcome)  # a persisted result unpickles whole
