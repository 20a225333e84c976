"""`phase4`: load Phase 3, run the flow, inspect and export what it wrote.

Exit status: 0 success (warnings included), 1 the run failed, 2 bad usage or input, 130
interrupted. Heavy libraries (Prefect, Polars) are imported inside the commands that need them,
so `--help`, `--version` and the error paths answer at once.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer._click import exceptions as click  # typer vendors click

from phase4 import checks
from phase4.data_commands import (
    DATA_COMMANDS,
    DayOption,
    EndOption,
    ForceOption,
    ProcessorsOption,
    StartOption,
    console,
    date_option,
    dates_of_options,
    err,
    print_table,
    say_error,
)
from phase4.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED

if TYPE_CHECKING:
    from tasks.warehouse import Warehouse

# Prefect's temporary server (PHASE4_SERVER=off) needs time on small machines. No telemetry (the
# client's first import printed a notice and wrote to the Prefect home); an operator's setting wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# After the first Ctrl-C, a run still going is ended this long after (`_interrupts`).
INTERRUPT_DEADLINE_SECONDS = 8.0
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


class OneLineTyper(typer.Typer):
    """Usage errors (a misspelt option, a bad date) are one line and exit 2, like bad input."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            code = super().__call__(*args, **{**kwargs, "standalone_mode": False})
        except click.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(EXIT_BAD_INPUT)
        except click.ClickException as exc:
            say_error(usage_line(exc))
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("aborted")
            sys.exit(EXIT_RUN_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def usage_line(exc: Any) -> str:
    """Click's message in one line, a date format error in our words, and where help is."""
    message = " ".join(exc.format_message().split()).replace(": Value error, ", ": ")
    bad_date = re.match(
        r"Invalid value for '([^']+)': .*'([^']*)' does not match the formats", message
    )
    if bad_date:
        message = f"{bad_date[1]} {bad_date[2]}: not a date; expected YYYY-MM-DD, e.g. 2024-01-15"
    context = getattr(exc, "ctx", None)
    if context and re.match(r"No such option: (-q|--quiet)\b", message):
        program, _, command = context.command_path.partition(" ")  # -q is phase4's own option
        return f"{message}; it goes before the command: `{program} -q {command} …`"
    return f"{message} (see `{context.command_path} --help`)" if context else message


app = OneLineTyper(no_args_is_help=True, pretty_exceptions_enable=False)
warehouse_app = typer.Typer(help="Set up the warehouse.", no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")
server_app = typer.Typer(
    help="The managed local Prefect server the CLI uses when PREFECT_API_URL is unset.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")
Start = Annotated[datetime, date_option("--start", "First slate date")]
End = Annotated[datetime, date_option("--end", "Last slate date")]


@dataclass
class Options:
    quiet: bool = False
    warehouse: str | None = None
    announced: bool = False
    # A run or backfill whose flow has returned: what it wrote, for a Ctrl-C while it prints.
    finished: str | None = None


options = Options()


def _print_version(value: bool) -> None:
    from importlib.metadata import version

    if value:
        console.print(
            f"phase4 {version('phase4-precompute')} (prefect {version('prefect')}, polars "
            f"{version('polars')}, duckdb {version('duckdb')}, python {sys.version.split()[0]})"
        )
        raise typer.Exit(EXIT_OK)


@app.callback()
def main_options(
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Only the results: no warehouse line, no Prefect logs."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print versions and exit."
        ),
    ] = False,
) -> None:
    """Phase 4 precompute: build the nightly fast-query tables from Phase 3."""
    options.quiet, options.warehouse, options.announced, options.finished = quiet, None, False, None
    if quiet:
        # Read by Prefect's logging configuration when Prefect is first imported: the server
        # still gets warnings and errors; the terminal only our results and error lines.
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "CRITICAL"


