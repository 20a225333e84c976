"""The `phase4` command line (phase4.cli) and what only it uses."""

from __future__ import annotations

import sys

from phase4.exit_codes import EXIT_INTERRUPTED


def main() -> None:
    """The `phase4` script. The CLI's modules take ~0.4 s to import: a Ctrl-C then is one line
    and exit 130 like a Ctrl-C anywhere else, not a traceback."""
    try:
        from phase4.cli import main as run_command
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted before the command started; nothing written\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    run_command()
