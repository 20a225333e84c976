"""The `phase4` command's entry point: `run` and `backfill` go to the warm runner when one
serves (phase4/runner.py), everything else to the CLI (phase4/cli.py).

It imports neither typer nor rich (~80 ms): a warm command's own process only hands its
terminal to the runner and waits for the exit status.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from phase4.exit_codes import EXIT_INTERRUPTED, EXIT_RUN_FAILED

WARM_COMMANDS = frozenset({"run", "backfill"})


def main() -> None:
    argv = sys.argv[1:]
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in WARM_COMMANDS and "--help" not in argv:
        code = run_warm(argv)
        if code is not None:
            raise SystemExit(code)
    from phase4.cli import app

    app()


def run_warm(argv: list[str]) -> int | None:
    """Hand the command to the managed server's warm runner; None: run it here instead."""
    from phase4.server import managed_server_wanted, server_home, server_status

    if not managed_server_wanted() or not server_status().healthy:
        return None
    from phase4.runner import LOST, run_in_runner

    child: list[int] = []
    interrupts: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        interrupts.append(signum)
        if child:
            os.kill(child[0], signal.SIGINT)  # the child stops after its write, like here

    previous = signal.signal(signal.SIGINT, forward)
    try:
        code = run_in_runner(server_home(), argv, child.append)
    finally:
        signal.signal(signal.SIGINT, previous)
    if code == LOST:
        return EXIT_INTERRUPTED if interrupts else EXIT_RUN_FAILED
    return code


if __name__ == "__main__":
    main()
