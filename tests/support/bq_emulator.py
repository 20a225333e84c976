"""Run the ``bqemulator`` BigQuery emulator (PyPI, 1.4.0) as a child process for tests.

bqemulator runs on DuckDB 1.5.5 (the version the packaged spatial extension is built for) while
this project pins DuckDB 2.0.1, so it lives in its own virtualenv (default
``<repo>/.venv-bqemulator``), created on first use by :func:`ensure_emulator_venv`.
bqemulator's own pytest plugin (``pytest11`` entry point ``bqemulator.testing.fixtures``) runs
the server *in-process*, which would force bqemulator and its DuckDB into the main venv, so we
start ``python -m bqemulator start`` ourselves instead.

Usage in a ``conftest.py``::

    from collections.abc import Iterator

    import pytest
    from google.cloud import bigquery

    from tests.support.bq_emulator import EmulatorProcess, start_emulator

    @pytest.fixture(scope="session")
    def bq_emulator() -> Iterator[EmulatorProcess]:
        with start_emulator(project="local") as emulator:
            yield emulator

    @pytest.fixture
    def bq_client(bq_emulator: EmulatorProcess) -> bigquery.Client:
        # == bigquery.Client(project="local",
        #        client_options={"api_endpoint": bq_emulator.endpoint},
        #        credentials=AnonymousCredentials())
        return bq_emulator.bigquery_client()

    def test_something(bq_client, bq_emulator):
        table = bq_client.list_rows("local.ds.t").to_arrow(
            bqstorage_client=bq_emulator.bqstorage_client()  # Storage Read API on the emulator
        )
        rows = bq_client.query("SELECT 1 AS one").to_arrow(create_bqstorage_client=False)

Never let the client build its own Storage Read client (``to_arrow()`` with no arguments): it
dials ``bigquerystorage.googleapis.com``. Pass ``create_bqstorage_client=False`` (REST) or
``bqstorage_client=emulator.bqstorage_client()`` (tables only, not query results). See
``docs/bqemulator-notes.md`` for what the emulator does and does not do.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud.bigquery import Client
    from google.cloud.bigquery_storage import BigQueryReadClient

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV_DIR = REPO_ROOT / ".venv-bqemulator"
VENV_ENV_VAR = "BQEMULATOR_VENV"

BQEMULATOR_VERSION = "1.4.0"
DUCKDB_VERSION = "1.5.5"

#: Everything the emulator venv holds, pinned (a ``pip freeze`` of a working install).
#: ``numpy`` is an undeclared runtime dependency of bqemulator 1.4.0 (its builtin UDFs need
#: it; without it ``start`` dies with "'numpy' is required for this operation").
#: ``duckdb-extension-spatial`` ships the spatial extension bqemulator ``INSTALL``s at boot,
#: so nothing is downloaded from extensions.duckdb.org.
EMULATOR_REQUIREMENTS: tuple[str, ...] = (
    f"bqemulator=={BQEMULATOR_VERSION}",
    f"duckdb=={DUCKDB_VERSION}",
    f"duckdb-extension-spatial=={DUCKDB_VERSION}",
    f"duckdb-extensions=={DUCKDB_VERSION}",
    "numpy==2.4.6",
    "alembic==1.20.1",
    "annotated-doc==0.0.7",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "asgiref==3.13.0",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "charset-normalizer==3.5.3",
    "click==8.5.1",
    "cryptography==50.0.2",
    "fastapi==0.165.0",
    "fastavro==1.13.1",
    "google-api-core==2.44.0",
    "google-auth==2.63.0",
    "google-cloud-bigquery-storage==2.43.0",
    "googleapis-common-protos==1.76.0",
    "grpcio==1.85.3",
    "grpcio-health-checking==1.80.1",
    "grpcio-status==1.85.3",
    "grpcio-tools==1.80.1",
    "h11==0.16.0",
    "httpcore==1.0.9",
    "httptools==0.9.0",
    "httpx==0.28.1",
    "idna==3.20",
    "mako==1.4.3",
    "markupsafe==3.0.4",
    "opentelemetry-api==1.45.2",
    "opentelemetry-exporter-http-transport==0.66b2",
    "opentelemetry-exporter-otlp==1.45.2",
    "opentelemetry-exporter-otlp-common==0.66b2",
    "opentelemetry-exporter-otlp-proto-common==1.45.2",
    "opentelemetry-exporter-otlp-proto-grpc==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "opentelemetry-instrumentation==0.66b2",
    "opentelemetry-instrumentation-asgi==0.66b2",
    "opentelemetry-instrumentation-fastapi==0.66b2",
    "opentelemetry-instrumentation-grpc==0.66b2",
    "opentelemetry-proto==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-semantic-conventions==0.66b2",
    "opentelemetry-util-http==0.66b2",
    "orjson==3.13.0",
    "packaging==26.4",
    "prometheus-client==0.26.0",
    "proto-plus==1.29.0",
    "protobuf==6.33.6",
    "pyarrow==26.0.1",
    "pyasn1==0.6.5",
    "pyasn1-modules==0.4.2",
    "pycparser==3.12",
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "pydantic-settings==2.16.3",
    "pyjwt==2.15.1",
    "python-dotenv==1.2.4",
    "pytz==2026.6",
    "pyyaml==6.0.4",
    "requests==2.34.2",
    "setuptools==84.2.1",
    "sqlalchemy==2.1.9",
    "sqlglot==30.11.0",
    "starlette==1.10.0",
    "structlog==26.1.0",
    "typing-extensions==4.16.0",
    "typing-inspection==0.4.5",
    "urllib3==2.8.0",
    "uvicorn==0.54.0",
    "uvloop==0.23.0",
    "watchfiles==1.3.0",
    "websockets==17.4",
    "wrapt==2.5.2",
)

_MARKER_NAME = ".bqemulator-ready"
_PIP_TIMEOUT_S = 900.0
_LOG_TAIL_LINES = 40


class EmulatorError(RuntimeError):
    """The emulator venv could not be built or the emulator did not come up."""


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def duckdb_home(venv_dir: Path) -> Path:
    """HOME given to the emulator, so DuckDB keeps its extensions inside the venv dir."""
    return venv_dir / "duckdb-home"


def _fingerprint() -> str:
    text = "\n".join((sys.version.split()[0], *EMULATOR_REQUIREMENTS))
    return hashlib.sha256(text.encode()).hexdigest()


def _spatial_installed(venv_dir: Path) -> bool:
    pattern = f"v{DUCKDB_VERSION}/*/spatial.duckdb_extension"
    return any((duckdb_home(venv_dir) / ".duckdb" / "extensions").glob(pattern))


def _is_ready(venv_dir: Path) -> bool:
    marker = venv_dir / _MARKER_NAME
    return (
        _venv_python(venv_dir).exists()
        and marker.exists()
        and marker.read_text().strip() == _fingerprint()
        and _spatial_installed(venv_dir)
    )


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _run(cmd: list[str], *, env: dict[str, str] | None = None, what: str) -> None:
    try:
        done = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=_PIP_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise EmulatorError(f"{what} timed out after {_PIP_TIMEOUT_S:.0f}s: {cmd}") from exc
    if done.returncode != 0:
        output = _tail(done.stdout + "\n" + done.stderr)
        raise EmulatorError(f"{what} failed (exit {done.returncode}): {cmd}\n{output}")


def ensure_emulator_venv(path: Path = DEFAULT_VENV_DIR) -> Path:
    """Create (once) the bqemulator virtualenv at ``path``; return its ``python``.

    Idempotent and fast (a few ``stat`` calls) once the marker file matches the pins.
    Concurrent callers (e.g. pytest-xdist workers) serialise on ``<path>/.ensure.lock``.
    """
    path = path.resolve()
    if _is_ready(path):
        return _venv_python(path)
    path.mkdir(parents=True, exist_ok=True)
    with (path / ".ensure.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_ready(path):
            return _venv_python(path)
        python = _venv_python(path)
        if not python.exists():
            # No pip of its own: the tests' pip installs into it (`pip --python`).
            _run([sys.executable, "-m", "venv", "--without-pip", str(path)], what="creating venv")
        # The pins are a complete freeze: no resolver (--no-deps), and no byte-compiling of
        # every module up front (--no-compile); the emulator compiles what it imports once.
        # A quarter of the CPU time, which a fresh clone's `make test` pays once.
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--quiet",
                "--no-input",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-compile",
                *EMULATOR_REQUIREMENTS,
            ],
            what="pip install bqemulator",
        )
        # INSTALL the packaged spatial extension into DuckDB's local repository (under our
        # HOME); bqemulator's own "INSTALL spatial" then finds it instead of downloading it.
        home = duckdb_home(path)
        home.mkdir(parents=True, exist_ok=True)
        _run(
            [
                str(python),
                "-c",
                "import duckdb, duckdb_extensions; "
                "duckdb_extensions.import_extension('spatial', con=duckdb.connect())",
            ],
            env={**_clean_env(), "HOME": str(home)},
            what="installing the DuckDB spatial extension",
        )
        if not _spatial_installed(path):
            raise EmulatorError(f"spatial extension not found under {home} after install")
        (path / _MARKER_NAME).write_text(_fingerprint() + "\n")
    return python


def _clean_env() -> dict[str, str]:
    """The parent environment minus anything that would leak the main venv into the child.

    PYTHONDONTWRITEBYTECODE goes too: the venv is installed without byte-code, so the
    emulator's first start writes what it imports and later starts reuse it."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _free_ports(count: int) -> list[int]:
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str) -> bool:
    try:
        with _NO_PROXY_OPENER.open(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tcp_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


class EmulatorProcess:
    """A running ``bqemulator start`` child process (ephemeral, in-memory DuckDB).

    Attributes:
        endpoint: REST base URL, e.g. ``"http://127.0.0.1:40123"`` (``api_endpoint``).
        grpc_endpoint: ``"127.0.0.1:PORT"`` of the Storage Read/Write gRPC server.
        project: default project id the emulator was started with.
        pid: process id of the emulator.
        log_path: file receiving the emulator's stdout + stderr (JSON log lines).
        startup_seconds: wall time from spawn until REST and gRPC both answered.
    """

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        *,
        rest_port: int,
        grpc_port: int,
        project: str,
        workdir: Path,
        startup_seconds: float,
    ) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.endpoint = f"http://127.0.0.1:{rest_port}"
        self.grpc_endpoint = f"127.0.0.1:{grpc_port}"
        self.project = project
        self.workdir = workdir
        self.log_path = workdir / "bqemulator.log"
        self.startup_seconds = startup_seconds
        atexit.register(self.stop)

    def __repr__(self) -> str:
        return f"EmulatorProcess(pid={self.pid}, endpoint={self.endpoint!r})"

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return "<no log>"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the emulator by pid, SIGKILL it after ``timeout`` s. Idempotent."""
        if self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._popen.wait(timeout=timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def bigquery_client(self, project: str | None = None) -> Client:
        """A real ``google.cloud.bigquery.Client`` pointed at this emulator."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=project or self.project,
            client_options={"api_endpoint": self.endpoint},
            credentials=AnonymousCredentials(),
        )

    def bqstorage_client(self) -> BigQueryReadClient:
        """A Storage Read API client on the emulator's gRPC port (plaintext, no auth).

        Unlimited message sizes: a 200k-row read stream exceeds gRPC's 4 MiB default.
        """
        import grpc
        from google.cloud.bigquery_storage import BigQueryReadClient
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
            BigQueryReadGrpcTransport,
        )

        channel = grpc.insecure_channel(
            self.grpc_endpoint,
            options=[
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", -1),
            ],
        )
        return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))


