"""SPEC 12 feature checks of P5: ranges, constant features, default shares and drift.

Pure Polars over P5 frames: the run checks D after building it and before writing it, so a
value out of range never reaches the 6 AM models (P5 FAILs, the previous partition stays), and
the quieter failures the old system lived with for months (a feature stuck on one value, a third
of the rows on defaults, a silent shift of a distribution) show up as WARNs the same night.

Every date of a run is checked in one pass over the long (date, row, feature) frame: a date's
figures are grouped by (game_date, feature_index), and every date's drift reference is gathered
from one frame of the slates' values ordered by (feature, slate, player), where each date's 14
reference slates are one run of rows per feature.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl
from polars.expr.whenthen import ChainedThen, Then

from nba_calendar import ENGINE, PLAN_OPTIMIZATIONS, season_first_day
from quality.feature_contract import (
    ARRAY_FEATURE_COUNT,
    DEFAULTED,
    FEATURE_CONTRACT,
    FeatureSpec,
    value_column,
)
from quality.schemas import ML_FEATURE_CHECKS
from quality.stable import squared_deviations, stable_list_mean, stable_list_std

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
# The P5 columns the checks read (the value columns of 25 to 59 too, when present).
CHECKED_COLUMNS = ("player_lookup", "game_date", "data_source", "features", "feature_sources")
BY = ("game_date", "feature_index")  # one figure row per date and feature
DRIFT_FEATURES = [f.index for f in FEATURE_CONTRACT if f.drift_check]


LATER_FEATURES = FEATURE_CONTRACT[ARRAY_FEATURE_COUNT:]  # SPEC 16: 25 to 59, no default


def _collected(plan: pl.LazyFrame) -> pl.DataFrame:
    """A plan of the checks run: a few eager steps each (every eager step is a collect of its
    own, ~0.1 ms on a date's rows), with the optimiser passes the processors' plans use."""
    return plan.collect(engine=ENGINE, optimizations=PLAN_OPTIMIZATIONS)


# --- the long frame -----------------------------------------------------------------------------


def _array_feature(spec: FeatureSpec) -> tuple[pl.Expr, pl.Expr]:
    """Value and tag of a feature of the `features` array (a default value included)."""
    return (
        pl.col("features").list.get(spec.index, null_on_oob=True),
        pl.col("feature_sources").list.get(spec.index, null_on_oob=True).is_in(DEFAULTED),
    )


def feature_values(p5: pl.DataFrame) -> pl.DataFrame:
    """One row per (P5 row, feature) with a value or a 'missing' tag, feature by feature and
    by date within a feature: game_date, row (the P5 row's number, which names its player),
    feature_index, value, defaulted (tagged 'default' or 'missing') and valid (SPEC 12's
    range). Placeholder rows (NULL features) drop out. Features 0 to 24 come from the
    `features` array, exploded with their tags; 25 to 59 from their value columns when `p5`
    has them, a NULL value kept as 'missing'. The ranges are checked once on the long frame
    (`_valid`): one plan of a few expressions, not a few hundred per feature."""
    has_later = {value_column(f.index) for f in LATER_FEATURES} <= set(p5.columns)
    later = [value_column(f.index) for f in LATER_FEATURES] if has_later else []
    wide = (
        p5.lazy()
        .with_row_index("row")
        .select("game_date", "row", "features", "feature_sources", *later)
        .sort("game_date", maintain_order=True)
    )
    array = (
        wide.select(
            "game_date",
            "row",
            pl.int_ranges(pl.col("features").list.len(), dtype=pl.Int64).alias("feature_index"),
            pl.col("features").alias("value"),
            pl.col("feature_sources").alias("defaulted"),
        )
        .explode("feature_index", "value", "defaulted")
        .filter(pl.col("value").is_not_null())  # an array value is there or not
        .sort("feature_index", maintain_order=True)  # by feature, each in the rows' order
        .with_columns(pl.col("defaulted").is_in(DEFAULTED))
    )
    parts = [array]
    if later:  # 25 to 59 count on every row P5 built
        built = pl.col("features").list.first().is_not_null()
        parts.append(
            wide.filter(built)
            .select(
                "game_date",
                "row",
                *(
                    pl.col(value_column(f.index)).cast(pl.Float64).alias(str(f.index))
                    for f in LATER_FEATURES
                ),
            )
            .unpivot(index=["game_date", "row"], variable_name="feature_index")
            .select(
                "game_date",
                "row",
                pl.col("feature_index").cast(pl.Int64),
                "value",
                pl.col("value").is_null().alias("defaulted"),
            )
        )
    return pl.concat(parts).with_columns(_valid()).pipe(_collected)


def _of_feature(values: Sequence[object], dtype: pl.DataType) -> pl.Expr:
    """A constant of each feature of the contract (by index), on each row of its feature."""
    return pl.lit(pl.Series(values, dtype=dtype)).gather(pl.col("feature_index"))


@functools.cache
def _valid() -> pl.Expr:
    """SPEC 12's range of each row's feature: inclusive range, or the allowed set; NaN and
    infinity are never valid; a feature whose source is not in Phase 3 has no valid value
    (SPEC 16.6: it is always NULL); a NULL value (a 'missing' feature of 25 to 59) is never
    out of range. Built once."""
    value, contract = pl.col("value"), FEATURE_CONTRACT
    in_range = value.is_finite() & value.is_between(
        _of_feature([f.low for f in contract], pl.Float64()),
        _of_feature([f.high for f in contract], pl.Float64()),
    )
    always_null = _of_feature([f.always_null for f in contract], pl.Boolean())
    rule: Then | ChainedThen = pl.when(always_null).then(pl.lit(False))
    for allowed in sorted({f.allowed for f in contract if f.allowed}):
        has_set = _of_feature([f.allowed == allowed for f in contract], pl.Boolean())
        rule = rule.when(has_set).then(value.is_in(list(allowed)))
    return (value.is_null() | rule.otherwise(in_range)).alias("valid")


# --- each date's own figures --------------------------------------------------------------------


def _statistics(values: pl.DataFrame) -> pl.LazyFrame:
    """Figures per (date, feature): mean and std over the values not tagged 'default' or
    'missing' (`real`); `default_rows` counts both tags (SPEC 16.3).

    Mean and std are `stable_mean` and `stable_std` (sorted values added in order), so a
    date's figures are the same bits checked alone (the nightly run) or with its backfill
    chunk. `values` comes feature by feature and by date (`feature_values`), so its groups
    are runs of rows and need no hashing.
    """
    group = pl.col("feature_index") * 1_000_000 + pl.col("game_date").cast(pl.Int64)
    figures = (
        values.lazy()
        .with_columns(group.set_sorted().alias("group"))
        .group_by("group")
        .agg(
            pl.col("game_date").first(),
            pl.col("feature_index").first(),
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col("defaulted").sum().cast(pl.Int64).alias("default_rows"),
            pl.col("value").min().alias("min"),
            pl.col("value").max().alias("max"),
            pl.col("value").filter(~pl.col("defaulted")).sort().alias("real"),
        )
        .drop("group")
    )
    real = pl.col("real")
    return (
        figures.with_columns(
            stable_list_mean(real).alias("mean"),
            real.list.len().cast(pl.Int64).alias("real_rows"),
            real.list.n_unique().cast(pl.Int64).alias("real_distinct"),
            real.list.first().alias("real_first"),  # read only when every value is the same
            squared_deviations(real).alias("squares"),
        )
        .with_columns(stable_list_std(real, pl.col("squares")).alias("std"))
        .drop("real", "squares")
    )


def _violations(values: pl.DataFrame, players: pl.Series) -> pl.DataFrame:
    """Per (date, feature): rows out of range, and the first (by player) as the example."""
    return (
        values.lazy()
        .filter(~pl.col("valid"))
        .with_columns(pl.lit(players).gather(pl.col("row")).alias("player_lookup"))
        .sort(*BY, "player_lookup")
        .group_by(*BY)
        .agg(
            pl.len().cast(pl.Int64).alias("bad_rows"),
            pl.col("player_lookup").first().alias("bad_player"),
            pl.col("value").first().alias("bad_value"),
        )
        .pipe(_collected)
    )


def failed_dates(violations: pl.DataFrame) -> list[date]:
    """Dates with a value out of range: they FAIL whatever their reference (only WARNs read
    it), so a run knows every date that keeps its previous partition before any drift."""
    return violations["game_date"].unique().sort().to_list()


# --- the drift reference ------------------------------------------------------------------------


def slate_dates(rows: pl.DataFrame) -> pl.Series:
    """The dates of `rows` with non-placeholder P5 rows, sorted: the slates a drift reference
    is taken from (SPEC 12)."""
    real = rows.filter(pl.col("data_source") != PLACEHOLDER_SOURCE)
    return real["game_date"].unique().sort()


def reference_windows(
    dates: Sequence[date], slates: pl.Series, slates_back: int = REFERENCE_SLATES
) -> pl.DataFrame:
    """Each date's reference slates as positions [first, end) of `slates` (sorted): the
    `slates_back` most recent earlier slates of its season (SPEC 12)."""
    checked = pl.Series("game_date", dates, dtype=pl.Date)
    season = pl.Series([season_first_day(d) for d in dates], dtype=pl.Date)
    end = slates.search_sorted(checked, side="left").cast(pl.Int64)
    start = slates.search_sorted(season, side="left").cast(pl.Int64)
    return pl.DataFrame({"game_date": checked, "end": end}).with_columns(
        pl.max_horizontal(pl.col("end") - slates_back, start).alias("first")
    )


def reference_dates(
    stored: pl.DataFrame, game_date: date, slates: int = REFERENCE_SLATES
) -> list[date]:
    """The most recent earlier dates of D's season with non-placeholder P5 rows, oldest first."""
    days = slate_dates(stored)
    window = reference_windows([game_date], days, slates).row(0, named=True)
    return days[window["first"] : window["end"]].to_list()


def _slate_values(rows: pl.DataFrame, slates: pl.Series) -> pl.DataFrame:
    """The drift features' values not tagged 'default' of the non-placeholder rows, ordered by
    (feature, slate, player): each date's reference is then one run of rows per feature, in
    the same order whatever order the rows were stored or built in."""
    drift = [f for f in FEATURE_CONTRACT if f.drift_check]
    values = (
        rows.lazy()
        .filter(pl.col("data_source") != PLACEHOLDER_SOURCE)
        .select(
            "game_date",
            "player_lookup",
            *(
                pl.struct(value=value, defaulted=defaulted).alias(str(spec.index))
                for spec in drift
                for value, defaulted in [_array_feature(spec)]
            ),
        )
        .sort("game_date", "player_lookup")
        .unpivot(index=["game_date", "player_lookup"], variable_name="feature_index")
        .unnest("value")
        .filter(pl.col("value").is_not_null() & ~pl.col("defaulted"))
    )
    feature = pl.col("feature_index").cast(pl.Int64)
    slate = pl.lit(slates).search_sorted(pl.col("game_date"), side="left").cast(pl.Int64)
    return values.select(feature, _run_key(feature, slate, slates.len()), "value").pipe(_collected)


def _run_key(feature: pl.Expr, slate: pl.Expr, slates: int) -> pl.Expr:
    """(feature, slate position) as one increasing integer over `_slate_values`' order."""
    return (feature * (slates + 1) + slate).alias("key")


def _reference_statistics(values: pl.DataFrame, windows: pl.DataFrame, slates: int) -> pl.DataFrame:
    """Per (date, drift feature): mean, std and count of its reference values.

    Each (date, feature) reference is a run [start, stop) of `values` (`_slate_values`), so
    every date's values are gathered at once and grouped; Polars' mean and std over the values
    in (slate, player) order, the figures the checks have always reported.
    """
    spans = windows.lazy().join(pl.LazyFrame({"feature_index": DRIFT_FEATURES}), how="cross")

    def position(slate: str) -> pl.Expr:
        """Where the run of (feature, slate) starts in `values`."""
        edge = _run_key(pl.col("feature_index"), pl.col(slate), slates)
        return pl.lit(values["key"]).search_sorted(edge, side="left")

    bounds = (
        spans.select(*BY, start=position("first"), stop=position("end"))
        .with_row_index("span")
        .sort("feature_index", maintain_order=True)
    )
    reference = (
        bounds.select("span", pl.int_ranges("start", "stop").alias("at"))
        .explode("at")
        .drop_nulls("at")
        .select("span", pl.lit(values["value"]).gather(pl.col("at")))
    )
    # Spans numbered by date and gathered by feature: the key is not sorted, so Polars groups by
    # hashing (as it always did here); on a sorted key it would add up the values another way.
    figures = reference.group_by("span").agg(
        pl.col("value").mean().alias("ref_mean"),
        pl.col("value").std().alias("ref_std"),
        pl.len().cast(pl.Int64).alias("ref_rows"),
    )
    return bounds.select("span", *BY).join(figures, on="span").drop("span").pipe(_collected)


# --- judging ------------------------------------------------------------------------------------


def _contract_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "feature_index": [f.index for f in FEATURE_CONTRACT],
            "feature_name": [f.name for f in FEATURE_CONTRACT],
        },
        schema={"feature_index": pl.Int64, "feature_name": pl.String},
    )


