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
