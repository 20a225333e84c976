"""The many-date engine and the helpers the processors share: each entity's game sequence
with its windows (`game_sequence`, `Window`, `as_of`), tier ladders, an upstream's row for D,
and a placeholder's NULL columns.

Each helper exists once so the processors compute the same thing the same way, and the same
bits: integer sums are exact, float means and deviations go through the order-independent
`stable_mean`/`stable_std` (see docs/engine.md).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl
from polars.expr.whenthen import ChainedThen, Then

from features.common import completeness_pct, ratio
from nba_calendar import ENGINE
from quality.schemas import TableSchema
from quality.stable import (
    ascending,
    squared_deviations,
    stable_list_mean,
    stable_list_std,
)

ZONES = ("paint", "mid_range", "three_pt")
# A zone sum needs both figures of the paint and the mid-range (three-point is always known).
ZONE_FIGURES_REQUIRED = ("paint_attempts", "paint_makes", "mid_range_attempts", "mid_range_makes")
# Besides its source tracking, a placeholder keeps the reason it is one.
PLACEHOLDER_KEEPS = frozenset({"insufficient_data_reason"})


# --- many dates in one pass: each entity's game sequence -----------------------------------
#
# Every window "as of D" is a window ending at the entity's last game before D. So the engine
# computes, for each entity's games that are its last before some D built (the target rows),
# the windows ending at that game (`windowed`: one rolling group-by per window; or the row
# expressions of `Window`), then gives every (entity, D) pair the row of its last game before
# D with an as-of join. A date's
# rows depend only on the entity's own games before D, never on which other dates are built
# or in which order the rows came, so any chunking gives the same bits (docs/engine.md).

SEQUENCE = "sequence_id"  # one id per (entity, season)
GAME_NUMBER = "game_number"  # 0 = the entity's first game of the season
TARGET = "as_of_target"  # the entity's last game before some D being built
# A game's place in the whole frame, increasing: sequence x stride + game number. A window of
# n games is then the index range (i - n, i], which never reaches another sequence's games, so
# Polars' rolling groups (slices of the sorted frame) are every game's windows at once.
WINDOW_INDEX = "window_index"
_STRIDE = 1 << 20
_SEASON_GAMES = 1 << 19  # "the season so far": more games than a season has, under the stride


def game_sequence(
    games: pl.DataFrame | pl.LazyFrame,
    entity: str,
    dates: pl.DataFrame | pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Each entity's games of each season, oldest first (ties on a date: lower game_id first).

    With `dates` (a calendar frame), `as_of_target` marks the games that are some entity's
    last game before a D of `dates`: only those rows are ever read by `as_of`, so the window
    aggregates are needed for them alone (`windowed`). Games on or after the last date of
    their season in `dates` are in no window read, and are left out: a nightly date early in
    the season sequences a few hundred games, not the season's.
    """
    if dates is None:
        return _numbered(games.lazy(), entity).with_columns(pl.lit(True).alias(TARGET))
    # The first date built after each game of a season (none: the game is left out), found in
    # the sorted (season, date) keys of `dates`: a search, not a join.
    calendar = dates.collect(engine=ENGINE) if isinstance(dates, pl.LazyFrame) else dates
    slates = pl.lit(
        calendar.select(_season_day("analysis_date").unique().sort())
        .to_series()
        .extend_constant(_NO_SLATE, 1)
    )
    next_slate = slates.gather(slates.search_sorted(_GAME_DAY, side="right"))
    # A game on or after the last date built is in no window (a first, cheap cut of the rows
    # the search then runs on: a nightly date's season so far, not the whole season).
    last = calendar.get_column("analysis_date").max()  # None: no date, no game in a window
    before_last = pl.lit(False) if last is None else pl.col("game_date") < last
    return (
        _numbered(
            games.lazy()
            .filter(_DATED & before_last)
            .with_columns(next_slate.alias("next_slate"))
            .filter(_BEFORE_SEASON_END),
            entity,
        )
        .with_columns(_IS_TARGET)
        .drop("next_slate")
    )


