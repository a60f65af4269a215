"""``edgecl train``: host, torch: F+G on a data set's base classes -> a checkpoint
(:func:`edgecl.train.recipes.train_base`, the recipe the demo uses)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgecl.cli._common import (
    BASE_TASK_CHOICES,
    EXIT_OK,
    UsageError,
    add_hidden_alias,
    add_seed,
    add_threads,
    check_targets,
    emit_json,
    positive_int,
    require_extras,
)

__all__ = ["add_train", "cmd_train", "parse_classes"]

BASE_TASK_HELP = (
    "F's base task: rotflipae (default: rotation x flip, 8 outputs per class, shifts, an "
    "autoencoder loss), rotation (4 outputs per class) or plain"
)
DATA_SET_HELP = (
    "an IDX data set folder with the four standard file names (MNIST, Fashion-MNIST, "
    "KMNIST); default: the shipped MNIST sample"
)


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="the checkpoint to write (.pt)")
    p.add_argument("--data", dest="data_dir", type=Path, help=DATA_SET_HELP)
    add_hidden_alias(p, "--data-dir", "data_dir", type=Path)
    p.add_argument("--classes", default="0-4", help="base classes, e.g. 0-4 or 0,1,2 (default 0-4)")
    p.add_argument(
        "--base-task", choices=BASE_TASK_CHOICES, default="rotflipae", help=BASE_TASK_HELP
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        help="base training epochs (rotflipae: 4; rotation, plain: 3 on the sample, 1 on a "
        "full data set)",
    )
    p.add_argument("--n-bits", type=positive_int, default=512, help="embedding bits D (512)")
    add_seed(p, "seed of the initialisation and the batches")
    add_threads(p, "torch threads")
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")


def parse_classes(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,5"`` -> [0, 2, 5] (distinct ints)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                a, b = part.split("-")
                out += list(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError as exc:
        raise UsageError(f"expected classes like 0-4 or 0,1,2, got {text!r}") from exc
    if not out or len(set(out)) != len(out):
        raise UsageError(f"expected distinct classes like 0-4 or 0,1,2, got {text!r}")
    return out


def cmd_train(args: argparse.Namespace) -> int:
    """``edgecl train -o base.pt``: F+G on a data set's base classes -> checkpoint."""
    require_extras("train", ["torch"])
    classes = parse_classes(args.classes)
    check_targets([args.output], args.overwrite)
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise UsageError(f"expected --data as an IDX data set folder, got {args.data_dir}")
    from edgecl.demo import load_demo_data
    from edgecl.train.recipes import BaseTrainConfig, train_base

    try:
        cfg = BaseTrainConfig(
            base_task=args.base_task,
            epochs=args.epochs,
            n_bits=args.n_bits,
            threads=args.threads,
            seed=args.seed,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    xtr, ytr, xte, yte, name = load_demo_data(args.data_dir, seed=cfg.seed)
    log = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    _, result = train_base(
        cfg,
        (xtr, ytr, xte, yte),
        args.output,
        classes=classes,
        log=log,
        progress=not (args.quiet or args.json),
    )
    if args.json:
        emit_json({"command": "train", "dataset": name, **result})
    else:
        print(f"checkpoint   {result['checkpoint']}")
        print(
            f"classes      {result['classes']} ({result['base_task']} base task, "
            f"{result['epochs']} epochs, D={cfg.n_bits})"
        )
        print(f"accuracy     {result['base_accuracy']:.4f} on the test images of these classes")
        print(f"time         {result['train_s']:.0f} s")
    return EXIT_OK