def _announce_warehouse(*, to_stderr: bool = False) -> None:
    """`warehouse: URL` first, once, not with --quiet; on stderr when stdout is data (JSON)."""
    from tasks.warehouse import checked_warehouse_url

    url = checked_warehouse_url()
    options.warehouse = url
    if url.startswith("bigquery") and "PREFECT_API_URL" not in os.environ:  # else it is read there
        from tasks.warehouse.bigquery_warehouse import credentials_block_setting as block

        if block():  # saved on the managed server, where `run` finds it: every command looks there
            _use_prefect_server()
    if not options.quiet and not options.announced:
        (err if to_stderr else console).print(f"warehouse: {url}", soft_wrap=True)
        options.announced = True


def _one_line(message: str) -> str:
    """Only an exception text's layout goes (a value's own spaces stay); --quiet names the
    warehouse here, as its line is not printed."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    if options.warehouse and options.quiet and options.warehouse not in text:
        text += f" (warehouse {options.warehouse})"
    return text


def _fail_input(message: str) -> typer.Exit:
    say_error(_one_line(message))
    return typer.Exit(EXIT_BAD_INPUT)


def _bad_input_types() -> tuple[type[BaseException], ...]:
    """What the CLI reports as one line and exit 2: problems the operator can fix."""
    import duckdb

    from phase4.checks import InputError  # Phase3FileError too
    from phase4.settings import SettingError
    from quality.contracts import InputContractError
    from tasks.warehouse import WarehouseError

    file_level = (duckdb.IOException, PermissionError)  # not (yet) wrapped by the warehouse
    return InputError, SettingError, WarehouseError, InputContractError, *file_level


INTERRUPTED = "interrupted: nothing more is written; a write under way rolled back whole"


def _interrupted() -> str:
    """A Ctrl-C outside a run's own handler: after its flow returned, what the run wrote."""
    return f"interrupted after {options.finished}" if options.finished else INTERRUPTED


def clean_errors(command: F, announce: bool = False) -> F:
    """Bad input becomes `error: <one line>` and exit 2, never a traceback. announce: a read
    command prints the warehouse line first (on stderr when stdout is JSON)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        heard: list[int] = []

        def on_ctrl_c(signum: int, frame: Any) -> None:
            heard.append(signum)
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_ctrl_c)
        try:
            if announce:
                _announce_warehouse(to_stderr=str(kwargs.get("fmt", "")) == "json")
            return command(*args, **kwargs)
        except Exception as exc:  # typer.Exit (a RuntimeError) goes on up as it is
            if heard and not isinstance(exc, typer.Exit):
                # DuckDB makes a Ctrl-C in a query `RuntimeError: Query interrupted`, rolled back.
                say_error(_interrupted())
                raise typer.Exit(EXIT_INTERRUPTED) from exc
            if isinstance(exc, _bad_input_types()):
                raise _fail_input(str(exc)) from exc
            from phase4.server import ServerStartError

            if isinstance(exc, ServerStartError):
                say_error(_one_line(str(exc)))
                raise typer.Exit(EXIT_RUN_FAILED) from exc
            raise
        except KeyboardInterrupt as exc:  # outside a run's own handler (_interrupts)
            from phase4.loading import InterruptedAfterWrite

            after = isinstance(exc, InterruptedAfterWrite)
            say_error(f"interrupted after the write committed: {exc}" if after else _interrupted())
            raise typer.Exit(EXIT_INTERRUPTED) from exc
        finally:
            signal.signal(signal.SIGINT, previous)

    return wrapper  # type: ignore[return-value]


def command(
    name: str | None = None, group: typer.Typer = app, announce: bool = False
) -> Callable[[F], F]:
    """A command of `group` whose bad input is one line (clean_errors)."""
    return lambda function: group.command(name)(clean_errors(function, announce))


def _open_warehouse(*, read_only: bool = False, announce: bool = True) -> Warehouse:
    """The configured warehouse, its line printed first; read commands never create it."""
    from tasks.warehouse import open_warehouse

    if announce:
        _announce_warehouse()
    return open_warehouse(read_only=read_only)


def _use_prefect_server() -> None:
    """Point this process at the managed server (started on first use) unless told otherwise.
    A silent API or a refused server.auth is one line here, not Prefect's traceback in a flow."""
    from phase4 import server

    if not server.managed_server_wanted():
        server.check_configured_api()
        return
    current = server.server_status()
    if current.refused:
        raise server.ServerSecretError(current.refusal())
    if not current.healthy:
        if not options.quiet:
            err.print(f"starting the managed Prefect server ({current.home}) ...")
        current = server.start_server()
    assert current.port is not None and current.pid is not None
    os.environ.update(server.client_environment(current.port, current.home))
    threading.Thread(target=_watch_server, args=(current.pid, current.home), daemon=True).start()