_SEASON_KEY = 1 << 32  # (season, date) as one Int64: season x 2^32 + the date's day number
_DAYS_LIMIT = 1 << 31  # a day number is under 2^31 either side of 1970
_NO_SLATE = 1 << 62  # after every key: a game without a later date


def _season_day(day: str) -> pl.Expr:
    """A row's (season_year, `day`) as one Int64 ordered as the pair is."""
    days = pl.col(day).cast(pl.Int32).cast(pl.Int64)
    return pl.col("season_year").cast(pl.Int64) * _SEASON_KEY + days


# game_sequence's expressions, built once at import.
_GAME_DAY = _season_day("game_date")
_DATED = pl.col("game_date").is_not_null() & pl.col("season_year").is_not_null()
_BEFORE_SEASON_END = pl.col("next_slate") < (
    pl.col("season_year").cast(pl.Int64) * _SEASON_KEY + _DAYS_LIMIT
)
_NEXT_GAME = pl.when(pl.col(SEQUENCE).shift(-1) == pl.col(SEQUENCE)).then(_GAME_DAY.shift(-1))
# A target: the sequence's last game, or a date built between it and the next.
_IS_TARGET = (_NEXT_GAME.is_null() | (pl.col("next_slate") <= _NEXT_GAME)).alias(TARGET)
_ROW = pl.int_range(pl.len(), dtype=pl.Int64)
_WINDOW_INDEX = (pl.col(SEQUENCE).cast(pl.Int64) * _STRIDE + pl.col(GAME_NUMBER)).alias(
    WINDOW_INDEX
)


@functools.cache
def _numbering(entity: str) -> list[pl.Expr]:
    """SEQUENCE and GAME_NUMBER of the sorted games: a new sequence where the entity or the
    season changes (no per-group pass). Built once per entity column."""
    starts = (
        (pl.col(entity) != pl.col(entity).shift(1))
        | (pl.col("season_year") != pl.col("season_year").shift(1))
    ).fill_null(True)
    return [
        starts.cum_sum().alias(SEQUENCE),
        (_ROW - pl.when(starts).then(_ROW).forward_fill()).alias(GAME_NUMBER),
    ]


def _numbered(games: pl.LazyFrame, entity: str) -> pl.LazyFrame:
    """The games sorted into sequences, with SEQUENCE, GAME_NUMBER and WINDOW_INDEX (sorted on
    one thread: a season's games are too few to gain from splitting the sort, and the other
    processor of the pair runs meanwhile)."""
    return (
        games.sort([entity, "season_year", "game_date", "game_id"], multithreaded=False)
        .with_columns(_numbering(entity))
        .with_columns(_WINDOW_INDEX)
    )


def games_of(
    games: pl.DataFrame | pl.LazyFrame, pairs: pl.LazyFrame, entity: str, key: str | None = None
) -> pl.LazyFrame:
    """The games of the entities `as_of` will read in `pairs` (`key`: the entity's column
    there): a nightly date sequences the slate's players alone, not the league's. A window
    reads the entity's own games only, so its values do not move; the join is on the entity
    alone (its other seasons' games come along, in sequences no pair reads), a single key
    being the cheaper join; the games keep their order (the sort after it starts from the
    input's, as without the join)."""
    wanted = pairs.select(pl.col(key or entity).alias(entity))
    return games.lazy().join(wanted, on=entity, how="semi", maintain_order="left")


