"""The managed Prefect server, a real `prefect server start`: an auth string on every API call,
CSRF protection, CORS for its own origin only, the operator's PREFECT_* settings passed on;
`server stop` signals only a process it can prove is the server."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import phase4.server
from phase4.server import (
    ServerFiles,
    ServerStartError,
    ServerStatus,
    _start_ticks,
    _wait_healthy,
    auth_string,
    client_environment,
    server_home,
    server_status,
    stale_pid_file,
    start_server,
    stop_server,
)
from tests.support.managed_server import api_post
from tests.test_cli_errors import PHASE4, assert_one_line_exit_2


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    call = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(call, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def server_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder of the module's managed server: one boot serves the tests that need one."""
    base = tmp_path_factory.mktemp("managed")
    try:
        yield base
    finally:
        stop_server(server_home(base))


@pytest.fixture
def server(server_base: Path) -> ServerStatus:
    """The module's server, running: started here unless it runs (a test may stop it)."""
    with pytest.MonkeyPatch.context() as patch:
        # An operator's settings: one the server takes, one that would point it elsewhere.
        patch.setenv("PREFECT_SERVER_API_KEEPALIVE_TIMEOUT", "7")
        patch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
        return start_server(server_home(server_base))


def test_the_api_refuses_calls_without_the_auth_string_and_the_clis_client_works(
    server: ServerStatus, tmp_path: Path
) -> None:
    home, port = server.home, server.port
    assert port is not None
    auth = home / "server.auth"
    assert auth.stat().st_mode & 0o777 == 0o600
    secret = auth.read_text().strip()
    assert len(secret) >= 40
    api = f"http://127.0.0.1:{port}/api"
    assert request(f"{api}/admin/settings")[0] == 401  # no auth string
    wrong = {"Authorization": "Basic " + base64.b64encode(b"guess").decode()}
    assert request(f"{api}/admin/settings", headers=wrong)[0] == 401
    token = {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}
    assert request(f"{api}/admin/settings", headers=token)[0] == 200
    assert request(f"{api}/health")[0] == 200  # open: only /health needs no secret
    # CSRF: a state-changing call with the secret but without a CSRF token is refused.
    json_body = {**token, "Content-Type": "application/json"}
    status, _, body = request(f"{api}/flows/filter", "POST", json_body, b"{}")
    assert (status, json.loads(body)) == (403, {"detail": "Missing CSRF token."})
    # CORS: only the server's own origin gets an allow-origin header.
    own = f"http://127.0.0.1:{port}"
    for origin, allowed in (("http://evil.example", None), (own, own)):
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        _, headers, _ = request(f"{api}/flows/filter", "OPTIONS", preflight)
        assert {k.lower(): v for k, v in headers.items()}.get("access-control-allow-origin") == (
            allowed
        )
    # The server's environment: the operator's setting kept, the foreign API URL replaced.
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{server.pid}/environ").read_text().split("\0")
        if "=" in item
    )
    assert environ["PREFECT_SERVER_API_KEEPALIVE_TIMEOUT"] == "7"
    assert environ["PREFECT_API_URL"] == environ["PREFECT_UI_API_URL"] == f"{api}"
    assert environ["PREFECT_SERVER_API_AUTH_STRING"] == secret
    assert environ["PREFECT_SERVER_CSRF_PROTECTION_ENABLED"] == "true"
    assert environ["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"] == own
    # The CLI's client (client_environment): a flow run recorded through the API.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(client_environment(port, home))
    code = (
        "from prefect import flow\n"
        "from prefect.client.orchestration import get_client\n"
        "@flow(name='harden-probe')\n"
        "def probe() -> int:\n"
        "    return 41 + 1\n"
        "print(probe())\n"
        "with get_client(sync_client=True) as client:\n"
        "    print(len(client.read_flow_runs()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["42", "1"]
    # What a test asks the server directly (tests/support/managed_server.py): secret + token.
    runs = api_post(home, "/flow_runs/filter", {"sort": "START_TIME_ASC"})
    assert [(r["name"] != "", r["state_type"]) for r in runs] == [(True, "COMPLETED")]
    del env["PREFECT_API_AUTH_STRING"]  # the same client without the secret is refused
    refused = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert refused.returncode != 0 and "401" in refused.stderr


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without PREFECT_*/PHASE4_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PHASE4_"))}
    return {**env, **extra}


def cli(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PHASE4, *args], cwd=cwd, env=clean_env(**extra), capture_output=True, text=True
    )