def _has_check(flags: Sequence[bool]) -> pl.Expr:
    """A check class of the contract (one flag per feature, by index) for each row."""
    return pl.lit(pl.Series(flags, dtype=pl.Boolean)).gather(pl.col("feature_index"))


def _edge(value: pl.Expr) -> pl.Expr:
    return value.round(EDGE_DECIMALS)


def _flags() -> list[pl.Expr]:
    """SPEC 12's rules on each (date, feature)'s figures: out of range FAILs; constant,
    defaults and drift WARN, not in early season and not when the feature FAILs."""
    quiet = (pl.col("bad_rows") == 0) & ~pl.col("early_season")
    contract = FEATURE_CONTRACT
    drift_sds = _edge((pl.col("mean") - pl.col("ref_mean")).abs() / pl.col("ref_std"))
    return [
        (pl.col("bad_rows") > 0).alias("out_of_range"),
        (
            quiet
            & _has_check([f.constant_check for f in contract])
            & (pl.col("real_rows") >= MIN_CONSTANT_ROWS)
            & (pl.col("real_distinct") == 1)
        ).alias("constant"),
        (
            quiet
            & _has_check([f.default_check for f in contract])
            & (pl.col("rows") > 0)
            & (_edge(pl.col("default_rows") / pl.col("rows")) > MAX_DEFAULT_SHARE)
        )
        .fill_null(False)
        .alias("defaults"),
        (
            quiet
            & _has_check([f.drift_check for f in contract])
            & (pl.col("real_rows") >= MIN_DRIFT_ROWS)
            & (pl.col("ref_rows").fill_null(0) >= MIN_REFERENCE_ROWS)
            & (pl.col("ref_std") != 0)
            & (drift_sds.fill_nan(None) > MAX_DRIFT_SD)
        )
        .fill_null(False)
        .alias("drift"),
    ]


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


