"""``edgecl export`` (host: checkpoint -> device bundle, and ONNX graph) and ``edgecl info``
(what a bundle holds; torch-free)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgecl.cli._common import (
    EXIT_OK,
    UsageError,
    add_class_memory_arguments,
    add_hidden_alias,
    add_seed,
    add_threads,
    check_data_set_path,
    check_targets,
    class_memory_options,
    compile_notice,
    emit_json,
    require_extras,
    status,
)

__all__ = ["add_export", "add_info", "cmd_export", "cmd_info"]


def add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="a checkpoint saved by edgecl.train")
    p.add_argument("-o", "--output", type=Path, required=True, help="the bundle to write (.ecl)")
    p.add_argument(
        "--onnx",
        type=Path,
        help="also write the forward graph (ONNX) here, and store in the bundle the learning "
        "graphs of backend='onnxruntime' (predict and learn with onnxruntime alone)",
    )
    add_class_memory_arguments(p)
    p.add_argument(
        "--data",
        dest="calibration_data",
        type=Path,
        help="calibration data, samples of the checkpoint's classes (matched by class name): "
        "any data set form edgecl train takes (IDX, CIFAR, image folder, .npz); resized to "
        "the checkpoint's input size; default: the shipped MNIST sample",
    )
    add_hidden_alias(p, "--calibration-data", "calibration_data", type=Path)
    p.add_argument(
        "--calibration-samples",
        type=int,
        default=2000,
        help="calibration samples of the base classes used (default 2000)",
    )
    add_seed(p, "seed of the class memory's fit")
    add_threads(p, "torch and kernel threads")
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


def _calibration(args: argparse.Namespace, class_names: Sequence[str], meta: dict[str, Any]):
    """Calibration samples of the checkpoint's classes from ``--data`` (any data set form;
    default the shipped sample), resized to the checkpoint's input when it records one."""
    import numpy as np

    from edgecl.data import load_dataset

    shape = (meta.get("meta") or {}).get("input_shape")
    size = None if shape is None else (int(shape[0]), int(shape[1]))
    ds = load_dataset(args.calibration_data, image_size=size, seed=args.seed)
    source = ds.source
    row = {name: i for i, name in enumerate(class_names)}
    rows = np.array([row.get(ds.class_names[label], -1) for label in ds.y_train], np.int64)
    keep = np.flatnonzero(rows >= 0)
    if keep.size == 0:
        present = [ds.class_names[c] for c in np.unique(ds.y_train)]
        raise UsageError(
            f"expected samples of the checkpoint's classes {list(class_names)} in {source}, "
            f"got none (its training samples are of classes {present[:12]})"
        )
    keep = keep[: args.calibration_samples]
    return ds.x_train[keep], rows[keep], source


def _export_config(args: argparse.Namespace) -> Any:
    memory, budget, head = class_memory_options(args)
    from edgecl.export import ExportConfig

    try:
        return ExportConfig(
            memory=memory,
            budget=budget,
            head=head,
            seed=args.seed,
            allow_differing_samples=args.allow_differing_samples,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc


def cmd_export(args: argparse.Namespace) -> int:
    """``edgecl export CHECKPOINT -o model.ecl``: checkpoint -> device bundle (+ ONNX)."""
    require_extras("export", ["torch", "onnx"])
    if args.calibration_samples < 1:
        raise UsageError(f"expected --calibration-samples >= 1, got {args.calibration_samples}")
    if args.onnx is not None and args.onnx.resolve() == args.output.resolve():
        raise UsageError(f"expected --onnx and -o/--output to differ, got {args.output} twice")
    check_targets([args.output, args.onnx], args.overwrite)
    check_data_set_path(args.calibration_data)
    config = _export_config(args)
    status(args, f"loading {args.checkpoint}")
    import numba
    import torch

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    from edgecl.export import export_bundle
    from edgecl.train import load_checkpoint

    model, meta = load_checkpoint(args.checkpoint)
    names = [str(c) for c in meta["class_names"]]
    x, y, source = _calibration(args, names, meta)
    status(args, f"exporting with {len(x)} calibration samples from {source}")
    compiled = compile_notice(args)
    info = export_bundle(
        model,
        args.output,
        config,
        calibration=(x, y),
        class_names=names,
        verify=not args.no_verify,
        overwrite=args.overwrite,
    )
    compiled()
    onnx_path = None
    if args.onnx is not None:
        from edgecl.export import export_onnx
        from edgecl.export.onnx_learn import add_learning_graphs

        info = add_learning_graphs(info.path)
        onnx_path = export_onnx(args.output, args.onnx, overwrite=args.overwrite)
    from edgecl.bundle import inspect_bundle

    report = inspect_bundle(info.path)
    if args.json:
        emit_json(
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


def add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")


def cmd_info(args: argparse.Namespace) -> int:
    """``edgecl info model.ecl``: manifest, classes, layers, bytes per part, headroom."""
    from edgecl.bundle import inspect_bundle

    report = inspect_bundle(args.bundle)
    if args.json:
        emit_json({"command": "info", "bundle": report.to_dict()})
    else:
        print(report)
    return EXIT_OK
