"""`phase4 training-set`, `phase4 features`, `phase4 export`: reading what the flow wrote.

None of these create or write the warehouse. Exit status: 0 success, 2 bad usage or input
(a missing table, an empty range, a bad date order), with one line saying what to do.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.text import Text

from phase4 import checks
from phase4.checks import InputError  # bad input: the CLI prints one line and exits 2

if TYPE_CHECKING:
    import polars as pl

    from tasks.warehouse import Warehouse


def literal_console(*, stderr: bool = False) -> Console:
    """A console that prints text as it is: player names, file names and messages come from
    data and users, so Rich markup (`[/x]`), emoji codes (`:x:`) and highlighting never apply.
    Piped output (CI logs, `| less`) gets a wide table rather than folded names."""
    stream = sys.stderr if stderr else sys.stdout  # None when the shell closed it (>&-)
    width = None if stream is not None and stream.isatty() else 160
    return LiteralConsole(stderr=stderr, width=width, markup=False, emoji=False, highlight=False)


class LiteralConsole(Console):
    """Every string printed goes through `visible`: a name or message holding a control character
    or a newline prints as one line of escapes, never driving the terminal or faking a line."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(visible(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = literal_console()
err = literal_console(stderr=True)


def say_error(message: str, label: str = "error:") -> None:
    """`error: <message>`, the label in red, the message literal."""
    err.print(Text.assemble((label, "red"), " ", visible(message)), soft_wrap=True)


def visible(text: str) -> str:
    """Control characters as escapes (`\\x1b`, a newline `\\x0a`): see LiteralConsole."""
    return text.translate(CONTROL_ESCAPES)


CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(32), 127)}


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    title: str | None = None,
    right: Sequence[str] = (),
) -> None:
    """A table whose long cells fold onto more lines rather than being cut."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold", justify="right" if column in right else "left")
    for row in rows:
        table.add_row(*(visible(str(cell)) for cell in row))
    console.print(table)


def date_option(name: str, help: str) -> Any:
    return typer.Option(name, formats=["%Y-%m-%d"], help=help)


DayOption = Annotated[datetime | None, date_option("--date", "Slate date D (YYYY-MM-DD).")]
StartOption = Annotated[datetime | None, date_option("--start", "First slate date")]
EndOption = Annotated[datetime | None, date_option("--end", "Last slate date")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Replace --out when it exists (otherwise refused)")
]
ProcessorsOption = Annotated[
    list[str] | None,
    typer.Option(
        help="P1..P5 or output tables, comma-separated or the option repeated (default: all five)."
    ),
]


def dates_of_options(
    start: datetime | None, end: datetime | None, day: datetime | None, one_date: bool = True
) -> tuple[date, date]:
    """--start/--end, or --date as a one-date range; each date in range, in order.
    one_date: the command has a --date (training-set has not)."""
    if day is not None and (start is not None or end is not None):
        raise InputError("give either --date or --start/--end, not both")
    if day is not None:
        one = checks.day(day)
        return one, one
    if start is None or end is None:
        alone = ", or --date for one date" if one_date else ""
        raise InputError(f"give --start and --end (YYYY-MM-DD){alone}")
    return checks.ordered(start, end)


def training_set_command(
    out: Annotated[Path, typer.Option("--out", help="File to write (.parquet or .csv)")],
    start: StartOption = None,
    end: EndOption = None,
    all_rows: Annotated[
        bool,
        typer.Option("--all-rows", help="Keep every row, not only those passing the filters"),
    ] = False,
    min_quality: Annotated[
        float,
        typer.Option(
            "--min-quality",
            help="Training filter: feature_quality_score >= this (50 or more; 70 gives the "
            "is_quality_ready rows)",
        ),
    ] = 70.0,
    fmt: Annotated[
        Literal["parquet", "csv"], typer.Option("--format", help="parquet or csv")
    ] = "parquet",
    force: ForceOption = False,
) -> None:
    """Features of each slate date in START..END joined with what happened (SPEC 13, 16.5)."""
    import polars as pl

    from tasks.readers import build_training_set, open_reader, slates_built

    first, last = dates_of_options(start, end, None, one_date=False)
    checks.output_file(out, force=force, fmt=fmt, file_formats=("parquet", "csv"))
    clock = time.perf_counter()
    try:
        checks.stored_tables(warehouse := open_reader())
        checks.within_seasons(warehouse, first, last)
        frame = build_training_set(
            first, last, all_rows=all_rows, min_quality=min_quality, warehouse=warehouse
        )
    except ValueError as exc:  # a WarehouseError is one line too (the CLI's clean_errors)
        raise InputError(str(exc)) from exc
    slates, unbuilt = slates_built(warehouse, first, last)
    backfill = f"`phase4 backfill --start {first} --end {last}`"
    if frame.is_empty():
        raise InputError(
            f"no slate (player context) between {first} and {last}: pick dates with games"
            if not slates
            else f"no ml_feature_store_v2 rows between {first} and {last}: run {backfill} first"
            if unbuilt == slates
            else f"no row between {first} and {last} passes the training filters: "
            f"{'lower --min-quality or ' if min_quality > 75 else ''}pass --all-rows"
        )
    if unbuilt:  # a training set short of dates it was asked for says so
        err.print(
            f"warning: {len(unbuilt)} of the {len(slates)} slate dates have no "
            f"ml_feature_store_v2 rows (first {unbuilt[0]}); {backfill} builds them",
            soft_wrap=True,
        )
    checks.write_atomically(out, frame.write_csv if fmt == "csv" else frame.write_parquet)
    seconds = time.perf_counter() - clock
    labelled = frame.filter(pl.col("played")).height
    lines = frame.get_column("points_line").is_not_null().sum()
    console.print(
        f"{out}: {frame.height} rows, {frame.get_column('game_date').n_unique()} date(s) in "
        f"{first}..{last}, {labelled} played, {lines} with a points line, {seconds:.1f} s",
        soft_wrap=True,
    )


def features_command(
    day: DayOption = None,
    player: Annotated[
        str | None, typer.Option("--player", help="One player_lookup (default: the slate)")
    ] = None,
    fmt: Annotated[
        Literal["table", "json", "parquet"], typer.Option("--format", help="table, json or parquet")
    ] = "table",
    out: Annotated[
        Path | None, typer.Option("--out", help="File for --format parquet (required there)")
    ] = None,
    force: ForceOption = False,
) -> None:
    """D's 60 features per player with quality, readiness and each feature's tag."""
    from features.training_set import feature_rows, slate_features
    from tasks.readers import open_reader, read_slate

    if day is None:
        raise InputError("give --date (YYYY-MM-DD)")
    slate_day = checks.day(day)
    if fmt == "parquet" and out is None:
        raise InputError("--format parquet needs --out FILE")
    if fmt != "parquet" and out is not None:
        raise InputError(f"--out is for --format parquet; --format {fmt} prints to the terminal")
    if player is not None and not player.strip():
        raise InputError("--player is empty: give a player_lookup, e.g. lebronjames")
    if out is not None:
        checks.output_file(out, force=force, fmt=fmt)
    checks.stored_tables(warehouse := open_reader())
    rows = read_slate(warehouse, slate_day, player)  # a WarehouseError is one line too
    if rows.is_empty():
        raise InputError(_no_rows(warehouse, slate_day, player))
    if out is not None:  # --format parquet
        checks.write_atomically(out, slate_features(rows).write_parquet)
        console.print(f"{out}: {rows.height} players", soft_wrap=True)
    elif fmt == "json":
        typer.echo(json.dumps(_as_json(slate_features(rows)), indent=2, default=str))
    elif player is not None:
        _print_player(rows, feature_rows(rows))
    else:
        _print_slate(rows)


def _no_rows(warehouse: Warehouse, day: date, player: str | None) -> str:
    """Say whether the date or the player is the problem, with slate players to pick from."""
    from tasks.readers import read_slate, slates_built

    slate = read_slate(warehouse, day) if player else None
    if slate is None or slate.is_empty():
        if not slates_built(warehouse, day, day)[0]:
            checks.loaded_seasons(warehouse, str(day))  # no Phase 3 at all: load one, it says
            return f"{day} has no slate (no upcoming_player_game_context row): pick another date"
        return (
            f"ml_feature_store_v2 has no rows for {day}: run `phase4 run --date {day}` "
            "(or a backfill) first"
        )
    some = ", ".join(slate.get_column("player_lookup").sort().head(5).to_list())
    return (  # quoted: a space or a tab in it is the difference from a slate player
        f"'{player}' is not on the {day} slate ({slate.height} players, e.g. {some}); "
        "--player takes a player_lookup"
    )


def _as_json(wide: pl.DataFrame) -> list[dict[str, object]]:
    """One object per player: identity, quality and {name: {index, value, source}} for the 60
    features in index order; 0 to 24 add `array_value`, their value in `features`."""
    from features.training_set import IDENTITY_COLUMNS, QUALITY_COLUMNS, SOURCE_PREFIX
    from quality.feature_contract import ALL_FEATURE_NAMES, ARRAY_FEATURE_COUNT, VALUE_COLUMNS

    players = []
    for row in wide.iter_rows(named=True):
        features: dict[str, dict[str, object]] = {}
        for index, (name, column) in enumerate(zip(ALL_FEATURE_NAMES, VALUE_COLUMNS, strict=True)):
            source = row[f"{SOURCE_PREFIX}{name}"]
            features[name] = {"index": index, "value": row[column], "source": source}
            if index < ARRAY_FEATURE_COUNT:
                features[name]["array_value"] = row[name]
        kept = {c: row[c] for c in (*IDENTITY_COLUMNS, *QUALITY_COLUMNS)}
        players.append({**kept, "features": features})
    return players


def _number(value: float | None) -> str:
    return "NULL" if value is None else f"{value:.4g}"


def _print_player(rows: pl.DataFrame, long: pl.DataFrame) -> None:
    from quality.feature_contract import ARRAY_FEATURE_COUNT

    row = rows.row(0, named=True)
    title = (
        f"{row['player_lookup']} on {row['game_date']} vs {row['opponent_team_abbr']}: "
        f"quality {row['feature_quality_score']:.1f} ({row['quality_tier']}), "
        f"data_source {row['data_source']}, {row['default_feature_count']} defaulted "
        f"({row['required_default_count']} required), "
        f"quality ready {row['is_quality_ready']}, training ready {row['is_training_ready']}, "
        f"{row['feature_version']}"
    )
    console.print(title, soft_wrap=True)
    cells = [
        [i, name, _number(value), source or "", _number(array) if i < ARRAY_FEATURE_COUNT else ""]
        for i, name, value, source, array in long.iter_rows()
    ]
    print_table(["#", "feature", "value", "source", "array"], cells, right=["#", "value", "array"])
    console.print(
        "value: feature_<#>_value, NULL when the feature is defaulted or missing; array: its "
        "value in `features`, the older reader's 25, with the default filled in"
    )


def _print_slate(rows: pl.DataFrame) -> None:
    from quality.feature_contract import ALL_FEATURE_NAMES, DEFAULTED, REQUIRED_FEATURES

    columns = ["player", "opp", "quality", "tier", "source", "defaulted", "required", "ready"]
    lines = []
    for row in rows.sort("player_lookup").iter_rows(named=True):
        tags = json.loads(row["feature_sources_json"] or "{}")  # NULL: written before it
        defaulted = [
            ALL_FEATURE_NAMES[i] for i in REQUIRED_FEATURES if tags.get(str(i)) in DEFAULTED
        ]
        lines.append(
            [
                row["player_lookup"],
                row["opponent_team_abbr"] or "",
                f"{row['feature_quality_score']:.1f}",
                row["quality_tier"],
                row["data_source"],
                row["default_feature_count"],
                row["required_default_count"],
                "yes" if row["is_quality_ready"] else "no",
                "yes" if row["is_training_ready"] else "no",
                ", ".join(defaulted),
            ]
        )
    title = f"ml_feature_store_v2 for {rows.get_column('game_date')[0]}: {rows.height} players"
    print_table([*columns, "training", "required defaulted"], lines, title)
    console.print("one player's 60 values and tags: --player LOOKUP; all of them: --format json")


def export_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the Hive-partitioned datasets")],
    start: StartOption = None,
    end: EndOption = None,
    day: DayOption = None,
) -> None:
    """Every output table as OUT/<dataset>.<table>/<partition>=YYYY-MM-DD/part-0.parquet."""
    from phase4.loading import InterruptedAfterWrite
    from quality.schemas import OUTPUT_TABLES
    from tasks.export import ExportedDate, ExportPathError, export_range
    from tasks.readers import open_reader

    first, last = dates_of_options(start, end, day)
    checks.output_folder(out)
    results: list[ExportedDate] = []  # the dates written, also after a Ctrl-C
    try:
        warehouse = open_reader()
        checks.stored_tables(warehouse)
        checks.within_seasons(warehouse, first, last, day is not None)
        export_range(warehouse, first, last, out, into=results)
    except ExportPathError as exc:  # a WarehouseError is one line too (clean_errors)
        raise InputError(str(exc)) from exc
    except KeyboardInterrupt:  # each file is whole: say which, a re-run writes the rest
        files = [r for r in results if r.path is not None]
        tables = ", ".join(dict.fromkeys(r.table for r in files)) or "no table"
        said = f"{len(files)} date file(s) of {tables} under {out}, each whole"
        raise InterruptedAfterWrite(f"{said}; export again for the rest") from None
    except OSError as exc:  # a folder it cannot make or write in (permissions, /proc, full disk)
        reason = f"cannot write in it ({exc.strerror or exc})"
        raise InputError(f"--out {out}: {reason}; choose a folder this user can write in") from exc
    for table in dict.fromkeys(r.table for r in results):
        mine, name = [r for r in results if r.table == table], OUTPUT_TABLES[table].full_name
        written = [r for r in mine if r.path is not None]
        removed = sum(r.removed_stale for r in mine)
        said = f"{sum(r.rows for r in written)} rows in {len(written)} date(s)"
        said += f", {len(mine) - len(written)} date(s) without rows" if written != mine else ""
        said += f", {removed} stale date(s) removed" if removed else ""
        if any(r.table_absent for r in mine):
            said = f"the warehouse has no {name}; nothing written or removed"
        console.print(f"{out / name}: {said}", soft_wrap=True)


# The read commands, by name; the CLI registers each.
DATA_COMMANDS: dict[str, Callable[..., None]] = {
    "training-set": training_set_command,
    "features": features_command,
    "export": export_command,
}
