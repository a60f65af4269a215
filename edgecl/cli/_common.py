"""What every ``edgecl`` subcommand shares: exit codes, the usage error, the
:class:`Command` entry, the flag vocabulary (``-o/--output``, ``--data``, ``--threads``,
``--seed``, sizes), JSON output, progress on stderr, the extras check, the overwrite rule,
the samples reader and Numba's cache.

Nothing here imports torch or Numba at import time.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "BASE_TASK_CHOICES",
    "DATA_HELP",
    "EXIT_BUDGET",
    "EXIT_BUNDLE",
    "EXIT_EXPORT",
    "EXIT_OK",
    "EXIT_OTHER",
    "EXIT_USAGE",
    "SIZE_HELP",
    "Command",
    "UsageError",
    "add_class_memory_arguments",
    "add_hidden_alias",
    "add_seed",
    "add_threads",
    "check_data_set_path",
    "check_targets",
    "class_memory_options",
    "compile_notice",
    "emit_json",
    "load_samples",
    "parse_bytes",
    "positive_int",
    "progress",
    "require_extras",
    "set_numba_cache_dir",
    "status",
]

EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_BUNDLE = 3
EXIT_BUDGET = 4
EXIT_EXPORT = 5

#: The base tasks of ``edgecl train``/``demo`` (:data:`edgecl.train.recipes.BASE_TASKS`,
#: restated so that building the parser imports no torch; a test checks they agree).
BASE_TASK_CHOICES = ("rotflipae", "rotation", "plain")


class UsageError(ValueError):
    """Arguments that parse but do not make sense together (exit code 2)."""

    exit_code: ClassVar[int] = EXIT_USAGE


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, a one-line help, how to add its arguments, and what runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    #: the command adds its own ``--json`` (``edgecl demo``: ``--json [FILE]``)
    own_json: bool = False


# -- the flag vocabulary -------------------------------------------------------------------

SIZE_HELP = (
    "sizes in bytes: a plain integer (5000), IEC units KiB/MiB/GiB (x1024^n) or SI units "
    "kB/MB/GB (x1000^n); a bare k/M/G is refused as ambiguous"
)
DATA_HELP = (
    "samples: an .npy array (n, H, W) or (n, H, W, C) of uint8 or float 0..255, an IDX "
    "images file (e.g. t10k-images-idx3-ubyte[.gz]), or a folder of images (the images in "
    "that folder only; needs Pillow)"
)

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_AMBIGUOUS = {"k": ("KiB", "kB", 1024, 1000), "m": ("MiB", "MB", 1024**2, 1000**2)}
_AMBIGUOUS["g"] = ("GiB", "GB", 1024**3, 1000**3)


def parse_bytes(text: str) -> int:
    """A positive size in bytes: ``"5000"`` -> 5000, ``"64KiB"`` -> 65536 (IEC, 1024^n),
    ``"8kB"`` -> 8000 (SI, 1000^n); a bare ``k``/``M``/``G`` is refused, naming both."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m and unit in _AMBIGUOUS:
        iec, si, a, b = _AMBIGUOUS[unit]
        n = m.group(1)
        raise argparse.ArgumentTypeError(
            f"{text!r} is ambiguous: write {n}{iec} ({float(n) * a:.0f} bytes) or {n}{si} "
            f"({float(n) * b:.0f} bytes)"
        )
    if not m or unit not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(
            f"expected a size like 5000, 64KiB or 8kB, got {text!r} ({SIZE_HELP})"
        )
    value = float(m.group(1)) * _SIZE_UNITS[unit]
    if value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return int(value)


