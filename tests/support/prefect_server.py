"""A real local Prefect server, workers and CLI calls as child processes, for end-to-end tests.

Everything runs from the virtualenv of the Python running the tests (``sys.executable``'s
``bin/``), against a server on a free loopback port with a throwaway ``PREFECT_HOME``. Each
background process gets its own process group and a log file; :meth:`Background.stop` ends the
group by id (SIGTERM, then SIGKILL), and :meth:`Background.tail` gives the end of its log for
failure messages.

Usage::

    with PrefectServer(tmp_path / "prefect") as server:
        env = server.child_env(PHASE4_WAREHOUSE="duckdb:///...")
        run_cli(prefect_cli("work-pool", "create", "e2e", "--type", "process"),
                env=env, cwd=REPO_ROOT)
        worker = start_background("worker", prefect_cli("worker", "start", "--pool", "e2e"),
                                  env=env, cwd=tmp_path, log_dir=tmp_path)
        try:
            ...
        finally:
            worker.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypedDict

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_STARTUP_SECONDS = 180.0
CLI_TIMEOUT_SECONDS = 600.0
# Variables of the test process that must not leak into the children (they choose the server,
# the profile and the warehouse); every child gets its own explicitly.
_PRIVATE_PREFIXES = ("PREFECT_", "PHASE4_")


def venv_bin(name: str) -> Path:
    """An executable of the virtualenv running the tests (never a hard-coded checkout path)."""
    return Path(sys.executable).parent / name


def prefect_cli(*args: str) -> list[str]:
    """The `prefect` command line of the tests' virtualenv."""
    return [str(venv_bin("prefect")), *args]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


class Background:
    """A child process in its own process group, logging to a file."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 60) -> str:
        return f"----- {self.name} (pid {self.pid}) log tail -----\n{tail(self.log_path, lines)}"

    def stop(self, grace_seconds: float = 15.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
        for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; children left in its group still get the signal.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            return


def start_background(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_dir: Path,
) -> Background:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv), **_detached(env, cwd), stdout=log, stderr=subprocess.STDOUT
        )
    return Background(name, process, log_path)


class CliError(AssertionError):
    """A CLI call exited non-zero; the message carries its command line and output."""


def run_cli(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = CLI_TIMEOUT_SECONDS,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, output captured; raise CliError with it on failure."""
    try:
        result = subprocess.run(
            list(argv), **_detached(env, cwd), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise CliError(
            f"timed out after {timeout:.0f}s: {' '.join(argv)}\n{_text(exc.stdout)}"
            f"\n{_text(exc.stderr)}"
        ) from exc
    if check and result.returncode != 0:
        raise CliError(
            f"exit {result.returncode}: {' '.join(argv)}\n--- stdout ---\n{result.stdout}"
            f"\n--- stderr ---\n{result.stderr}"
        )
    return result


class _Detached(TypedDict):
    cwd: Path
    env: dict[str, str]
    stdin: int
    start_new_session: bool


def _detached(env: Mapping[str, str], cwd: Path) -> _Detached:
    """How every child starts: its own session (killed as a group), no stdin from ours."""
    return {"cwd": cwd, "env": dict(env), "stdin": subprocess.DEVNULL, "start_new_session": True}


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def clean_environ() -> dict[str, str]:
    """The test process's environment without its Prefect and Phase 4 settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}


class PrefectServer:
    """`prefect server start` on a free loopback port with its own PREFECT_HOME."""

    def __init__(self, home: Path, *, startup_seconds: float = SERVER_STARTUP_SECONDS) -> None:
        self.home = home
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.startup_seconds = startup_seconds
        self.process: Background | None = None

    def base_env(self) -> dict[str, str]:
        """Settings every child shares: this server, this home, no telemetry."""
        env = clean_environ()
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
            # Rich output without terminal width limits keeps log tails readable.
            COLUMNS="200",
        )
        return env

    def child_env(self, **extra: str) -> dict[str, str]:
        env = self.base_env()
        env.update(extra)
        return env

    def start(self) -> PrefectServer:
        """Launch and wait until the API answers."""
        self.launch()
        self.wait_healthy()
        return self

    def launch(self) -> None:
        """Start the server process without waiting (do other set-up while it boots)."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = self.base_env()
        del env["PREFECT_API_URL"]  # the server itself must not point at an API
        env.update(
            PREFECT_UI_ENABLED="false",
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(self.port),
        )
        argv = prefect_cli("server", "start", "--host", "127.0.0.1", "--port", str(self.port))
        self.process = start_background("server", argv, env=env, cwd=self.home, log_dir=self.home)

    def wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if not self.process.running():
                raise RuntimeError(
                    f"prefect server exited with {self.process.process.returncode}\n"
                    f"{self.process.tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"prefect server not healthy after {self.startup_seconds:.0f}s\n{self.process.tail()}"
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def tail(self, lines: int = 60) -> str:
        return self.process.tail(lines) if self.process else "(server not started)"

    def __enter__(self) -> PrefectServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def emit_event_argv(
    event: str, resource: Mapping[str, str], payload: Mapping[str, object]
) -> list[str]:
    """A `python -c` that emits one event with prefect's emit_event and waits for delivery.

    A child process, as Phase 3 would be: the test process's own events worker may already be
    bound to another API.
    """
    code = (
        "import json, sys\n"
        "from prefect.events import emit_event\n"
        "from prefect.events.worker import EventsWorker\n"
        "event = emit_event(event=sys.argv[1], resource=json.loads(sys.argv[2]),"
        " payload=json.loads(sys.argv[3]))\n"
        "EventsWorker.drain_all(timeout=60)\n"
        "assert event is not None, 'emit_event returned None: no events client configured'\n"
        "print(event.id)\n"
    )
    return [
        sys.executable,
        "-c",
        code,
        event,
        json.dumps(dict(resource)),
        json.dumps(dict(payload)),
    ]


class NotificationSink:
    """A tiny HTTP server on 127.0.0.1 that records every POSTed JSON body.

    The target of a custom-webhook notification block, so a test sees what an automation sent
    exactly as Slack would receive it. Runs in a daemon thread of the test process.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        received: list[dict[str, object]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode(errors="replace")
                try:
                    parsed = json.loads(body)
                except json.JSONDecodeError:
                    parsed = {"raw": body}
                received.append({"at": time.time(), **parsed})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                """Quiet: the test reports what it received."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, text: str, timeout: float) -> dict[str, object] | None:
        """The first notification whose subject or body contains `text`, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.received):
                if text in f"{message.get('subject')} {message.get('body')}":
                    return message
            time.sleep(1)
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def save_webhook_block_argv(name: str, url: str) -> list[str]:
    """A `python -c` that saves a custom-webhook notification block posting subject and body.

    As a user creates a Slack or email block before deploying (`prefect block create` / UI).
    """
    code = (
        "import sys\n"
        "from prefect.blocks.notifications import CustomWebhookNotificationBlock\n"
        "CustomWebhookNotificationBlock(name='phase4', url=sys.argv[2],"
        " json_data={'subject': '{{subject}}', 'body': '{{body}}'}).save(sys.argv[1],"
        " overwrite=True)\n"
    )
    return [sys.executable, "-c", code, name, url]
