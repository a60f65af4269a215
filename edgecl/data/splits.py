"""Reproducible splits: stratified train/test and class-incremental tasks. NumPy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Task", "class_incremental_split", "select_classes", "stratified_split", "to_nchw"]


def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"expected integer labels of shape (n,), got {y.dtype.name} {y.shape}")
    return y


def stratified_split(
    y: np.ndarray, test_fraction: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train_idx, test_idx)``, sorted, with ``round(test_fraction * n_c)`` test
    samples from each class ``c`` (at least one sample of each class stays in train)."""
    y = _labels(y)
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"expected 0 < test_fraction < 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = min(int(round(test_fraction * idx.size)), idx.size - 1)
        test.append(rng.permutation(idx)[:k])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    mask = np.ones(y.size, bool)
    mask[test_idx] = False
    return np.flatnonzero(mask), test_idx


def select_classes(
    x: np.ndarray, y: np.ndarray, classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``x, y`` whose label is in ``classes`` (copies; order kept)."""
    y = _labels(y)
    x = np.asarray(x)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"expected {y.shape[0]} samples to match the labels, got {x.shape[0]}")
    keep = np.isin(y, np.asarray(list(classes), dtype=y.dtype))
    return x[keep], y[keep]


@dataclass(frozen=True)
class Task:
    """One task of a class-incremental run: its number, classes and sample indices."""

    task: int
    classes: tuple[int, ...]
    indices: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.size)


def class_incremental_split(
    y: np.ndarray,
    base_classes: int | Sequence[int],
    increments: int | Sequence[int],
    *,
    class_order: Sequence[int] | None = None,
    shuffle_classes: bool = False,
    seed: int = 0,
) -> list[Task]:
    """Split the samples of labels ``y`` into task 0 (the base classes) and increments.

    The class order is ``class_order`` if given, else the sorted labels (permuted with
    ``seed`` when ``shuffle_classes``). ``base_classes`` is a count (the first classes of
    the order) or the list of base classes (the rest keep their order).
    ``increments`` is the number of classes per increment (the last may be smaller) or a
    list of increment sizes summing to the remaining classes. Indices are sorted.
    """
    y = _labels(y)
    present = np.unique(y)
    if class_order is None:
        order = [int(c) for c in present]
        if shuffle_classes:
            order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    else:
        order = [int(c) for c in class_order]
        if sorted(order) != sorted(int(c) for c in present):
            raise ValueError(
                f"expected class_order to be a permutation of the labels "
                f"{present.tolist()}, got {order}"
            )
    if isinstance(base_classes, (int, np.integer)) and not isinstance(base_classes, bool):
        nb = int(base_classes)
        if not 1 <= nb <= len(order):
            raise ValueError(f"expected 1 <= base_classes <= {len(order)}, got {nb}")
        base, rest = order[:nb], order[nb:]
    else:
        base = [int(c) for c in base_classes]
        if not base or len(set(base)) != len(base) or not set(base) <= set(order):
            raise ValueError(f"expected distinct base classes among {order}, got {base}")
        rest = [c for c in order if c not in set(base)]
    if isinstance(increments, (int, np.integer)) and not isinstance(increments, bool):
        step = int(increments)
        if step < 1:
            raise ValueError(f"expected increments >= 1, got {step}")
        sizes = [min(step, len(rest) - i) for i in range(0, len(rest), step)]
    else:
        sizes = [int(s) for s in increments]
        if any(s < 1 for s in sizes) or sum(sizes) != len(rest):
            raise ValueError(
                f"expected positive increment sizes summing to {len(rest)}, got {sizes}"
            )
    groups = [base]
    i = 0
    for s in sizes:
        groups.append(rest[i : i + s])
        i += s
    return [
        Task(t, tuple(g), np.flatnonzero(np.isin(y, np.asarray(g, dtype=y.dtype))))
        for t, g in enumerate(groups)
    ]


def to_nchw(x: np.ndarray) -> np.ndarray:
    """Images ``(n, H, W)`` or ``(n, H, W, C)`` -> ``(n, C, H, W)`` (a contiguous copy)."""
    x = np.asarray(x)
    if x.ndim == 3:
        return np.ascontiguousarray(x[:, None])
    if x.ndim == 4:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    raise ValueError(f"expected images of shape (n, H, W) or (n, H, W, C), got {x.shape}")