@pytest.mark.parametrize("damage", ["garbled", "deleted"])
def test_an_auth_file_the_server_refuses_is_one_line_at_once_and_the_server_is_left_alone(
    server: ServerStatus, server_base: Path, damage: str
) -> None:
    """server.auth edited or deleted while the server runs: every API call of the CLI was a
    401 traceback, `server status` said healthy and `server start` waited out its timeout."""
    auth = server.home / "server.auth"
    secret = auth.read_text()
    refused = (
        f"error: {auth} does not hold the running server's secret (pid {server.pid}): run "
        "phase4 server stop, then re-run"
    )
    try:
        if damage == "garbled":
            auth.write_text("short\n")
        else:
            auth.unlink()
        run = cli(server_base, "-q", "run", "--date", "2024-01-16")
        assert_one_line_exit_2(run)
        assert run.stderr.startswith(refused), run.stderr
        status = cli(server_base, "server", "status")
        assert status.returncode == 2 and status.stderr.strip() == refused
        assert f"pid {server.pid}, refusing the secret in {auth}" in status.stdout
        began = time.monotonic()
        start = cli(server_base, "server", "start", PHASE4_SERVER_START_TIMEOUT="30")
        assert time.monotonic() - began < 15  # not the start timeout
        assert start.returncode == 2 and start.stderr.strip() == refused
    finally:
        auth.write_text(secret)
    assert server_status(server.home) == server  # neither restarted nor stopped
    assert cli(server_base, "server", "status").returncode == 0


