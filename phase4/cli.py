"""`phase4`: load Phase 3, run the flow, inspect and export what it wrote.

Exit status: 0 success (warnings included), 1 the run failed, 2 bad usage or input.
"""

from __future__ import annotations

import json
import os
import sys

# A local run starts Prefect's temporary server; give it time on small machines, no telemetry.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from datetime import date, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from phase4.data_commands import register as register_data_commands  # noqa: E402

app = typer.Typer(
    help="Phase 4 precompute: build the nightly fast-query tables from Phase 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
warehouse_app = typer.Typer(help="Set up the warehouse.", no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")
# Piped output (CI logs, `| less`) gets a wide table rather than folded processor names.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DateOption = Annotated[
    datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="Slate date D (YYYY-MM-DD).")
]


def _fail_input(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_BAD_INPUT)


def _print_lines(title: str, rows: list[dict[str, str]]) -> None:
    table = Table(title=title)
    for column in ("processor", "status", "rows", "duration_s", "message"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            *(row.get(c, "") for c in ("processor", "status", "rows", "duration_s", "message"))
        )
    console.print(table)


@warehouse_app.command("init")
def warehouse_init() -> None:
    """Create the datasets and every Phase 4 table (partitioning, clustering); idempotent."""
    from tasks.io import ensure_tables
    from tasks.warehouse import WarehouseError, open_warehouse

    try:
        warehouse = open_warehouse()
        changes = ensure_tables(warehouse)
    except WarehouseError as exc:
        raise _fail_input(str(exc)) from exc
    for change in changes:
        console.print(change)
    console.print(
        f"{warehouse.url}: {len(changes)} change(s)"
        if changes
        else f"{warehouse.url}: already up to date"
    )


@app.command("load-phase3")
def load_phase3(
    directory: Annotated[
        Path, typer.Argument(help="Folder of nba_analytics.<table>.parquet files")
    ],
    check: Annotated[
        bool, typer.Option("--check", help="Validate every file and report; write nothing")
    ] = False,
) -> None:
    """Validate every nba_analytics.<table>.parquet in DIR, then replace only the seasons
    (season_year) its files hold, per table; other seasons stay."""
    from phase4.loading import Phase3LoadError, load_phase3_directory
    from quality.contracts import InputContractError
    from tasks.warehouse import WarehouseError, open_warehouse

    try:
        try:
            warehouse = open_warehouse(read_only=check)
        except WarehouseError:
            if not check:
                raise
            warehouse = None  # checking needs no warehouse: report without its counts
        loads = load_phase3_directory(warehouse, directory, check=check)
    except (Phase3LoadError, InputContractError, FileNotFoundError, WarehouseError) as exc:
        raise _fail_input(str(exc)) from exc
    for load in loads:
        console.print(load.describe(written=not check), soft_wrap=True)
    if check:
        console.print(f"{directory}: every file passes the input contract; nothing written")


@app.command()
def run(
    analysis_date: DateOption,
    processors: Annotated[
        str | None,
        typer.Option(help="Comma-separated output tables to build (default: all five)."),
    ] = None,
) -> None:
    """Run the phase4-precompute flow for one date and print the run report."""
    from flows.phase4_precompute import phase4_precompute, select_processors
    from tasks.report import RunReport

    chosen = [p.strip() for p in processors.split(",") if p.strip()] if processors else None
    try:
        select_processors(chosen)
    except ValueError as exc:
        raise _fail_input(str(exc)) from exc
    state = phase4_precompute(
        analysis_date=analysis_date.date(), processors=chosen, return_state=True
    )
    report = state.result(raise_on_failure=False)
    if not isinstance(report, RunReport):
        err.print(f"[red]run failed:[/red] {state.message}\n{report}")
        raise typer.Exit(EXIT_RUN_FAILED)
    _print_lines(f"Phase 4 run for {report.analysis_date}: {report.status}", report.table_rows())
    # Problems in full, one per line, so an operator can copy the table, column and key.
    for line in report.lines:
        if line.status in ("FAIL", "SKIPPED", "WARN"):
            console.print(f"{line.status} {line.processor}: {line.message}", soft_wrap=True)
    raise typer.Exit(EXIT_RUN_FAILED if report.failed else EXIT_OK)


@app.command("demo-data")
def demo_data(
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same season")] = 7,
    out: Annotated[
        Path | None, typer.Option(help="Write the five Parquet files here instead of loading")
    ] = None,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Load only when the warehouse has no Phase 3 data")
    ] = False,
) -> None:
    """Generate a synthetic Phase 3 season and load it (or write it to --out)."""
    from phase4.demo_data import generate_season
    from phase4.loading import has_phase3, load_phase3_frames
    from tasks.warehouse import open_warehouse

    if out is None and if_empty and has_phase3(open_warehouse()):
        console.print("warehouse already holds Phase 3 data; demo data not loaded")
        return
    season = generate_season(seed=seed)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for table, frame in season.items():
            frame.write_parquet(out / f"nba_analytics.{table}.parquet")
            console.print(f"wrote {out / f'nba_analytics.{table}.parquet'}: {frame.height} rows")
        return
    for load in load_phase3_frames(open_warehouse(), season):
        console.print(load.describe(), soft_wrap=True)


