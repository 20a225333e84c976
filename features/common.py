"""Rules every processor shares (SPEC section 3): windows, ratios, hashes (the calendar of SPEC 0
is `nba_calendar`)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import polars as pl
from polars_hash import CryptographicHashingNameSpace as Sha

from nba_calendar import ENGINE, PLAN_OPTIMIZATIONS, Calendars, calendar_frame
from quality.schemas import TableSchema

AUDIT_COLUMNS = frozenset({"processed_at", "created_at", "data_hash"})


def qualifying_games(player_games: pl.LazyFrame) -> pl.LazyFrame:
    """A game counts when the player was active, not DNP and played minutes."""
    return player_games.filter(
        pl.col("is_active").fill_null(False)
        & ~pl.col("is_dnp").fill_null(False)
        & (pl.col("minutes_played") > 0)
    )


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """A ratio whose denominator is 0 or NULL is NULL, never infinity."""
    return (
        pl.when(denominator.is_null() | (denominator == 0))
        .then(None)
        .otherwise(numerator.cast(pl.Float64) / denominator.cast(pl.Float64))
    )


def divide(numerator: pl.Expr, constant: float) -> pl.Expr:
    """numerator / constant, the same bits for every chunk layout and row order.

    Polars computes a division by a constant as a multiplication by its reciprocal in most
    chunks but as a true division in some (one-row chunks), so the last bit of `x / 100`
    depended on how the input was split. Multiplying by the reciprocal ourselves is one
    rounding everywhere (70 / 100 gives 0.7000000000000001, always).
    """
    return numerator.cast(pl.Float64) * (1.0 / constant)


def added_in_order(terms: Iterable[pl.Expr]) -> pl.Expr:
    """The terms added left to right, a NULL counting 0, as `sum_horizontal` does; but with the
    same bits on every Polars engine (with NULL terms, its own sum gave other last bits under
    the in-memory engine than under the streaming one)."""
    first, *rest = [term.fill_null(0.0) for term in terms]
    return functools.reduce(operator.add, rest, first)


def clamp(value: pl.Expr, low: float, high: float) -> pl.Expr:
    return value.clip(low, high)


def completeness_pct(found: pl.Expr, expected: int) -> pl.Expr:
    return pl.min_horizontal(divide(found * 100, expected), pl.lit(100.0))


def insufficient_reason(found: pl.Expr, needed: int, unit: str = "games") -> pl.Expr:
    return pl.format("Only {} {} available, need {}", found, pl.lit(unit), pl.lit(needed))


def row_hash(business: Sequence[str]) -> pl.Expr:
    """data_hash: the first 16 hex digits of the SHA-256 of the row's business columns as
    JSON (UTF-8), computed in Polars (polars-hash) so the streaming engine spreads it over
    the cores."""
    return Sha(pl.struct(business).struct.json_encode()).sha2_256().str.slice(0, 16)


# Up to this many rows (a date's are a few hundred) the row hashes run in memory.
HASH_IN_MEMORY_ROWS = 5_000


def to_table(rows: pl.LazyFrame, schema: TableSchema) -> pl.DataFrame:
    """The output: rows sorted by date, then the schema's first key column, in schema order
    and type, with the row hash (one collect with `PLAN_OPTIMIZATIONS`, then the casts and the
    hashes).

    A date's rows come out in the same order whichever other dates are built with it.
    """
    order = [c for c in (schema.partition_column, schema.key[0]) if c is not None]
    columns = [c for c in schema.columns if c.name != "data_hash"]
    business = [
        c.name for c in columns if c.name not in AUDIT_COLUMNS and not c.name.startswith("source_")
    ]
    frame = (
        rows.sort(order)
        .select(c.name for c in columns)
        .collect(engine=ENGINE, optimizations=PLAN_OPTIMIZATIONS)
    )
    # One step: the hash encodes the columns as computed, before the casts, and only columns not
    # yet of their type are cast (a cast to the same type cost ~8 us a column). Streaming
    # spreads a season's hashes over the cores; a date's few hundred rows go faster in memory.
    computed = frame.schema
    casts = [
        pl.col(c.name).cast(c.polars_type, strict=True)
        for c in columns
        if computed[c.name] != c.polars_type
    ]
    return (
        frame.lazy()
        .with_columns(*casts, data_hash=row_hash(business))
        .select(schema.column_names)
        .collect(engine="streaming" if frame.height > HASH_IN_MEMORY_ROWS else ENGINE)
    )


def processed_now() -> datetime:
    return datetime.now(UTC)


def slate(player_context: pl.DataFrame | pl.LazyFrame, calendars: Calendars) -> pl.LazyFrame:
    """The players with a context row for a date D built: the population of P3 and P5.

    Each row carries D's calendar columns (analysis_date, season_year of D, early_season_flag..).
    """
    dates = calendar_frame(calendars).lazy()
    return (
        player_context.lazy()
        .drop("season_year", strict=False)
        .join(dates, left_on="game_date", right_on="analysis_date", how="inner")
        .with_columns(analysis_date=pl.col("game_date"))
    )