def _spawn(
    python: Path, venv_dir: Path, project: str, log_level: str, startup_timeout: float
) -> EmulatorProcess:
    rest_port, grpc_port = _free_ports(2)
    workdir = Path(tempfile.mkdtemp(prefix="bqemulator-"))
    log_path = workdir / "bqemulator.log"
    env = {
        **_clean_env(),
        "HOME": str(duckdb_home(venv_dir)),
        # Avro is optional and would be fetched from extensions.duckdb.org: skip it.
        "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
        "BQEMU_UPLOAD_STAGING_DIR": str(workdir / "uploads"),
    }
    cmd = [
        str(python),
        "-m",
        "bqemulator",
        "start",
        "--ephemeral",
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        str(rest_port),
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        str(grpc_port),
        "--project",
        project,
        "--log-level",
        log_level,
        "--log-format",
        "json",
    ]
    started = time.monotonic()
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    emulator = EmulatorProcess(
        popen,
        rest_port=rest_port,
        grpc_port=grpc_port,
        project=project,
        workdir=workdir,
        startup_seconds=0.0,
    )
    deadline = started + startup_timeout
    while time.monotonic() < deadline:
        if not emulator.running:
            break
        if _http_ok(f"{emulator.endpoint}/readyz") and _tcp_open("127.0.0.1", grpc_port):
            emulator.startup_seconds = time.monotonic() - started
            return emulator
        time.sleep(0.1)
    exit_code = popen.poll()
    tail = emulator.log_tail()
    emulator.stop()
    state = (
        f"exited with code {exit_code} before answering"
        if exit_code is not None
        else f"did not answer on {emulator.endpoint} within {startup_timeout:g}s"
    )
    raise EmulatorError(
        f"bqemulator {state} (cmd: {' '.join(cmd)}).\n--- emulator log tail ---\n{tail}"
    )


