"""CIFAR-10 / CIFAR-100 "python version" batches. NumPy only.

The python batches are pickles. Unpickling an arbitrary file can run code, so this
host-side reader uses a *restricted* unpickler that accepts only what a CIFAR batch
holds (dicts, lists, bytes, str, ints and NumPy arrays rebuilt from
``numpy.core.multiarray._reconstruct`` / ``ndarray`` / ``dtype``) and refuses every other
global with :class:`~edgecl.errors.DataFormatError`. Nothing on the device side
reads pickles.

Images come back as uint8 ``(n, 32, 32, 3)`` (height, width, channel) and labels as
int64; use :func:`edgecl.data.to_nchw` for the ``(n, 3, 32, 32)`` layout of the backbones.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from edgecl.errors import DataFormatError

__all__ = ["load_cifar10", "load_cifar100", "read_cifar_batch", "read_cifar_meta"]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _key(d: dict, name: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    return None


def read_cifar_batch(
    path: str | os.PathLike[str], *, label_key: str = "labels"
) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images ``(n, 32, 32, 3)`` uint8 and labels ``(n,)`` int64."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CIFAR batch not found: {p}")
    try:
        d = _RestrictedUnpickler(io.BytesIO(p.read_bytes()), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure means: not a CIFAR batch
        raise DataFormatError(
            f"{p}: expected a CIFAR python batch (a pickled dict), got {e}"
        ) from e
    if not isinstance(d, dict):
        raise DataFormatError(f"{p}: expected a dict, got {type(d).__name__}")
    data, labels = _key(d, "data"), _key(d, label_key)
    if data is None or labels is None:
        raise DataFormatError(f"{p}: expected keys 'data' and {label_key!r}, got {list(d)}")
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFormatError(
            f"{p}: expected uint8 data of shape (n, 3072), got {data.dtype.name} {data.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DataFormatError(f"{p}: expected {data.shape[0]} labels, got shape {labels.shape}")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return x, labels.astype(np.int64)


def read_cifar_meta(path: str | os.PathLike[str], key: str) -> list[str]:
    """The class names of a CIFAR ``batches.meta`` (``key="label_names"``) or ``meta``
    (``"fine_label_names"``, ``"coarse_label_names"``) file, read with the same restricted
    unpickler as the batches."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CIFAR meta file not found: {p}")
    try:
        d = _RestrictedUnpickler(io.BytesIO(p.read_bytes()), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure means: not a CIFAR meta file
        raise DataFormatError(f"{p}: expected a CIFAR meta file (a pickled dict), got {e}") from e
    names = _key(d, key) if isinstance(d, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise DataFormatError(f"{p}: expected a list of class names under {key!r}")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def _cat(parts):
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def _folder(path: str | os.PathLike[str], sub: str) -> Path:
    d = Path(path)
    if (d / sub).is_dir():
        d = d / sub
    if not d.is_dir():
        raise FileNotFoundError(f"expected a CIFAR folder, got {d}")
    return d


def load_cifar10(
    folder: str | os.PathLike[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` from ``data_batch_1..5`` and ``test_batch``
    (in ``folder`` or ``folder/cifar-10-batches-py``)."""
    d = _folder(folder, "cifar-10-batches-py")
    x_tr, y_tr = _cat([read_cifar_batch(d / f"data_batch_{i}") for i in range(1, 6)])
    x_te, y_te = read_cifar_batch(d / "test_batch")
    return x_tr, y_tr, x_te, y_te


def load_cifar100(
    folder: str | os.PathLike[str], *, label: str = "fine"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` from ``train`` and ``test`` (in ``folder`` or
    ``folder/cifar-100-python``); ``label`` is ``"fine"`` (100 classes) or ``"coarse"`` (20)."""
    if label not in ("fine", "coarse"):
        raise ValueError(f"expected label 'fine' or 'coarse', got {label!r}")
    d = _folder(folder, "cifar-100-python")
    key = f"{label}_labels"
    x_tr, y_tr = read_cifar_batch(d / "train", label_key=key)
    x_te, y_te = read_cifar_batch(d / "test", label_key=key)
    return x_tr, y_tr, x_te, y_te