def _watch_server(pid: int, home: Path) -> None:
    """A server gone mid-command leaves Prefect's client retrying for minutes: end in one line."""
    from phase4.server import alive

    while alive(pid):
        time.sleep(0.5)
    say_error(
        f"the managed Prefect server (pid {pid}) stopped during the command: start it (log "
        f"{home}/server.log) and re-run it; each partition committed has its run line"
    )
    sys.stdout.flush()
    os._exit(EXIT_RUN_FAILED)


def parse_processors(values: list[str] | None) -> list[str] | None:
    """`P1,P3` or table names (any case, dataset optional), from one --processors or several;
    None means all of them."""
    names = [name for value in values or () for name in re.split(r"[,\s]+", value) if name]
    if not names:
        if values is not None:  # `--processors "$EMPTY"` must not quietly mean all five
            raise _fail_input("--processors is empty: give P1..P5 or table names, or omit it")
        return None
    from features import registry

    try:
        return [p.table for p in registry.select(names)]
    except ValueError as exc:
        raise _fail_input(f"--processors: {exc}") from exc


def human_counts(counts: dict[str, int]) -> str:
    """`{'OK': 150, 'NO_GAMES': 12}` -> `150 OK, 12 NO_GAMES` (worst first)."""
    from quality.success import STATUS_ORDER

    keys = sorted(counts, key=lambda k: STATUS_ORDER.index(k) if k in STATUS_ORDER else -1)
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "nothing to do"


@command("init", group=warehouse_app)
def warehouse_init() -> None:
    """Create the datasets and every Phase 4 table (partitioning, clustering); idempotent."""
    from tasks.io import ensure_tables

    warehouse = _open_warehouse()
    changes = ensure_tables(warehouse)
    for change in changes:
        console.print(change)
    done = f"{len(changes)} change(s)" if changes else "already up to date"
    console.print(f"{warehouse.url}: {done}")