class FakeServers:
    """Processes that look like `prefect server start` to /proc (argv, PREFECT_HOME, own
    process group) without starting Prefect: what a lost pid file leaves running."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, home: Path, port: int, *, own_group: bool = True) -> int:
        code = "import time; time.sleep(300)"
        argv = [sys.executable, "-c", code, "prefect", "server", "start", "--port", str(port)]
        env = {**os.environ, "PREFECT_HOME": str(home)}
        process = subprocess.Popen(argv, env=env, start_new_session=own_group)
        self.processes.append(process)
        return process.pid


@pytest.fixture
def fake_servers() -> Iterator[FakeServers]:
    fakes = FakeServers()
    try:
        yield fakes
    finally:
        for process in fakes.processes:
            process.kill()
            process.wait()


@pytest.mark.parametrize("pid_file", [None, "junk\n", "999999999 5\n"])
def test_a_lost_or_garbled_pid_file_adopts_the_homes_server_and_stop_stops_every_one(
    tmp_path: Path, fake_servers: FakeServers, pid_file: str | None
) -> None:
    """A missing or garbled server.pid made the next command start a second server on the
    same home, and the first could no longer be stopped by the CLI."""
    home = server_home(tmp_path)
    home.mkdir(parents=True)
    first = fake_servers.start(home, 4998)
    time.sleep(0.05)  # the second one starts a tick later (adoption takes the oldest)
    second = fake_servers.start(home, 4999)  # as the old bug left it
    others = [
        fake_servers.start(server_home(tmp_path / "elsewhere"), 4997),  # another home's
        fake_servers.start(home, 4996, own_group=False),  # not leading its group: a child
    ]
    if pid_file is not None:
        (home / "server.pid").write_text(pid_file)
    time.sleep(0.2)  # their /proc entries are complete
    found = server_status(home)
    assert (found.running, found.pid, found.port) == (True, first, 4998)
    assert (home / "server.pid").read_text() == f"{first} {_start_ticks(first)}\n"
    assert (home / "server.port").read_text() == "4998\n"
    assert stale_pid_file(home) is None
    (home / "server.pid").unlink()  # lost again: stop finds it too, and the second one
    lines: list[str] = []
    assert stop_server(home, on_stale=lines.append)
    adopted = "rewritten for this home's running server, pid {} (found by its PREFECT_HOME)"
    assert lines == [
        f"{home / 'server.pid'} is missing: {adopted.format(first)}",
        f"{home / 'server.pid'} is missing: {adopted.format(second)}",
    ]
    time.sleep(0.2)
    assert [p.poll() is not None for p in fake_servers.processes[:2]] == [True, True]
    assert [p.poll() for p in fake_servers.processes[2:]] == [None, None]  # never signalled
    assert not server_status(home).running and not (home / "server.pid").exists()
    assert {first, second, *others} == {p.pid for p in fake_servers.processes}


def test_a_server_whose_folder_was_deleted_is_still_found_and_stopped(
    tmp_path: Path, fake_servers: FakeServers
) -> None:
    """`rm -rf .phase4` under a running server: `server status` said nothing ran and
    `server stop` left it running, holding its port, with no file left to find it by."""
    home = server_home(tmp_path)
    home.mkdir(parents=True)
    pid = fake_servers.start(home, 4995)
    time.sleep(0.2)  # its /proc entries are complete
    shutil.rmtree(tmp_path / ".phase4")
    found = server_status(home)
    assert (found.running, found.pid, found.port) == (True, pid, 4995)
    lines: list[str] = []
    assert stop_server(home, on_stale=lines.append)
    assert lines == [f"{home} is gone, but its server still runs, pid {pid}"]
    assert fake_servers.processes[0].wait(timeout=10) is not None
    assert not home.exists()  # a stop writes nothing where the folder was


@pytest.mark.parametrize("args", [["server", "start"], ["run"]])
def test_a_folder_named_like_a_server_file_is_one_line_naming_it(
    tmp_path: Path, args: list[str]
) -> None:
    """A folder where server.auth goes (or a read-only mount of the server's folder) was
    `cannot write …`, exit 1, with nothing said of what to do."""
    auth = server_home(tmp_path) / "server.auth"
    auth.mkdir(parents=True)
    result = cli(tmp_path, "-q", *args, PHASE4_WAREHOUSE=f"duckdb://{tmp_path}/w.duckdb")
    assert_one_line_exit_2(result, f"{auth}: Is a directory; the managed Prefect server", "move")
    assert not (auth.parent / "server.pid").exists()  # nothing started


def test_a_credentials_block_is_read_from_the_managed_server_by_every_command(
    tmp_path: Path,
) -> None:
    """A GcpCredentials block saved on the managed server (where `run` finds it) was looked up
    by `status`, `export`, `warehouse init`, ... on a temporary server of their own, which holds
    no blocks: `Unable to find block document`, whatever was saved."""
    try:
        result = cli(
            tmp_path,
            "-q",
            "status",
            "--date",
            "2024-01-15",
            PHASE4_WAREHOUSE="bigquery://my-project",
            PHASE4_GCP_CREDENTIALS_BLOCK="phase4-absent",
        )
        assert_one_line_exit_2(result, "Unable to find block document named phase4-absent")
        found = server_status(server_home(tmp_path))
        assert found.running and found.healthy  # the lookup went to the managed server
    finally:
        stop_server(server_home(tmp_path))


def test_a_lost_pid_file_does_not_start_a_second_real_server(
    server: ServerStatus, server_base: Path
) -> None:
    """The reported case, on the real server: `server start` after server.pid was deleted
    finds and keeps the running server."""
    (server.home / "server.pid").unlink()
    start = cli(server_base, "server", "start", PHASE4_SERVER_START_TIMEOUT="30")
    assert start.returncode == 0, start.stderr
    assert f"managed Prefect server pid {server.pid}, healthy" in start.stdout
    assert server_status(server.home) == server
    assert [s.pid for s in phase4.server._servers_of(server.home)] == [server.pid]


class AnswersWith:
    """A local HTTP server answering every GET with `status` (a Prefect Cloud URL without
    its API key says 401), recording the paths asked."""

    def __init__(self, status: int) -> None:
        import http.server
        import threading

        self.paths: list[str] = []
        paths = self.paths

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                paths.append(self.path)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_configured_api_url_that_does_not_answer_is_one_line_before_any_flow(
    tmp_path: Path,
) -> None:
    """PREFECT_API_URL down or malformed ended `run` and `backfill` in a 141-line traceback
    after their work had started; `server status` only printed the URL."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/api"
    try:
        run = cli(tmp_path, "-q", "run", "--date", "2024-01-16", PREFECT_API_URL=url)
    finally:
        closed.close()
    assert_one_line_exit_2(run)
    assert run.stderr.startswith(
        f"error: PREFECT_API_URL={url} does not answer (Connection refused): start that "
        "server or unset PREFECT_API_URL"
    ), run.stderr
    assert not (tmp_path / ".phase4" / "warehouse.duckdb").exists()  # nothing started
    status = cli(tmp_path, "server", "status", PREFECT_API_URL="notaurl")
    assert status.returncode == 2 and status.stderr.strip() == (
        "error: PREFECT_API_URL=notaurl does not answer (not an http(s) URL): start that "
        "server or unset PREFECT_API_URL"
    )
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "far"\n[profiles.far]\nPREFECT_API_URL = "ftp://x/api"\n')
    status = cli(tmp_path, "server", "status", PREFECT_PROFILES_PATH=str(profiles))
    assert status.returncode == 2 and status.stderr.startswith(
        "error: PREFECT_API_URL (profile far)=ftp://x/api does not answer"
    )


def test_an_external_api_refusing_the_probe_still_answers(tmp_path: Path) -> None:
    """A 401/403 (Prefect Cloud without the key: the probe sends none) is an answer; a port
    that accepts but never answers is not, within the probe's timeout."""
    for status in (401, 403, 200):
        answering = AnswersWith(status)
        try:
            assert phase4.server.api_answers(answering.url + "/") is None
            assert answering.paths == ["/api/health"]
            if status == 401:
                done = cli(tmp_path, "server", "status", PREFECT_API_URL=answering.url)
                assert done.returncode == 0, done.stderr
                assert done.stdout.splitlines()[-1] == (
                    f"the CLI uses PREFECT_API_URL={answering.url}, which answers"
                )
        finally:
            answering.close()
    lacking = AnswersWith(404)  # a Prefect server's URL without its /api: two tracebacks
    try:
        done = cli(tmp_path, "server", "status", PREFECT_API_URL=lacking.url)
        assert done.returncode == 2 and done.stderr.strip() == (
            f"error: PREFECT_API_URL={lacking.url} does not answer (no Prefect API there: 404 "
            "at /health; does the URL lack /api?): start that server or unset PREFECT_API_URL"
        )
    finally:
        lacking.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # connections are accepted by the kernel, never answered
    try:
        began = time.monotonic()
        why = phase4.server.api_answers(f"http://127.0.0.1:{silent.getsockname()[1]}/api", 0.5)
        assert why == "no answer within 0.5 s" and time.monotonic() - began < 3
    finally:
        silent.close()


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process of the user, leading its own session like the server would."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ("pid_file", "why"),
    [
        ("{pid}\n", "the pid file holds no start time"),
        ("not a pid\n", "it holds no pid and start time"),
        ("{pid} {start}\n", "is not `prefect server start` on port 4200"),
        ("{pid} {later}\n", "started after the server did (the pid was reused)"),
    ],
)
def test_a_stale_pid_file_is_removed_and_nothing_is_signalled(
    tmp_path: Path, bystander: subprocess.Popen[bytes], pid_file: str, why: str
) -> None:
    home = server_home(tmp_path)
    home.mkdir(parents=True)
    start = _start_ticks(bystander.pid)
    assert start is not None
    text = pid_file.format(pid=bystander.pid, start=start, later=start + 1)
    (home / "server.pid").write_text(text)
    (home / "server.port").write_text("4200\n")
    assert not server_status(home).running
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PHASE4_"))}
    done = subprocess.run(
        [PHASE4, "server", "stop"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first.startswith(f"removed the stale {home / 'server.pid'}: ") and why in first
    assert first.endswith("nothing was signalled")
    assert second == f"no managed Prefect server was running ({home})"
    time.sleep(0.2)
    assert bystander.poll() is None  # still running
    assert not (home / "server.pid").exists()


def test_a_pid_file_naming_pid_1_is_never_signalled(tmp_path: Path) -> None:
    home = server_home(tmp_path)
    home.mkdir(parents=True)
    (home / "server.pid").write_text(f"1 {_start_ticks(1)}\n")
    lines: list[str] = []
    assert not stop_server(home, on_stale=lines.append)
    assert lines == [
        f"removed the stale {home / 'server.pid'}: pid 1 cannot be the server's (it never "
        "leads a session of ours); nothing was signalled"
    ]


TIMEOUT_ALLOWED = "expected a number of seconds from 1 to 3600 (unset: 180)"


@pytest.mark.parametrize(
    ("command", "name", "value", "allowed"),
    [
        ("start", "PHASE4_SERVER_START_TIMEOUT", "abc", TIMEOUT_ALLOWED),
        ("start", "PHASE4_SERVER_START_TIMEOUT", "-5", TIMEOUT_ALLOWED),
        ("start", "PHASE4_SERVER_START_TIMEOUT", "nan", TIMEOUT_ALLOWED),
        ("status", "PHASE4_SERVER", "maybe", "expected one of on, off, 1, 0, true, false, yes"),
    ],
)
def test_bad_server_settings_are_one_line_and_start_nothing(
    tmp_path: Path, command: str, name: str, value: str, allowed: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PHASE4_"))}
    env[name] = value
    done = subprocess.run(
        [PHASE4, "server", command], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    line = assert_one_line_exit_2(done, f"{name}={value}: {allowed}")
    assert "Traceback" not in line
    assert not (tmp_path / ".phase4" / "prefect" / "server.pid").exists()
    # A command that does not start the server is not held up by the bad value.
    version = subprocess.run([PHASE4, "--version"], env=env, capture_output=True, text=True)
    assert version.returncode == 0, version.stderr


def test_a_lost_port_file_neither_starts_a_second_server_nor_orphans_the_first(
    server: ServerStatus,
) -> None:
    """server.port deleted while the server runs: its own command line still gives its port."""
    assert server.home is not None and server.port is not None
    (server.home / "server.port").unlink()
    assert server_status(server.home) == server
    assert stale_pid_file(server.home) is None
    again = start_server(server.home)
    assert (again.pid, again.port) == (server.pid, server.port)  # no second server
    assert stop_server(server.home)  # signalled, not removed as stale
    assert not server_status(server.home).running


def test_a_copied_project_folder_neither_claims_nor_stops_the_originals_server(
    server: ServerStatus, tmp_path: Path
) -> None:
    """`cp -r` of a project while its server ran: the copy's `server status` called the
    original's server its own, and its `server stop` stopped it."""
    assert server.home is not None
    copy = server_home(tmp_path / "copy")
    shutil.copytree(server.home, copy, ignore=shutil.ignore_patterns("*.db*", "*.log"))
    assert not server_status(copy).running
    lines: list[str] = []
    assert not stop_server(copy, on_stale=lines.append)
    assert lines == [
        f"removed the stale {copy / 'server.pid'}: process {server.pid} is the server of another "
        "folder (this one copied from it?); nothing was signalled"
    ]
    assert server_status(server.home) == server  # the original's, untouched


def test_signal_is_sent_only_to_the_proven_server(server: ServerStatus) -> None:
    assert server.pid is not None
    assert os.getpgid(server.pid) == server.pid
    assert stop_server(server.home)
    assert not server_status(server.home).running


def test_a_bad_phase4_server_stops_run_before_anything_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PHASE4_"))}
    env["PHASE4_SERVER"] = "maybe"
    done = subprocess.run(
        [PHASE4, "run", "--date", "2024-01-10"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: PHASE4_SERVER=maybe: expected one of on, off, 1, 0, true, false, yes, no "
        "(unset: on)"
    )
    assert not (tmp_path / ".phase4" / "prefect").exists()


def test_server_status_names_a_stale_pid_file(tmp_path: Path) -> None:
    home = server_home(tmp_path)
    home.mkdir(parents=True)
    (home / "server.pid").write_text("999999999 5\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PHASE4_"))}
    done = subprocess.run(
        [PHASE4, "server", "status"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        f"no managed Prefect server (home {home})",
        f"{home / 'server.pid'} is stale: no process 999999999 runs (`phase4 server stop` "
        "removes it; `phase4 server start` replaces it)",
    ]


def test_a_start_trusts_only_its_own_server_on_the_port(
    server: ServerStatus, tmp_path: Path
) -> None:
    """Two first commands of two homes at once can both find the port free: the second's
    server then fails to bind, while the first's answers on that port. The second's start
    must not take that server for its own (its secret is not this home's)."""
    assert server.port is not None and server.home is not None
    other = server_home(tmp_path)
    other.mkdir(parents=True)
    assert auth_string(other, create=True) != auth_string(server.home)
    binding = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    try:
        with pytest.raises(ServerStartError, match="exited while starting"):
            _wait_healthy(ServerFiles(other), binding.pid, server.port, timeout=30)
    finally:
        binding.wait()
    # Its own home's check still finds it.
    assert _wait_healthy(ServerFiles(server.home), server.pid or 0, server.port, 30).healthy


def test_an_empty_or_garbled_auth_file_is_replaced_when_a_server_starts(tmp_path: Path) -> None:
    """An empty server.auth (a full disk, a touch) stopped every start with an AssertionError,
    a garbled one with a UnicodeDecodeError: a start replaces either whole, mode 0600 (the
    start itself is the test below, which begins with an empty, world-readable file)."""
    home = server_home(tmp_path)
    home.mkdir(parents=True)
    for garbled in (b"\xff\xfe garbled\n", b"", b"short\n"):
        (home / "server.auth").write_bytes(garbled)
        (home / "server.auth").chmod(0o644)
        assert auth_string(home) in (None, "short")  # read as it is: only a start replaces it
        secret = auth_string(home, create=True)
        assert secret is not None and len(secret) == 43
        assert (home / "server.auth").read_text() == secret + "\n"
        assert (home / "server.auth").stat().st_mode & 0o777 == 0o600
        assert auth_string(home, create=True) == secret  # a good secret is kept
    assert sorted(p.name for p in home.iterdir()) == ["server.auth"]  # no temporary left


def test_a_start_whose_port_another_home_took_meanwhile_retries_on_a_free_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two homes' first commands at once can both find port 4200 free; the one whose server
    then fails to bind starts again on any free port instead of failing."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])  # free when looked at, taken when the server binds
    free_port = phase4.server._free_port
    monkeypatch.setattr(
        phase4.server,
        "_free_port",
        lambda preferred=4200: next(ports, None) or free_port(preferred),
    )
    home = server_home(tmp_path)
    home.mkdir(parents=True)
    (home / "server.auth").write_text("")  # and an empty auth file, world-readable
    (home / "server.auth").chmod(0o644)
    try:
        started = start_server(home)
        assert started.healthy and started.port not in (None, taken.getsockname()[1])
        assert (home / "server.auth").stat().st_mode & 0o777 == 0o600
        assert len((home / "server.auth").read_text().strip()) == 43
        # The first server's refusal.
        assert f"on port {taken.getsockname()[1]}" in (home / "server.log").read_text()
    finally:
        stop_server(home)
        taken.close()


def test_a_quiet_commands_console_level_stays_out_of_the_servers_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`phase4 -q` silences Prefect in its own terminal; a server it starts inherited that,
    and server.log lost its warnings and errors."""
    from phase4.server import server_environment

    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    env = server_environment(tmp_path, 4999)
    assert "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL" not in env