def _message(row: dict) -> str:
    """The message of a flagged feature, in the SPEC's words (formatted in Python: `{:g}`)."""
    spec = FEATURE_CONTRACT[row["feature_index"]]
    if row["out_of_range"]:
        return range_message(spec, row["bad_player"], row["bad_value"], row["bad_rows"])
    warnings = []
    if row["constant"]:
        warnings.append(constant_message(spec, row["real_first"], row["real_rows"]))
    if row["defaults"]:
        warnings.append(default_message(spec, row["default_rows"], row["rows"]))
    if row["drift"]:
        warnings.append(drift_message(spec, row["mean"], row["ref_mean"], row["ref_std"]))
    return "; ".join(warnings)


def _judged(figures: pl.LazyFrame) -> pl.LazyFrame:
    """Status and message of every (date, feature); the few flagged ones get their text."""
    flagged = figures.with_columns(_flags()).pipe(_collected)
    any_warning = pl.col("constant") | pl.col("defaults") | pl.col("drift")
    texts = flagged.filter(pl.col("out_of_range") | any_warning)
    messages = pl.DataFrame(
        {
            "game_date": texts["game_date"],
            "feature_index": texts["feature_index"],
            "message": [_message(row) for row in texts.iter_rows(named=True)],
        },
        schema={"game_date": pl.Date, "feature_index": pl.Int64, "message": pl.String},
    )
    return (
        flagged.lazy()
        .join(messages.lazy(), on=BY, how="left")
        .with_columns(
            pl.when(pl.col("out_of_range"))
            .then(pl.lit(FAIL))
            .when(any_warning)
            .then(pl.lit(WARN))
            .otherwise(pl.lit(OK))
            .alias("status")
        )
    )


