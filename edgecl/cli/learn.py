"""``edgecl learn`` and ``edgecl predict``: the device verbs (torch-free)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecl.cli._common import (
    DATA_HELP,
    EXIT_OK,
    SIZE_HELP,
    UsageError,
    add_seed,
    add_threads,
    check_targets,
    compile_notice,
    emit_json,
    load_samples,
    parse_bytes,
    positive_int,
    progress,
    status,
)

__all__ = [
    "add_learn",
    "add_predict",
    "check_input",
    "cmd_learn",
    "cmd_predict",
    "load_runtime",
    "warm_up",
]


def load_runtime(args: argparse.Namespace) -> Any:
    """The bundle ``args.bundle`` as a Runtime (``--backend``, ``--budget``, ``--threads``)."""
    from edgecl.device import Runtime

    return Runtime.load(
        args.bundle,
        backend=getattr(args, "backend", "numba"),
        budget_bytes=getattr(args, "budget", None),
        threads=getattr(args, "threads", 1),
    )


def check_input(rt: Any, x: np.ndarray) -> None:
    """``--data`` against the bundle's input (shape, dtype, finite values): exit 2."""
    try:
        rt.input_spec.check(x)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--data: {exc}") from exc


def warm_up(args: argparse.Namespace, rt: Any, x: np.ndarray, *, learn: bool) -> None:
    """Compile (or load from the cache) the kernels before any bar or timer starts."""
    from edgecl.bench import warm_up as warm

    compiled = compile_notice(args)
    warm(rt, x, learn=learn)
    compiled()


# -- edgecl learn -----------------------------------------------------------------------------


def add_learn(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")
    p.add_argument("--class", dest="name", required=True, help="the class name to learn")
    p.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write the learned bundle here (a new file, or pass --overwrite)",
    )
    p.add_argument(
        "--in-place",
        action="store_true",
        help="write the learned bundle over the input bundle (instead of -o)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="let -o/--output replace an existing file"
    )
    p.add_argument(
        "--update", action="store_true", help="add the samples to an existing class instead"
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        help="head passes over the samples (default: the bundle's)",
    )
    add_seed(p, "seed of the class memory's fit and the head's batches")
    p.add_argument(
        "--budget",
        type=parse_bytes,
        help=f"lower the bundle's budget of stored bytes, e.g. 24KiB; {SIZE_HELP}",
    )
    p.add_argument(
        "--backend",
        choices=("numba", "onnxruntime"),
        default="numba",
        help="what runs predict and learn: the Numba kernels (default) or the bundle's "
        "learning graphs on onnxruntime alone (needs edgecl[ort] and a bundle exported "
        "with --onnx)",
    )
    add_threads(p)


def _learn_target(args: argparse.Namespace) -> Path:
    """Where ``learn`` writes: ``-o`` (a new file, or ``--overwrite``) or ``--in-place``."""
    if args.in_place and args.output is not None:
        raise UsageError("expected -o/--output or --in-place, got both")
    if args.in_place:
        return args.bundle
    if args.output is None:
        raise UsageError(
            "expected -o/--output PATH for the learned bundle, or --in-place to update "
            f"{args.bundle} itself"
        )
    check_targets([args.output], args.overwrite)
    return args.output


def _check_name(rt: Any, name: str, update: bool) -> None:
    from edgecl.validate import check_class_name

    try:
        check_class_name(name)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--class: {exc}") from exc
    known = rt.classes_.tolist()
    if not update and name in known:
        raise UsageError(
            f"class {name!r} is already learned; pass --update to add the samples to it"
        )
    if update and name not in known:
        raise UsageError(f"--update expects a learned class, got {name!r} (classes: {known})")