def positive_int(text: str) -> int:
    """An int >= 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return value


def add_threads(p: argparse.ArgumentParser, what: str = "kernel threads") -> None:
    """``--threads N`` (default 1)."""
    p.add_argument(
        "--threads", type=positive_int, default=1, metavar="N", help=f"{what} (default 1)"
    )


def add_seed(p: argparse.ArgumentParser, what: str) -> None:
    """``--seed S`` (default 0)."""
    p.add_argument("--seed", type=int, default=0, metavar="S", help=f"{what} (default 0)")


def add_hidden_alias(p: argparse.ArgumentParser, flag: str, dest: str, **kw: Any) -> None:
    """An old spelling kept for one release, hidden from ``--help``."""
    p.add_argument(flag, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kw)


def add_class_memory_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of the class memory, the budget and the head that a new bundle is written
    with (``edgecl export``, ``edgecl import-larq``); read by :func:`class_memory_options`."""
    p.add_argument(
        "--memory",
        choices=("gbm", "latent", "none"),
        default="gbm",
        help="class memory fitted on the base classes (default gbm)",
    )
    p.add_argument("--components", type=int, help="GBM prototypes per class K (default 8)")
    p.add_argument("--bits", type=int, help="GBM bits per prototype value q (default 8)")
    p.add_argument("--per-class", type=int, help="latent buffer exemplars per class E")
    p.add_argument(
        "--budget",
        type=parse_bytes,
        help=f"budget of stored bytes (class memory + head), e.g. 64KiB; {SIZE_HELP}",
    )
    p.add_argument(
        "--policy",
        choices=("strict", "adapt"),
        default="strict",
        help="when a class does not fit the budget: strict refuses (BudgetError), adapt "
        "shrinks the class memory (default strict)",
    )
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


