"""Settings read from the environment, each checked when it is read.

A bad value is a one-line `SettingError` naming the setting, the value and what is allowed (the
CLI prints it, exits 2). Only the standard library is imported, so the CLI asks before Prefect.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping


class SettingError(ValueError):
    """A setting from the environment whose value is not allowed (one line)."""


def seconds(name: str, default: float, *, minimum: float, maximum: float) -> float:
    """A number of seconds within [minimum, maximum]; unset or empty gives the default."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    with contextlib.suppress(ValueError):
        number = float(value)
        if minimum <= number <= maximum:  # NaN and inf fail too
            return number
    raise SettingError(
        f"{name}={value}: expected a number of seconds from {minimum:g} to {maximum:g} "
        f"(unset: {default:g})"
    )


def choice(name: str, default: str, allowed: Mapping[str, str]) -> str:
    """One of `allowed`'s keys (case ignored), mapped to its meaning; unset gives the default."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if value.lower() in allowed:
        return allowed[value.lower()]
    raise SettingError(f"{name}={value}: expected one of {', '.join(allowed)} (unset: {default})")
