"""SPEC 12 feature checks of P5: ranges, constant features, default shares and drift.

Pure Polars over P5 frames: the run checks D after building it and before writing it, so a
value out of range never reaches the 6 AM models (P5 FAILs, the previous partition stays), and
the quieter failures the old system lived with for months (a feature stuck on one value, a third
of the rows on defaults, a silent shift of a distribution) show up as WARNs the same night.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import polars as pl

from nba_calendar import season_first_day
from quality.feature_contract import (
    ARRAY_FEATURE_COUNT,
    DEFAULTED,
    FEATURE_CONTRACT,
    MISSING,
    FeatureSpec,
    value_column,
)
from quality.schemas import ML_FEATURE_CHECKS
from quality.stable import stable_mean, stable_std

MIN_CONSTANT_ROWS = 50  # not-default rows before one distinct value counts as stuck
MAX_DEFAULT_SHARE = 0.30  # more than this share of rows on the default WARNs
MIN_DRIFT_ROWS = 50  # not-default values of D needed for the drift check
MIN_REFERENCE_ROWS = 500  # not-default reference values needed for the drift check
MAX_DRIFT_SD = 0.5  # |mean_D - mean_ref| beyond this many reference sds WARNs
REFERENCE_SLATES = 14  # earlier slates of S the drift reference is taken from
# Comparisons at the thresholds are made at 1e-9, so float noise cannot cross an exact edge.
EDGE_DECIMALS = 9
OK, WARN, FAIL = "OK", "WARN", "FAIL"
STATUS_ORDER = {OK: 0, WARN: 1, FAIL: 2}
PLACEHOLDER_SOURCE = "early_season"  # P5's data_source on a placeholder row


class FeatureCheckError(ValueError):
    """P5 of D has values out of range: nothing is written, the previous partition stays."""


LATER_FEATURES = FEATURE_CONTRACT[ARRAY_FEATURE_COUNT:]  # SPEC 16: 25 to 59, no default


def feature_values(p5: pl.DataFrame, keep: Sequence[str] = ()) -> pl.DataFrame:
    """One row per (player, feature) of each non-placeholder row; placeholder rows (NULL
    features) drop out. Features 0 to 24 come from the `features` array (a default value
    included, with its tag); 25 to 59 from their value columns when `p5` has them, a NULL
    value kept and tagged 'missing' (it counts as a default and is never out of range).
    `keep` names P5 columns carried along in front (a date, a data source)."""
    array = (
        p5.select(
            *keep,
            "player_lookup",
            pl.col("features").alias("value"),
            pl.col("feature_sources").alias("source"),
            pl.int_ranges(pl.col("features").list.len()).alias("feature_index"),
        )
        .explode("value", "source", "feature_index")
        .filter(pl.col("value").is_not_null())
        .with_columns(pl.col("feature_index").cast(pl.Int64))
    )
    columns = [value_column(f.index) for f in LATER_FEATURES]
    if not set(columns) <= set(p5.columns):
        return array
    later = (
        p5.filter(pl.col("features").list.first().is_not_null())
        .select(
            *keep,
            "player_lookup",
            pl.concat_list(pl.col(c).cast(pl.Float64) for c in columns).alias("value"),
            pl.int_ranges(ARRAY_FEATURE_COUNT, ARRAY_FEATURE_COUNT + len(LATER_FEATURES)).alias(
                "feature_index"
            ),
        )
        .explode("value", "feature_index")
        .with_columns(_later_source().alias("source"))
        .select(array.columns)
    )
    return pl.concat([array, later])


def _later_source() -> pl.Expr:
    """The tag of a value of 25 to 59: 'missing' when NULL, else its contract tag."""
    tag = pl.lit(MISSING)
    for spec in reversed(LATER_FEATURES):
        tag = (
            pl.when(pl.col("feature_index") == spec.index)
            .then(pl.lit(spec.chain[0]))
            .otherwise(tag)
        )
    return pl.when(pl.col("value").is_null()).then(pl.lit(MISSING)).otherwise(tag)


def _in_range(spec: FeatureSpec) -> pl.Expr:
    """Inclusive range, or the allowed set; NaN and infinity are never valid; a feature whose
    source is not in Phase 3 has no valid value (SPEC 16.6: it is always NULL)."""
    value = pl.col("value")
    if spec.always_null:
        return pl.lit(False)
    if spec.allowed:
        return value.is_in(list(spec.allowed))
    return value.is_finite() & value.is_between(spec.low, spec.high)


def in_range() -> pl.Expr:
    """Per value row: is it valid for its feature (by feature_index); a NULL value (a
    'missing' feature of 25 to 59) is never out of range."""
    valid: pl.Expr = pl.lit(False)
    for spec in reversed(FEATURE_CONTRACT):
        valid = (
            pl.when(pl.col("feature_index") == spec.index).then(_in_range(spec)).otherwise(valid)
        )
    return pl.col("value").is_null() | valid


def _contract_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "feature_index": [f.index for f in FEATURE_CONTRACT],
            "feature_name": [f.name for f in FEATURE_CONTRACT],
        },
        schema={"feature_index": pl.Int64, "feature_name": pl.String},
    )


def _statistics(values: pl.DataFrame, by: Sequence[str] = ("feature_index",)) -> pl.DataFrame:
    """Figures per feature (and per `by`): mean and std over the values not tagged 'default'
    or 'missing'; `default_rows` counts both tags (SPEC 16.3).

    Means and deviations are order-independent (`stable_mean`), so a date's figures are the
    same bits checked alone (the nightly run) or with its backfill chunk.
    """
    defaulted = pl.col("source").is_in(DEFAULTED)
    real = pl.col("value").filter(~defaulted)
    return values.group_by(*by).agg(
        pl.len().cast(pl.Int64).alias("rows"),
        defaulted.sum().cast(pl.Int64).alias("default_rows"),
        pl.col("value").min().alias("min"),
        pl.col("value").max().alias("max"),
        stable_mean(real).alias("mean"),
        stable_std(real).alias("std"),
        real.count().cast(pl.Int64).alias("real_rows"),
        real.n_unique().cast(pl.Int64).alias("real_distinct"),
        real.first().alias("real_first"),  # read only when every value is the same
    )


def _reference_statistics(reference: pl.DataFrame) -> pl.DataFrame:
    real = reference.filter(~pl.col("source").is_in(DEFAULTED))
    return real.group_by("feature_index").agg(
        pl.col("value").mean().alias("ref_mean"),
        pl.col("value").std().alias("ref_std"),
        pl.len().cast(pl.Int64).alias("ref_rows"),
    )


def _violations(values: pl.DataFrame, by: Sequence[str] = ("feature_index",)) -> pl.DataFrame:
    """Per feature (and per `by`): rows out of range, and the first (by player) as the example."""
    bad = values.filter(~in_range()).sort(*by, "player_lookup")
    return bad.group_by(*by).agg(
        pl.len().cast(pl.Int64).alias("bad_rows"),
        pl.col("player_lookup").first().alias("bad_player"),
        pl.col("value").first().alias("bad_value"),
    )


def _format(value: float) -> str:
    return f"{value:g}"


def range_message(spec: FeatureSpec, player: str, value: float, bad_rows: int) -> str:
    rows = "row" if bad_rows == 1 else "rows"
    return (
        f"{spec.name} is {_format(value)} for {player}, outside {spec.range_text} "
        f"({bad_rows} {rows} out of range)"
    )


def constant_message(spec: FeatureSpec, value: float, rows: int) -> str:
    return f"{spec.name} is {_format(value)} for all {rows} players"


def default_message(spec: FeatureSpec, default_rows: int, rows: int) -> str:
    share = default_rows * 100 / rows
    return f"{spec.name} is default on {share:.1f} % of rows ({default_rows}/{rows})"


def drift_message(spec: FeatureSpec, mean: float, ref_mean: float, ref_std: float) -> str:
    sds = (mean - ref_mean) / ref_std
    return f"drift: {spec.name} mean {mean:.1f} against {ref_mean:.1f} ({sds:+.1f} sd)"


def _edge(value: float) -> float:
    return round(value, EDGE_DECIMALS)


def _judge(spec: FeatureSpec, row: dict, early_season: bool) -> tuple[str, str | None]:
    """Status and message of one feature, from its figures (a row of the joined frame)."""
    if row["bad_rows"]:
        return FAIL, range_message(spec, row["bad_player"], row["bad_value"], row["bad_rows"])
    if early_season:
        return OK, None
    warnings = []
    if spec.constant_check and row["real_rows"] >= MIN_CONSTANT_ROWS and row["real_distinct"] == 1:
        warnings.append(constant_message(spec, row["real_first"], row["real_rows"]))
    if (
        spec.default_check
        and row["rows"]
        and _edge(row["default_rows"] / row["rows"]) > MAX_DEFAULT_SHARE
    ):
        warnings.append(default_message(spec, row["default_rows"], row["rows"]))
    if (
        spec.drift_check
        and row["real_rows"] >= MIN_DRIFT_ROWS
        and (row["ref_rows"] or 0) >= MIN_REFERENCE_ROWS
        and row["ref_std"]
        and _edge(abs(row["mean"] - row["ref_mean"]) / row["ref_std"]) > MAX_DRIFT_SD
    ):
        warnings.append(drift_message(spec, row["mean"], row["ref_mean"], row["ref_std"]))
    return (WARN, "; ".join(warnings)) if warnings else (OK, None)


def check_features(
    p5: pl.DataFrame,
    reference: pl.DataFrame,
    game_date: date,
    *,
    early_season: bool,
    run_id: str,
    reference_values: pl.DataFrame | None = None,
    figures_of_d: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """One row per feature of D shaped as ml_feature_checks; empty when P5 has no rows.

    `reference` holds the stored P5 rows of the previous slates (see `reference_rows`);
    `reference_values`, when given, is `feature_values(reference)` already computed (a backfill
    chunk explodes its history once instead of once per date); `figures_of_d`, D's
    `_statistics` and `_violations` already computed (a chunk computes every date's at once).
    """
    if p5.is_empty():
        return ML_FEATURE_CHECKS.empty_frame()
    if figures_of_d is None:
        values = feature_values(p5)
        figures_of_d = (_statistics(values), _violations(values))
    statistics, violations = figures_of_d
    if reference_values is None:
        reference_values = feature_values(reference)
    ref = _reference_statistics(reference_values)
    drift = {f.index for f in FEATURE_CONTRACT if f.drift_check}
    figures = (
        _contract_frame()
        .join(statistics, "feature_index", "left")
        .join(ref, "feature_index", "left")
        .join(violations, "feature_index", "left")
        .with_columns(
            pl.col("rows", "default_rows", "real_rows", "bad_rows").fill_null(0),
            # Reference figures are reported for the drift features only.
            *(
                pl.when(pl.col("feature_index").is_in(list(drift))).then(pl.col(c)).alias(c)
                for c in ("ref_mean", "ref_std", "ref_rows")
            ),
        )
        .sort("feature_index")
    )
    judged = [
        _judge(spec, row, early_season)
        for spec, row in zip(FEATURE_CONTRACT, figures.iter_rows(named=True), strict=True)
    ]
    return figures.with_columns(
        game_date=pl.lit(game_date),
        status=pl.Series([s for s, _ in judged], dtype=pl.String),
        message=pl.Series([m for _, m in judged], dtype=pl.String),
        run_id=pl.lit(run_id),
    ).select([pl.col(c.name).cast(c.polars_type) for c in ML_FEATURE_CHECKS.columns])


def reference_slates(
    dates: Iterable[date], game_date: date, slates: int = REFERENCE_SLATES
) -> list[date]:
    """Of `dates` (slates with non-placeholder P5 rows), the `slates` most recent earlier ones
    of D's season, oldest first: the dates D's drift reference is taken from."""
    earlier = sorted({d for d in dates if season_first_day(game_date) <= d < game_date})
    return earlier[-slates:] if slates else []


def reference_dates(
    stored: pl.DataFrame, game_date: date, slates: int = REFERENCE_SLATES
) -> list[date]:
    """The most recent earlier dates of D's season with non-placeholder P5 rows."""
    real = stored.filter(pl.col("data_source") != PLACEHOLDER_SOURCE)["game_date"]
    return reference_slates(real.unique().to_list(), game_date, slates)


def figures_by_date(dated: pl.DataFrame) -> dict[date, tuple[pl.DataFrame, pl.DataFrame]]:
    """Every date's `_statistics` and `_violations` from `dated_feature_values`, in one pass
    each (they do not depend on the reference, unlike the drift figures)."""
    by = ("game_date", "feature_index")
    statistics = _statistics(dated, by).partition_by("game_date", as_dict=True, include_key=False)
    violations = _violations(dated, by).partition_by("game_date", as_dict=True, include_key=False)
    empty = _violations(dated.clear())
    return {day: (frame, violations.get((day,), empty)) for (day,), frame in statistics.items()}


def dated_feature_values(p5: pl.DataFrame) -> pl.DataFrame:
    """`feature_values` keeping each row's game_date and data_source, to be split by date
    later (a backfill chunk explodes its history once, not once per date)."""
    return feature_values(p5, ("game_date", "data_source"))


def reference_rows(stored: pl.DataFrame, game_date: date) -> pl.DataFrame:
    """The stored, non-placeholder P5 rows of the previous 14 slates of D's season."""
    dates = reference_dates(stored, game_date)
    return stored.filter(
        pl.col("game_date").is_in(dates) & (pl.col("data_source") != PLACEHOLDER_SOURCE)
    )


def worst_status(checks: pl.DataFrame) -> str:
    statuses = checks["status"].to_list() if checks.height else [OK]
    return max(statuses, key=STATUS_ORDER.__getitem__)


def summary(checks: pl.DataFrame) -> tuple[str, str]:
    """Worst status and a short message for P5's report line."""
    status = worst_status(checks)
    if status == OK:
        return OK, f"feature checks OK ({checks.height} features)"
    flagged = checks.filter(pl.col("status") == status)
    first = flagged["message"][0]
    more = f" (+{flagged.height - 1} more)" if flagged.height > 1 else ""
    return status, f"feature checks {status}: {first}{more}"


def failures(checks: pl.DataFrame) -> Sequence[str]:
    return checks.filter(pl.col("status") == FAIL)["message"].to_list()


def raise_on_failure(checks: pl.DataFrame, game_date: date) -> None:
    """A value out of range stops P5 for D before anything is written."""
    failed = failures(checks)
    if failed:
        raise FeatureCheckError(
            f"ml_feature_store_v2 for {game_date}: feature checks FAIL, nothing written: "
            + "; ".join(failed)
        )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def checks_markdown(checks: pl.DataFrame) -> str:
    """The Prefect artifact `phase4-feature-checks`: every feature's figures for D."""
    columns = (
        "feature_index",
        "feature_name",
        "status",
        "rows",
        "default_rows",
        "min",
        "max",
        "mean",
        "std",
        "ref_mean",
        "ref_std",
        "message",
    )
    day = checks["game_date"][0] if checks.height else "-"
    status, message = summary(checks)
    lines = [
        f"# Feature checks of ml_feature_store_v2 for {day}",
        "",
        f"**{status}**: {message}",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in checks.select(columns).iter_rows():
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
