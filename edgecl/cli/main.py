"""The ``edgecl`` command: the table of subcommands, the parser and the entry point.

Every subcommand is a :class:`~edgecl.cli._common.Command` (name, help, how to add its
arguments, what runs) in :func:`commands`, a table like pip's ``commands_dict``; a new
subcommand is one more entry (no import-time registration).

Output: a readable table by default, ``--json`` for machines (with the machine's CPU,
core count and library versions). Exit codes: 0 ok, 2 usage, 3 :class:`BundleError`,
4 :class:`BudgetError`, 5 :class:`ExportError`, 1 anything else; a one-line message on
stderr and no traceback unless ``--debug``. Host-only commands (``export``, ``train``,
``demo``) check for torch before any work and import it inside their function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgecl.cli._common import (
    EXIT_OTHER,
    EXIT_USAGE,
    Command,
    UsageError,
    set_numba_cache_dir,
)
from edgecl.cli.bench import add_bench, cmd_bench
from edgecl.cli.compile import add_compile, cmd_compile
from edgecl.cli.demo import add_demo, cmd_demo
from edgecl.cli.export import add_export, add_info, cmd_export, cmd_info
from edgecl.cli.export_c import add_export_c, cmd_export_c
from edgecl.cli.import_larq import add_import_larq, cmd_import_larq
from edgecl.cli.learn import add_learn, add_predict, cmd_learn, cmd_predict
from edgecl.cli.train import add_train, cmd_train
from edgecl.errors import EdgeclError

__all__ = ["build_parser", "commands", "exit_code", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line naming ``--help`` (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def commands() -> list[Command]:
    """Every subcommand, in the order ``edgecl --help`` lists them."""
    return [
        Command("export", "checkpoint -> device bundle (and ONNX graph)", add_export, cmd_export),
        Command("info", "what a bundle holds: classes, layers, bytes, budget", add_info, cmd_info),
        Command("import-larq", "Larq model -> bundle (no TF)", add_import_larq, cmd_import_larq),
        Command(
            "export-c",
            "bundle -> C99 project (predict and learn, no Python)",
            add_export_c,
            cmd_export_c,
        ),
        Command(
            "train",
            "host: train F+G on a data set's base classes -> checkpoint",
            add_train,
            cmd_train,
        ),
        Command(
            "learn",
            "learn (or --update) a class from samples, inside the budget",
            add_learn,
            cmd_learn,
        ),
        Command("predict", "classify samples with a bundle", add_predict, cmd_predict),
        Command(
            "bench",
            "latency (predict, learn_class) or memory (bytes per part, peak)",
            add_bench,
            cmd_bench,
        ),
        Command(
            "demo",
            "split-MNIST end to end: host training, then learning on the device",
            add_demo,
            cmd_demo,
            own_json=True,
        ),
        Command(
            "compile",
            "compile edgecl's kernels for this CPU once, ahead of time",
            add_compile,
            cmd_compile,
        ),
    ]


def build_parser() -> argparse.ArgumentParser:
    """The ``edgecl`` argument parser, one subparser per :func:`commands` entry."""
    base = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: `edgecl --debug CMD` and `edgecl CMD --debug` both work
    base.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    base.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    common = argparse.ArgumentParser(add_help=False, parents=[base])
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = _Parser(
        prog="edgecl",
        description="Binarized networks that keep learning new classes on the device.",
    )
    from edgecl import __version__

    parser.add_argument("--version", action="version", version=f"edgecl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in commands():
        p = sub.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            parents=[base if command.own_json else common],
        )
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def exit_code(exc: BaseException) -> int:
    """The exit code of an error: the ``exit_code`` its :mod:`edgecl.errors` class (or
    :class:`UsageError`) carries (3 bundle, 4 budget, 5 export, 2 usage: bad arguments,
    bad input values, a --data file of the wrong form), 1 anything else."""
    if isinstance(exc, (EdgeclError, UsageError)):
        return exc.exit_code
    return EXIT_OTHER


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``edgecl`` command; returns the exit code."""
    set_numba_cache_dir()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("edgecl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        kind = type(exc).__name__
        message = " ".join(str(exc).split())  # one line
        print(f"edgecl {args.command}: {kind}: {message}", file=sys.stderr)
        return exit_code(exc)