class Window:
    """The games from `start` to `stop - 1` ago as of a row of a `game_sequence` (0 = that
    game itself, the newest before D); `stop` None means the whole season so far.

    Every aggregate skips NULLs; `where` leaves a game out (a NULL condition counts as False).
    """

    def __init__(self, stop: int | None, start: int = 0) -> None:
        if stop is None and start:
            raise ValueError("a season-long window starts at the newest game")
        self.start, self.stop = start, stop

    def _values(self, expr: pl.Expr, where: pl.Expr | None) -> pl.Expr:
        return expr if where is None else pl.when(where.fill_null(False)).then(expr)

    # --- the aggregates: one `rolling` group-by over WINDOW_INDEX each (`windowed`) ---------
    #
    # Each game's value (NULL: not counted) is a column of the sequence; the window aggregates
    # it with a plain count, sum, max or list, which Polars computes over the sorted slices
    # directly (row expressions of running sums, lags and masks took some twenty Polars steps
    # each over the whole frame, and a processor has dozens). Integer sums are exact; a float
    # window's known values are sorted into one list on the target rows only, then reduced in
    # order (`stable_list_mean`, `stable_list_std`).

    def rolling(self) -> tuple[str, str]:
        """The window as a `rolling` range of WINDOW_INDEX, (i - stop, i - start]: its
        period and offset."""
        if self.stop is None:
            return f"{_SEASON_GAMES}i", f"-{_SEASON_GAMES}i"
        return f"{self.stop - self.start}i", f"-{self.stop}i"

    def reach(self) -> int:
        """How many games before a target row its window reaches back (itself included)."""
        return _SEASON_GAMES if self.stop is None else self.stop

    def agg_known(self, expr: pl.Expr, where: pl.Expr | None = None) -> Aggregate:
        """How many games of the window have `expr` known (and meet `where`)."""
        return Aggregate(self, self._values(expr, where), "count")

    def agg_count(self, where: pl.Expr | None = None) -> Aggregate:
        """Games in the window (meeting `where`)."""
        return self.agg_known(pl.col(GAME_NUMBER), where)

    def agg_sum(self, expr: pl.Expr, where: pl.Expr | None = None) -> Aggregate:
        """Sum of the known values (integer columns: exact in any order); NULL when none is
        known. Float columns go through `agg_mean`, whose bits do not depend on the order."""
        return Aggregate(self, self._values(expr, where), "sum")

    def agg_max(self, expr: pl.Expr, where: pl.Expr | None = None) -> Aggregate:
        """Largest known value; NULL when none is known."""
        return Aggregate(self, self._values(expr, where), "max")

    def agg_integer_mean(self, expr: pl.Expr, where: pl.Expr | None = None) -> Aggregate:
        """Mean of an integer column from its exact sum over the count: the same bits as
        `stable_mean` (every partial sum of integers is exact)."""
        return Aggregate(self, self._values(expr, where), "integer_mean")

    def agg_mean(self, expr: pl.Expr, where: pl.Expr | None = None) -> Aggregate:
        """Mean of the known values (as Float64) with the bits of `stable_mean`: `list.mean` of
        the sorted values adds them in order; NULL when none is known."""
        return Aggregate(self, self._values(expr.cast(pl.Float64), where), "mean")

    def agg_std(self, expr: pl.Expr, where: pl.Expr | None = None) -> Aggregate:
        """Sample standard deviation (ddof 1) of the known values, `stable_std` of the sorted
        list; NULL under 2 of them."""
        return Aggregate(self, self._values(expr.cast(pl.Float64), where), "std")


AggregateKind = Literal["count", "sum", "max", "integer_mean", "mean", "std"]
_KNOWN = "__known"  # suffix of a sum's count of known values, until the sum is read
_BEFORE_TARGET = "__games_before_target"  # how far the next target row is (NULL: none)
_SQUARES = "__squares"  # suffix of a deviation's sorted squared deviations


