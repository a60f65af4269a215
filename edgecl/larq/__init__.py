"""Bring a Larq model: ``import_larq(MODEL.h5 | MODEL.keras, OUT.ecl, ...)``.

Reads the Keras model's config and weights with h5py only (no TensorFlow, no larq;
:mod:`edgecl.larq.keras_h5`), maps its layers onto edgecl's layer program
(:mod:`edgecl.larq.layers`, :mod:`edgecl.larq.lower`: BatchNorm + sign folded into integer
thresholds with flips, TensorFlow's padding rules), and writes a bundle whose layers up to
the embedding are F and whose head G is the model's last Dense, ready for
``learn_class``. The base classes' class memories are fitted on labelled samples, and the
import is verified against the model's float forward in NumPy
(:mod:`edgecl.larq.reference`). Torch-free.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecl import __version__
from edgecl.base_bundle import BaseBundle, verify_embedding
from edgecl.bundle import BundleInfo, HeadSpec
from edgecl.device.runtime import Runtime
from edgecl.larq.keras_h5 import KerasModel, read_keras_model
from edgecl.larq.layers import SUPPORTED_LAYERS, parse_model
from edgecl.larq.lower import Imported, lower_specs
from edgecl.larq.reference import reference_forward
from edgecl.memory import Budget, GBMConfig, LatentBufferConfig
from edgecl.validate import check_class_names

__all__ = [
    "LOGIT_TOLERANCE",
    "SUPPORTED_LAYERS",
    "KerasModel",
    "import_larq",
    "lower_keras_model",
    "read_keras_model",
    "reference_forward",
]

#: Largest |device logit - reference logit| accepted, relative to max(1, |logits|).
LOGIT_TOLERANCE = 1e-4


def lower_keras_model(
    model: KerasModel,
    *,
    embedding_layer: str | None = None,
    input_scale: float = 1.0,
    mean: float | Sequence[float] = 0.0,
    std: float | Sequence[float] = 1.0,
) -> Imported:
    """The device program of a read model (:func:`read_keras_model`); ``ExportError``
    names the first layer that cannot be mapped, with its type."""
    return lower_specs(
        parse_model(model),
        model.input_shape,
        embedding_layer=embedding_layer,
        input_scale=input_scale,
        mean=mean,
        std=std,
    )


def _names(class_names: Sequence[str] | None, n: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(n)]
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(f"expected a sequence of class names, got {type(class_names).__name__}")
    return list(check_class_names([str(c) for c in class_names], count=n))


def _samples(calibration: Any, names: list[str], shape: tuple[int, ...]):
    """The calibration samples of the head's classes and their head rows."""
    if not isinstance(calibration, (tuple, list)) or len(calibration) != 2:
        raise TypeError("expected calibration=(samples, labels)")
    x, labels = np.asarray(calibration[0]), np.asarray(calibration[1])
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != tuple(shape):
        raise ValueError(
            f"expected samples (n, {', '.join(map(str, shape))}) for the model's input, "
            f"got {tuple(np.asarray(calibration[0]).shape)}"
        )
    if labels.shape != (len(x),):
        raise ValueError(f"expected {len(x)} labels, got shape {labels.shape}")
    row = {name: i for i, name in enumerate(names)}
    rows = np.array([row.get(str(label), -1) for label in labels.tolist()], np.int64)
    keep = np.flatnonzero(rows >= 0)
    if keep.size == 0:
        found = sorted({str(a) for a in labels.tolist()})[:20]
        raise ValueError(
            f"expected samples labelled with the head's classes {names}, got labels {found}"
        )
    return x[keep], rows[keep]


def _verify(specs, runtime: Runtime, x, z_words, limit: int, allowed: int, norm: dict):
    k = min(len(x), limit) if limit else len(x)
    ref_bits, ref_logits = reference_forward(specs, x[:k], **norm)
    return verify_embedding(
        runtime,
        z_words,
        ref_bits,
        ref_logits,
        allowed=allowed,
        tolerance=LOGIT_TOLERANCE * max(1.0, float(np.abs(ref_logits).max())),
        reference="the model's",
        reference_forward=" (its float forward in NumPy)",
    )


