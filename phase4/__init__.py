"""The `phase4` command (cli.py) and what it manages. Its exit statuses, shared by every command:"""

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
