"""Every table the pipeline reads or writes, declared once.

Warehouses create tables from these declarations, the input contract checks Phase 3 frames
against them, and the processors select their output columns in this order. BigQuery type names
are the vocabulary; each warehouse maps them to its own types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import polars as pl
import pyarrow as pa

from nba_calendar import ReadWindow

BigQueryType = Literal["STRING", "INT64", "FLOAT64", "BOOL", "DATE", "TIMESTAMP"]
Mode = Literal["NULLABLE", "REQUIRED", "REPEATED"]

INPUT_DATASET = "nba_analytics"
PRECOMPUTE_DATASET = "nba_precompute"
PREDICTIONS_DATASET = "nba_predictions"
DATASETS = (INPUT_DATASET, PRECOMPUTE_DATASET, PREDICTIONS_DATASET)


@dataclass(frozen=True)
class TypeNames:
    """One declared (BigQuery) type as each engine spells it."""

    duckdb: str
    arrow: pa.DataType
    polars: pl.DataType


# The one place a declared column type maps to DuckDB, BigQuery (the key) and Arrow/Polars.
TYPES: dict[str, TypeNames] = {
    "STRING": TypeNames("VARCHAR", pa.string(), pl.String()),
    "INT64": TypeNames("BIGINT", pa.int64(), pl.Int64()),
    "FLOAT64": TypeNames("DOUBLE", pa.float64(), pl.Float64()),
    "BOOL": TypeNames("BOOLEAN", pa.bool_(), pl.Boolean()),
    "DATE": TypeNames("DATE", pa.date32(), pl.Date()),
    "TIMESTAMP": TypeNames("TIMESTAMPTZ", pa.timestamp("us", tz="UTC"), pl.Datetime("us", "UTC")),
}
# Names BigQuery's API may answer with for the same types.
BIGQUERY_ALIASES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "NUMERIC": "FLOAT64", "BOOLEAN": "BOOL"}


def bigquery_type_of_arrow(arrow: pa.DataType) -> str | None:
    """The declared type whose Arrow type this is (any integer, float or timestamp width)."""
    for name, names in TYPES.items():
        if names.arrow == arrow:
            return name
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMP"
    if pa.types.is_integer(arrow):
        return "INT64"
    if pa.types.is_floating(arrow):
        return "FLOAT64"
    if pa.types.is_large_string(arrow):
        return "STRING"
    return None


def bigquery_float_arrays(rows: pa.Table, *, to_nan: bool) -> pa.Table:
    """Every ARRAY<FLOAT64>'s NULLs as NaN (to_nan, before a BigQuery load) or back (after a
    read): BigQuery holds no NULL inside an ARRAY (a query returning one fails), and SPEC 8's
    placeholders hold 25. DuckDB holds them as declared."""
    import pyarrow.compute as pc  # only BigQuery's loads and reads need it

    for i, field in enumerate(rows.schema):
        if pa.types.is_list(field.type) and pa.types.is_floating(field.type.value_type):
            lists = rows.column(i).combine_chunks()
            v, nulls = lists.values, lists.is_null()
            inner = pc.fill_null(v, float("nan")) if to_nan else pc.if_else(pc.is_nan(v), None, v)
            column = pa.ListArray.from_arrays(lists.offsets, inner, field.type, mask=nulls)
            rows = rows.set_column(i, field, column)
    return rows


@dataclass(frozen=True)
class Column:
    name: str
    type: BigQueryType
    mode: Mode = "NULLABLE"
    description: str = ""
    # An optional Phase 3 column: read when the table has it, NULL (never an error) when not.
    optional: bool = False

    @property
    def polars_type(self) -> pl.DataType:
        base = TYPES[self.type].polars
        return pl.List(base) if self.mode == "REPEATED" else base

    @property
    def arrow_type(self) -> pa.DataType:
        base = TYPES[self.type].arrow
        return pa.list_(base) if self.mode == "REPEATED" else base

    @property
    def duckdb_type(self) -> str:
        base = TYPES[self.type].duckdb
        return f"{base}[]" if self.mode == "REPEATED" else base


@dataclass(frozen=True)
class TableSchema:
    dataset: str
    name: str
    columns: tuple[Column, ...]
    description: str = ""
    partition_column: str | None = None
    clustering: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    processor_id: str | None = None
    read_window: ReadWindow | None = None  # Phase 3: the rows a build for D reads

    @property
    def full_name(self) -> str:
        return f"{self.dataset}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def date_column(self) -> str:
        """The date a partitioned table (every Phase 4 output) is partitioned by; a check, not an
        assert, so it holds under `python -O` too."""
        if self.partition_column is None:
            raise ValueError(f"{self.full_name} is not partitioned by date")
        return self.partition_column

    @property
    def contract_column_names(self) -> list[str]:
        """The columns every warehouse must have (the optional ones left out)."""
        return [c.name for c in self.columns if not c.optional]

    def present_column_names(self, names: Iterable[str]) -> list[str]:
        """The declared columns among `names` (an optional column a table lacks drops out)."""
        found = set(names)
        return [c.name for c in self.columns if not c.optional or c.name in found]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.polars_type for c in self.columns})

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=c.mode != "REQUIRED") for c in self.columns]
        )

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema)

    def typed(self, frame: pl.DataFrame, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """`columns` of `frame` (default: every declared one) in that order, each cast to its
        declared type: rows as read from a warehouse, typed as this table declares them."""
        names = self.column_names if columns is None else list(columns)
        types = self.polars_schema
        return frame.select(names).cast({name: types[name] for name in names})


class GraphNode(Protocol):
    """What the rules need of a processor of the graph (features/registry.py declares them)."""

    @property
    def table(self) -> str: ...

    @property
    def phase3(self) -> Mapping[str, str]: ...  # keyword -> Phase 3 table read

    @property
    def upstream(self) -> Mapping[str, str]: ...  # keyword -> upstream processor's table

    @property
    def time_limit_minutes(self) -> float: ...


# Descriptions shared by the output tables' columns.
PLAYER_LOOKUP_TEXT = "The player's normalised name, Phase 3's key"
UNIVERSAL_PLAYER_ID_TEXT = "The player's id across sources (Phase 3's)"
CONTEXT_COPY_TEXT = "Copied from the player's upcoming_player_game_context row for D"


def col(name: str, type_: BigQueryType, description: str = "", mode: Mode = "NULLABLE") -> Column:
    return Column(name, type_, mode, description)


def req(name: str, type_: BigQueryType, description: str = "") -> Column:
    return Column(name, type_, "REQUIRED", description)


def opt(name: str, type_: BigQueryType, description: str = "") -> Column:
    """An optional Phase 3 column: a warehouse without it gives NULL, not a contract error."""
    return Column(name, type_, "NULLABLE", description, optional=True)


def source_columns(source: str, what: str) -> tuple[Column, ...]:
    """The three source-tracking columns of SPEC section 3 for one input."""
    return (
        col(
            f"source_{source}_last_updated",
            "TIMESTAMP",
            f"Max processed_at of the {what} rows read",
        ),
        col(f"source_{source}_rows_found", "INT64", f"{what} rows read for this row's entity"),
        col(
            f"source_{source}_completeness_pct",
            "FLOAT64",
            f"{what} rows found / rows expected x 100, at most 100",
        ),
    )


def _row_audit() -> tuple[Column, ...]:
    return (
        req("data_hash", "STRING", "SHA-256 (16 hex chars) of the business columns"),
        req("processed_at", "TIMESTAMP", "When the processor built this row"),
    )


# ---------------------------------------------------------------------------------------------
# Phase 3 inputs (SPEC section 2). Only the columns read are declared; others may exist.
# ---------------------------------------------------------------------------------------------

PLAYER_GAME_SUMMARY = TableSchema(
    INPUT_DATASET,
    "player_game_summary",
    (
        req("player_lookup", "STRING"),
        col("universal_player_id", "STRING"),
        req("game_id", "STRING"),
        req("game_date", "DATE"),
        req("season_year", "INT64"),
        col("team_abbr", "STRING"),
        col("opponent_team_abbr", "STRING"),
        col("is_active", "BOOL"),
        col("is_dnp", "BOOL"),
        col("minutes_played", "FLOAT64"),
        col("points", "INT64"),
        col("fg_attempts", "INT64"),
        col("fg_makes", "INT64"),
        col("three_pt_attempts", "INT64"),
        col("three_pt_makes", "INT64"),
        col("ft_attempts", "INT64"),
        col("ft_makes", "INT64"),
        col("paint_attempts", "INT64"),
        col("paint_makes", "INT64"),
        col("mid_range_attempts", "INT64"),
        col("mid_range_makes", "INT64"),
        col("assisted_fg_makes", "INT64"),
        col("unassisted_fg_makes", "INT64"),
        col("usage_rate", "FLOAT64"),
        col("ts_pct", "FLOAT64"),
        col("processed_at", "TIMESTAMP"),
    ),
    "Phase 3: one row per player per game",
    partition_column="game_date",
    clustering=("player_lookup",),
    key=("player_lookup", "game_id"),
    read_window=ReadWindow.BEFORE,
)

TEAM_DEFENSE_GAME_SUMMARY = TableSchema(
    INPUT_DATASET,
    "team_defense_game_summary",
    (
        req("game_id", "STRING"),
        req("game_date", "DATE"),
        req("season_year", "INT64"),
        req("defending_team_abbr", "STRING"),
        col("opponent_team_abbr", "STRING"),
        col("points_allowed", "INT64"),
        col("opp_paint_attempts", "INT64"),
        col("opp_paint_makes", "INT64"),
        col("opp_mid_range_attempts", "INT64"),
        col("opp_mid_range_makes", "INT64"),
        col("opp_three_pt_attempts", "INT64"),
        col("opp_three_pt_makes", "INT64"),
        col("points_in_paint_allowed", "INT64"),
        col("blocks_paint", "INT64"),
        col("blocks_mid_range", "INT64"),
        col("blocks_three_pt", "INT64"),
        col("defensive_rating", "FLOAT64"),
        col("opponent_pace", "FLOAT64"),
        col("processed_at", "TIMESTAMP"),
    ),
    "Phase 3: one row per defending team per game",
    partition_column="game_date",
    clustering=("defending_team_abbr",),
    key=("defending_team_abbr", "game_id"),
    read_window=ReadWindow.BEFORE,
)

TEAM_OFFENSE_GAME_SUMMARY = TableSchema(
    INPUT_DATASET,
    "team_offense_game_summary",
    (
        req("game_id", "STRING"),
        req("game_date", "DATE"),
        req("season_year", "INT64"),
        req("team_abbr", "STRING"),
        col("opponent_team_abbr", "STRING"),
        col("points_scored", "INT64"),
        col("pace", "FLOAT64"),
        col("offensive_rating", "FLOAT64"),
        col("win_flag", "BOOL"),
        col("processed_at", "TIMESTAMP"),
    ),
    "Phase 3: one row per team per game (offense)",
    partition_column="game_date",
    clustering=("team_abbr",),
    key=("team_abbr", "game_id"),
    read_window=ReadWindow.BEFORE,
)

UPCOMING_PLAYER_GAME_CONTEXT = TableSchema(
    INPUT_DATASET,
    "upcoming_player_game_context",
    (
        req("player_lookup", "STRING"),
        col("universal_player_id", "STRING"),
        col("game_id", "STRING"),
        req("game_date", "DATE"),
        req("season_year", "INT64"),
        col("team_abbr", "STRING"),
        col("opponent_team_abbr", "STRING"),
        col("home_game", "BOOL"),
        col("back_to_back", "BOOL"),
        col("season_phase", "STRING"),
        col("days_rest", "INT64"),
        col("opponent_days_rest", "INT64"),
        col("games_in_last_7_days", "INT64"),
        col("games_in_last_14_days", "INT64"),
        col("minutes_in_last_7_days", "FLOAT64"),
        col("minutes_in_last_14_days", "FLOAT64"),
        col("avg_minutes_per_game_last_7", "FLOAT64"),
        col("back_to_backs_last_14_days", "INT64"),
        col("fourth_quarter_minutes_last_7", "FLOAT64"),
        col("avg_usage_rate_last_7_games", "FLOAT64"),
        col("projected_usage_rate", "FLOAT64"),
        col("star_teammates_out", "INT64"),
        col("pace_differential", "FLOAT64"),
        col("opponent_pace_last_10", "FLOAT64"),
        col("player_age", "INT64"),
        col("player_status", "STRING"),
        col("processed_at", "TIMESTAMP"),
        opt(
            "current_points_line",
            "FLOAT64",
            "Optional: the player's points line for the game (SPEC 13, 16.2)",
        ),
    ),
    "Phase 3: one row per slate player per game date",
    partition_column="game_date",
    clustering=("player_lookup",),
    key=("player_lookup", "game_date"),
    # The season through D: P3 and P4 use the slate's rows (dated D); P5 also the lines of
    # earlier dates (SPEC 16.2's L(g)). The fingerprints keep SPEC 14's rows dated D
    # (quality/freshness.py FINGERPRINT_WINDOWS) and add P5's lines.
    read_window=ReadWindow.THROUGH,
)

UPCOMING_TEAM_GAME_CONTEXT = TableSchema(
    INPUT_DATASET,
    "upcoming_team_game_context",
    (
        req("team_abbr", "STRING"),
        col("game_id", "STRING"),
        req("game_date", "DATE"),
        req("season_year", "INT64"),
        col("opponent_team_abbr", "STRING"),
        col("home_game", "BOOL"),
        col("team_days_rest", "INT64"),
        col("processed_at", "TIMESTAMP"),
        opt("game_total", "FLOAT64", "Optional: the game's total points line (SPEC 16.2)"),
        opt(
            "game_spread",
            "FLOAT64",
            "Optional: the team's own spread, negative when favoured (SPEC 16.2)",
        ),
    ),
    "Phase 3: one row per team per game date",
    partition_column="game_date",
    clustering=("team_abbr",),
    key=("team_abbr", "game_date"),
    read_window=ReadWindow.THROUGH,
)

PHASE3_TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        PLAYER_GAME_SUMMARY,
        TEAM_DEFENSE_GAME_SUMMARY,
        TEAM_OFFENSE_GAME_SUMMARY,
        UPCOMING_PLAYER_GAME_CONTEXT,
        UPCOMING_TEAM_GAME_CONTEXT,
    )
}


# Phase 3 keyword (a `Phase3Frames` field, the processors' parameter) -> Phase 3 table.
PHASE3_KEYWORDS: dict[str, str] = {
    "player_games": PLAYER_GAME_SUMMARY.name,
    "team_defense": TEAM_DEFENSE_GAME_SUMMARY.name,
    "team_offense": TEAM_OFFENSE_GAME_SUMMARY.name,
    "player_context": UPCOMING_PLAYER_GAME_CONTEXT.name,
    "team_context": UPCOMING_TEAM_GAME_CONTEXT.name,
}


@dataclass(frozen=True)
class Phase3Frames:
    """The five Phase 3 tables as read for a date (or a range of dates, for backfills).

    Processors filter by D themselves, so a frame holding more dates than needed is safe.
    """

    player_games: pl.DataFrame
    team_defense: pl.DataFrame
    team_offense: pl.DataFrame
    player_context: pl.DataFrame
    team_context: pl.DataFrame

    def by_table(self) -> dict[str, pl.DataFrame]:
        """The frames keyed by table name (what the fingerprints of SPEC 14 hash)."""
        return {table: getattr(self, k) for k, table in PHASE3_KEYWORDS.items()}


# ---------------------------------------------------------------------------------------------
# Phase 4 outputs (SPEC sections 4 to 9)
# ---------------------------------------------------------------------------------------------

_placeholder_columns = (
    req("early_season_flag", "BOOL", "True when the slate date is in the first 21 days"),
    col("insufficient_data_reason", "STRING", "Why the row is a placeholder, else NULL"),
)


def _zone_defense(zone: str, label: str) -> tuple[Column, ...]:
    return (
        col(f"{zone}_pct_allowed_last_15", "FLOAT64", f"Opponent {label} FG% allowed, 0-1"),
        col(f"{zone}_attempts_allowed_per_game", "FLOAT64", f"Opponent {label} attempts per game"),
        col(f"{zone}_blocks_per_game", "FLOAT64", f"{label} blocks per game"),
        col(
            f"{zone}_defense_vs_league_avg",
            "FLOAT64",
            f"({label} FG% allowed - league) x 100, negative is better defence",
        ),
    )


TEAM_DEFENSE_ZONE_ANALYSIS = TableSchema(
    PRECOMPUTE_DATASET,
    "team_defense_zone_analysis",
    (
        req("team_abbr", "STRING", "Defending team"),
        req("analysis_date", "DATE", "Slate date D; built from games before D"),
        req("season_year", "INT64", "Season S of D"),
        *_zone_defense("paint", "paint"),
        col("paint_points_allowed_per_game", "FLOAT64", "Points in the paint allowed per game"),
        *_zone_defense("mid_range", "mid-range"),
        *_zone_defense("three_pt", "three-point"),
        col("defensive_rating_last_15", "FLOAT64", "Mean defensive rating, last 15 games"),
        col("opponent_pace", "FLOAT64", "Mean opponent pace, last 15 games"),
        col("opponent_points_per_game", "FLOAT64", "Points allowed per game, last 15"),
        req("games_in_sample", "INT64", "G: games in the 15-game window"),
        req("league_paint_pct", "FLOAT64", "League paint FG% used for vs_league"),
        req("league_mid_range_pct", "FLOAT64", "League mid-range FG% used for vs_league"),
        req("league_three_pt_pct", "FLOAT64", "League three-point FG% used for vs_league"),
        col("strongest_zone", "STRING", "paint | mid_range | perimeter: lowest vs_league"),
        col("weakest_zone", "STRING", "paint | mid_range | perimeter: highest vs_league"),
        req("data_quality_tier", "STRING", "high (G>=15) | medium (G>=10) | low"),
        col("calculation_notes", "STRING", "Zones without attempts"),
        *_placeholder_columns,
        *source_columns("team_defense", "team_defense_game_summary"),
        *_row_audit(),
    ),
    "How each team defends the paint, mid-range and three over its last 15 games",
    partition_column="analysis_date",
    clustering=("team_abbr",),
    key=("team_abbr", "analysis_date"),
    processor_id="P1",
)

PLAYER_SHOT_ZONE_ANALYSIS = TableSchema(
    PRECOMPUTE_DATASET,
    "player_shot_zone_analysis",
    (
        req("player_lookup", "STRING", PLAYER_LOOKUP_TEXT),
        col("universal_player_id", "STRING", UNIVERSAL_PLAYER_ID_TEXT),
        req("analysis_date", "DATE", "Slate date D; built from games before D"),
        req("season_year", "INT64", "Season S of D"),
        col("paint_rate_last_10", "FLOAT64", "Share of known-zone attempts from the paint, 0-100"),
        col("mid_range_rate_last_10", "FLOAT64", "Share from mid-range, 0-100"),
        col("three_pt_rate_last_10", "FLOAT64", "Share from three, 0-100"),
        col("total_shots_last_10", "INT64", "Known-zone attempts, last 10 games"),
        col("paint_pct_last_10", "FLOAT64", "Paint FG%, 0-1"),
        col("mid_range_pct_last_10", "FLOAT64", "Mid-range FG%, 0-1"),
        col("three_pt_pct_last_10", "FLOAT64", "Three-point FG%, 0-1"),
        col("paint_attempts_per_game", "FLOAT64", "Paint attempts per known-zone game"),
        col("mid_range_attempts_per_game", "FLOAT64", "Mid-range attempts per known-zone game"),
        col("three_pt_attempts_per_game", "FLOAT64", "Three attempts per known-zone game"),
        col("assisted_rate_last_10", "FLOAT64", "Assisted makes / makes x 100"),
        col("unassisted_rate_last_10", "FLOAT64", "Unassisted makes / makes x 100"),
        col("paint_rate_last_20", "FLOAT64", "Paint rate over 20 games (G20 >= 15)"),
        col("paint_pct_last_20", "FLOAT64", "Paint FG% over 20 games (G20 >= 15)"),
        req("games_in_sample_10", "INT64", "G10: qualifying games in the 10-game window"),
        req("games_in_sample_20", "INT64", "G20: qualifying games in the 20-game window"),
        col("games_missing_zones", "INT64", "Games of the 10-game window with unknown zones"),
        req("sample_quality_10", "STRING", "excellent | good | limited | insufficient"),
        req("sample_quality_20", "STRING", "excellent | good | limited | insufficient"),
        col("primary_scoring_zone", "STRING", "paint | perimeter | mid_range | balanced"),
        req("data_quality_tier", "STRING", "high (G10>=10) | medium (>=7) | low"),
        *_placeholder_columns,
        *source_columns("player_game", "player_game_summary"),
        *_row_audit(),
    ),
    "Where each player shoots from and how well, last 10 and 20 games",
    partition_column="analysis_date",
    clustering=("player_lookup",),
    key=("player_lookup", "analysis_date"),
    processor_id="P2",
)

_FACTORS = ("fatigue", "shot_zone", "pace", "usage_spike")
_DEFERRED = ("referee", "look_ahead", "matchup_history", "momentum")

PLAYER_COMPOSITE_FACTORS = TableSchema(
    PRECOMPUTE_DATASET,
    "player_composite_factors",
    (
        req("player_lookup", "STRING", PLAYER_LOOKUP_TEXT),
        col("universal_player_id", "STRING", UNIVERSAL_PLAYER_ID_TEXT),
        req("game_date", "DATE", "Slate date D"),
        col("game_id", "STRING", "The player's game on D (context row)"),
        col("team_abbr", "STRING", "The player's team on D (context row)"),
        col("opponent_team_abbr", "STRING", "The opponent on D (context row)"),
        req("fatigue_score", "INT64", "100 = fresh, 0 = exhausted"),
        req("shot_zone_mismatch_score", "FLOAT64", "-10..10, positive favours the player"),
        req("pace_score", "FLOAT64", "-3..3"),
        req("usage_spike_score", "FLOAT64", "-3..3"),
        req("referee_favorability_score", "FLOAT64", "Deferred: 0.0"),
        req("look_ahead_pressure_score", "FLOAT64", "Deferred: 0.0"),
        req("matchup_history_score", "FLOAT64", "Deferred: 0.0"),
        req("momentum_score", "FLOAT64", "Deferred: 0.0"),
        *(req(f"{f}_adjustment", "FLOAT64", "Points adjustment") for f in _FACTORS + _DEFERRED),
        req("total_composite_adjustment", "FLOAT64", "Sum of the eight adjustments"),
        req("data_completeness_pct", "FLOAT64", "Inputs present / 7 x 100"),
        req("has_warnings", "BOOL", "warning_details is not empty"),
        col("warning_details", "STRING", "Comma-joined warning codes"),
        req("fatigue_context", "STRING", "JSON: inputs and penalties applied"),
        req("shot_zone_context", "STRING", "JSON: zone, rates and opponent vs_league"),
        req("pace_context", "STRING", "JSON: pace_differential"),
        req("usage_context", "STRING", "JSON: projected and base usage, stars out"),
        req("calculation_version", "STRING", "v1_4factors"),
        *_placeholder_columns,
        *source_columns("player_context", "upcoming_player_game_context"),
        *source_columns("player_shot_zone", "player_shot_zone_analysis"),
        *source_columns("team_defense", "team_defense_zone_analysis"),
        *_row_audit(),
    ),
    "Fatigue, zone matchup, pace and usage adjustments per slate player",
    partition_column="game_date",
    clustering=("player_lookup",),
    key=("player_lookup", "game_date"),
    processor_id="P3",
)

PLAYER_DAILY_CACHE = TableSchema(
    PRECOMPUTE_DATASET,
    "player_daily_cache",
    (
        req("player_lookup", "STRING", PLAYER_LOOKUP_TEXT),
        col("universal_player_id", "STRING", UNIVERSAL_PLAYER_ID_TEXT),
        req("cache_date", "DATE", "Slate date D"),
        col("team_abbr", "STRING", "The player's team on D (context row)"),
        col("points_avg_last_5", "FLOAT64", "Mean points, last 5 qualifying games before D"),
        col("points_avg_last_10", "FLOAT64", "Mean points, last 10 qualifying games before D"),
        col("points_avg_season", "FLOAT64", "Mean points, every qualifying game of S before D"),
        col("points_std_last_10", "FLOAT64", "Sample std (ddof 1), NULL under 2 games"),
        col("minutes_avg_last_10", "FLOAT64", "Mean minutes, last 10"),
        col("usage_rate_last_10", "FLOAT64", "Mean usage_rate, last 10"),
        col("ts_pct_last_10", "FLOAT64", "Mean ts_pct, last 10"),
        req("games_played_season", "INT64", "Qualifying games in S before D"),
        col("player_usage_rate_season", "FLOAT64", "Mean usage_rate over S before D"),
        col("assisted_rate_last_10", "FLOAT64", "Assisted makes / makes x 100, last 10"),
        col("team_pace_last_10", "FLOAT64", "Mean pace of the team's last 10 games"),
        col("team_off_rating_last_10", "FLOAT64", "Mean offensive rating, team's last 10"),
        col("games_in_last_7_days", "INT64", CONTEXT_COPY_TEXT),
        col("games_in_last_14_days", "INT64", CONTEXT_COPY_TEXT),
        col("minutes_in_last_7_days", "FLOAT64", CONTEXT_COPY_TEXT),
        col("minutes_in_last_14_days", "FLOAT64", CONTEXT_COPY_TEXT),
        col("back_to_backs_last_14_days", "INT64", CONTEXT_COPY_TEXT),
        col("avg_minutes_per_game_last_7", "FLOAT64", CONTEXT_COPY_TEXT),
        col("fourth_quarter_minutes_last_7", "FLOAT64", CONTEXT_COPY_TEXT),
        col("player_age", "INT64", CONTEXT_COPY_TEXT),
        col("primary_scoring_zone", "STRING", "From P2 (NULL without a full P2 row)"),
        col("paint_rate_last_10", "FLOAT64", "From P2"),
        col("three_pt_rate_last_10", "FLOAT64", "From P2"),
        req("early_season_flag", "BOOL", "Fewer than 10 games played this season"),
        col("insufficient_data_reason", "STRING", "e.g. 'Only 3 games played, need 10 minimum'"),
        req("cache_version", "STRING", "v1"),
        *source_columns("player_game", "player_game_summary"),
        *source_columns("team_offense", "team_offense_game_summary"),
        *source_columns("upcoming_context", "upcoming_player_game_context"),
        *source_columns("shot_zone", "player_shot_zone_analysis"),
        *_row_audit(),
    ),
    "Rolling points, minutes, usage and team context per slate player",
    partition_column="cache_date",
    clustering=("player_lookup",),
    key=("player_lookup", "cache_date"),
    processor_id="P4",
)


def _feature_store_v3_columns() -> tuple[Column, ...]:
    """SPEC 16.1: the columns the newest worker reads, after the 25-feature era's."""
    return (
        *(
            col(
                f"feature_{i}_value",
                "FLOAT64",
                f"Feature {i} (docs/features.md); NULL when unknown ('default' or 'missing')",
            )
            for i in range(60)
        ),
        req(
            "feature_sources_json",
            "STRING",
            'JSON {"0": tag, ..., "59": tag}: phase4 | phase3 | calculated | default | missing',
        ),
        req(
            "matchup_data_status",
            "STRING",
            "MATCHUP_UNAVAILABLE when matchup_quality_pct < 50, else COMPLETE",
        ),
        req(
            "quality_alert_level",
            "STRING",
            "red (matchup < 50, score < 50 or 5+ required defaults) | yellow | green",
        ),
        req("matchup_quality_pct", "FLOAT64", "Mean tag weight of features 5-8, 13, 14"),
        req(
            "player_history_quality_pct",
            "FLOAT64",
            "Mean tag weight of features 0-4, 29-37, 43-46, 48, 49, 54-56, 58",
        ),
        req("vegas_quality_pct", "FLOAT64", "Mean tag weight of features 25-28"),
        req(
            "game_context_quality_pct",
            "FLOAT64",
            "Mean tag weight of features 9-12, 15-21, 38-42, 47, 50-53, 59",
        ),
        req(
            "required_default_count",
            "INT64",
            "Required features (0-24, 28-36) tagged 'default' or 'missing'",
        ),
        Column(
            "default_feature_indices",
            "INT64",
            "REPEATED",
            "Indices of the features tagged 'default' or 'missing', ascending",
        ),
        req(
            "is_training_ready",
            "BOOL",
            "score >= 85, matchup >= 70, player_history >= 80, required_default_count = 0",
        ),
    )


