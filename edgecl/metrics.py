"""Continual-learning metrics, NumPy only.

The accuracy matrix ``A`` is (T+1, T+1): ``A[t, s]`` is the accuracy, measured after step
``t`` (step 0 = the base task), on the test samples of the classes introduced at step ``s``.

- average incremental accuracy (the GBM paper's figure): the mean over the T+1 steps of the
  accuracy on all classes seen so far, ``mean_t acc_t`` with ``acc_t`` the accuracy on the
  test samples of steps ``0..t`` (sample-weighted when ``weights`` = test samples per step are
  given, else the mean of ``A[t, :t+1]``);
- final accuracy: ``acc_T``;
- forgetting (Chaudhry et al. 2018): mean over ``s < T`` of
  ``max_{t in [s, T-1]} A[t, s] - A[T, s]``;
- backward transfer (Lopez-Paz & Ranzato 2017): mean over ``s < T`` of ``A[T, s] - A[s, s]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def accuracy_matrix(
    y_true: np.ndarray,
    predictions: Sequence[np.ndarray],
    step_classes: Sequence[Sequence[Any]],
) -> np.ndarray:
    """``A[t, s]`` from the predictions on one test set after each step.

    ``y_true`` (N,) labels; ``predictions[t]`` (N,) predicted labels after step ``t``;
    ``step_classes[s]`` the labels introduced at step ``s``. Entries of a step with no test
    sample are NaN. Returns (len(predictions), len(step_classes)) float64.
    """
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"expected y_true of shape (n,), got {y_true.shape}")
    seen: set = set()
    for s, cls in enumerate(step_classes):
        overlap = seen.intersection(cls)
        if overlap:
            raise ValueError(
                f"expected disjoint classes per step, got {sorted(overlap)} again at {s}"
            )
        seen.update(cls)
    out = np.full((len(predictions), len(step_classes)), np.nan)
    masks = [np.isin(y_true, list(cls)) for cls in step_classes]
    for t, pred in enumerate(predictions):
        pred = np.asarray(pred)
        if pred.shape != y_true.shape:
            raise ValueError(f"expected predictions[{t}] of shape {y_true.shape}, got {pred.shape}")
        for s, m in enumerate(masks):
            if m.any():
                out[t, s] = float(np.mean(pred[m] == y_true[m]))
    return out


def _check_square(acc: np.ndarray) -> np.ndarray:
    a = np.asarray(acc, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"expected a square (T+1, T+1) accuracy matrix, got shape {a.shape}")
    return a


def incremental_accuracies(acc: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """``acc_t`` for each step: accuracy on all classes seen up to step ``t``."""
    a = _check_square(acc)
    n = a.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or np.any(w < 0):
        raise ValueError(f"expected {n} non-negative weights, got {w!r}")
    out = np.empty(n)
    for t in range(n):
        ww = w[: t + 1]
        if ww.sum() <= 0:
            raise ValueError(f"expected a positive weight among steps 0..{t}, got {ww}")
        out[t] = float(np.dot(a[t, : t + 1], ww) / ww.sum())
    return out


def average_incremental_accuracy(acc: np.ndarray, weights: Sequence[float] | None = None) -> float:
    """Mean over the T+1 steps of the accuracy on all classes seen so far (GBM's figure)."""
    return float(np.mean(incremental_accuracies(acc, weights)))


def final_accuracy(acc: np.ndarray, weights: Sequence[float] | None = None) -> float:
    """Accuracy on all classes after the last step."""
    return float(incremental_accuracies(acc, weights)[-1])


def forgetting(acc: np.ndarray) -> float:
    """Average forgetting of the steps before the last (0.0 when there is a single step)."""
    a = _check_square(acc)
    t_last = a.shape[0] - 1
    if t_last == 0:
        return 0.0
    drops = [np.max(a[s:t_last, s]) - a[t_last, s] for s in range(t_last)]
    return float(np.mean(drops))


def backward_transfer(acc: np.ndarray) -> float:
    """Mean change of each earlier step's accuracy from just after it to the end."""
    a = _check_square(acc)
    t_last = a.shape[0] - 1
    if t_last == 0:
        return 0.0
    return float(np.mean([a[t_last, s] - a[s, s] for s in range(t_last)]))


__all__ = [
    "accuracy_matrix",
    "average_incremental_accuracy",
    "backward_transfer",
    "final_accuracy",
    "forgetting",
    "incremental_accuracies",
]