@command("load-phase3")
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
    from tasks.warehouse import WarehouseError

    _announce_warehouse()
    checks.utf8_name(directory, "folder")
    unread = None  # why a check could not count the warehouse's rows
    try:
        try:
            warehouse = _open_warehouse(read_only=check)
        except WarehouseError as exc:
            if not check:
                raise
            warehouse, unread = None, _one_line(str(exc))  # the files are checked all the same
        loads = load_phase3_directory(warehouse, directory, check=check)
    except Phase3LoadError as exc:  # every problem of every file, one per line
        say_error(f"{len(exc.problems)} contract problem(s), nothing loaded:")
        for problem in exc.problems:
            err.print(f"  {problem}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    for load in loads:
        console.print(load.describe(written=not check, counted=unread is None), soft_wrap=True)
    if unread:
        console.print(f"the warehouse's rows are not counted: {unread}", soft_wrap=True)
    if check:
        console.print(f"{directory}: every file passes the input contract; nothing written")


@command()
def run(
    analysis_date: Annotated[
        datetime | None,
        date_option(
            "--date", "Slate date D (YYYY-MM-DD). Default: the next slate, like the nightly run."
        ),
    ] = None,
    processors: ProcessorsOption = None,
) -> None:
    """Run the phase4-precompute flow for one date and print the run report."""
    chosen = parse_processors(processors)
    if analysis_date is not None:
        checks.day(analysis_date)
    _announce_warehouse()
    _use_prefect_server()  # before anything imports Prefect: its settings are read at import
    from flows.phase4_precompute import phase4_precompute, slate_date
    from quality.success import RunReport
    from tasks.io import ensure_tables

    warehouse = _open_warehouse()
    # Opened once for the command: the flow's operations take cursors of this connection.
    with warehouse.held_open():
        checks.loaded_seasons(warehouse, f"{analysis_date:%Y-%m-%d}" if analysis_date else "a run")
        ensure_tables(warehouse)  # a bad warehouse is one line here, not a failed flow
        checks.stored_tables(warehouse)
        day = slate_date(analysis_date.date() if analysis_date else None)
        if analysis_date is None and not options.quiet:
            console.print(f"no --date: building the next slate, {day}")
        state = None
        with _interrupts(f"run for {day}") as interrupt:
            state = phase4_precompute(analysis_date=day, processors=chosen, return_state=True)
    stopped = (
        f"run for {day} interrupted; written: {', '.join(interrupt.tables()) or 'nothing'}"
        " (each partition with its run line). Re-run the same command to build it."
    )
    report = _flow_result(state, RunReport, "run", interrupt, stopped)
    columns = ["processor", "status", "rows", "duration_s", "message"]
    rows = [[row[c] for c in columns] for row in report.table_rows()]
    print_table(columns, rows, f"Phase 4 run for {report.analysis_date}: {report.status}")
    # Problems in full, one per line, so an operator can copy the table, column and key.
    for line in report.lines:
        if line.status in ("FAIL", "SKIPPED", "WARN"):
            console.print(f"{line.status} {line.processor}: {line.message}", soft_wrap=True)
    raise typer.Exit(EXIT_RUN_FAILED if report.failed else EXIT_OK)


def _flow_result(state: Any, kind: type[R], what: str, interrupt: Interrupt, stopped: str) -> R:
    """The flow's result; a flow that raised, one line (exit 2 for bad input, else 1). After a
    Ctrl-C or SIGTERM (`interrupt`), `stopped` and exit 130, the flow run marked Cancelled or
    Crashed: a SIGTERM that a DuckDB query swallowed is only known from `state`, the flow run's
    final state when the flow returned (the run ended Failed and is marked Crashed)."""
    if interrupt.count:
        interrupt.finished = True
        if interrupt.flow_run_id is None and state is not None:
            interrupt.flow_run_id = str(state.state_details.flow_run_id)
        _cancel_flow_run(interrupt)
        err.print(stopped, soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    result = state.result(raise_on_failure=False)
    result = getattr(result, "outcome", result)  # a failed run's RunFailed carries its report
    if isinstance(result, kind):
        return result
    if isinstance(result, _bad_input_types()):
        raise _fail_input(str(result))
    say_error(_one_line(f"{state.message or ''}: {result}"), f"{what} failed:")
    raise typer.Exit(EXIT_RUN_FAILED)


DEMO_SEASON = 2024  # the synthetic season's season_year


@command("demo-data")
def demo_data(
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same season")] = 7,
    out: Annotated[
        Path | None, typer.Option(help="Write the five Parquet files here instead of loading")
    ] = None,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Load only when the warehouse has no Phase 3 data")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace files that exist in --out; loading, replace the season if it is there",
        ),
    ] = False,
) -> None:
    """Generate a synthetic Phase 3 season (2024-25) and load it (or write it to --out)."""
    from demo_data import generate_season
    from phase4.loading import load_phase3_frames, season_counts
    from quality.schemas import PHASE3_TABLES, PLAYER_GAME_SUMMARY

    if out is not None:
        if if_empty:
            raise _fail_input("--if-empty is for loading; with --out the files are written")
        checks.output_folder(out)
        for table in PHASE3_TABLES if out.is_dir() else ():  # else it is made, empty
            checks.output_file(out / f"nba_analytics.{table}.parquet", force=force)
    else:
        warehouse = _open_warehouse()
        if if_empty and warehouse.table_schema(PLAYER_GAME_SUMMARY.full_name) is not None:
            console.print("warehouse already holds Phase 3 data; demo data not loaded")
            return
        held = season_counts(warehouse, PLAYER_GAME_SUMMARY.full_name).get(DEMO_SEASON)
        if held and not force:  # real rows are not to be replaced by synthetic ones unasked
            raise _fail_input(
                f"the warehouse holds season {DEMO_SEASON}-{(DEMO_SEASON + 1) % 100:02d} "
                f"({held} rows in {PLAYER_GAME_SUMMARY.name}); demo-data would replace it with "
                "synthetic rows: pass --force to replace it, or load the demo into another "
                "warehouse (PHASE4_WAREHOUSE)"
            )
    season = generate_season(seed=seed, season_year=DEMO_SEASON)
    if out is None:
        for load in load_phase3_frames(warehouse, season):
            console.print(load.describe(), soft_wrap=True)
        return
    for table, frame in season.items():
        target = out / f"nba_analytics.{table}.parquet"
        checks.write_atomically(target, frame.write_parquet)
        console.print(f"wrote {target}: {frame.height} rows", soft_wrap=True)


