"""A warm runner beside the managed server: commands run in a fork of a process that has
already imported Prefect, Polars and the flows, so they skip the ~1.5-2 s of imports.

The CLI hands over its argv, environment, working folder and its terminal (file descriptors
0, 1 and 2 via SCM_RIGHTS) on a Unix socket; the runner forks, the child runs the command
exactly as the CLI would, writing straight to the caller's terminal, and sends back its exit
status. The CLI forwards Ctrl-C to the child. A runner whose source files changed since it
started refuses (the CLI then runs the command itself) and exits, so edits are never stale.
"""

from __future__ import annotations

import array
import importlib
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path

PACKAGES = ("flows", "tasks", "features", "quality", "phase4")
# Modules a command imports on first use (Prefect's flow engine, fastapi's encoder for the
# flow parameters, pyarrow.compute, ...): imported once here instead of in every fork.
WARM_MODULES = (
    "_strptime",
    "anyio._backends._asyncio",
    "encodings.idna",
    "fastapi.encoders",
    "filelock",
    "http.cookies",
    "phase4.server",
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.utilities.visualization",
    "pyarrow.compute",
    "rich._emoji_codes",
    "tasks.warehouse.duckdb_warehouse",
    "typer._adapters",
    "typer._click.decorators",
)
STALE = 257  # not an exit status: "run it yourself"
LOST = -1  # the command's process ended without an exit status (killed, os._exit)


def runner_socket(home: Path) -> Path:
    return home / "runner.sock"


def runner_pid(home: Path) -> Path:
    return home / "runner.pid"


def _source_stamp() -> dict[str, float]:
    root = Path(__file__).resolve().parents[1]
    return {
        str(path): path.stat().st_mtime
        for package in PACKAGES
        for path in (root / package).rglob("*.py")
    }


def _warm_up() -> None:
    """Import WARM_MODULES; some are private modules of a dependency, so one that a new
    version dropped costs its fork the import again, never the runner."""
    for module in WARM_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
    try:
        from rich._unicode_data import load

        load()  # the table of character widths the report's table is measured with
    except (ImportError, AttributeError):
        pass


def _recv_request(conn: socket.socket) -> tuple[dict[str, object], list[int]]:
    fds = array.array("i")
    data, ancdata, _, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    return json.loads(data.decode()), list(fds)


def serve(home: Path, port: int) -> None:
    """The runner's main loop: warm imports, then one fork per command."""
    from phase4.server import client_environment

    client = client_environment(port)
    os.environ.update(client)
    import flows.phase4_backfill  # noqa: F401
    import flows.phase4_precompute  # noqa: F401
    import phase4.cli
    import tasks.io  # noqa: F401

    _warm_up()
    with phase4.cli.without_heartbeats():  # builds the settings `run` uses, once
        pass
    stamp = _source_stamp()
    path = runner_socket(home)
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while True:
        conn, _ = server.accept()
        try:
            request, fds = _recv_request(conn)
        except (OSError, ValueError):
            conn.close()
            continue
        if _source_stamp() != stamp:
            path.unlink(missing_ok=True)  # first, so no later command reaches a stale runner
            conn.sendall(struct.pack("!i", STALE))
            conn.close()
            return
        if os.fork() == 0:
            server.close()
            _child(conn, request, fds, client)
        for fd in fds:
            os.close(fd)
        conn.close()


def _child(
    conn: socket.socket, request: dict[str, object], fds: list[int], client: dict[str, str]
) -> None:
    """Run one command with the caller's terminal, folder and environment; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
            os.close(fd)
        env = dict(request["env"])  # type: ignore[call-overload]
        os.environ.clear()
        os.environ.update(env, **client)
        os.chdir(str(request["cwd"]))
        conn.sendall(struct.pack("!i", os.getpid()))
        code = _run_cli([str(a) for a in request["argv"]])  # type: ignore[attr-defined]
    except BaseException:  # noqa: BLE001 - report whatever happened as a failed command
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(struct.pack("!i", code))
        finally:
            os._exit(code)


def _run_cli(argv: list[str]) -> int:
    import logging

    from rich.console import Console

    import phase4.cli as cli

    # The consoles were made before the terminal arrived: make them for this terminal.
    cli.console = Console(width=None if sys.stdout.isatty() else 160)
    cli.err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    # Prefect set its log levels from the runner's environment: set them from the caller's.
    quiet = "--quiet" in argv or "-q" in argv
    level = "WARNING" if quiet else os.environ.get("PREFECT_LOGGING_LEVEL", "INFO").upper()
    for name in ("prefect", "prefect.extra", "prefect.client"):
        logging.getLogger(name).setLevel(level)
    try:
        cli.app(argv, prog_name="phase4")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


def run_in_runner(home: Path, argv: list[str], on_pid: Callable[[int], None]) -> int | None:
    """Run `phase4 argv` in the warm runner; None when there is none or it is stale."""
    path = runner_socket(home)
    if not path.exists():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        return None
    with conn:
        request = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()})
        fds = array.array("i", [0, 1, 2])
        conn.sendmsg([request.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
        first = _recv_int(conn)
        if first is None or first == STALE:
            return None
        on_pid(first)
        code = _recv_int(conn)
        return LOST if code is None else code


def _recv_int(conn: socket.socket) -> int | None:
    data = b""
    while len(data) < 4:
        try:
            chunk = conn.recv(4 - len(data))
        except InterruptedError:
            continue
        if not chunk:
            return None
        data += chunk
    return int(struct.unpack("!i", data)[0])


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
