"""``edgecl import-larq MODEL.h5|MODEL.keras -o base.ecl --data PATH``: a Larq / Keras
model -> device bundle, without TensorFlow (h5py only; :func:`edgecl.larq.import_larq`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgecl.cli._common import (
    EXIT_OK,
    UsageError,
    add_class_memory_arguments,
    add_seed,
    add_threads,
    check_targets,
    class_memory_options,
    compile_notice,
    emit_json,
    require_extras,
    status,
)

__all__ = ["add_import_larq", "cmd_import_larq", "load_labelled"]


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def add_import_larq(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="a Keras model file saved from Larq (.h5 or .keras)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the bundle to write (.ecl)")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="labelled samples of the model's classes: an .npz with x (n, H, W[, C]) and y, "
        "an IDX data set folder, a CIFAR-10/100 python-batches folder, or an image folder "
        "with one sub-folder per class",
    )
    p.add_argument(
        "--class-names",
        help="the head's classes in output order, comma-separated (default 0,1,...,n-1); "
        "samples of other labels are ignored",
    )
    p.add_argument(
        "--embedding-layer",
        metavar="NAME",
        help="the layer whose output bits are the embedding (default: the last conv or "
        "dense layer before the head)",
    )
    p.add_argument(
        "--input-scale", type=float, default=1.0, metavar="S", help="model input = (x*S - M)/STD"
    )
    p.add_argument("--mean", type=_floats, default=[0.0], metavar="M", help="per channel, a,b,c")
    p.add_argument("--std", type=_floats, default=[1.0], metavar="STD", help="per channel")
    add_class_memory_arguments(p)
    p.add_argument(
        "--samples",
        type=int,
        default=2000,
        help="samples of the model's classes used (default 2000)",
    )
    add_seed(p, "seed of the class memory's fit")
    add_threads(p)
    p.add_argument("--no-verify", action="store_true", help="skip the comparison with the model")
    p.add_argument(
        "--allow-differing-samples",
        type=int,
        default=0,
        metavar="N",
        help="verification passes with up to N samples whose bits differ (default 0)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle")


def load_labelled(path: Path, shape: tuple[int, ...]) -> tuple[Any, Any, str]:
    """``(x, labels, what)`` from ``--data``: an ``.npz`` (x, y), an IDX data set folder
    (its training part), CIFAR python batches, or an image folder (read at the model's
    input size and channels ``shape``)."""
    import numpy as np

    from edgecl.data import DataFormatError

    if path.is_file():
        if path.suffix != ".npz":
            raise UsageError(
                f"expected --data as an .npz file with x and y, or a folder, got {path}"
            )
        try:
            with np.load(path, allow_pickle=False) as f:
                if "x" not in f or "y" not in f:
                    raise DataFormatError(f"{path}: expected arrays x and y, got {sorted(f.files)}")
                return f["x"], f["y"], str(path)
        except (ValueError, OSError) as exc:
            raise DataFormatError(f"{path}: expected an .npz with x and y, got {exc}") from exc
    if not path.is_dir():
        raise UsageError(f"expected --data at {path} (.npz or a folder), got none")
    names = {p.name for p in path.iterdir()}
    if any(n.startswith("train-images") for n in names):
        from edgecl.data import load_idx_dataset

        x, y, _, _ = load_idx_dataset(path)
        return x, y, f"{path} (IDX, training part)"
    cifar = path / "cifar-10-batches-py" if "cifar-10-batches-py" in names else path
    if (cifar / "data_batch_1").is_file():
        from edgecl.data import load_cifar10

        x, y, _, _ = load_cifar10(path)
        return x, y, f"{path} (CIFAR-10, training part)"
    if "cifar-100-python" in names or {"train", "meta"} <= names:
        from edgecl.data import load_cifar100

        x, y, _, _ = load_cifar100(path)
        return x, y, f"{path} (CIFAR-100, training part)"
    from edgecl.data import load_image_folder

    mode = "RGB" if shape[2] == 3 else "L"
    x, y, classes = load_image_folder(path, mode=mode, size=(shape[1], shape[0]))
    return x, np.asarray(classes, dtype=str)[y], f"{path} (image folder)"


def cmd_import_larq(args: argparse.Namespace) -> int:
    """Import the model, fit the base classes' memories, verify, write the bundle."""
    require_extras("import-larq", ["h5py"], extra="larq")
    if args.samples < 1:
        raise UsageError(f"expected --samples >= 1, got {args.samples}")
    check_targets([args.output], args.overwrite)
    memory, budget, head = class_memory_options(args)
    from edgecl.larq import import_larq, read_keras_model

    shape = read_keras_model(args.model).input_shape
    x, labels, source = load_labelled(args.data, shape)
    names = None if args.class_names is None else [c.strip() for c in args.class_names.split(",")]
    status(args, f"importing {args.model} with samples from {source}")
    compiled = compile_notice(args)
    try:
        info = import_larq(
            args.model,
            args.output,
            calibration=(x, labels),
            class_names=names,
            max_samples=args.samples,
            embedding_layer=args.embedding_layer,
            input_scale=args.input_scale,
            mean=args.mean,
            std=args.std,
            memory=memory,
            budget=budget,
            head=head,
            seed=args.seed,
            verify=not args.no_verify,
            allow_differing_samples=args.allow_differing_samples,
            threads=args.threads,
            overwrite=args.overwrite,
        )
    except (TypeError, ValueError) as exc:
        from edgecl.errors import EdgeclError

        if isinstance(exc, EdgeclError):
            raise
        raise UsageError(str(exc)) from exc
    compiled()
    from edgecl.bundle import inspect_bundle

    report = inspect_bundle(info.path)
    if args.json:
        emit_json({"command": "import-larq", "bundle": report.to_dict(), "data": source})
    else:
        print(report)
    return EXIT_OK