def cmd_learn(args: argparse.Namespace) -> int:
    """``edgecl learn model.ecl --class NAME --data PATH -o out.ecl`` (or ``--in-place``)."""
    target = _learn_target(args)
    x, _ = load_samples(args.data)
    rt = load_runtime(args)
    _check_name(rt, args.name, args.update)
    check_input(rt, x)
    warm_up(args, rt, x, learn=True)
    status(
        args,
        f"{'updating' if args.update else 'learning'} class {args.name!r} from {len(x)} samples",
    )
    update, close = progress(args, "head")
    try:
        if args.update:
            rep = rt.update_class(args.name, x, epochs=args.epochs, seed=args.seed, progress=update)
        else:
            rep = rt.learn_class(args.name, x, epochs=args.epochs, seed=args.seed, progress=update)
    finally:
        close()
    info = rt.save(target)
    if args.json:
        emit_json(
            {
                "command": "learn",
                "report": rep.to_dict(),
                "memory": rt.memory().to_dict(),
                "bundle": str(info.path),
                "bundle_bytes": info.file_bytes,
            }
        )
    else:
        print(rep)
        print(f"saved {info.path} ({info.file_bytes} bytes)")
    return EXIT_OK


# -- edgecl predict ---------------------------------------------------------------------------


def add_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="a device bundle (.ecl)")
    p.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    p.add_argument(
        "--labels-from-folders",
        action="store_true",
        help="--data is a folder with one sub-folder of images per class: read them all, "
        "the sub-folder names being the true labels (accuracy is printed)",
    )
    p.add_argument("--labels", type=Path, help="true labels (.npy or IDX) to print accuracy")
    p.add_argument("--limit", type=int, default=20, help="rows printed in the table (default 20)")
    add_threads(p)


def head_probability(rt: Any, x: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(p_head, p_combined)`` of each sample's predicted class ``names``: the softmax of
    the head's logits alone (trained with cross-entropy, it is close to calibrated: on the
    demo's bundle its mean 0.92 meets an accuracy of 0.91), and :meth:`predict_proba`'s,
    the softmax of the combined score, which a ``gbm_weight`` > 0 makes overconfident (the
    GBM log-likelihoods of 512 bits differ by tens to hundreds of nats between classes, so
    most rows round to 1.0000)."""
    index = {str(c): i for i, c in enumerate(rt.classes_)}
    cols = np.array([index[str(n)] for n in names], np.int64)
    rows = np.arange(len(cols))
    logits = rt.logits(x).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return p[rows, cols], rt.predict_proba(x)[rows, cols]


def cmd_predict(args: argparse.Namespace) -> int:
    """``edgecl predict model.ecl --data PATH``: the class of every sample (the combined
    score's argmax, as ``Runtime.predict``) with the head's probability of it."""
    if args.labels is not None and args.labels_from_folders:
        raise UsageError("expected --labels or --labels-from-folders, got both")
    x, truth = load_samples(args.data, class_folders=args.labels_from_folders)
    if args.labels is not None:
        y, _ = load_samples(args.labels)
        truth = np.asarray([str(v) for v in y.reshape(-1).tolist()])
        if truth.shape[0] != len(x):
            raise UsageError(f"expected {len(x)} labels, got {truth.shape[0]}")
    rt = load_runtime(args)
    check_input(rt, x)
    warm_up(args, rt, x, learn=False)
    t0 = time.perf_counter()
    names = rt.predict(x)
    seconds = time.perf_counter() - t0
    conf, combined = head_probability(rt, x, names)
    accuracy = None if truth is None else float(np.mean(names == truth))
    counts = {str(c): int((names == c).sum()) for c in rt.classes_}
    if args.json:
        emit_json(
            {
                "command": "predict",
                "bundle": str(args.bundle),
                "n_samples": int(len(names)),
                "classes": rt.classes_.tolist(),
                "predictions": names.tolist(),
                "confidence": [float(c) for c in conf],
                "combined_probability": [float(c) for c in combined],
                "counts": counts,
                "accuracy": accuracy,
                "seconds": seconds,
            }
        )
        return EXIT_OK
    print(f"{'sample':>6}  {'class':<12} {'p (head)':>11}")
    for i in range(min(len(names), max(args.limit, 0))):
        print(f"{i:>6}  {names[i]:<12} {conf[i]:>11.4f}")
    if len(names) > args.limit:
        print(f"   ... {len(names) - args.limit} more (--limit, or --json for all)")
    print("counts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    if accuracy is not None:
        print(f"accuracy: {accuracy:.4f} on {len(names)} samples")
    print(f"{len(names)} samples in {seconds * 1e3:.1f} ms")
    return EXIT_OK
