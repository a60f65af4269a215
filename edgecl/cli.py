"""The ``edgecl`` command: a thin layer over the library.

Every subcommand is one function ``cmd_<name>(args) -> int`` plus one function adding
its arguments; :func:`build_parser` builds the parser from the :func:`commands` list,
so a new subcommand is one more :class:`Command` entry (no import-time registration).

Output: a readable table by default, ``--json`` for machines (with the machine's CPU,
core count and library versions). Exit codes: 0 ok, 2 usage, 3 :class:`BundleError`,
4 :class:`BudgetError`, 5 :class:`ExportError`, 1 anything else; no traceback unless
``--debug``.

This module never imports torch at import time: host-only commands (``export``) import
:mod:`edgecl.export` inside their function.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecl.errors import BudgetError, BundleError, ExportError

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
    "machine_info",
    "main",
    "parse_bytes",
]

EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_BUNDLE = 3
EXIT_BUDGET = 4
EXIT_EXPORT = 5


class UsageError(ValueError):
    """Arguments that parse but do not make sense together (exit code 2)."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, a one-line help, how to add its arguments, and what runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    #: the command adds its own ``--json`` (``edgecl demo``: ``--json [FILE]``)
    own_json: bool = False


# -- shared helpers ----------------------------------------------------------------------

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "k": 1024,
    "m": 1024**2,
}


def parse_bytes(text: str) -> int:
    """``"64KiB"`` -> 65536, ``"8kb"`` -> 8000, ``"5000"`` -> 5000 (a positive size)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if not m or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"expected a size like 64KiB, 8kB or 5000, got {text!r}")
    value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return value


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, core count and library versions (from package metadata: nothing heavy
    is imported, torch never)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("edgecl", "numpy", "numba", "onnxruntime", "onnx", "torch"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _emit_json(payload: dict[str, Any]) -> None:
    out = dict(payload)
    out["machine"] = machine_info()
    json.dump(out, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def _status(args: argparse.Namespace, message: str) -> None:
    """Progress lines go to stderr so stdout stays clean for --json."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


# -- edgecl export -----------------------------------------------------------------------