@dataclass(frozen=True)
class Aggregate:
    """One column of `windowed`: `per_game` is each game's value (NULL: the game does not
    count), aggregated over the window as `kind` says. The window's aggregate is a plain
    count, sum, max or list (one kernel pass over the rolling slices); `value` then turns it
    into the column on the target rows alone (a sorted list into its mean: the costly part,
    for a few rows)."""

    window: Window
    per_game: pl.Expr
    kind: AggregateKind
    name: str | None = None

    def alias(self, name: str) -> Aggregate:
        return replace(self, name=name)

    @property
    def column(self) -> str:
        assert self.name is not None, "every aggregate of windowed is named (alias)"
        return self.name

    @property
    def per_game_column(self) -> str:
        return f"__per_game__{self.column}"

    def per_window(self) -> list[pl.Expr]:
        """The window's aggregates of the per-game column (a sum also counts its values)."""
        games, name = pl.col(self.per_game_column), self.column
        if self.kind == "count":
            return [games.count().cast(pl.Int64).alias(name)]
        if self.kind == "max":
            return [games.max().alias(name)]
        if self.kind in ("mean", "std"):
            return [games.alias(name)]
        return [games.sum().alias(name), games.count().cast(pl.Int64).alias(name + _KNOWN)]

    def value(self) -> pl.Expr | None:
        """The column on the target rows, once joined to them (None: as aggregated)."""
        column, known = pl.col(self.column), pl.col(self.column + _KNOWN)
        if self.kind == "sum":
            return pl.when(known > 0).then(column).alias(self.column)
        if self.kind == "integer_mean":
            total = pl.when(known > 0).then(column)
            return (total.cast(pl.Float64) / known).alias(self.column)
        if self.kind == "mean":  # the list is sorted by then (`windowed`)
            return stable_list_mean(column).alias(self.column)
        if self.kind == "std":
            return stable_list_std(column, pl.col(self.column + _SQUARES)).alias(self.column)
        return None


class Windowed:
    """`windowed` with its expressions built once: a processor declares its windows at import
    (`Windowed(columns, aggregates)`) and applies them to each call's sequence (`of`)."""

    def __init__(self, columns: Sequence[str | pl.Expr], aggregates: Sequence[Aggregate]) -> None:
        self.columns = tuple(columns)
        self.per_game = [a.per_game.alias(a.per_game_column) for a in aggregates]
        windows = {a.window: [b for b in aggregates if b.window == a.window] for a in aggregates}
        # Per window: its rolling range, the games it reaches and its aggregates.
        self.windows = [
            (
                *window.rolling(),
                pl.col(_BEFORE_TARGET) < window.reach(),
                [e for a in of_window for e in a.per_window()],
            )
            for window, of_window in windows.items()
        ]
        lists = [a.column for a in aggregates if a.kind in ("mean", "std")]
        deviations = [a.column for a in aggregates if a.kind == "std"]
        self.ascending = [ascending(pl.col(c)).alias(c) for c in lists]
        self.squares = [squared_deviations(pl.col(c)).alias(c + _SQUARES) for c in deviations]
        self.finished = [v for v in (a.value() for a in aggregates) if v is not None]
        counts = [a.column + _KNOWN for a in aggregates if a.kind in ("sum", "integer_mean")]
        self.scratch = [WINDOW_INDEX, *counts, *(c + _SQUARES for c in deviations)]

    def of(self, sequence: pl.LazyFrame) -> pl.LazyFrame:
        """The `as_of_target` rows of `sequence` with the columns and the aggregates."""
        sequence = sequence.with_columns(*self.per_game, _GAMES_BEFORE_TARGET).cache()
        rows = sequence.filter(pl.col(TARGET)).select(WINDOW_INDEX, *self.columns)
        for period, offset, reached, aggregates in self.windows:
            per_window = (
                sequence.filter(reached)
                .rolling(WINDOW_INDEX, period=period, offset=offset)
                .agg(aggregates)
            )
            rows = rows.join(per_window, on=WINDOW_INDEX, how="left")
        if self.ascending:
            rows = rows.with_columns(self.ascending)
        if self.squares:
            rows = rows.with_columns(self.squares)
        return rows.with_columns(self.finished).drop(self.scratch)


