"""Whether a process still runs, from its pid (standard library only): the managed server's pid
file and the staged files a killed export left behind both ask it."""

from __future__ import annotations

import os
from pathlib import Path


def proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name ([0] the state); [] when unreadable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return proc_stat(pid)[:1] != ["Z"]  # a zombie child (ours, not yet reaped) is not alive