@command()
def status(
    analysis_date: DayOption = None,
    start: StartOption = None,
    end: EndOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """--date D: rows per processor for D, last processed_at, the last run's status mark and
    the feature checks of D (SPEC 12); BigQuery bytes billed when the run recorded them.
    --start/--end: a date x processor grid, OK / WARN / FAIL / NO_GAMES / STALE / MISSING
    (SPEC 14). Never writes."""
    from phase4.status import CHECK_COLUMNS, day_document, grid_json, grid_table, status_rows
    from tasks.feature_checks import feature_checks_of
    from tasks.freshness import status_grid

    first, last = dates_of_options(start, end, analysis_date)  # --date: rows, else a grid
    warehouse = _open_warehouse(read_only=True, announce=not as_json)  # JSON stays parseable
    checks.stored_tables(warehouse)
    if analysis_date is None:
        checks.within_seasons(warehouse, first, last)
        grid = status_grid(warehouse, first, last)
        if as_json:
            print(grid_json(grid))
        else:
            console.print(grid_table(grid, f"Phase 4 freshness {first}..{last}"))
        return
    day = first
    rows, stored = status_rows(warehouse, day), feature_checks_of(warehouse, day)
    if as_json:
        print(json.dumps(day_document(day, rows, stored), indent=2))
        return
    columns = ["processor", "rows", "last_processed_at", "status", "message"]
    if any(row["bytes_billed"] is not None for row in rows):
        columns.insert(3, "bytes_billed")
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    print_table(columns, cells, f"Phase 4 status for {day}")
    if stored.is_empty():
        console.print(f"feature checks: none stored for {day}")
        return
    cells = [[_cell(c[k], 3) for k in CHECK_COLUMNS] for c in stored.iter_rows(named=True)]
    print_table(CHECK_COLUMNS, cells, f"Feature checks for {day} (SPEC 12)")


def _cell(value: object, digits: int | None = None) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if digits is not None and isinstance(value, float) else str(value)


@command()
def backfill(
    start: Start,
    end: End,
    processors: ProcessorsOption = None,
    force: Annotated[
        bool, typer.Option(help="Rebuild every date, not only missing, failed or stale ones")
    ] = False,
) -> None:
    """Build every date from START to END in order, with a progress bar and a summary.

    Ctrl-C stops before the next commit; a re-run resumes where it stopped.
    """
    import rich.progress as bar_of

    chosen = parse_processors(processors)
    checks.ordered(start, end)
    warehouse = _open_warehouse()
    with warehouse.held_open():  # one open file for the checks, the reads ahead and the flow
        checks.within_seasons(warehouse, start.date(), end.date())
        from tasks.readers import read_ahead

        read_ahead(start.date(), end.date(), chosen)  # Phase 3 read while Prefect is imported
        _use_prefect_server()
        from flows.phase4_backfill import phase4_backfill
        from quality.success import BackfillSummary
        from tasks.backfill import progress_listener
        from tasks.io import ensure_tables

        ensure_tables(warehouse)
        checks.stored_tables(warehouse)
        total_days = (end - start).days + 1
        state = None
        with bar_of.Progress(
            bar_of.TextColumn("[bold]backfill (dates done)"),
            bar_of.BarColumn(),
            bar_of.MofNCompleteColumn(),
            bar_of.TextColumn("{task.fields[rows]} rows {task.fields[rate]}"),
            bar_of.TimeElapsedColumn(),
            bar_of.TextColumn("ETA"),
            bar_of.TimeRemainingColumn(),
            console=console,
            disable=options.quiet,
        ) as progress:
            bar = progress.add_task("dates", total=total_days, rows=0, rate="")

            def advance(day: date, rows: int, status: str) -> None:
                task = progress.tasks[bar]
                rate = f"{(task.completed + 1) / task.elapsed:.1f} dates/s" if task.elapsed else ""
                progress.update(bar, advance=1, rows=task.fields["rows"] + rows, rate=rate)

            token = progress_listener.set(advance)
            try:
                with _interrupts("backfill") as interrupt:
                    state = phase4_backfill(
                        start_date=start.date(),
                        end_date=end.date(),
                        processors=chosen,
                        force=force,
                        return_state=True,
                    )
            finally:
                progress_listener.reset(token)
            if not interrupt.count:
                progress.update(bar, completed=total_days)
    stopped = (
        f"backfill {start.date()}..{end.date()} interrupted; {interrupt.describe()}. "
        f"Re-run the same command{' without --force' if force else ''} to resume."
    )
    summary = _flow_result(state, BackfillSummary, "backfill", interrupt, stopped)
    columns = ["date", "status", "rows", "message"]
    print_table(
        columns,
        [[row[c] for c in columns] for row in summary.per_date()],
        f"Backfill {start.date()}..{end.date()}: {human_counts(summary.counts())}",
    )
    console.print(
        f"{summary.rows_written} rows written; {len(summary.skipped_dates)} dates skipped "
        "(up to date: not missing, failed or stale)"
    )
    raise typer.Exit(EXIT_RUN_FAILED if summary.failed_dates else EXIT_OK)


@dataclass
class Interrupt:
    """Ctrl-C presses, and the run lines the core committed (each with its partitions)."""

    count: int = 0
    signal: int | None = None  # the first one: SIGINT (Ctrl-C) or SIGTERM
    flow_run_id: str | None = None
    finished: bool = False
    committed: list[Any] = field(default_factory=list)  # RunLine

    def tables(self) -> list[str]:
        return list(dict.fromkeys(line.processor for line in self.committed))

    def describe(self) -> str:
        written = [line for line in self.committed if line.rows is not None]
        if not written:
            return "nothing written"
        days = sorted({line.analysis_date for line in written})
        span = f"{days[0]}" if len(days) == 1 else f"{days[0]}..{days[-1]}"
        return (
            f"written: {len(days)} date(s) {span}, {sum(line.rows for line in written)} rows, "
            f"to {', '.join(self.tables())} and processor_runs; each partition with its line"
        )


PREFECT_LOGGERS = ("prefect", "prefect.extra", "prefect.client", "prefect._internal")


def _quiet_prefect() -> None:
    """Prefect's crash reports (with tracebacks) of an interrupted run would bury our summary."""
    for name in PREFECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def _interrupts(what: str) -> Iterator[Interrupt]:
    """First Ctrl-C: nothing more commits (the commit under way completes or rolls back whole)
    and the run ends at its next step; second: exit at once. A watchdog exits 130 after
    INTERRUPT_DEADLINE_SECONDS whatever still runs: a commit cut there rolls back, never half.
    No heartbeat thread: a date takes under one interval (180 s); joining it delayed the end 1 s.
    The flow run's states and task runs still reach the server.
    """
    from prefect.exceptions import TerminationSignal
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from tasks.processors import STOP, commits_settled, committed_listener

    state = Interrupt()
    STOP.clear()

    def watchdog() -> None:
        time.sleep(INTERRUPT_DEADLINE_SECONDS)
        if not state.finished:
            err.print(f"{what} interrupted; {state.describe()}", soft_wrap=True)
            _cancel_flow_run(state)
            err.print(f"{what}: stopped, builds in progress discarded")
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)

    def handler(signum: int, frame: Any) -> None:
        state.count += 1
        if state.count > 1:
            err.print("second interrupt: exiting now")
            os._exit(EXIT_INTERRUPTED)
        state.signal = signum
        STOP.set()
        if "prefect.context" in sys.modules:  # else no flow run has started yet
            from prefect.context import FlowRunContext

            context = FlowRunContext.get()
            state.flow_run_id = str(context.flow_run.id) if context and context.flow_run else None
        threading.Thread(target=watchdog, daemon=True).start()
        _quiet_prefect()
        again = " (Ctrl-C again to quit at once)" if signum == signal.SIGINT else ""
        err.print(f"interrupt: stopping the {what}; nothing more is written{again}")

    # SIGTERM stops like Ctrl-C; in the flow Prefect's handler raises TerminationSignal first.
    previous = {n: signal.signal(n, handler) for n in (signal.SIGINT, signal.SIGTERM)}

    def on_sigterm() -> None:  # whoever's handler runs: nothing more commits, and quietly
        STOP.set()
        _quiet_prefect()

    heard = _SignalNumbers(on_sigterm)
    token = committed_listener.set(state.committed.extend)
    try:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield state
    except TerminationSignal:
        pass  # Prefect's handler raised it for a SIGTERM: counted below, like any SIGTERM
    finally:
        # A SIGTERM ours missed: Prefect's handler took it, or a query (a commit) swallowed it.
        if signal.SIGTERM in heard.close() and not state.count:
            handler(signal.SIGTERM, None)
        commits_settled(INTERRUPT_DEADLINE_SECONDS)  # a SIGTERM left a commit landing: hear it
        committed_listener.reset(token)
        for number, before in previous.items():
            signal.signal(number, before)
        if not state.count:
            options.finished = f"the {what} finished; {state.describe()}"