# How far the next target row is along the sequence (one sequence for every window).
_GAMES_BEFORE_TARGET = (
    pl.when(pl.col(TARGET)).then(pl.col(WINDOW_INDEX)).backward_fill() - pl.col(WINDOW_INDEX)
).alias(_BEFORE_TARGET)


def windowed(
    sequence: pl.LazyFrame, columns: Sequence[str | pl.Expr], aggregates: Sequence[Aggregate]
) -> pl.LazyFrame:
    """The `as_of_target` rows of a `game_sequence` (what `as_of` reads) with `columns` (row
    expressions of the sequence) and the `aggregates`, one rolling group-by per window.

    A window's group-by holds only the games some target's window reaches: a nightly date
    aggregates a few thousand games, not the season's. (`Windowed` builds the expressions
    once.)
    """
    return Windowed(columns, aggregates).of(sequence)


def as_of(
    pairs: pl.LazyFrame, sequence: pl.LazyFrame, entity: str, *, key: str | None = None
) -> pl.LazyFrame:
    """Each (entity, analysis_date, season_year) pair of `pairs` gets the `sequence` row of the
    entity's last game of that season strictly before D (point in time); NULLs without one.

    `key` names the entity's column in `pairs` when it differs (a player's opponent, say).
    Only the last game of each entity's date is kept, so games on one date are one step.
    """
    key = key or entity
    last_of_date = sequence.filter(
        pl.col(GAME_NUMBER) == pl.col(GAME_NUMBER).max().over([entity, "season_year", "game_date"])
    ).rename({entity: key} if key != entity else {})
    return latest_before(pairs, last_of_date, [key, "season_year"])


def latest_before(pairs: pl.LazyFrame, rows: pl.LazyFrame, by: Sequence[str]) -> pl.LazyFrame:
    """Each pair (analysis_date D) with the `rows` of its `by` group dated last strictly before
    D (point in time: a row of D itself never counts); NULLs where there is none."""
    return pairs.sort("analysis_date").join_asof(
        rows.sort("game_date"),
        left_on="analysis_date",
        right_on="game_date",
        by=list(by),
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )


def first_games(sequence: pl.LazyFrame) -> pl.LazyFrame:
    """Each entity's first game of each season in a `game_sequence`: for `entity_dates`, the
    same pairs as from every game (a game no D comes after is in no pair either way)."""
    return sequence.filter(pl.col(GAME_NUMBER) == 0)


def entity_dates(
    games: pl.DataFrame | pl.LazyFrame, entity: str, calendars: pl.DataFrame
) -> pl.LazyFrame:
    """Every (entity, D) pair where the entity has a game of D's season before D."""
    first_game = games.lazy().group_by(entity, "season_year").agg(pl.col("game_date").min())
    return (
        calendars.lazy()
        .join(first_game, on="season_year", how="inner")
        .filter(pl.col("game_date") < pl.col("analysis_date"))
        .drop("game_date")
    )


# --- which games count ----------------------------------------------------------------------


def zones_known() -> pl.Expr:
    """A game with any unknown paint or mid-range figure is left out of every zone sum."""
    return pl.all_horizontal(pl.col(c).is_not_null() for c in ZONE_FIGURES_REQUIRED)


# --- window sums and means ------------------------------------------------------------------


def assisted_sums(window: Window, kinds: Sequence[str] = ("assisted",)) -> list[Aggregate]:
    """Σ`<kind>_fg_makes` and Σfg_makes over the window's games where the kind is known,
    named `<kind>_makes` and `<kind>_fg_base`: the two halves of `assisted_rate` (aggregations
    of `Window.over`)."""
    exprs: list[Aggregate] = []
    for kind in kinds:
        known = pl.col(f"{kind}_fg_makes").is_not_null()
        exprs += [
            window.agg_sum(pl.col(f"{kind}_fg_makes"), known).alias(f"{kind}_makes"),
            window.agg_sum(pl.col("fg_makes"), known).alias(f"{kind}_fg_base"),
        ]
    return exprs


