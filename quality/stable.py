"""Order-independent float aggregates: the processors and the feature checks must get the same
bits whatever the row order, the chunking or the dates built together."""

from __future__ import annotations

import polars as pl


def stable_mean(column: pl.Expr) -> pl.Expr:
    """A float mean that does not depend on row order, chunks or threads.

    Polars adds floats in whatever order its threads and chunks give, so the last bits of a
    mean move with the input's row order. Adding the sorted values one after the other (a
    running sum is sequential by definition) makes re-runs, backfill chunks and reads in
    another order bit-identical, and so their data_hash.
    """
    return stable_sum(column) / column.count()


def stable_sum(column: pl.Expr) -> pl.Expr:
    """Order-independent float sum (see stable_mean); NULL when every value is NULL."""
    return column.drop_nulls().sort().cum_sum().last()


def stable_std(column: pl.Expr) -> pl.Expr:
    """Sample standard deviation (ddof 1), order-independent; NULL under 2 values."""
    deviation = column - stable_mean(column)
    variance = stable_sum(deviation * deviation) / (column.count() - 1)
    return pl.when(column.count() >= 2).then(variance.sqrt()).otherwise(None)


# --- the same figures for every list of a list column at once ---------------------------------
#
# `list.sum` adds a list's values one after the other, so over a list sorted ascending it gives
# the bits of `stable_sum`, for every list in one kernel pass (the windows of the engine, the
# feature checks' per-date figures).


def ascending(values: pl.Expr) -> pl.Expr:
    """Each list's known values, ascending. Sorted inside `list.eval`: the same lists as
    `list.sort`, which is many times slower on lists computed by list arithmetic."""
    return values.list.eval(pl.element().drop_nulls().sort())


def stable_list_mean(ascending: pl.Expr) -> pl.Expr:
    """`stable_mean` of each (ascending) list; NULL for an empty one."""
    return ascending.list.mean()


def squared_deviations(ascending: pl.Expr) -> pl.Expr:
    """Each value's squared deviation from its (ascending) list's mean, ascending: what
    `stable_std` adds in order."""
    deviation = ascending - ascending.list.mean()
    return (deviation * deviation).list.eval(pl.element().sort())


def stable_list_std(ascending: pl.Expr, squares: pl.Expr) -> pl.Expr:
    """`stable_std` of each (ascending) list from its `squared_deviations`; NULL under 2
    values."""
    known = ascending.list.len()
    return pl.when(known >= 2).then((squares.list.sum() / (known - 1)).sqrt())
