"""The ``edgecl`` command (``edgecl = "edgecl.cli:main"``; ``python -m edgecl``).

:mod:`edgecl.cli.main` holds the command table and the entry point,
:mod:`edgecl.cli._common` what the subcommands share, and one module per command group
(``export``/``info``, ``learn``/``predict``, ``bench``, ``train``, ``demo``, ``compile``).
Importing it imports no torch.
"""

from edgecl.cli._common import (
    EXIT_BUDGET,
    EXIT_BUNDLE,
    EXIT_EXPORT,
    EXIT_OK,
    EXIT_OTHER,
    EXIT_USAGE,
    Command,
    UsageError,
    parse_bytes,
)
from edgecl.cli.main import build_parser, commands, exit_code, main

__all__ = [
    "EXIT_BUDGET",
    "EXIT_BUNDLE",
    "EXIT_EXPORT",
    "EXIT_OK",
    "EXIT_OTHER",
    "EXIT_USAGE",
    "Command",
    "UsageError",
    "build_parser",
    "commands",
    "exit_code",
    "main",
    "parse_bytes",
]
