"""``edgecl export-c BUNDLE -o DIR``: a device bundle -> a C99 project that predicts and
learns on a microcontroller (:func:`edgecl.codegen.c.export_c`). Torch-free."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgecl.cli._common import EXIT_OK, emit_json, status

__all__ = ["add_export_c", "cmd_export_c"]


def add_export_c(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")
    p.add_argument("-o", "--out", type=Path, required=True, help="the folder to write")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")


def cmd_export_c(args: argparse.Namespace) -> int:
    """Write edgecl.h, edgecl.c, edgecl_model.c, a Makefile, board support and a README."""
    from edgecl.codegen.c import export_c

    status(args, f"exporting {args.bundle} to C in {args.out}")
    report = export_c(args.bundle, args.out, overwrite=args.overwrite)
    if args.json:
        emit_json({"command": "export-c", **report.to_dict()})
    else:
        print(report)
        print(f"build: make -C {args.out} host MAIN=app.c OUT=app (see {args.out}/README.md)")
    return EXIT_OK