class _SignalNumbers:
    """Python's wakeup fd gets every signal's number whoever's handler runs (Prefect's in a
    flow) and whatever becomes of what it raised; a thread reads it, calling `on_sigterm`."""

    def __init__(self, on_sigterm: Callable[[], None]) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.write_end, False)  # a signal handler must never block on it
        self.previous = signal.set_wakeup_fd(self.write_end, warn_on_full_buffer=False)
        self.received: set[int] = set()
        self.reader = threading.Thread(target=self._read, args=(on_sigterm,), daemon=True)
        self.reader.start()

    def _read(self, on_sigterm: Callable[[], None]) -> None:
        while chunk := os.read(self.read_end, 512):
            self.received.update(chunk)
            if signal.SIGTERM in chunk:
                on_sigterm()
            if 0 in chunk:  # `close`: no signal is numbered 0
                return

    def close(self) -> set[int]:
        """Restores the previous wakeup fd; the signal numbers received meanwhile."""
        signal.set_wakeup_fd(self.previous)
        os.write(self.write_end, b"\0")
        self.reader.join(timeout=5)
        os.close(self.read_end)
        os.close(self.write_end)
        return self.received - {0}


def _cancel_flow_run(state: Interrupt) -> None:
    """Mark the interrupted flow run Cancelled after Ctrl-C (it ended Failed: its commits were
    refused), Crashed after SIGTERM (as Prefect's own handler marks it when it hears it)."""
    if not state.flow_run_id:
        return
    from prefect import get_client
    from prefect.client.schemas.objects import State
    from prefect.states import Cancelled, Crashed

    final: State[Any] = (
        Crashed(message="Execution was aborted by a termination signal")
        if state.signal == signal.SIGTERM
        else Cancelled(message="cancelled by Ctrl-C")
    )
    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(state.flow_run_id, final, force=True)
    except Exception as exc:  # the exit must not wait for an unreachable API
        err.print(f"could not mark flow run {state.flow_run_id} {final.name}: {exc}")