def assisted_rate(kind: str = "assisted") -> pl.Expr:
    """`<kind>` makes / makes x 100 over the games where both are known (see assisted_sums)."""
    return ratio(pl.col(f"{kind}_makes"), pl.col(f"{kind}_fg_base")) * 100.0


# --- tiers ----------------------------------------------------------------------------------


def tier(value: pl.Expr, ladder: Sequence[tuple[float, str]], below: str) -> pl.Expr:
    """The label of the first rung `value` reaches (>=), from the top; `below` under all."""
    (first_at, first_label), *rest = ladder
    chain: Then | ChainedThen = pl.when(value >= first_at).then(pl.lit(first_label))
    for at, label in rest:
        chain = chain.when(value >= at).then(pl.lit(label))
    return chain.otherwise(pl.lit(below))


# --- an upstream's row for D ----------------------------------------------------------------


def attach_upstream_by_date(
    rows: pl.LazyFrame,
    upstream: pl.DataFrame | None,
    schema: TableSchema,
    columns: Iterable[pl.Expr | str],
    found: str,
    *,
    rows_key: str | None = None,
) -> pl.LazyFrame:
    """The many-date `attach_upstream`: each row (keyed by `analysis_date`) gets the upstream's
    row of its own date, with `found` telling a missing row (or a failed upstream) from NULL."""
    key = schema.key[0]
    rows_key = rows_key or key
    partition = schema.empty_frame() if upstream is None else upstream
    matched = partition.lazy().select(
        pl.col(key).alias(rows_key),
        pl.col(schema.date_column).alias("analysis_date"),
        *columns,
        pl.lit(True).alias(found),
    )
    return rows.join(matched, on=[rows_key, "analysis_date"], how="left").with_columns(
        pl.col(found).fill_null(False)
    )


def window_tracking(source: str, games: pl.Expr, expected: int) -> dict[str, pl.Expr]:
    """SPEC 3 source tracking for a window of games: rows found, and found / expected x 100."""
    return {
        f"source_{source}_rows_found": games,
        f"source_{source}_completeness_pct": completeness_pct(games, expected),
    }


def slate_tracking(source: str) -> dict[str, pl.Expr]:
    """SPEC 3 source tracking for the slate's own context row: always 1 of 1."""
    return {
        f"source_{source}_rows_found": pl.lit(1, dtype=pl.Int64),
        f"source_{source}_completeness_pct": pl.lit(100.0),
    }


def upstream_tracking(source: str, found: str) -> dict[str, pl.Expr]:
    """SPEC 3 source tracking for an upstream read one row per entity: 1 of 1 found, or 0."""
    return {
        f"source_{source}_rows_found": pl.col(found).cast(pl.Int64),
        f"source_{source}_completeness_pct": pl.col(found).cast(pl.Float64) * 100.0,
    }


# --- placeholders ---------------------------------------------------------------------------


def placeholder_nulls(schema: TableSchema, keeps: Iterable[str] = ()) -> tuple[str, ...]:
    """The columns a placeholder row leaves NULL: every NULLABLE column of the output schema
    except its reason, its source tracking and the facts in `keeps` (ids, sample counts)."""
    kept = PLACEHOLDER_KEEPS | set(keeps)
    return tuple(
        c.name
        for c in schema.columns
        if c.mode == "NULLABLE" and c.name not in kept and not c.name.startswith("source_")
    )


def null_when(is_placeholder: pl.Expr, columns: Iterable[str]) -> list[pl.Expr]:
    """Each column NULL on placeholder rows, unchanged elsewhere."""
    return [pl.when(is_placeholder).then(None).otherwise(pl.col(c)).alias(c) for c in columns]