def _add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="a checkpoint saved by edgecl.train")
    p.add_argument("-o", "--output", type=Path, required=True, help="the bundle to write (.ecl)")
    p.add_argument("--onnx", type=Path, help="also write the forward graph (ONNX) here")
    p.add_argument(
        "--memory",
        choices=("gbm", "latent", "none"),
        default="gbm",
        help="class memory fitted on the base classes (default gbm)",
    )
    p.add_argument("--components", type=int, help="GBM prototypes per class K (default 8)")
    p.add_argument("--bits", type=int, help="GBM bits per prototype value q (default 8)")
    p.add_argument("--per-class", type=int, help="latent buffer exemplars per class E")
    p.add_argument("--budget", type=parse_bytes, help="memory budget, e.g. 64KiB")
    p.add_argument("--policy", choices=("strict", "adapt"), default="strict")
    p.add_argument(
        "--head-bits",
        type=int,
        choices=(32, 16, 8),
        default=32,
        help="stored precision of the head's weights: 32 (default), 16, or 8 (int8 + a scale)",
    )
    p.add_argument(
        "--gbm-weight",
        type=float,
        default=0.0,
        help="predictions add this times the GBM log-likelihood's log-softmax (default 0)",
    )
    p.add_argument(
        "--calibration-data",
        type=Path,
        help="a folder of IDX files (the four standard names); default: the shipped MNIST sample",
    )
    p.add_argument(
        "--calibration-samples",
        type=int,
        default=2000,
        help="calibration samples of the base classes used (default 2000)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-verify", action="store_true", help="skip the torch/device comparison")
    p.add_argument(
        "--allow-differing-samples",
        type=int,
        default=0,
        metavar="N",
        help="verification passes with up to N samples whose embedding bits differ from "
        "torch's (float near-ties at a threshold; default 0)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _memory_config(args: argparse.Namespace) -> Any:
    gbm_opts = args.components is not None or args.bits is not None
    if args.memory != "gbm" and gbm_opts:
        raise UsageError("--components/--bits go with --memory gbm")
    if args.memory != "latent" and args.per_class is not None:
        raise UsageError("--per-class goes with --memory latent")
    if args.memory == "none":
        if args.budget is not None:
            raise UsageError("--budget needs a class memory (--memory gbm or latent)")
        return None
    from edgecl.memory import GBMConfig, LatentBufferConfig

    try:
        if args.memory == "gbm":
            return GBMConfig(
                components=8 if args.components is None else args.components,
                bits=8 if args.bits is None else args.bits,
            )
        return LatentBufferConfig(per_class=20 if args.per_class is None else args.per_class)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


def _calibration(args: argparse.Namespace, class_names: Sequence[str]):
    import numpy as np

    from edgecl.data import load_idx_dataset, load_mnist_sample

    if args.calibration_data is not None:
        x, y, _, _ = load_idx_dataset(args.calibration_data)
        source = str(args.calibration_data)
    else:
        x, y, _, _ = load_mnist_sample()
        source = "the shipped MNIST sample"
    row = {name: i for i, name in enumerate(class_names)}
    rows = np.array([row.get(str(int(label)), -1) for label in y], np.int64)
    keep = np.flatnonzero(rows >= 0)
    if keep.size == 0:
        raise UsageError(
            f"expected samples of the checkpoint's classes {list(class_names)} in {source}, "
            "got none"
        )
    if args.calibration_samples < 1:
        raise UsageError(f"expected --calibration-samples >= 1, got {args.calibration_samples}")
    keep = keep[: args.calibration_samples]
    return x[keep], rows[keep], source


def cmd_export(args: argparse.Namespace) -> int:
    """``edgecl export CHECKPOINT -o model.ecl``: checkpoint -> device bundle (+ ONNX)."""
    memory = _memory_config(args)
    for out in (args.output, args.onnx):
        if out is not None and out.exists() and not args.overwrite:
            raise UsageError(f"{out} exists; pass --overwrite to replace it")
    _status(args, f"loading {args.checkpoint}")
    from edgecl.export import ExportConfig, export_bundle
    from edgecl.train import load_checkpoint

    model, meta = load_checkpoint(args.checkpoint)
    names = [str(c) for c in meta["class_names"]]
    x, y, source = _calibration(args, names)
    budget = None
    if args.budget is not None:
        from edgecl.memory import Budget

        budget = Budget(args.budget, args.policy)
    from edgecl.export import HeadConfig

    try:
        config = ExportConfig(
            memory=memory,
            budget=budget,
            head=HeadConfig(bits=args.head_bits, gbm_weight=args.gbm_weight),
            seed=args.seed,
            allow_differing_samples=args.allow_differing_samples,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    _status(args, f"exporting with {len(x)} calibration samples from {source}")
    info = export_bundle(
        model,
        args.output,
        config,
        calibration=(x, y),
        class_names=names,
        verify=not args.no_verify,
        overwrite=args.overwrite,
    )
    onnx_path = None
    if args.onnx is not None:
        from edgecl.export.onnx_forward import export_onnx

        onnx_path = export_onnx(args.output, args.onnx, overwrite=args.overwrite)
    from edgecl.bundle import inspect_bundle

    report = inspect_bundle(info.path)
    if args.json:
        _emit_json(
            {
                "command": "export",
                "bundle": report.to_dict(),
                "onnx": None if onnx_path is None else str(onnx_path),
                "calibration": {"source": source, "samples": int(len(x))},
            }
        )
    else:
        print(report)
        if onnx_path is not None:
            print(f"onnx         {onnx_path} ({onnx_path.stat().st_size} bytes)")
    return EXIT_OK


# -- edgecl info -------------------------------------------------------------------------


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")


def cmd_info(args: argparse.Namespace) -> int:
    """``edgecl info model.ecl``: manifest, classes, layers, bytes per part, headroom."""
    from edgecl.bundle import inspect_bundle

    report = inspect_bundle(args.bundle)
    if args.json:
        _emit_json({"command": "info", "bundle": report.to_dict()})
    else:
        print(report)
    return EXIT_OK


# -- the parser ----------------------------------------------------------------------------


def commands() -> list[Command]:
    """Every subcommand, in the order ``edgecl --help`` lists them."""
    return [
        Command("export", "checkpoint -> device bundle (and ONNX graph)", _add_export, cmd_export),
        Command("info", "what a bundle holds: classes, layers, bytes, budget", _add_info, cmd_info),
        *_device_commands(),
    ]


def _device_commands() -> list[Command]:
    """learn, predict, bench, demo, train (edgecl.cli_device; imported here, not at the top,
    since it imports this module)."""
    from edgecl.cli_device import device_commands

    return device_commands()


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
    parser = argparse.ArgumentParser(
        prog="edgecl",
        description="Binarized networks that keep learning new classes on the device.",
    )
    from edgecl import __version__

    parser.add_argument("--version", action="version", version=f"edgecl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, BundleError):
        return EXIT_BUNDLE
    if isinstance(exc, BudgetError):
        return EXIT_BUDGET
    if isinstance(exc, ExportError):
        return EXIT_EXPORT
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    return EXIT_OTHER


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``edgecl`` command; returns the exit code."""
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
        print(f"edgecl {args.command}: {kind}: {exc}", file=sys.stderr)
        return _exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