ML_FEATURE_STORE_V2 = TableSchema(
    PREDICTIONS_DATASET,
    "ml_feature_store_v2",
    (
        req("player_lookup", "STRING", PLAYER_LOOKUP_TEXT),
        col("universal_player_id", "STRING", UNIVERSAL_PLAYER_ID_TEXT),
        req("game_date", "DATE", "Slate date D"),
        col("game_id", "STRING", "The player's game on D (context row)"),
        col("team_abbr", "STRING", "The player's team on D (context row)"),
        col("opponent_team_abbr", "STRING", "The opponent on D (context row)"),
        col("is_home", "BOOL", "The player's team plays at home on D (context row)"),
        col("days_rest", "INT64", CONTEXT_COPY_TEXT),
        Column("features", "FLOAT64", "REPEATED", "The 25 features, NULL-free unless placeholder"),
        Column("feature_names", "STRING", "REPEATED", "Names of the 25 features"),
        Column("feature_sources", "STRING", "REPEATED", "phase4 | phase3 | calculated | default"),
        req("feature_count", "INT64", "60: the feature_<i>_value columns"),
        req("feature_version", "STRING", "v2_60features on every row (SPEC 16.1)"),
        req("feature_quality_score", "FLOAT64", "Mean of 100/75/100/40 by source"),
        req("quality_tier", "STRING", "excellent | good | medium | low"),
        req("data_source", "STRING", "phase4 | phase3 | mixed | early_season"),
        req("early_season_flag", "BOOL", "D is early season (SPEC 3)"),
        col("insufficient_data_reason", "STRING", "Why a placeholder row has no features"),
        req(
            "default_feature_count",
            "INT64",
            "Features of the 60 tagged 'default' or 'missing' (60 on a placeholder)",
        ),
        req(
            "is_quality_ready",
            "BOOL",
            "Not a placeholder: feature_quality_score >= 70, matchup_quality_pct >= 50, "
            "required_default_count = 0 (SPEC 16.3)",
        ),
        req(
            "expected_games_count",
            "INT64",
            "Scheduled games of the player's team in season S before D",
        ),
        req("actual_games_count", "INT64", "Of those, games with rows in player_game_summary"),
        req("missing_games_count", "INT64", "expected_games_count - actual_games_count"),
        req(
            "completeness_percentage",
            "FLOAT64",
            "actual / expected x 100, 100.0 when nothing is expected",
        ),
        req(
            "is_production_ready",
            "BOOL",
            "Completeness >= 90, none of P1-P4 failed for D, not a placeholder",
        ),
        Column(
            "data_quality_issues",
            "STRING",
            "REPEATED",
            "early_season_placeholder, phase3_incomplete, <table>_failed, default:<feature>",
        ),
        req("backfill_bootstrap_mode", "BOOL", "days_into_season < 30"),
        req(
            "processing_decision_reason",
            "STRING",
            "early_season_placeholder | upstream_fallback | processed",
        ),
        *_feature_store_v3_columns(),
        *source_columns("daily_cache", "player_daily_cache"),
        *source_columns("composite", "player_composite_factors"),
        *source_columns("shot_zones", "player_shot_zone_analysis"),
        *source_columns("team_defense", "team_defense_zone_analysis"),
        req("data_hash", "STRING", "SHA-256 (16 hex chars) of the business columns"),
        req("created_at", "TIMESTAMP", "When the processor built this row"),
    ),
    "60 ML features per slate player (the 25 of SPEC 8 also as an array) with quality scores",
    partition_column="game_date",
    clustering=("player_lookup",),
    key=("player_lookup", "game_date"),
    processor_id="P5",
)

