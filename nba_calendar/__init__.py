"""The calendar vocabulary every layer speaks (SPEC 0): the season of a date, where a date sits
in its season, and which rows of a Phase 3 table a build for a date reads.

The bottom of the import graph: features/ and quality/ import it, it imports neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import Literal

import polars as pl

# Polars 2 defaults to its streaming engine; on frames this small (a season is ~25k
# player-games) the in-memory engine builds one date in half the time (make bench). Every
# layer's collects name it.
ENGINE: Literal["in-memory"] = "in-memory"
# The optimiser passes worth their cost on these plans (the processors' `to_table`, the feature
# checks): projection and predicate pushdown, and the order checks. The rest (common
# subexpressions and subplans, simplification, clustering of with_columns, join order, ...) took
# 1-1.5 ms of a nightly date's plan and made no measurable difference to its run or the season's;
# the plans mark their shared subplans with `cache()` themselves.
PLAN_OPTIMIZATIONS = pl.QueryOptFlags(
    comm_subexpr_elim=False,
    comm_subplan_elim=False,
    simplify_expression=False,
    slice_pushdown=False,
    cluster_with_columns=False,
    sort_collapse=False,
    row_estimate=False,
    join_order=False,
)
EARLY_SEASON_DAYS = 21
RECENT_DAYS = 30
SEASON_FIRST_MONTH = 8  # August starts a season
# Any date the pipeline takes (a command's dates, a Phase 3 game_date); wider than any season,
# narrow enough that the date arithmetic of the windows (30 days back, a season forward) stays
# inside Python's calendar.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


def season_of(analysis_date: date) -> int:
    """The 2024-25 season is 2024: August starts a new one."""
    return analysis_date.year - (analysis_date.month < SEASON_FIRST_MONTH)


def season_of_dates(dates: pl.Expr) -> pl.Expr:
    """`season_of` for a column of dates."""
    return dates.dt.year() - (dates.dt.month() < SEASON_FIRST_MONTH).cast(pl.Int32)


def season_days(season: int) -> tuple[date, date]:
    """The first and last calendar days of a season (August 1 to July 31, as `season_of`):
    bounds for reads, not SPEC 0's season start, which is the season's first game."""
    next_season = date(season + 1, SEASON_FIRST_MONTH, 1)
    return date(season, SEASON_FIRST_MONTH, 1), next_season - timedelta(days=1)


def season_first_day(analysis_date: date) -> date:
    """The first calendar day of D's season (`season_days`)."""
    return season_days(season_of(analysis_date))[0]


@dataclass(frozen=True)
class SlateCalendar:
    """Where D sits in its season; drives early_season_flag everywhere."""

    analysis_date: date
    season_year: int
    season_start: date

    @property
    def days_into_season(self) -> int:
        return (self.analysis_date - self.season_start).days

    @property
    def is_early_season(self) -> bool:
        return self.days_into_season < EARLY_SEASON_DAYS

    @property
    def recent_cutoff(self) -> date:
        """First date that counts as 'within 30 days of D'."""
        return self.analysis_date - timedelta(days=RECENT_DAYS)


def season_starts(
    dates: Iterable[date], team_offense: pl.DataFrame, team_context: pl.DataFrame
) -> dict[date, date]:
    """SPEC 0's season start of every date, in one pass: the earliest game_date of S among
    team offense rows dated before D and team context rows dated D or before; D when none.

    Only each season's first date of each table matters: it is before D (or on D for the
    context) exactly when some row of the season is.
    """
    days = sorted(set(dates))
    if not days:
        return {}

    def first(frame: pl.DataFrame, name: str) -> pl.LazyFrame:
        """Each season's first row by date (a group-by took twice as long)."""
        return (
            frame.lazy()
            .select(pl.col("season_year").cast(pl.Int64), pl.col("game_date").alias(name))
            .sort(name, nulls_last=True)
            .unique("season_year", keep="first")
        )

    day = pl.col("analysis_date")
    starts = (
        pl.LazyFrame(
            {"analysis_date": days, "season_year": [season_of(d) for d in days]},
            schema={"analysis_date": pl.Date, "season_year": pl.Int64},
        )
        .join(first(team_offense, "offense"), on="season_year", how="left")
        .join(first(team_context, "context"), on="season_year", how="left")
        .select(
            day,
            pl.min_horizontal(
                pl.when(pl.col("offense") < day).then(pl.col("offense")),
                pl.when(pl.col("context") <= day).then(pl.col("context")),
                day,
            ).alias("season_start"),
        )
        .collect(engine=ENGINE)
    )
    return dict(starts.iter_rows())


def slate_calendars(
    dates: Iterable[date], team_offense: pl.DataFrame, team_context: pl.DataFrame
) -> list[SlateCalendar]:
    """Every date's calendar, sorted by date."""
    starts = season_starts(dates, team_offense, team_context)
    return [SlateCalendar(d, season_of(d), start) for d, start in sorted(starts.items())]


def slate_calendar(
    analysis_date: date, team_offense: pl.DataFrame, team_context: pl.DataFrame
) -> SlateCalendar:
    """One date's calendar: `slate_calendars` of that date alone."""
    return slate_calendars([analysis_date], team_offense, team_context)[0]


# One row per slate date D: where D sits in its season, as columns the processors join on.
CALENDAR_SCHEMA: dict[str, pl.DataType] = {
    "analysis_date": pl.Date(),
    "season_year": pl.Int64(),
    "season_start": pl.Date(),
    "days_into_season": pl.Int64(),
    "early_season_flag": pl.Boolean(),
    "recent_cutoff": pl.Date(),
}
# What every processor takes: one date's calendar, or a frame of them (CALENDAR_SCHEMA).
Calendars = SlateCalendar | Sequence[SlateCalendar] | pl.DataFrame


def calendar_frame(calendars: Calendars) -> pl.DataFrame:
    """The calendars as one frame, a row per date, sorted by date (the many-date engine's input).

    A single date is a one-row frame, so the nightly run and a backfill run the same code.
    """
    if isinstance(calendars, pl.DataFrame):
        return calendars
    rows = [calendars] if isinstance(calendars, SlateCalendar) else list(calendars)
    return pl.DataFrame(
        {
            "analysis_date": [c.analysis_date for c in rows],
            "season_year": [c.season_year for c in rows],
            "season_start": [c.season_start for c in rows],
            "days_into_season": [c.days_into_season for c in rows],
            "early_season_flag": [c.is_early_season for c in rows],
            "recent_cutoff": [c.recent_cutoff for c in rows],
        },
        schema=CALENDAR_SCHEMA,
    ).sort("analysis_date")


# One condition of a read: (column, operator, value).
Bound = tuple[str, Literal["=", "<", "<=", ">="], date | int]


class ReadWindow(Enum):
    """Which rows of a Phase 3 table a build for D reads (point in time, SPEC 0)."""

    BEFORE = "season rows dated before D"
    ON = "rows dated D"
    THROUGH = "season rows dated D or before"

    def bounds(self, first: date, last: date) -> list[Bound]:
        """(column, operator, value) conditions selecting the rows every date of first..last
        (one season) reads: a chunk's read is the union of its dates' windows."""
        season = season_of(first)
        if season_of(last) != season:
            raise ValueError(f"{first}..{last} spans two seasons; split the range")
        if self is ReadWindow.ON:
            return [("game_date", ">=", first), ("game_date", "<=", last)]
        until: Bound = (
            ("game_date", "<", last) if self is ReadWindow.BEFORE else ("game_date", "<=", last)
        )
        return [("season_year", "=", season), until]
