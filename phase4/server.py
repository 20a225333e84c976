"""A managed local Prefect server, so CLI commands stop paying ~10 s for a temporary one each.

It runs in its own session (a terminal's Ctrl-C never reaches it) with its own PREFECT_HOME,
`.phase4/prefect/`, which holds its pid (with start time), port, log and auth string. It requires
that string on every API call, checks CSRF tokens and allows only its own origin, so no web page
in the user's browser can call it. `server stop` signals only a process proven (/proc: start time,
command line) to be this server. Only the standard library is imported: the CLI asks "is it up?"
before it imports Prefect at all.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from phase4 import settings
from phase4.settings import SettingError
from tasks.processes import alive, proc_stat

SERVER_ENV = "PHASE4_SERVER"  # "off": no managed server (Prefect's temporary one per command)
SERVER_VALUES = dict(
    zip(["on", "off", "1", "0", "true", "false", "yes", "no"], ["on", "off"] * 4, strict=True)
)
START_TIMEOUT_ENV = "PHASE4_SERVER_START_TIMEOUT"
DEFAULT_PORT = 4200
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 10.0
# How long a configured PREFECT_API_URL has to answer /health before the command starts.
API_PROBE_TIMEOUT_SECONDS = 5.0
# Settings not passed to the managed server: they would point it (or its UI, or its own client)
# at another API, home or credentials. Every other PREFECT_* setting passes through.
NOT_PASSED = {
    f"PREFECT_{name}"
    for name in ["API_URL", "UI_API_URL", "UI_URL", "API_KEY", "API_AUTH_STRING", "HOME"]
    + ["SERVER_API_AUTH_STRING", "SERVER_API_HOST", "SERVER_API_PORT", "PROFILE"]
    + ["PROFILES_PATH", "CLOUD_API_URL", "SERVER_CORS_ALLOWED_ORIGINS"]
    + ["SERVER_CSRF_PROTECTION_ENABLED"]
    + ["LOGGING_HANDLERS_CONSOLE_LEVEL"]  # `phase4 -q`'s terminal: server.log keeps its lines
}


def server_home(base: Path | None = None) -> Path:
    """`.phase4/prefect/` beside the default warehouse, under the current directory."""
    return ((base or Path.cwd()) / ".phase4" / "prefect").resolve()


class ServerFiles:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.pid, self.port, self.log, self.lock, self.auth = (
            home / f"server.{name}" for name in ("pid", "port", "log", "lock", "auth")
        )


class ServerSecretError(SettingError):
    """server.auth lost the running server's secret: every CLI API call would end in a 401."""


class ApiUnreachableError(SettingError):
    """PREFECT_API_URL does not answer: Prefect would retry, then fail mid-command (traceback)."""


@dataclass(frozen=True, kw_only=True)
class ServerStatus:
    running: bool
    healthy: bool  # it answers and accepts server.auth's secret
    pid: int | None
    port: int | None
    home: Path
    refused: bool = False  # it answers but refuses server.auth's secret (401)

    def refusal(self) -> str:
        """Restarting a server refusing the secret would kill other runs: the operator decides."""
        return (
            f"{ServerFiles(self.home).auth} does not hold the running server's secret (pid "
            f"{self.pid}): run phase4 server stop, then re-run"
        )

    def describe(self) -> str:
        if not self.running:
            return f"no managed Prefect server (home {self.home})"
        state = "healthy" if self.healthy else "starting or unhealthy"
        if self.refused:
            state = f"refusing the secret in {ServerFiles(self.home).auth}"
        return (
            f"managed Prefect server pid {self.pid}, {state}, API {api_url(self.port or 0)}, "
            f"UI http://127.0.0.1:{self.port}, log {ServerFiles(self.home).log}"
        )


def api_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api"


def managed_server_wanted() -> bool:
    """Unless PHASE4_SERVER=off or an API URL is configured; a bad PHASE4_SERVER: SettingError."""
    return settings.choice(SERVER_ENV, "on", SERVER_VALUES) != "off" and not configured_api_url()