@command("start", group=server_app)
def server_start() -> None:
    """Start the managed server in the background (no-op when it runs) and wait until healthy."""
    from phase4.server import start_server

    console.print(start_server().describe(), soft_wrap=True)


@command("stop", group=server_app)
def server_stop() -> None:
    """Stop the managed server (its whole process group)."""
    from phase4.server import server_home, stop_server

    stopped = stop_server(on_stale=lambda line: console.print(line, soft_wrap=True))
    console.print(
        "managed Prefect server stopped"
        if stopped
        else f"no managed Prefect server was running ({server_home()})"
    )


@command("status", group=server_app)
def server_status_command() -> None:
    """Say whether the managed server runs, where, and whether the CLI will use it."""
    from phase4 import server

    current = server.server_status(on_adopt=lambda line: console.print(line, soft_wrap=True))
    console.print(current.describe(), soft_wrap=True)
    if stale := server.stale_pid_file(current.home):
        console.print(
            f"{server.ServerFiles(current.home).pid} is stale: {stale} (`phase4 server stop` "
            "removes it; `phase4 server start` replaces it)",
            soft_wrap=True,
        )
    if current.refused:
        raise server.ServerSecretError(current.refusal())
    if not server.managed_server_wanted():
        configured = server.check_configured_api()  # one line and exit 2 when it does not answer
        console.print(
            f"the CLI uses {configured[1]}={configured[0]}, which answers"
            if configured
            else "PHASE4_SERVER=off: the CLI starts Prefect's temporary server per command",
            soft_wrap=True,
        )
    raise typer.Exit(EXIT_OK if current.healthy or not current.running else EXIT_RUN_FAILED)