def start_emulator(
    project: str = "local",
    *,
    venv_dir: Path | None = None,
    startup_timeout: float = 60.0,
    log_level: str = "info",
) -> EmulatorProcess:
    """Start an ephemeral emulator on free loopback ports and wait until it answers.

    ``venv_dir`` defaults to ``$BQEMULATOR_VENV`` or ``<repo>/.venv-bqemulator`` and is built
    first if needed (about 15 s of CPU from the local wheels; not counted in ``startup_timeout``).
    Raises :class:`EmulatorError` with the emulator's log tail if it does not come up.
    """
    if venv_dir is None:
        venv_dir = Path(os.environ.get(VENV_ENV_VAR, DEFAULT_VENV_DIR))
    venv_dir = venv_dir.resolve()
    python = ensure_emulator_venv(venv_dir)
    last_error: EmulatorError | None = None
    for _ in range(3):  # a free port can be grabbed by someone else before the child binds it
        try:
            return _spawn(python, venv_dir, project, log_level, startup_timeout)
        except EmulatorError as exc:
            if "address already in use" not in str(exc).lower():
                raise
            last_error = exc
    assert last_error is not None
    raise last_error


__all__ = [
    "DEFAULT_VENV_DIR",
    "EMULATOR_REQUIREMENTS",
    "EmulatorError",
    "EmulatorProcess",
    "duckdb_home",
    "ensure_emulator_venv",
    "start_emulator",
]