# --- every date at once -------------------------------------------------------------------------


def check_frames(
    p5: pl.DataFrame,
    history: pl.DataFrame,
    early_season: Mapping[date, bool],
    run_id: str,
) -> pl.DataFrame:
    """ml_feature_checks rows of every date of `p5` (a FAIL's rows included), each date checked
    as the nightly run checks it.

    A date's drift reference is the 14 most recent earlier slates of its season among
    `history` (stored P5 rows, CHECKED_COLUMNS) and the dates of `p5` that pass, a passed
    date's rows replacing its stored ones. Only a value out of range FAILs and it does not
    read the reference, so the dates that pass are known first and every reference is taken
    in one pass.
    """
    if p5.is_empty():
        return ML_FEATURE_CHECKS.empty_frame()
    values = feature_values(p5)
    violations = _violations(values, p5["player_lookup"])
    passed = ~pl.col("game_date").is_in(failed_dates(violations))
    own = p5.lazy().filter(passed).select(CHECKED_COLUMNS).pipe(_collected)
    stored = (
        history.lazy()
        .select(CHECKED_COLUMNS)
        .cast(dict(own.schema.items()))
        .filter(~pl.col("game_date").is_in(slate_dates(own).implode()))
    )
    days = p5["game_date"].unique().sort()
    # A reference is of slates before its date: no rows of the last date or later are read.
    rows = pl.concat([stored, own.lazy()]).filter(pl.col("game_date") < days.max()).pipe(_collected)
    slates = slate_dates(rows)
    windows = reference_windows(days.to_list(), slates)
    reference = _reference_statistics(_slate_values(rows, slates), windows, slates.len())
    early = pl.DataFrame(
        {"game_date": days, "early_season": [early_season[d] for d in days]},
        schema={"game_date": pl.Date, "early_season": pl.Boolean},
    )
    figures = (
        early.lazy()
        .join(_contract_frame().lazy(), how="cross")
        .join(_statistics(values), on=BY, how="left")
        .join(reference.lazy(), on=BY, how="left")
        .join(violations.lazy(), on=BY, how="left")
        .with_columns(pl.col("rows", "default_rows", "real_rows", "bad_rows").fill_null(0))
    )
    return (
        _judged(figures)
        .with_columns(run_id=pl.lit(run_id))
        .select([pl.col(c.name).cast(c.polars_type) for c in ML_FEATURE_CHECKS.columns])
        .sort(*BY)
        .pipe(_collected)
    )


