"""``edgecl train``: host, torch: F+G on a data set's base classes -> a checkpoint
(:func:`edgecl.train.recipes.train_base`, the recipe the demo uses)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edgecl.cli._common import (
    BASE_TASK_CHOICES,
    EXIT_OK,
    UsageError,
    add_hidden_alias,
    add_seed,
    add_threads,
    check_data_set_path,
    check_targets,
    emit_json,
    positive_int,
    require_extras,
)

__all__ = [
    "add_data_arguments",
    "add_train",
    "base_train_config",
    "cmd_train",
    "image_size",
    "int_list",
    "load_data_set",
]

#: The backbones of ``--backbone`` (:data:`edgecl.train.backbones.BACKBONE_CHOICES`,
#: restated so that building the parser imports no torch; a test checks they agree).
BACKBONE_CHOICES = ("auto", "mnist_bnn", "vgg_small", "mlp")

BASE_TASK_HELP = (
    "F's base task: rotflipae (default: random rotations and, with --no-flips, mirror "
    "images as pretext labels, random shifts, an autoencoder loss), rotation (the "
    "rotations as labels) or plain"
)
DATA_SET_HELP = (
    "the data set: an IDX folder (MNIST, Fashion-MNIST, KMNIST: the four standard file "
    "names, or only the t10k pair, split 80/20), a CIFAR-10/100 python-batches folder, an "
    "image folder with one sub-folder per class (PNG/JPEG/BMP, grayscale or RGB; needs "
    "Pillow), or an .npz with x (n, H, W[, C]) uint8 and y; default: the shipped MNIST sample"
)
IMAGE_SIZE_HELP = (
    "HxW, e.g. 32x32 or 12x20: resize every image (default: an image folder's first image's "
    "size, the arrays' own size otherwise)"
)
BACKBONE_HELP = (
    "F's network: auto (default: mlp for a side under 8 pixels, vgg_small for 3 channels "
    "and sides of 32 or more, mnist_bnn otherwise), mnist_bnn, vgg_small or mlp; the conv "
    "backbones place their 2x2 pools to fit the input"
)
FLIPS_HELP = (
    "whether a horizontal flip keeps the class: --flips for objects (flipped copies train "
    "with their label), --no-flips for digits and text (rotflipae uses the flip as a pretext "
    "label, nothing gives a flipped image its class); default: on for 3-channel (RGB) data, "
    "off for 1-channel (grayscale) data such as MNIST"
)


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """``--data``, ``--image-size`` and the network flags of ``train`` and ``demo``."""
    p.add_argument("--data", dest="data_dir", type=Path, metavar="PATH", help=DATA_SET_HELP)
    add_hidden_alias(p, "--data-dir", "data_dir", type=Path)
    p.add_argument("--image-size", type=image_size, metavar="HxW", help=IMAGE_SIZE_HELP)
    p.add_argument(
        "--backbone", choices=BACKBONE_CHOICES, default="auto", metavar="NAME", help=BACKBONE_HELP
    )
    p.add_argument(
        "--channels",
        type=int_list,
        metavar="C1,C2,...",
        help="the conv channels of F (mlp: hidden sizes); default: the backbone's",
    )
    p.add_argument(
        "--pools",
        type=int,
        metavar="N",
        help="2x2 max-pools in F (default: fit the input, about 4 pixels a side at the end)",
    )
    p.add_argument("--flips", action=argparse.BooleanOptionalAction, default=None, help=FLIPS_HELP)


def image_size(text: str) -> tuple[int, int]:
    """``--image-size HxW`` (argparse type)."""
    from edgecl.data import parse_image_size

    try:
        return parse_image_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def int_list(text: str) -> tuple[int, ...]:
    """``"8,16,32"`` -> (8, 16, 32), positive ints (argparse type)."""
    try:
        out = tuple(int(v) for v in text.split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected positive ints like 8,16,32, got {text!r}")
    return out


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, required=True, help="the checkpoint to write (.pt)")
    add_data_arguments(p)
    p.add_argument(
        "--base-classes",
        dest="classes",
        metavar="CLASSES",
        help="the classes to train on, by name or index: 0-4, 0,2,5 or cat,dog (default: "
        "the first half of the data set's classes, 0-4 of ten)",
    )
    add_hidden_alias(p, "--classes", "classes")
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
    add_seed(p, "seed of the initialisation, the batches and a data set's 80/20 split")
    add_threads(p, "torch threads")
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")


def load_data_set(args: argparse.Namespace, *, quick: bool = False):
    """The :class:`edgecl.data.Dataset` that ``--data``/``--image-size`` name (a missing
    path is a usage error; a file of the wrong form a ``DataFormatError``, exit 2 too)."""
    from edgecl.data import load_dataset

    check_data_set_path(args.data_dir)
    ds = load_dataset(args.data_dir, image_size=args.image_size, seed=args.seed)
    return ds.take(40, 20, seed=args.seed) if quick else ds


def base_train_config(args: argparse.Namespace, shape: tuple[int, int, int], **kw: Any):
    """The :class:`edgecl.train.recipes.BaseTrainConfig` of the flags, checked against the
    input ``shape`` before any work (a combination that cannot work: exit 2)."""
    from edgecl.train.recipes import BaseTrainConfig

    try:
        cfg = BaseTrainConfig(
            base_task=args.base_task,
            epochs=args.epochs,
            n_bits=args.n_bits,
            threads=args.threads,
            seed=args.seed,
            backbone=args.backbone,
            channels=args.channels,
            pools=args.pools,
            flips=args.flips,
            **kw,
        )
        cfg.check(shape)
    except (TypeError, ValueError) as exc:
        h, w, c = shape
        raise UsageError(f"for {h}x{w}x{c} inputs: {exc}") from exc
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    """``edgecl train -o base.pt``: F+G on a data set's base classes -> checkpoint."""
    require_extras("train", ["torch"])
    check_targets([args.output], args.overwrite)
    from edgecl.data import resolve_classes, split_classes
    from edgecl.train.recipes import train_base

    ds = load_data_set(args)
    try:
        if args.classes is None:
            classes = split_classes(ds.class_names)[0]
        else:
            classes = resolve_classes(args.classes, ds.class_names)
    except ValueError as exc:
        raise UsageError(f"--base-classes: {exc}") from exc
    cfg = base_train_config(args, ds.image_shape)
    log = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    _, result = train_base(
        cfg,
        ds.arrays(),
        args.output,
        classes=classes,
        class_names=ds.class_names,
        log=log,
        progress=not (args.quiet or args.json),
    )
    if args.json:
        emit_json({"command": "train", "dataset": ds.source, **result})
    else:
        h, w, c = result["input_shape"]
        print(f"checkpoint   {result['checkpoint']}")
        print(
            f"classes      {result['class_names']} ({result['base_task']} base task, "
            f"{result['epochs']} epochs, D={cfg.n_bits})"
        )
        print(
            f"network      {result['backbone']} for {h}x{w}x{c} inputs, flips "
            f"{'keep the class' if result['flips'] else 'are other images'}"
        )
        print(f"accuracy     {result['base_accuracy']:.4f} on the test images of these classes")
        print(f"time         {result['train_s']:.0f} s")
    return EXIT_OK
