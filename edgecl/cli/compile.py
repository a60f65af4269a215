"""``edgecl compile``: compile edgecl's kernels for this CPU once, ahead of time (Numba
caches them on disk, ``NUMBA_CACHE_DIR``), so that no later command waits for it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgecl.cli._common import EXIT_OK, add_threads, compile_notice, emit_json, status

__all__ = ["COMPILE_BUNDLE", "add_compile", "cmd_compile"]

#: The bundle compiled by default: the demo's network (edgecl.train.mnist_bnn, a float first
#: conv, binary convs and dense, an int8 head, GBM class memory), at the demo's sizes.
COMPILE_BUNDLE = "compile.ecl"


def add_compile(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "bundles",
        type=Path,
        nargs="*",
        metavar="BUNDLE",
        help="bundles whose kernels to compile (default: a shipped bundle of the demo's "
        "network, which uses the kernels of every bundle edgecl demo and edgecl export of "
        "edgecl.train.mnist_bnn write)",
    )
    add_threads(p)


def cmd_compile(args: argparse.Namespace) -> int:
    """``edgecl compile [BUNDLE ...]``: load each bundle, run predict, learn_class and
    update_class on a few samples (nothing is saved), a line per kernel group."""
    import os

    from edgecl.bench import warm_up
    from edgecl.data import sample_dir
    from edgecl.device import Runtime

    bundles = list(args.bundles) or [sample_dir() / COMPILE_BUNDLE]
    compiled = compile_notice(args)
    out = []
    for path in bundles:
        status(args, f"compiling the kernels of {path}")
        t0 = time.perf_counter()
        rt = Runtime.load(path, threads=args.threads)
        seconds = {"load": time.perf_counter() - t0}
        status(args, f"  load: {seconds['load']:.1f} s")
        seconds.update(warm_up(rt, log=lambda line: status(args, line)))
        out.append({"bundle": str(path), "seconds": seconds})
    compiled()
    cache = os.environ.get("NUMBA_CACHE_DIR") or "next to edgecl's modules (__pycache__)"
    if args.json:
        emit_json({"command": "compile", "bundles": out, "cache": cache})
    else:
        total = sum(sum(b["seconds"].values()) for b in out)
        print(f"compiled in {total:.1f} s; Numba's cache: {cache}")
    return EXIT_OK