def import_larq(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    calibration: tuple[np.ndarray, np.ndarray],
    class_names: Sequence[str] | None = None,
    max_samples: int | None = None,
    embedding_layer: str | None = None,
    input_scale: float = 1.0,
    mean: float | Sequence[float] = 0.0,
    std: float | Sequence[float] = 1.0,
    memory: Any = None,
    budget: Any = None,
    head: HeadSpec | None = None,
    seed: int = 0,
    verify: bool = True,
    verify_samples: int = 512,
    allow_differing_samples: int = 0,
    threads: int = 1,
    overwrite: bool = False,
) -> BundleInfo:
    """Import a Larq / Keras model file (``.h5`` or ``.keras``) as a device bundle.

    ``calibration`` = ``(samples, labels)``: raw samples ((n, H, W) or (n, H, W, C), uint8
    or float 0..255) and their labels; the head's output i is class ``class_names[i]``
    (default ``"0" .. "n-1"``), samples whose label (as str) is none of them are ignored,
    and the first ``max_samples`` of the others are used (default all).
    They fit the base classes' class memories (``memory``: ``GBMConfig``,
    ``LatentBufferConfig`` or None, inside ``budget``, a ``Budget`` or None) and verify
    the import: the device's embedding bits must equal the model's float forward in NumPy
    (up to ``allow_differing_samples`` samples) and its logits be within
    :data:`LOGIT_TOLERANCE`, or :class:`ExportError` and nothing is written. The model's
    input is ``(x * input_scale - mean) / std`` (a first ``Rescaling`` layer is folded in
    instead). ``embedding_layer`` names the layer whose output bits are the embedding
    (default: the last conv or dense layer before the head). The kernels run on
    ``threads`` threads."""
    if memory is not None and not isinstance(memory, (GBMConfig, LatentBufferConfig)):
        raise TypeError(
            f"expected memory GBMConfig, LatentBufferConfig or None, got {type(memory).__name__}"
        )
    if budget is not None and not isinstance(budget, Budget):
        raise TypeError(f"expected budget to be a Budget or None, got {budget!r}")
    head = HeadSpec() if head is None else head
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass overwrite=True to replace it")
    model = read_keras_model(model_path)
    specs = parse_model(model)
    imp = lower_specs(
        specs,
        model.input_shape,
        embedding_layer=embedding_layer,
        input_scale=input_scale,
        mean=mean,
        std=std,
    )
    names = _names(class_names, imp.head_weight.shape[1])
    x, y = _samples(calibration, names, model.input_shape)
    if max_samples is not None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(f"expected max_samples an int >= 1, got {max_samples!r}")
        x, y = x[:max_samples], y[:max_samples]
    base = BaseBundle(
        input=imp.input,
        layers=imp.layers,
        embedding=imp.embedding,
        layer_arrays=imp.arrays,
        head_weight=imp.head_weight,
        head_bias=imp.head_bias,
        head=dataclasses.replace(head, onnx=False),
        classes=names,
        budget=budget,
        model={
            "larq": {
                "file": Path(model_path).name,
                "name": model.name,
                "embedding_layer": imp.embedding_layer,
                "head_layer": imp.head_layer,
            }
        },
        threads=threads,
    )
    runtime = base.runtime
    z_words = runtime.embed(x)
    fitted, plans = base.fit_memory(memory, z_words, y, seed=seed)
    report: dict[str, Any] = {"verified": False}
    if verify:
        norm = {"input_scale": input_scale, "mean": mean, "std": std}
        report = _verify(specs, runtime, x, z_words, verify_samples, allow_differing_samples, norm)
    return base.write(
        out_path,
        memory=fitted,
        plans=plans,
        export={"edgecl": __version__, "importer": "larq", **report},
        overwrite=overwrite,
        reload_check=(x, z_words) if verify else None,
    )