@app.command()
def status(
    analysis_date: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="One slate date D: rows per processor"),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="First date of a date x processor grid"),
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last date of the grid")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """--date D: rows per processor for D and the last run's status. --start/--end: a date x
    processor grid, OK / WARN / FAIL / NO_GAMES / STALE / MISSING (SPEC 14). Never writes."""
    from phase4.status import grid_json, grid_table, status_rows
    from quality.contracts import InputContractError
    from tasks.warehouse import WarehouseError, open_warehouse

    if analysis_date is None and (start is None or end is None):
        raise _fail_input("give --date D, or --start D1 --end D2")
    try:
        warehouse = open_warehouse(read_only=True)
        if analysis_date is None:
            assert start is not None and end is not None
            if end < start:
                raise _fail_input(f"--end {end.date()} is before --start {start.date()}")
            from tasks.freshness import status_grid

            grid = status_grid(warehouse, start.date(), end.date())
            if as_json:
                print(grid_json(grid))
            else:
                console.print(grid_table(grid, f"Phase 4 freshness {start.date()}..{end.date()}"))
            return
        rows = status_rows(warehouse, analysis_date.date())
    except (WarehouseError, InputContractError) as exc:
        raise _fail_input(str(exc)) from exc
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    table = Table(title=f"Phase 4 status for {analysis_date.date()}")
    for column in ("processor", "rows", "last_processed_at", "status", "message"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            *(
                str(row[c] if row[c] is not None else "")
                for c in ("processor", "rows", "last_processed_at", "status", "message")
            )
        )
    console.print(table)


@app.command()
def backfill(
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First slate date")],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last slate date")],
    processors: Annotated[
        str | None, typer.Option(help="Comma-separated output tables (default: all five)")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Rebuild every date, not only missing, failed or stale ones")
    ] = False,
) -> None:
    """Build every date from START to END in order, with a progress bar and a summary."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from flows.phase4_backfill import BackfillSummary, phase4_backfill
    from flows.phase4_precompute import select_processors
    from tasks.backfill import progress_listener

    chosen = [p.strip() for p in processors.split(",") if p.strip()] if processors else None
    if end < start:
        raise _fail_input(f"--end {end.date()} is before --start {start.date()}")
    try:
        select_processors(chosen)
    except ValueError as exc:
        raise _fail_input(str(exc)) from exc
    total_days = (end - start).days + 1
    rows_written = 0
    with Progress(
        TextColumn("[bold]backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("dates", total=total_days, rows=0, rate="")

        def advance(day: date, rows: int, status: str) -> None:
            nonlocal rows_written
            rows_written += rows
            elapsed = progress.tasks[bar].elapsed or 0.0
            done = progress.tasks[bar].completed + 1
            rate = f"{done / elapsed:.1f} dates/s" if elapsed else ""
            progress.update(bar, advance=1, rows=rows_written, rate=rate)

        token = progress_listener.set(advance)
        try:
            state = phase4_backfill(
                start_date=start.date(),
                end_date=end.date(),
                processors=chosen,
                force=force,
                return_state=True,
            )
        finally:
            progress_listener.reset(token)
        progress.update(bar, completed=total_days)
    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, BackfillSummary):
        err.print(f"[red]backfill failed:[/red] {state.message}\n{summary}")
        raise typer.Exit(EXIT_RUN_FAILED)
    table = Table(title=f"Backfill {start.date()}..{end.date()}: {summary.counts()}")
    for column in ("date", "status", "rows", "message"):
        table.add_column(column, overflow="fold")
    for row in summary.per_date():
        table.add_row(*(str(row[c]) for c in ("date", "status", "rows", "message")))
    console.print(table)
    console.print(
        f"{summary.rows_written} rows written; {len(summary.skipped_dates)} dates skipped"
    )
    raise typer.Exit(EXIT_RUN_FAILED if summary.failed_dates else EXIT_OK)


@app.command()
def report(
    start: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="First slate date")],
    end: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last slate date")],
    out: Annotated[Path, typer.Option(help="HTML file to write")] = Path("report.html"),
) -> None:
    """One self-contained HTML page (opens offline) with the range's charts."""
    from phase4.html_report import build_report_html
    from tasks.report_reads import read_report_frames
    from tasks.warehouse import open_warehouse

    if end < start:
        raise _fail_input(f"--end {end.date()} is before --start {start.date()}")
    frames = read_report_frames(open_warehouse(read_only=True), start.date(), end.date())
    out.write_text(build_report_html(frames), encoding="utf-8")
    console.print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


register_data_commands(app)  # training-set, features, export: phase4/data_commands.py


def main() -> None:
    app()


if __name__ == "__main__":
    main()


__all__ = ["app", "date"]