ML_FEATURE_CHECKS = TableSchema(
    PREDICTIONS_DATASET,
    "ml_feature_checks",
    (
        req("game_date", "DATE", "Slate date D"),
        req("feature_index", "INT64", "Feature 0-59 (feature_<i>_value)"),
        req("feature_name", "STRING", "The feature's name (docs/features.md)"),
        req("rows", "INT64", "P5 rows of D, placeholders excluded"),
        req("default_rows", "INT64", "Of those, rows tagged 'default' or 'missing'"),
        col("min", "FLOAT64", "Smallest value of D"),
        col("max", "FLOAT64", "Largest value of D"),
        col("mean", "FLOAT64", "Mean of the values not tagged 'default' or 'missing'"),
        col("std", "FLOAT64", "Sample std of the values not tagged 'default' or 'missing'"),
        col("ref_mean", "FLOAT64", "Mean over the 14 previous slates of S (drift features)"),
        col("ref_std", "FLOAT64", "Sample std over the 14 previous slates of S"),
        req("status", "STRING", "OK | WARN | FAIL"),
        col("message", "STRING", "Why the status is not OK"),
        req("run_id", "STRING", "Flow run that checked D"),
    ),
    "SPEC 12 and 16.6 feature checks of P5: one row per slate date and feature (60)",
    partition_column="game_date",
    clustering=("feature_name",),
    key=("game_date", "feature_index"),
)