def configured_api_url() -> tuple[str, str] | None:
    """The API URL Prefect will use instead of a managed or temporary server, with where it
    was set: the environment, the active profile (profiles.toml, read without importing Prefect;
    none when unreadable), or an already imported Prefect's settings."""
    if from_env := os.environ.get("PREFECT_API_URL", "").strip():
        return from_env, "PREFECT_API_URL"
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        profiles = {}
    profile = str(os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral"))
    if from_profile := profiles.get("profiles", {}).get(profile, {}).get("PREFECT_API_URL"):
        return str(from_profile), f"PREFECT_API_URL (profile {profile})"
    if "prefect.settings" in sys.modules:
        from prefect.settings import get_current_settings

        if from_settings := get_current_settings().api.url:
            return from_settings, "PREFECT_API_URL"
    return None


def api_answers(url: str, timeout: float = API_PROBE_TIMEOUT_SECONDS) -> str | None:
    """None when something answers HTTP at the API's /health; else why not, in a few words.

    Any HTTP status is an answer (Prefect Cloud says 401/403 without the API key this probe
    never sends). Nothing secret is sent, so the certificate is left to Prefect's own settings;
    proxies from the environment are used, as Prefect's client does. Prefect-free: it runs first."""
    import http.client
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    unchecked = ssl.create_default_context()
    unchecked.check_hostname, unchecked.verify_mode = False, ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=unchecked))
    try:
        with opener.open(f"{url.rstrip('/')}/health", timeout=timeout):
            return None
    except urllib.error.HTTPError as error:  # an answer, whatever it says, but "no such page"
        lacking = "no Prefect API there: 404 at /health; does the URL lack /api?"
        return lacking if error.code == 404 else None
    except (urllib.error.URLError, TimeoutError) as error:
        reason = getattr(error, "reason", error)  # a bare TimeoutError has no reason
        if isinstance(reason, TimeoutError):
            return f"no answer within {timeout:g} s"
        return getattr(reason, "strerror", None) or str(reason)
    except (OSError, ValueError, http.client.HTTPException) as error:
        return " ".join(str(error).split()) or type(error).__name__


