"""Raw HTTP calls to the managed Prefect server (phase4/server.py) from tests.

The server refuses calls without its auth string (`server.auth` in its home) and state-changing
or filter calls (POST) without a CSRF token, so a test that asks it something directly goes
through here: the Authorization header, then a token fetched for this client.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path
from typing import Any

CSRF_CLIENT = "phase4-tests"


def _headers(home: Path) -> dict[str, str]:
    secret = (home / "server.auth").read_text().strip()
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def _api(home: Path) -> str:
    return f"http://127.0.0.1:{int((home / 'server.port').read_text())}/api"


def api_get(home: Path, path: str, timeout: float = 10.0) -> Any:
    """GET /api{path} with the server's auth string; the decoded JSON answer."""
    request = urllib.request.Request(f"{_api(home)}{path}", headers=_headers(home))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def api_post(home: Path, path: str, body: object, timeout: float = 10.0) -> Any:
    """POST /api{path} with the auth string and a CSRF token; the decoded JSON answer."""
    token = api_get(home, f"/csrf-token?client={CSRF_CLIENT}", timeout)["token"]
    headers = {
        **_headers(home),
        "Content-Type": "application/json",
        "Prefect-Csrf-Token": token,
        "Prefect-Csrf-Client": CSRF_CLIENT,
    }
    request = urllib.request.Request(
        f"{_api(home)}{path}", data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())