PROCESSOR_RUNS = TableSchema(
    PRECOMPUTE_DATASET,
    "processor_runs",
    (
        req("run_id", "STRING", "Prefect flow run id"),
        req("processor", "STRING", "Output table name"),
        req("analysis_date", "DATE", "Slate date D"),
        req("status", "STRING", "OK | WARN | FAIL | SKIPPED | NO_GAMES"),
        col("rows", "INT64", "Rows in the output partition for D"),
        col("duration_seconds", "FLOAT64", "Processor wall time"),
        col("started_at", "TIMESTAMP", "When the processor started; NULL: it never ran"),
        col("finished_at", "TIMESTAMP", "When it finished, or the line was recorded"),
        col("message", "STRING", "Why the status is not OK, or a short summary"),
        col("bytes_processed", "INT64", "BigQuery bytes processed by the processor's jobs"),
        col("bytes_billed", "INT64", "BigQuery bytes billed for the processor's jobs"),
        col(
            "input_fingerprint",
            "STRING",
            "Digest of the Phase 3 rows the processor read for D (SPEC 14, docs/freshness.md)",
        ),
    ),
    "One line per processor per run: the success criteria of SPEC section 9",
    partition_column="analysis_date",
    clustering=("processor",),
    key=("run_id", "processor"),
)

# Run order; the keys are the processor names used by the flow and the CLI.
OUTPUT_TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        TEAM_DEFENSE_ZONE_ANALYSIS,
        PLAYER_SHOT_ZONE_ANALYSIS,
        PLAYER_COMPOSITE_FACTORS,
        PLAYER_DAILY_CACHE,
        ML_FEATURE_STORE_V2,
    )
}
PROCESSOR_NAMES: tuple[str, ...] = tuple(OUTPUT_TABLES)


def all_tables() -> list[TableSchema]:
    return [*PHASE3_TABLES.values(), *OUTPUT_TABLES.values(), ML_FEATURE_CHECKS, PROCESSOR_RUNS]