def check_configured_api() -> tuple[str, str] | None:
    """configured_api_url() once it answers its /health, else ApiUnreachableError."""
    if (configured := configured_api_url()) is None:
        return None
    url, where = configured
    if (why := api_answers(url)) is not None:
        raise ApiUnreachableError(
            f"{where}={url} does not answer ({why}): start that server or unset PREFECT_API_URL"
        )
    return configured


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (field 22): with the pid, it names
    one process; a reused pid has another start time."""
    fields = proc_stat(pid)
    return int(fields[19]) if len(fields) > 19 else None


@dataclass(frozen=True)
class Recorded:
    """A server process: its pid, start time (old pid files hold the pid alone) and port."""

    pid: int
    start: int | None
    port: int | None


def _read_recorded(files: ServerFiles) -> Recorded | None:
    """What server.pid says, with server.port or when that file is gone the `--port` the process
    was started with: a server still runs, and must neither be started twice nor taken for stale."""
    try:
        parts = files.pid.read_text().split()
        pid = int(parts[0])
        start = int(parts[1]) if len(parts) > 1 else None
    except (OSError, ValueError, IndexError):
        return None
    try:
        port = int(files.port.read_text())
    except (OSError, ValueError):
        return Recorded(pid, start, _started_port(_argv(pid)))
    return Recorded(pid, start, port)


def _not_our_server(recorded: Recorded, home: Path) -> str | None:
    """Why the recorded pid is not provably this server (None: it is): alive, with the recorded
    start time, running `prefect server start` on the recorded port, leading its process group,
    serving this PREFECT_HOME (a copied project folder's pid file names the original's)."""
    pid, port = recorded.pid, recorded.port
    if pid <= 1:
        return f"pid {pid} cannot be the server's (it never leads a session of ours)"
    if not alive(pid):
        return f"no process {pid} runs"
    if recorded.start is None:
        return f"the pid file holds no start time to check process {pid} against"
    if _start_ticks(pid) != recorded.start:
        return f"process {pid} started after the server did (the pid was reused)"
    argv = _argv(pid)
    text = " ".join(argv)
    if port is None or "prefect" not in text or not {"server", "start", str(port)} <= set(argv):
        return f"process {pid} is not `prefect server start` on port {port} ({text[:80]})"
    try:
        if os.getpgid(pid) != pid:
            return f"process {pid} does not lead its own process group"
        if f"PREFECT_HOME={home}".encode() not in _environ(pid):
            return f"process {pid} is the server of another folder (this one copied from it?)"
    except OSError:
        return f"no process {pid} runs"
    return None


def _environ(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _started_port(argv: list[str]) -> int | None:
    """The `--port` a process was started with (its `argv`), if any."""
    after = argv[argv.index("--port") + 1 :][:1] if "--port" in argv else []
    return int(after[0]) if after and after[0].isdigit() else None


def _secret_probe(port: int, secret: str | None, timeout: float = 3.0) -> int | None:
    """The HTTP status (200 accepted, 401 refused) of an API call carrying `secret`, None when
    nothing answers: one call says whether the server is up and lets the CLI in (another home's
    server on a port both found free would answer the secret-free health probe too)."""
    import http.client  # not urllib.request: every command asks, and it imports in half the time

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        if secret is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
        connection.request("GET", "/api/admin/version", headers=headers)
        return connection.getresponse().status
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def server_status(
    home: Path | None = None, on_adopt: Callable[[str], None] | None = None
) -> ServerStatus:
    """Running: the pid file names a process proven to be this server (a lost or garbled one is
    rewritten first, `_adopt`). Healthy: it accepts server.auth's secret; refused: it says 401."""
    files = ServerFiles(home or server_home())
    if (server := _adopt(files, on_adopt)) is None:
        return ServerStatus(running=False, healthy=False, pid=None, port=None, home=files.home)
    answer = _secret_probe(server.port, auth_string(files.home)) if server.port else None
    return ServerStatus(
        running=True,
        healthy=answer == 200,
        pid=server.pid,
        port=server.port,
        home=files.home,
        refused=answer == 401,
    )


def _servers_of(home: Path) -> list[Recorded]:
    """Every `prefect server start` of this user with this PREFECT_HOME leading its own process
    group, oldest first: a server whose pid file was lost is found, not started a second time."""
    wanted = f"PREFECT_HOME={home}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = _argv(pid)
        if "prefect" not in " ".join(argv) or not {"server", "start"} <= set(argv):
            continue
        try:
            environ = _environ(pid)
            leads = os.getpgid(pid) == pid
        except OSError:  # another user's process, or gone
            continue
        start = _start_ticks(pid)
        if wanted in environ and leads and start is not None:
            found.append(Recorded(pid, start, _started_port(argv)))
    return sorted(found, key=lambda server: server.start or 0)


def _adopt(files: ServerFiles, on_adopt: Callable[[str], None] | None = None) -> Recorded | None:
    """The server of this home, proven (`_not_our_server`), or None. A missing, garbled or stale
    server.pid (and server.port) is rewritten from a running one, so `server stop` can stop it."""
    recorded = _read_recorded(files)
    if recorded is not None and _not_our_server(recorded, files.home) is None:
        return recorded
    if not (servers := _servers_of(files.home)) or (server := servers[0]).port is None:
        return None
    if not files.home.is_dir():  # deleted under it: nothing to rewrite, but stop must find it
        if on_adopt is not None:
            on_adopt(f"{files.home} is gone, but its server still runs, pid {server.pid}")
        return server
    why = f"named no server ({stale_pid_file(files.home)})" if files.pid.exists() else "is missing"
    _write_whole(files.port, f"{server.port}\n")
    _write_whole(files.pid, f"{server.pid} {server.start}\n")
    if on_adopt is not None:
        on_adopt(
            f"{files.pid} {why}: rewritten for this home's running server, pid {server.pid} "
            "(found by its PREFECT_HOME)"
        )
    return server