def class_memory_options(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """``(memory, budget, head)`` from the flags of :func:`add_class_memory_arguments`: a
    ``GBMConfig``, ``LatentBufferConfig`` or None; a ``Budget`` or None; a ``HeadSpec``.
    Flags that do not go together, or values the configs refuse, are a :class:`UsageError`."""
    gbm_opts = args.components is not None or args.bits is not None
    if args.memory != "gbm" and gbm_opts:
        raise UsageError("--components/--bits go with --memory gbm")
    if args.memory != "latent" and args.per_class is not None:
        raise UsageError("--per-class goes with --memory latent")
    if args.memory == "none" and args.budget is not None:
        raise UsageError("--budget needs a class memory (--memory gbm or latent)")
    from edgecl.bundle import HeadSpec
    from edgecl.memory import Budget, GBMConfig, LatentBufferConfig

    try:
        if args.memory == "gbm":
            memory: Any = GBMConfig(
                components=8 if args.components is None else args.components,
                bits=8 if args.bits is None else args.bits,
            )
        elif args.memory == "latent":
            memory = LatentBufferConfig(per_class=20 if args.per_class is None else args.per_class)
        else:
            memory = None
        budget = None if args.budget is None else Budget(args.budget, args.policy)
        head = HeadSpec(bits=args.head_bits, gbm_weight=args.gbm_weight)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    return memory, budget, head


# -- output --------------------------------------------------------------------------------


def emit_json(payload: dict[str, Any]) -> None:
    """``payload`` with the machine's description, as JSON on stdout."""
    from edgecl.machine import machine_info

    out = dict(payload)
    out["machine"] = machine_info()
    json.dump(out, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def status(args: argparse.Namespace, message: str) -> None:
    """Progress lines go to stderr so stdout stays clean for --json."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def progress(args: argparse.Namespace, desc: str):
    """``(update, close)``: a tqdm bar on stderr fed by the learner's ``(step, total)``
    callback; ``update`` is None when quiet or printing JSON."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="step", file=sys.stderr, leave=False)

    def update(step: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = step
        bar.refresh() if step % 50 == 0 or step == total else None

    return update, bar.close


# -- checks before any work ------------------------------------------------------------------


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook refusing it, or a broken install
        return False


def require_extras(command: str, modules: Iterable[str], extra: str = "train") -> None:
    """Refuse (exit 2) before any work when an extra's modules are not installed."""
    missing = [m for m in modules if not _importable(m)]
    if missing:
        raise UsageError(
            f"`edgecl {command}` needs {', '.join(missing)}, which is not installed: "
            f"pip install 'edgecl[{extra}]'"
        )


def check_targets(
    paths: Iterable[Path | None], overwrite: bool, *, parents_made: bool = False
) -> None:
    """The one overwrite rule: a new path is fine; replacing an existing file needs
    ``--overwrite``; a folder is never replaced by a file. The folder each file goes in
    must exist, unless the command makes it (``parents_made``)."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            raise UsageError(f"{path} is a folder; expected a file path to write")
        if path.exists() and not overwrite:
            raise UsageError(f"{path} exists; pass --overwrite to replace it")
        if not parents_made and not path.parent.is_dir():
            raise UsageError(f"{path.parent} is not a folder; expected one to write {path.name}")


def check_data_set_path(path: Path | None, flag: str = "--data") -> None:
    """A labelled data set's path (``train``, ``demo``, ``export``) before any work: it
    exists, and a file is an ``.npz`` (a folder's form is told when it is read)."""
    if path is None:
        return
    if not path.exists():
        raise UsageError(f"expected {flag} as a data set folder or .npz file, got {path}")
    if path.is_file() and path.suffix.lower() != ".npz":
        raise UsageError(
            f"expected {flag} as a data set folder or an .npz file (x, y), got the file "
            f"{path} (samples without labels go to predict and learn)"
        )


# -- samples ---------------------------------------------------------------------------------


def load_samples(
    path: str | Path,
    *,
    class_folders: bool = False,
    shape: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, labels)``: raw samples from an ``.npy`` file, an IDX images file or a folder
    of images (that folder's images only); with ``class_folders`` the folder holds one
    sub-folder of images per class and ``labels`` are the sub-folder names (else None).
    Images of a folder are read as grayscale or RGB and at the size of ``shape`` (the
    bundle's ``(H, W, C)``) when given, else in the first image's mode at their own size."""
    p = Path(path)
    if p.is_dir():
        from edgecl.data import first_image_mode, load_image_files, load_image_folder

        if shape is None:
            mode = first_image_mode(p, class_folders=class_folders)
        else:
            mode = "RGB" if shape[2] == 3 else "L"
        size = None if shape is None else (int(shape[1]), int(shape[0]))  # (W, H)
        if class_folders:
            x, y, names = load_image_folder(p, mode=mode, size=size)
            return x, np.asarray(names, dtype=str)[y]
        return load_image_files(p, mode=mode, size=size), None
    if class_folders:
        raise UsageError(f"--labels-from-folders expects a folder, got {p}")
    if not p.is_file():
        raise UsageError(f"expected samples at {p} (.npy, IDX file or folder), got none")
    if p.suffix == ".npy":
        from edgecl.data import DataFormatError

        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataFormatError(f"{p}: expected an .npy array, got {exc}") from exc
        if not isinstance(arr, np.ndarray):
            raise DataFormatError(f"{p}: expected one array, got {type(arr).__name__}")
        return arr, None
    from edgecl.data import read_idx

    return read_idx(p), None


# -- Numba's cache and the first compile -----------------------------------------------------


def set_numba_cache_dir() -> None:
    """Point Numba's cache at ``~/.cache/edgecl/numba`` (``$XDG_CACHE_HOME`` honoured) unless
    ``NUMBA_CACHE_DIR`` is set: a read-only install still caches its compiled kernels. Done
    by the ``edgecl`` command only, before Numba is imported (never at ``import edgecl``)."""
    if "NUMBA_CACHE_DIR" in os.environ or "numba" in sys.modules:
        return
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    os.environ["NUMBA_CACHE_DIR"] = str(base / "edgecl" / "numba")


def _compiled_marker() -> Path | None:
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if not cache:
        return None
    from edgecl import __version__
    from edgecl.machine import cpu_model

    try:
        numba_version = importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        numba_version = "?"
    cpu = hashlib.sha1(cpu_model().encode()).hexdigest()[:10]
    return Path(cache) / f"edgecl-{__version__}-numba-{numba_version}-{cpu}.compiled"


def compile_notice(args: argparse.Namespace) -> Callable[[], None]:
    """Say once, before the first compile of edgecl's kernels on this CPU, that it is
    happening (stderr); returns what to call when the command has run its kernels (it
    records that the cache now holds them)."""
    marker = _compiled_marker()
    if marker is None or marker.exists():
        return lambda: None
    status(
        args,
        "compiling edgecl's kernels for this CPU, once: ~20 s (cached in "
        f"{marker.parent}; `edgecl compile` does it ahead of time)",
    )

    def done() -> None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass  # an unwritable cache: the notice shows again next time, nothing worse

    return done
