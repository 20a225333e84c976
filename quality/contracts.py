"""The Phase 3 input contract (SPEC section 2), checked on every read.

A violation names the table, the column or rule, the date and one offending key, so an
operator can go straight to the bad row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl
import pyarrow as pa

from nba_calendar import FIRST_DAY, LAST_DAY, season_of_dates
from quality.schemas import (
    PLAYER_GAME_SUMMARY,
    TEAM_DEFENSE_GAME_SUMMARY,
    TEAM_OFFENSE_GAME_SUMMARY,
    UPCOMING_PLAYER_GAME_CONTEXT,
    UPCOMING_TEAM_GAME_CONTEXT,
    BigQueryType,
    TableSchema,
    bigquery_type_of_arrow,
)


class InputContractError(ValueError):
    """Invalid Phase 3 input: the processors reading the table must not run."""

    def __init__(
        self,
        table: str,
        rule: str,
        *,
        column: str | None = None,
        analysis_date: date | None = None,
        key: str | None = None,
        rows: int | None = None,
    ) -> None:
        self.table, self.rule, self.column = table, rule, column
        self.analysis_date, self.key, self.rows = analysis_date, key, rows
        parts = [f"invalid input {table}"]
        if column:
            parts.append(f"column {column}")
        parts.append(f"rule: {rule}")
        if analysis_date:
            parts.append(f"date {analysis_date.isoformat()}")
        if key:
            parts.append(f"e.g. {key}")
        if rows and rows > 1:
            parts.append(f"{rows} rows")
        super().__init__("; ".join(parts))


@dataclass(frozen=True)
class RowRules:
    """Declarative row rules beyond types and keys.

    not_null: SPEC 2's columns that must hold a value though the table declares them NULLABLE
    (a stored table's column mode is never changed). formats: (column, pattern, in words) for
    keys the other tables join on, so one table's differently written key cannot silently
    match nothing (a P3 of zero mismatch scores judged OK)."""

    makes_within_attempts: tuple[tuple[str, str], ...] = ()
    ranges: tuple[tuple[str, float, float], ...] = ()
    not_null: tuple[str, ...] = ()
    formats: tuple[tuple[str, str, str], ...] = ()
    game_counts: bool = False  # every count at most GAME_COUNT_LIMIT


# No box score comes near (a team scores ~160), and summing larger counts over a season
# overflows INT64 into negative averages.
GAME_COUNT_LIMIT = 1000
PLAYER_LOOKUP_FORM = (
    "player_lookup",
    "[a-z0-9]+",
    "lowercase letters and digits, as Phase 3 folds names",
)
TEAM_ABBR_FORM = "[A-Z0-9]{2,4}", "2 to 4 capital letters or digits"


def team_formats(*columns: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((column, *TEAM_ABBR_FORM) for column in columns)


ROW_RULES: dict[str, RowRules] = {
    PLAYER_GAME_SUMMARY.name: RowRules(
        makes_within_attempts=(
            ("fg_makes", "fg_attempts"),
            ("three_pt_makes", "three_pt_attempts"),
            ("ft_makes", "ft_attempts"),
            ("paint_makes", "paint_attempts"),
            ("mid_range_makes", "mid_range_attempts"),
        ),
        ranges=(("minutes_played", 0.0, 80.0),),
        game_counts=True,
        formats=(PLAYER_LOOKUP_FORM, *team_formats("team_abbr", "opponent_team_abbr")),
    ),
    TEAM_DEFENSE_GAME_SUMMARY.name: RowRules(
        makes_within_attempts=(
            ("opp_paint_makes", "opp_paint_attempts"),
            ("opp_mid_range_makes", "opp_mid_range_attempts"),
            ("opp_three_pt_makes", "opp_three_pt_attempts"),
        ),
        game_counts=True,
        formats=team_formats("defending_team_abbr", "opponent_team_abbr"),
    ),
    TEAM_OFFENSE_GAME_SUMMARY.name: RowRules(
        game_counts=True,
        formats=team_formats("team_abbr", "opponent_team_abbr"),
    ),
    # SPEC 2: "Every column after opponent_team_abbr is nullable" (so none before it).
    UPCOMING_PLAYER_GAME_CONTEXT.name: RowRules(
        not_null=("universal_player_id", "game_id", "team_abbr", "opponent_team_abbr"),
        formats=(PLAYER_LOOKUP_FORM, *team_formats("team_abbr", "opponent_team_abbr")),
    ),
    UPCOMING_TEAM_GAME_CONTEXT.name: RowRules(
        not_null=("game_id", "opponent_team_abbr"),  # team_days_rest alone is nullable
        formats=team_formats("team_abbr", "opponent_team_abbr"),
    ),
}


def _is_text(arrow: pa.DataType) -> bool:
    """Strings, and strings stored as categories (a dictionary: pandas' "category", Polars'
    Categorical), whose values are strings all the same."""
    if pa.types.is_dictionary(arrow):
        return _is_text(arrow.value_type)
    return pa.types.is_string(arrow) or pa.types.is_large_string(arrow)


def _type_matches(expected: BigQueryType, repeated: bool, actual: pa.DataType) -> bool:
    if repeated:
        return pa.types.is_list(actual) or pa.types.is_large_list(actual)
    checks = {
        "STRING": _is_text,
        "INT64": pa.types.is_integer,
        "FLOAT64": lambda t: (
            pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t)
        ),
        "BOOL": pa.types.is_boolean,
        "DATE": pa.types.is_date,
        "TIMESTAMP": pa.types.is_timestamp,
    }
    return bool(checks[expected](actual))


# What a load asks for when a column's type is wrong (its file is re-exported).
WRITE_AS: dict[BigQueryType, str] = {
    "STRING": "strings",
    "INT64": "integers",
    "FLOAT64": "numbers (floats, integers or decimals)",
    "BOOL": "booleans",
    "DATE": "dates (not strings or timestamps)",
    "TIMESTAMP": "timestamps",
}


def column_problems(
    schema: TableSchema,
    actual: pa.Schema | None,
    analysis_date: date | None,
    *,
    advise: bool = False,
) -> list[InputContractError]:
    """Every missing or mistyped declared column (a missing table is the only problem).
    advise: a wrong type says how to write the column (a file, which can be re-exported)."""
    if actual is None:
        return [
            InputContractError(
                schema.full_name,
                "table is missing (load Phase 3 first)",
                analysis_date=analysis_date,
            )
        ]
    problems = []
    for column in schema.columns:
        if column.name not in actual.names and column.optional:
            continue  # an optional column a warehouse lacks is read as NULL
        if column.name not in actual.names:
            problems.append(
                InputContractError(
                    schema.full_name,
                    "required column is missing",
                    column=column.name,
                    analysis_date=analysis_date,
                )
            )
            continue
        found = actual.field(column.name).type
        if not _type_matches(column.type, column.mode == "REPEATED", found):
            values = f"lists of {WRITE_AS[column.type]}" if column.mode == "REPEATED" else None
            fix = f"; write the column as {values or WRITE_AS[column.type]}" if advise else ""
            problems.append(
                InputContractError(
                    schema.full_name,
                    f"wrong type: expected {column.type}, found {found}{fix}",
                    column=column.name,
                    analysis_date=analysis_date,
                )
            )
    return problems


def stored_table_problem(schema: TableSchema, stored: pa.Schema | None) -> str | None:
    """What is wrong with a stored output table whose columns differ from its declaration (an
    older version's table), and the fix; None when it matches or is absent."""
    problem = next(iter(column_problems(schema, stored, None) if stored else []), None)
    if problem is None or stored is None:
        return None
    what = f"{schema.full_name}.{problem.column}: {problem.rule}"
    fix = "drop the table, then rebuild it with `phase4 backfill`"
    if problem.column not in stored.names:
        what = f"{schema.full_name} has no column {problem.column}"
        fix = "run `phase4 warehouse init` to add the new columns, then `phase4 backfill` "
        fix += "over the dates to fill them"
    return f"{what} (created by an older version): {fix}"


def check_columns(
    schema: TableSchema, actual: pa.Schema | None, analysis_date: date | None
) -> None:
    """Every declared column exists with a compatible type (raises the first problem)."""
    problems = column_problems(schema, actual, analysis_date)
    if problems:
        raise problems[0]


def _describe_key(frame: pl.DataFrame, key: Sequence[str]) -> str:
    row = frame.row(0, named=True)
    return ", ".join(f"{k}={row[k]}" for k in key if k in row)


def _row_rules(schema: TableSchema) -> list[tuple[str, str | None, pl.Expr]]:
    """(rule, column, offending-row expression) in the order a load reports them."""
    table_rules = ROW_RULES.get(schema.name, RowRules())
    rules: list[tuple[str, str | None, pl.Expr]] = [
        (
            "key must not be NULL" if column.name in schema.key else "must not be NULL",
            column.name,
            pl.col(column.name).is_null(),
        )
        for column in schema.columns
        if column.mode == "REQUIRED" or column.name in table_rules.not_null
    ]
    rules.append(
        (f"duplicate key ({', '.join(schema.key)})", None, pl.struct(schema.key).is_duplicated())
    )
    counts = [c.name for c in schema.columns if c.type == "INT64"]
    rules += [("counts must not be negative", c, pl.col(c) < 0) for c in counts]
    if table_rules.game_counts:
        above = f"above {GAME_COUNT_LIMIT} in one game (no box score comes near)"
        rules += [(above, c, pl.col(c) > GAME_COUNT_LIMIT) for c in counts if c != "season_year"]
    rules += [
        (f"makes above attempts ({makes} > {attempts})", makes, pl.col(makes) > pl.col(attempts))
        for makes, attempts in table_rules.makes_within_attempts
    ]
    rules += [
        (
            f"date outside {FIRST_DAY} to {LAST_DAY}, the dates phase4 takes; correct it",
            column.name,
            (pl.col(column.name) < FIRST_DAY) | (pl.col(column.name) > LAST_DAY),
        )
        for column in schema.columns
        if column.type == "DATE"
    ]
    rules += [
        (
            f"outside {low:g} to {high:g}",
            column_name,
            (pl.col(column_name) < low) | (pl.col(column_name) > high),
        )
        for column_name, low, high in table_rules.ranges
    ]
    rules += [
        (
            f"not written as {words}; write it as the other tables do",
            column,
            ~pl.col(column).cast(pl.String).str.contains(f"^{pattern}$"),
        )
        for column, pattern, words in table_rules.formats
    ]
    return rules


def row_problems(
    schema: TableSchema, frame: pl.DataFrame, analysis_date: date | None
) -> Iterator[InputContractError]:
    """NULL and duplicate keys, required NULLs, negative counts, makes above attempts, ranges:
    one error per rule broken, in this order (a load reports them all, a read the first).

    Every rule is counted in one pass over the frame (a nightly read checks ~500 rules);
    only a broken rule's first offending row is looked up."""
    rules = _row_rules(schema)
    offending = [bad.fill_null(False) for _, _, bad in rules]
    counts = frame.select([bad.sum().alias(str(i)) for i, bad in enumerate(offending)]).row(0)
    for (rule, column, _), bad, rows in zip(rules, offending, counts, strict=True):
        if rows:
            yield InputContractError(
                schema.full_name,
                rule,
                column=column,
                analysis_date=analysis_date,
                key=_describe_key(frame.filter(bad).head(1), schema.key),
                rows=int(rows),
            )


def check_rows(schema: TableSchema, frame: pl.DataFrame, analysis_date: date | None) -> None:
    """The first row rule broken, raised (reads stop there)."""
    first = next(row_problems(schema, frame, analysis_date), None)
    if first is not None:
        raise first


# A column name both warehouses take unchanged (BigQuery's rule: a letter or underscore, then
# letters, digits and underscores, at most 300); quoted in every statement, so keywords pass.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}")


def name_problems(schema: TableSchema, names: Sequence[str]) -> list[InputContractError]:
    """Column names a warehouse cannot hold: not an IDENTIFIER, or equal to another ignoring
    case (DuckDB and BigQuery compare names without case)."""
    problems, seen = [], set()
    for name in names:
        if not IDENTIFIER.fullmatch(name):
            rule = (
                "column name must be letters, digits and underscores, starting with a letter "
                "or underscore (at most 300); rename or drop the column"
            )
        elif name.lower() in seen:
            rule = "column name repeats another one ignoring case; rename or drop one of them"
        else:
            seen.add(name.lower())
            continue
        problems.append(InputContractError(schema.full_name, rule, column=repr(name)))
    return problems


def contract_problems(schema: TableSchema, frame: pl.DataFrame) -> list[InputContractError]:
    """Every problem of one Phase 3 file: its column names, its columns, then (when they fit)
    its rows."""
    problems = name_problems(schema, frame.columns)
    problems += column_problems(schema, frame.head(0).to_arrow().schema, None, advise=True)
    if problems:
        return problems
    present = schema.present_column_names(frame.columns)
    found = [*fit_problems(schema, frame), *row_problems(schema, frame.select(present), None)]
    return found + season_problems(schema, frame) + finite_problems(schema, frame)


def fit_problems(schema: TableSchema, frame: pl.DataFrame) -> list[InputContractError]:
    """Values the declared type cannot hold (a UInt64 above INT64's largest value): refused at
    the load, or the cast before the write, and every later read, would fail on them."""
    declared = schema.polars_schema
    lost = {
        name: pl.col(name).is_not_null() & pl.col(name).cast(declared[name], strict=False).is_null()
        for name, dtype in frame.schema.items()
        if name in declared and dtype != declared[name]
    }
    if not lost:
        return []
    counts = frame.select(bad.sum().alias(name) for name, bad in lost.items()).row(0, named=True)
    problems = []
    for name, bad in lost.items():
        if counts[name]:
            kind = schema.column(name).type
            largest = f" (at most {2**63 - 1})" if kind == "INT64" else ""
            problems.append(
                InputContractError(
                    schema.full_name,
                    f"value does not fit {kind}{largest}; correct it or write NULL",
                    column=name,
                    key=_describe_key(frame.filter(bad).head(1), schema.key),
                    rows=int(counts[name]),
                )
            )
    return problems


def finite_problems(schema: TableSchema, frame: pl.DataFrame) -> list[InputContractError]:
    """NaN and ±infinity are no measurement (SPEC 12 holds them out of range everywhere): a
    load refuses them rather than let them reach every average built from the column. A column
    with a range rule refuses them there already (one problem per cause)."""
    problems, ranged = [], {c for c, _, _ in ROW_RULES.get(schema.name, RowRules()).ranges}
    for column in (c.name for c in schema.columns if c.type == "FLOAT64" and c.name not in ranged):
        value = pl.col(column).cast(pl.Float64)
        bad = frame.filter(value.is_nan() | value.is_infinite()) if column in frame else frame[:0]
        if not bad.is_empty():
            key = _describe_key(bad, schema.key)
            rule = "NaN or infinity; write NULL for an unknown value"
            problems.append(
                InputContractError(schema.full_name, rule, column=column, key=key, rows=bad.height)
            )
    return problems


def season_problems(schema: TableSchema, frame: pl.DataFrame) -> list[InputContractError]:
    """A load replaces whole seasons by season_year: a row whose season_year is not its
    game_date's season (August starts one) would replace, or be left in, the wrong season."""
    if not {"season_year", "game_date"} <= set(frame.columns):
        return []
    bad = frame.filter(pl.col("season_year") != season_of_dates(pl.col("game_date")))
    if bad.is_empty():
        return []
    rule = "season_year is not the season of game_date (season S: August S to July S+1)"
    key = _describe_key(bad, [*schema.key, "game_date", "season_year"])
    return [
        InputContractError(schema.full_name, rule, column="season_year", key=key, rows=bad.height)
    ]


def conform_input(schema: TableSchema, table: pa.Table, analysis_date: date | None) -> pl.DataFrame:
    """Check a Phase 3 read against the contract and return it typed as declared."""
    check_columns(schema, table.schema, analysis_date)
    frame = pl.from_arrow(table.select(schema.present_column_names(table.schema.names)))
    assert isinstance(frame, pl.DataFrame)
    typed = schema.typed(with_optional_columns(schema, frame))
    check_rows(schema, typed, analysis_date)
    return typed


def with_optional_columns(schema: TableSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with every declared column, an optional one it lacks added as NULL, in
    schema order (what the processors read: a missing line is an unknown line)."""
    missing = [c for c in schema.columns if c.name not in frame.columns]
    added = frame.with_columns(pl.lit(None, dtype=c.polars_type).alias(c.name) for c in missing)
    return added.select(schema.column_names)


def _load_type(name: str, dtype: pl.DataType, declared: pl.Schema) -> pl.DataType:
    """A declared column's declared type; an extra column's own, but STRING for one of NULLs
    only (no warehouse can hold a NULL-typed column) or of categories."""
    if name in declared:
        return declared[name]
    if dtype == pl.Null or isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.String()
    return dtype


def typed_for_load(schema: TableSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """A file that passed the contract, typed as the warehouse must store it. Without the cast,
    a first load's integer or decimal FLOAT64 column would make the table's column an integer
    or a decimal, and every later season would be rounded into it."""
    declared = schema.polars_schema
    return frame.with_columns(
        pl.col(name).cast(_load_type(name, dtype, declared))
        for name, dtype in frame.schema.items()
        if _load_type(name, dtype, declared) != dtype
    )


def type_name(arrow: pa.DataType) -> str:
    """The declared type an Arrow type stores as (any width), else Arrow's own name."""
    repeated = pa.types.is_list(arrow) or pa.types.is_large_list(arrow)
    base = arrow.value_type if repeated else arrow
    name = "STRING" if _is_text(base) else bigquery_type_of_arrow(base) or str(base)
    return f"ARRAY<{name}>" if repeated else name


def stored_type_problems(
    schema: TableSchema, stored: pa.Schema | None, typed: pl.DataFrame
) -> list[InputContractError]:
    """Columns the warehouse already holds with another type than the file's, once typed: an
    older version's table (its declared column typed by its first file) or an extra column a
    former file gave another type. Caught before the write, not as the warehouse's cast error."""
    if stored is None:
        return []
    kept = {field.name.lower(): type_name(field.type) for field in stored}
    problems = []
    for field in typed.head(0).to_arrow().schema:
        found, was = type_name(field.type), kept.get(field.name.lower())
        if was is None or was == found:
            continue
        if field.name in schema.column_names:
            fix = f"(an earlier load's type, not the declared one): drop {schema.full_name}, "
            fix += "then load every season again"
        else:
            fix = f"and this file {found}: write the column as {was}, or leave it out of the file"
        rule = f"the warehouse stores this column as {was} {fix}"
        problems.append(InputContractError(schema.full_name, rule, column=field.name))
    return problems