@contextlib.contextmanager
def _home_files(files: ServerFiles) -> Iterator[None]:
    """A server file this user cannot write (a read-only mount, a folder in its place)."""
    try:
        yield
    except OSError as error:
        if not str(error.filename or "").startswith(str(files.home.parent)):
            raise
        raise SettingError(
            f"{error.filename}: {error.strerror or error}; the managed Prefect server keeps its "
            f"files in {files.home}, a folder this user must be able to write (move away what "
            "is in the way), or set PREFECT_API_URL to a Prefect server of your own"
        ) from None


def _write_whole(path: Path, text: str, mode: int = 0o666) -> None:
    """Write through a temporary file renamed into place: a reader sees the old or new text."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as file:
        file.write(text)
    os.replace(temporary, path)


def stale_pid_file(home: Path | None = None) -> str | None:
    """Why server.pid names no server (a reboot, a crash, a reused pid); None when it does,
    or when there is no pid file."""
    files = ServerFiles(home or server_home())
    if (recorded := _read_recorded(files)) is None:  # no file, or no pid in it
        return "it holds no pid and start time" if files.pid.exists() else None
    return _not_our_server(recorded, files.home)


def auth_string(home: Path, *, create: bool = False) -> str | None:
    """The server's auth string, `server.auth` in its home (mode 0600, made with `secrets`
    when `create`, replacing an empty or garbled file); None when there is none yet."""
    path = ServerFiles(home).auth
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # readable by this user only
        secret = path.read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        secret = ""
    if re.fullmatch(r"[\w-]{32,}", secret, re.ASCII) or not create:
        return secret or None
    _write_whole(path, secrets.token_urlsafe(32) + "\n", mode=0o600)
    return auth_string(home)


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


def client_environment(port: int, home: Path | None = None) -> dict[str, str]:
    """What a command using the managed server sets before importing Prefect: the API URL, its
    auth string, no API version check (the server is this installation's own `prefect`: the
    check finds nothing and costs each command a TLS context, ~30 ms, and a round trip)."""
    env = {"PREFECT_API_URL": api_url(port), "PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED": "false"}
    if secret := auth_string(home or server_home()):
        env["PREFECT_API_AUTH_STRING"] = secret
    return env


def server_environment(home: Path, port: int) -> dict[str, str]:
    """The operator's environment less NOT_PASSED; its home; the UI pointed at its port; an auth
    string required on every API call; CSRF protection on; CORS for its own origin only."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
    secret = auth_string(home, create=True)
    assert secret is not None
    env.update(
        PREFECT_HOME=str(home),
        # Without it the UI served on a non-default port calls the API on port 4200.
        PREFECT_API_URL=api_url(port),
        PREFECT_UI_API_URL=api_url(port),
        PREFECT_SERVER_API_AUTH_STRING=secret,
        PREFECT_API_AUTH_STRING=secret,  # the server's own services call its API too
        PREFECT_SERVER_CSRF_PROTECTION_ENABLED="true",
        PREFECT_SERVER_CORS_ALLOWED_ORIGINS=f"http://127.0.0.1:{port}",
    )
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    return env


def _prefect_executable() -> list[str]:
    script = Path(sys.executable).parent / "prefect"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from prefect.cli import app; app()"]


class ServerStartError(RuntimeError):
    """The managed server did not become healthy; the message names its log."""


