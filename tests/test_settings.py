"""Settings from the environment are checked when read: one line naming the setting, the bad
value and what is allowed; exit 2; no client made, nothing written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from phase4 import settings
from tests.test_cli_errors import PHASE4, assert_one_line_exit_2

BQ = "bigquery://proj"
ALLOWED_PROJECT = "is not a project id (lowercase letters, digits and dashes, starting with a"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PHASE4_WAREHOUSE": "bigquery://My Project"}, f"My Project {ALLOWED_PROJECT}"),
        ({"PHASE4_WAREHOUSE": "bigquery://proj/x"}, f"proj/x {ALLOWED_PROJECT}"),
        (
            {"PHASE4_WAREHOUSE": "bigquery://proj?loc=US"},
            "PHASE4_WAREHOUSE=bigquery://proj?loc=US: unknown parameter loc; only ?location=",
        ),
        (
            {"PHASE4_WAREHOUSE": "bigquery://proj?location=U$S"},
            "location 'U$S' is not a BigQuery location such as US, EU or europe-west1",
        ),
        (
            {"PHASE4_WAREHOUSE": BQ, "PHASE4_BIGQUERY_ENDPOINT": "ftp://x"},
            "PHASE4_BIGQUERY_ENDPOINT=ftp://x: expected the emulator's base URL",
        ),
        (
            {"PHASE4_WAREHOUSE": BQ, "PHASE4_GCP_CREDENTIALS_BLOCK": "Bad Name"},
            "PHASE4_GCP_CREDENTIALS_BLOCK=Bad Name: expected a GcpCredentials block name",
        ),
        (
            {"PHASE4_WAREHOUSE": BQ, "PHASE4_BIGQUERY_MAX_BYTES_BILLED": "-1"},
            "PHASE4_BIGQUERY_MAX_BYTES_BILLED=-1: expected a positive whole number of bytes",
        ),
        (
            {"PHASE4_WAREHOUSE": BQ, "PHASE4_BIGQUERY_READ_API": "fast"},
            "PHASE4_BIGQUERY_READ_API=fast: expected storage or rest",
        ),
        # A project id ends with a letter or digit (`local-` made nine tables in `local-`).
        ({"PHASE4_WAREHOUSE": "bigquery://local-"}, f"local- {ALLOWED_PROJECT}"),
        # BigQuery bills 10 MiB a table: a lower cap (or one past int64) fails every query.
        (
            {"PHASE4_WAREHOUSE": BQ, "PHASE4_BIGQUERY_MAX_BYTES_BILLED": "10485759"},
            "PHASE4_BIGQUERY_MAX_BYTES_BILLED=10485759: expected a positive whole number of "
            "bytes, at least 10485760",
        ),
        (
            {"PHASE4_WAREHOUSE": BQ, "PHASE4_BIGQUERY_MAX_BYTES_BILLED": "9" * 20},
            "at least 10485760",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PHASE4_"))}
    done = subprocess.run(
        [PHASE4, "-q", "status", "--date", "2024-01-10"],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_exit_2(done, expected)
    assert not (tmp_path / ".phase4").exists()


def test_seconds_and_choices_take_their_range_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_SECONDS", raising=False)
    assert settings.seconds("X_SECONDS", 180.0, minimum=1.0, maximum=3600.0) == 180.0
    monkeypatch.setenv("X_SECONDS", " 2.5 ")
    assert settings.seconds("X_SECONDS", 180.0, minimum=1.0, maximum=3600.0) == 2.5
    for bad in ("abc", "0", "-1", "inf", "3601"):
        monkeypatch.setenv("X_SECONDS", bad)
        with pytest.raises(settings.SettingError, match=f"^X_SECONDS={bad}: expected a number"):
            settings.seconds("X_SECONDS", 180.0, minimum=1.0, maximum=3600.0)
    monkeypatch.setenv("X_MODE", "OFF")
    assert settings.choice("X_MODE", "on", {"on": "on", "off": "off"}) == "off"
    monkeypatch.setenv("X_MODE", "of")
    with pytest.raises(settings.SettingError, match="^X_MODE=of: expected one of on, off"):
        settings.choice("X_MODE", "on", {"on": "on", "off": "off"})