def check_features(
    p5: pl.DataFrame,
    reference: pl.DataFrame,
    game_date: date,
    *,
    early_season: bool,
    run_id: str,
) -> pl.DataFrame:
    """One row per feature of D shaped as ml_feature_checks; empty when P5 has no rows.

    `reference` holds the stored P5 rows before D (`read_reference`: its 14 most recent
    earlier slates); the checks of one date are those of a run of that date (`check_frames`).
    """
    dated = p5.with_columns(pl.lit(game_date, dtype=pl.Date).alias("game_date"))
    return check_frames(dated, reference, {game_date: early_season}, run_id)


# --- outcomes -----------------------------------------------------------------------------------


def summaries(checks: pl.DataFrame) -> pl.LazyFrame:
    """Per date: the worst status, P5's report line message and, for a FAIL, the line that
    says nothing is written with every failure."""
    rank = pl.col("status").replace_strict(STATUS_ORDER, return_dtype=pl.Int8)
    worst = rank == rank.max()
    per_date = (
        checks.lazy()
        .sort(*BY)
        .group_by("game_date", maintain_order=True)
        .agg(
            pl.col("status").filter(worst).first(),
            pl.len().alias("features"),
            pl.col("message").filter(worst).first().alias("first"),
            worst.sum().alias("flagged"),
            pl.col("message").filter(pl.col("status") == FAIL).str.join("; ").alias("failures"),
        )
    )
    more = pl.when(pl.col("flagged") > 1).then(pl.format(" (+{} more)", pl.col("flagged") - 1))
    return per_date.select(
        "game_date",
        "status",
        pl.when(pl.col("status") == OK)
        .then(pl.format("feature checks OK ({} features)", "features"))
        .otherwise(
            pl.concat_str(
                pl.format("feature checks {}: {}", "status", "first"), more.otherwise(pl.lit(""))
            )
        )
        .alias("message"),
        pl.format("feature checks FAIL, nothing written: {}", "failures").alias("failure"),
    )


def summary(checks: pl.DataFrame) -> tuple[str, str]:
    """Worst status and a short message for P5's report line (one date's checks)."""
    if checks.is_empty():
        return OK, "feature checks OK (0 features)"
    status, message = summaries(checks).select("status", "message").pipe(_collected).row(0)
    return status, message


def outcomes(checks: pl.DataFrame) -> dict[date, tuple[str, str]]:
    """Each date's report outcome: a FAIL says nothing is written and lists every failure."""
    lines = (
        summaries(checks)
        .select(
            "game_date",
            "status",
            pl.when(pl.col("status") == FAIL).then("failure").otherwise("message").alias("message"),
        )
        .pipe(_collected)
    )
    return {day: (status, message) for day, status, message in lines.iter_rows()}


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
