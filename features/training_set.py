"""Training sets (SPEC 13, 16.5) and the slate's named features: pure joins over frames, no I/O.

Features come only from stored P5 rows (built from games before their date); labels only from
the player's box score of that very game. tasks/readers.py reads the frames these functions take.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

# SPEC 16.1: the 60 nullable values the newest models read (NULL: defaulted or missing).
from quality.feature_contract import (
    ALL_FEATURE_NAMES,
    ARRAY_FEATURE_COUNT,
    FEATURE_VERSION,
    VALUE_COLUMNS,
)

# The P5 columns a training set carries besides the features, in output order.
IDENTITY_COLUMNS = (
    "player_lookup",
    "universal_player_id",
    "game_date",
    "game_id",
    "opponent_team_abbr",
    "is_home",
)
QUALITY_COLUMNS = (
    "feature_quality_score",
    "quality_tier",
    "data_source",
    "default_feature_count",
    "required_default_count",
    "matchup_quality_pct",  # SPEC 16.5's filter reads it: an --all-rows set can apply it itself
    "is_quality_ready",
    "is_training_ready",
    "feature_version",
)
LABEL_COLUMNS = ("played", "actual_points", "actual_minutes", "points_line", "over_line")
# What each input must hold for the join; tasks/readers.py selects exactly these columns.
P5_COLUMNS = (
    *IDENTITY_COLUMNS,
    "features",
    "feature_names",
    "feature_sources",
    *VALUE_COLUMNS,
    "feature_sources_json",
    *QUALITY_COLUMNS,
)
# SPEC 16.5: the old system's mandatory filters take feature_quality_score >= p, p >= 50.
DEFAULT_MIN_QUALITY = 70.0
LOWEST_MIN_QUALITY = 50.0
BOX_SCORE_COLUMNS = (
    "player_lookup",
    "game_id",
    "game_date",
    "is_active",
    "is_dnp",
    "minutes_played",
    "points",
)
LINE_COLUMNS = ("player_lookup", "game_date", "current_points_line")
SOURCE_PREFIX = "source__"
# feature_sources_json holds {"0": tag, ..., "59": tag} (SPEC 16.1).
TAGS_JSON = pl.Struct({str(i): pl.String for i in range(len(ALL_FEATURE_NAMES))})


class FeatureNamesError(ValueError):
    """Rows of one frame disagree on feature_names or feature_version, so the columns of a
    training set would mean different things on different rows."""


def feature_names_of(p5: pl.DataFrame) -> list[str]:
    """The feature names shared by every row (one feature_version), in feature order; the
    current version's when there is no row, so an empty set has the columns of a full one.

    Two versions are refused even with the same 25 names: a row of an older version has no
    feature_<N>_value columns, so its NULLs would read as missing features.
    """
    names = p5.get_column("feature_names").unique(maintain_order=True)
    versions = sorted(p5.get_column("feature_version").unique().to_list())
    if names.len() > 1 or len(versions) > 1:
        raise FeatureNamesError(
            f"ml_feature_store_v2 rows in this range have {names.len()} feature_names list(s) "
            f"and feature_version {', '.join(versions)}: rebuild the range with `phase4 "
            "backfill` (it rewrites partitions of an older version) or pick a range of one "
            "version"
        )
    return list(names.item() if names.len() == 1 else ALL_FEATURE_NAMES[:ARRAY_FEATURE_COUNT])


def check_current_version(p5: pl.DataFrame) -> None:
    """A training set holds rows of the current feature_version only: an older row's
    feature_<N>_value columns are NULL because it predates them, not because they are missing."""
    versions = sorted(p5.get_column("feature_version").unique().to_list())
    if versions and versions != [FEATURE_VERSION]:
        raise FeatureNamesError(
            f"ml_feature_store_v2 rows in this range have feature_version {', '.join(versions)}, "
            f"written before {FEATURE_VERSION}: rebuild the range with `phase4 backfill` (it "
            f"rewrites partitions of an older version as {FEATURE_VERSION})"
        )


def named_features(names: Sequence[str]) -> list[pl.Expr]:
    """One FLOAT64 column per feature, named after it: `features[i]` as `names[i]`."""
    return [
        pl.col("features").list.get(i, null_on_oob=True).cast(pl.Float64).alias(name)
        for i, name in enumerate(names)
    ]


def played(is_active: pl.Expr, is_dnp: pl.Expr, minutes_played: pl.Expr) -> pl.Expr:
    """A qualifying game (SPEC 0); no box-score row at all is not one either."""
    return (
        (is_active.fill_null(False) & ~is_dnp.fill_null(False) & (minutes_played > 0))
        .fill_null(False)
        .alias("played")
    )


def actual_points(points: pl.Expr) -> pl.Expr:
    return pl.when(pl.col("played")).then(points.cast(pl.Int64)).alias("actual_points")


def actual_minutes(minutes_played: pl.Expr) -> pl.Expr:
    return pl.when(pl.col("played")).then(minutes_played.cast(pl.Float64)).alias("actual_minutes")


def over_line(points: pl.Expr, line: pl.Expr) -> pl.Expr:
    """True above the line, False below, NULL on a push (equal) or when either is unknown."""
    return pl.when(points != line).then(points > line).alias("over_line")


def check_min_quality(min_quality: float) -> float:
    """SPEC 16.5: p below 50 would let rows in that the old system never trained on; a score
    is at most 100, so above it no row could pass (an empty set that looks like missing data)."""
    if min_quality > 100:
        raise ValueError(
            f"--min-quality {min_quality:g} is above 100, the highest feature_quality_score: "
            f"pass a value from {LOWEST_MIN_QUALITY:g} to 100"
        )
    if not min_quality >= LOWEST_MIN_QUALITY:  # NaN too
        raise ValueError(
            f"--min-quality {min_quality:g} is below {LOWEST_MIN_QUALITY:g}: the training filter "
            f"needs feature_quality_score >= {LOWEST_MIN_QUALITY:g} at least (default "
            f"{DEFAULT_MIN_QUALITY:g}); pass a value from {LOWEST_MIN_QUALITY:g} to 100"
        )
    return min_quality


def passes_training_filters(min_quality: float) -> pl.Expr:
    """SPEC 16.5: the old system's mandatory training filters over a labelled P5 row.

    With min_quality 70 this is is_quality_ready and played. feature_count >= 33 always holds
    (60) and 'phase4_partial' is never written, so neither is tested.
    """
    return (
        (pl.col("required_default_count") == 0)
        & (pl.col("matchup_quality_pct") >= 50)
        & (pl.col("feature_quality_score") >= min_quality)
        & (pl.col("data_source") != "early_season")
        & pl.col("played")
        & pl.col("actual_points").is_not_null()
    ).fill_null(False)


def labels(box_scores: pl.DataFrame) -> pl.DataFrame:
    """played / actual_points / actual_minutes per (player_lookup, game_id, game_date)."""
    return box_scores.select(
        "player_lookup",
        "game_id",
        "game_date",
        played(pl.col("is_active"), pl.col("is_dnp"), pl.col("minutes_played")),
        pl.col("points"),
        pl.col("minutes_played"),
    ).select(
        "player_lookup",
        "game_id",
        "game_date",
        "played",
        actual_points(pl.col("points")),
        actual_minutes(pl.col("minutes_played")),
    )


def training_set(
    p5: pl.DataFrame,
    box_scores: pl.DataFrame,
    lines: pl.DataFrame | None,
    *,
    all_rows: bool = False,
    min_quality: float = DEFAULT_MIN_QUALITY,
) -> pl.DataFrame:
    """One row per P5 row passing the training filters (every row with all_rows), features
    and labels.

    `lines` is None when the Phase 3 context has no current_points_line: the line columns are
    then all NULL. Rows are ordered by game_date, player_lookup.
    """
    check_min_quality(min_quality)
    names = feature_names_of(p5)
    check_current_version(p5)
    line_rows = (
        lines.select(LINE_COLUMNS)
        if lines is not None
        else pl.DataFrame(schema={"player_lookup": pl.String, "game_date": pl.Date}).with_columns(
            current_points_line=pl.lit(None, dtype=pl.Float64)
        )
    )
    labelled = (
        p5.lazy()
        .join(
            labels(box_scores).lazy(),
            on=["player_lookup", "game_id", "game_date"],
            how="left",
        )
        .join(
            line_rows.lazy().cast({"current_points_line": pl.Float64}),
            on=["player_lookup", "game_date"],
            how="left",
        )
        .with_columns(
            pl.col("played").fill_null(False),
            points_line=pl.col("current_points_line"),
        )
        .with_columns(over_line(pl.col("actual_points"), pl.col("points_line")))
    )
    kept = labelled if all_rows else labelled.filter(passes_training_filters(min_quality))
    return (
        kept.select(
            *IDENTITY_COLUMNS,
            *named_features(names),
            *(pl.col(c).cast(pl.Float64) for c in VALUE_COLUMNS),
            *QUALITY_COLUMNS,
            *LABEL_COLUMNS,
        )
        .sort("game_date", "player_lookup")
        .collect()
    )


def value_tags() -> list[pl.Expr]:
    """The tag of each of the 60 features as `source__<name>`, from feature_sources_json
    (phase4/phase3/calculated/default, or 'missing' for a NULL of 25 to 59)."""
    tags = pl.col("feature_sources_json").str.json_decode(TAGS_JSON)
    return [
        tags.struct.field(str(i)).alias(f"{SOURCE_PREFIX}{name}")
        for i, name in enumerate(ALL_FEATURE_NAMES)
    ]


def slate_features(p5: pl.DataFrame) -> pl.DataFrame:
    """The slate as the predictions read it: identity, quality, the 25 named values of
    `features` (defaults filled in, as in a training set), the 60 feature_<N>_value columns
    (NULL when defaulted or missing) and the 60 tags."""
    names = feature_names_of(p5)
    return p5.select(
        *IDENTITY_COLUMNS,
        *QUALITY_COLUMNS,
        *named_features(names),
        *VALUE_COLUMNS,
        *value_tags(),
    ).sort("player_lookup")


def feature_rows(player_row: pl.DataFrame) -> pl.DataFrame:
    """One player's 60 features long (the `features --player` view): index, name, the stored
    feature_<N>_value, its tag, and for 0 to 24 the `features` array's value (the default
    where the value is NULL)."""
    row = player_row.select(*VALUE_COLUMNS, *value_tags(), "features").row(0, named=True)
    array = row["features"] or []
    return pl.DataFrame(
        {
            "index": list(range(len(ALL_FEATURE_NAMES))),
            "feature": list(ALL_FEATURE_NAMES),
            "value": [row[c] for c in VALUE_COLUMNS],
            "source": [row[f"{SOURCE_PREFIX}{n}"] for n in ALL_FEATURE_NAMES],
            "array_value": [
                array[i] if i < len(array) else None for i in range(len(ALL_FEATURE_NAMES))
            ],
        },
        schema={
            "index": pl.Int64,
            "feature": pl.String,
            "value": pl.Float64,
            "source": pl.String,
            "array_value": pl.Float64,
        },
    )