@command()
def report(
    start: Start,
    end: End,
    out: Annotated[Path, typer.Option(help="HTML file to write")] = Path("report.html"),
    force: ForceOption = False,
) -> None:
    """One self-contained HTML page (opens offline) with the range's charts."""
    from phase4.html_report import build_report_html
    from quality.report import summary_sentence
    from tasks.report_reads import read_report_frames

    first, last = checks.ordered(start, end)
    checks.output_file(out, force=force)
    warehouse = _open_warehouse(read_only=True)
    checks.stored_tables(warehouse)
    checks.within_seasons(warehouse, first, last)
    frames = read_report_frames(warehouse, first, last)
    page = build_report_html(frames)
    checks.write_atomically(out, lambda path: path.write_text(page, encoding="utf-8"))
    # The page's summary on the terminal too: a range never built says so here.
    size = out.stat().st_size // 1024
    console.print(f"wrote {out} ({size} KiB): {summary_sentence(frames)}", soft_wrap=True)


for _name, _function in DATA_COMMANDS.items():  # training-set, features, export
    command(_name, announce=True)(_function)


def main() -> None:
    """The `phase4` script: it skips the interpreter's teardown (~0.45 s freeing Prefect's and
    Polars' modules) after the exit handlers: the command's, then logging's (older) in _end_now."""
    status = EXIT_RUN_FAILED  # what Python gives an exception that escapes
    atexit.register(lambda: _end_now(status))
    try:
        app()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        raise
    except KeyboardInterrupt:  # outside a command's own handling (its options being parsed)
        status = EXIT_INTERRUPTED
        say_error(INTERRUPTED)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except OSError as exc:  # the output full or gone (`> /dev/full`, `| head`): no traceback
        with suppress(OSError):
            say_error(f"cannot write {exc.filename or 'the output'} ({exc.strerror or exc})")
        raise SystemExit(status) from None


def _end_now(status: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, AttributeError):  # full, a closed pipe, or closed by the shell
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
