"""A managed local Prefect server, so CLI commands stop paying ~10 s for a temporary one each.

The server runs in its own session (Ctrl-C in the terminal never reaches it) with its own
PREFECT_HOME under `.phase4/prefect/`; its pid, port and log live there too. Only the standard
library is imported here: the CLI asks "is it up?" before it imports Prefect at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SERVER_ENV = "PHASE4_SERVER"  # "off": no managed server (Prefect's temporary one per command)
DEFAULT_PORT = 4200
START_TIMEOUT_SECONDS = float(os.environ.get("PHASE4_SERVER_START_TIMEOUT", "180"))
STOP_TIMEOUT_SECONDS = 10.0


def server_home(base: Path | None = None) -> Path:
    """`.phase4/prefect/` beside the default warehouse, under the current directory."""
    return ((base or Path.cwd()) / ".phase4" / "prefect").resolve()


@dataclass(frozen=True)
class ServerFiles:
    home: Path

    @property
    def pid(self) -> Path:
        return self.home / "server.pid"

    @property
    def port(self) -> Path:
        return self.home / "server.port"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def lock(self) -> Path:
        return self.home / "server.lock"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    healthy: bool
    pid: int | None
    port: int | None
    home: Path

    @property
    def api_url(self) -> str | None:
        return None if self.port is None else api_url(self.port)

    def describe(self) -> str:
        if not self.running:
            return f"no managed Prefect server (home {self.home})"
        state = "healthy" if self.healthy else "starting or unhealthy"
        return (
            f"managed Prefect server pid {self.pid}, {state}, API {self.api_url}, "
            f"UI http://127.0.0.1:{self.port}, log {ServerFiles(self.home).log}"
        )


def api_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api"


def managed_server_wanted() -> bool:
    """The CLI manages a server unless an API URL is configured or PHASE4_SERVER=off.

    Configured means: PREFECT_API_URL in the environment, in the active Prefect profile, or in
    the settings of an already imported Prefect (a test harness, a caller's own context).
    """
    if os.environ.get(SERVER_ENV, "").strip().lower() in ("off", "0", "false", "no"):
        return False
    if os.environ.get("PREFECT_API_URL", "").strip() or _profile_api_url():
        return False
    if "prefect.settings" in sys.modules:
        from prefect.settings import get_current_settings

        return not get_current_settings().api.url
    return True


def _profile_api_url() -> str | None:
    """PREFECT_API_URL of the active profile in profiles.toml, read without importing Prefect."""
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (ours, not yet reaped) is not alive.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def healthy(port: int, timeout: float = 3.0) -> bool:
    """GET /api/health answers `true` once the server serves the API."""
    import http.client  # not urllib.request: every command asks, and it imports in half the time

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/api/health")
        response = connection.getresponse()
        return response.status == 200 and bool(json.loads(response.read() or b"false"))
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def server_status(home: Path | None = None) -> ServerStatus:
    files = ServerFiles(home or server_home())
    pid, port = _read_int(files.pid), _read_int(files.port)
    running = pid is not None and _alive(pid)
    return ServerStatus(
        running=running,
        healthy=running and port is not None and healthy(port),
        pid=pid if running else None,
        port=port if running else None,
        home=files.home,
    )


def _free_port(preferred: int = DEFAULT_PORT) -> int:
    """The default port when it is free (the UI's links then work anywhere), else any free one."""
    for candidate in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1")


def client_environment(port: int) -> dict[str, str]:
    """What a command using the managed server sets before importing Prefect: the API URL,
    and no API version check (the server is this installation's own `prefect`, so the check
    can find nothing; it costs each command a TLS context, ~30 ms, and a round trip)."""
    return {
        "PREFECT_API_URL": api_url(port),
        "PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED": "false",
    }


def server_environment(home: Path, port: int) -> dict[str, str]:
    """The server's own environment: its home, its port, and the UI pointed at that port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        # Without it the UI served on a non-default port calls the API on port 4200.
        PREFECT_API_URL=api_url(port),
        PREFECT_UI_API_URL=api_url(port),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL=os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
    )
    return env


def _prefect_executable() -> list[str]:
    script = Path(sys.executable).parent / "prefect"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from prefect.cli import app; app()"]


class ServerStartError(RuntimeError):
    """The managed server did not become healthy; the message names its log."""


def start_server(home: Path | None = None, timeout: float = START_TIMEOUT_SECONDS) -> ServerStatus:
    """Start the server in the background unless it already runs; wait until it is healthy."""
    import subprocess

    from filelock import FileLock

    files = ServerFiles(home or server_home())
    files.home.mkdir(parents=True, exist_ok=True)
    # Two first commands at once start one server: the second waits for the first's.
    with FileLock(str(files.lock), timeout=timeout):
        current = server_status(files.home)
        if current.running and current.port is not None:
            return _wait_healthy(files, current.pid or 0, current.port, timeout)
        port = _free_port()
        with open(files.log, "ab") as log:
            process = subprocess.Popen(
                [*_prefect_executable(), "server", "start", "--host", "127.0.0.1"]
                + ["--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_environment(files.home, port),
                cwd=files.home,
                start_new_session=True,
            )
        files.pid.write_text(f"{process.pid}\n")
        files.port.write_text(f"{port}\n")
        return _wait_healthy(files, process.pid, port, timeout)


def _wait_healthy(files: ServerFiles, pid: int, port: int, timeout: float) -> ServerStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(port, timeout=5.0):  # a loaded machine answers slowly, not never
            return ServerStatus(True, True, pid, port, files.home)
        if not _alive(pid):
            raise ServerStartError(
                f"the managed Prefect server exited while starting; see {files.log}"
            )
        time.sleep(0.2)
    raise ServerStartError(
        f"the managed Prefect server was not healthy after {timeout:.0f} s; see {files.log}"
    )


def stop_server(home: Path | None = None, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """SIGTERM the server's process group, SIGKILL it after `timeout`; False if none ran."""
    files = ServerFiles(home or server_home())
    pid = _read_int(files.pid)
    was_running = pid is not None and _alive(pid)
    if pid is not None and was_running:
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
    for path in (files.pid, files.port):
        path.unlink(missing_ok=True)
    return was_running


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)  # the server leads its own session and process group