def start_server(home: Path | None = None) -> ServerStatus:
    """Start the server in the background unless it already runs; wait until it is healthy,
    PHASE4_SERVER_START_TIMEOUT (180 s) at most."""
    import subprocess

    from filelock import FileLock

    timeout = settings.seconds(START_TIMEOUT_ENV, START_TIMEOUT_SECONDS, minimum=1, maximum=3600)
    files = ServerFiles(home or server_home())
    # A file in the folder's way (a `.phase4` made by hand) is named, not `File exists`.
    if blocker := next((p for p in (files.home, *files.home.parents) if p.is_file()), None):
        raise SettingError(
            f"{blocker} is a file, not a folder (the managed Prefect server's folder is "
            f"{files.home}): move the file away, or run the command from another folder"
        )
    # FileLock makes the folder; two first commands at once start one server, the second waits.
    with _home_files(files), FileLock(str(files.lock), timeout=timeout):
        current = server_status(files.home)
        if current.running and current.port is not None:  # refused: _wait_healthy says so
            return _wait_healthy(files, current.pid or 0, current.port, timeout, running=True)
        preferred = DEFAULT_PORT
        while True:
            port = _free_port(preferred)
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
            # The pid with its start time: `server stop` signals only that process.
            files.pid.write_text(f"{process.pid} {_start_ticks(process.pid) or ''}\n")
            files.port.write_text(f"{port}\n")
            try:
                return _wait_healthy(files, process.pid, port, timeout)
            except ServerStartError:
                if preferred == 0 or alive(process.pid):
                    raise
            preferred = 0  # another home's server took the port found free: any free one


def _wait_healthy(
    files: ServerFiles, pid: int, port: int, timeout: float, *, running: bool = False
) -> ServerStatus:
    """Wait until the server on `port` accepts this home's secret. A 401 from a server this
    start launched means another home's server holds the port (its own then exits); from the
    server already `running` here, that server.auth no longer holds its secret: said at once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # A loaded machine answers slowly, not never; the server must be the one of this home.
        answer = _secret_probe(port, auth_string(files.home), timeout=5.0)
        if answer == 200:
            return ServerStatus(running=True, healthy=True, pid=pid, port=port, home=files.home)
        if answer == 401 and running:
            refused = ServerStatus(running=True, healthy=False, pid=pid, port=port, home=files.home)
            raise ServerSecretError(refused.refusal())
        if not alive(pid):
            raise ServerStartError(
                f"the managed Prefect server exited while starting; see {files.log}"
            )
        time.sleep(0.2)
    raise ServerStartError(
        f"the managed Prefect server was not healthy after {timeout:.0f} s "
        f"({START_TIMEOUT_ENV}); see {files.log}"
    )


def stop_server(home: Path | None = None, on_stale: Callable[[str], None] | None = None) -> bool:
    """SIGTERM the server's process group, SIGKILL it after STOP_TIMEOUT_SECONDS; False if none
    ran. Only a process proven to be the server (`_not_our_server`) is signalled; a pid file
    naming anything else is removed, `on_stale` told why. Servers of this home the pid file lost
    are adopted (`_adopt`) and all stopped (an older version could start a second one)."""
    files = ServerFiles(home or server_home())
    for count in range(8):  # at most a few servers of one home: never loop on one that survives
        if not _stop_recorded(files, on_stale):
            return count > 0
    return True


def _stop_recorded(files: ServerFiles, on_stale: Callable[[str], None] | None) -> bool:
    """Stop the server server.pid names (after `_adopt`); remove the pid and port files."""
    recorded = _adopt(files, on_stale)
    if recorded is not None:
        pid = recorded.pid
        with contextlib.suppress(ProcessLookupError):  # it leads its own session and group
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid) and _start_ticks(pid) == recorded.start:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    elif (why_not := stale_pid_file(files.home)) is not None and on_stale is not None:
        on_stale(f"removed the stale {files.pid}: {why_not}; nothing was signalled")
    for path in (files.pid, files.port):  # absent: nothing to unlink (a read-only folder too)
        if path.exists():
            path.unlink(missing_ok=True)  # another stop may remove it first
    return recorded is not None
