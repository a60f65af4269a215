"""What the device's predictions rank: the head's logits, optionally combined with the class
memory's own likelihood (``gbm_weight``, edgecl's addition beyond the GBM paper)."""

from __future__ import annotations

import numpy as np

from edgecl.device.head import Head
from edgecl.memory import ClassMemory

__all__ = ["class_log_likelihood", "combined_scores", "log_softmax"]


def log_softmax(a: np.ndarray) -> np.ndarray:
    """Row-wise ``a - logsumexp(a)``, stable."""
    top = a.max(axis=1, keepdims=True)
    return a - (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))


def class_log_likelihood(
    head: Head, memory: ClassMemory | None, z_words: np.ndarray
) -> np.ndarray | None:
    """``log p(z | class)`` (n, C) float64 under each head class's stored mixture (eq. 3's
    model, :meth:`edgecl.memory.GBMMemory.log_likelihood`), in head class order; None when
    the memory is not generative (no ``log_likelihood``: not a
    :class:`edgecl.memory.GenerativeMemory`) or some head class has no mixture."""
    # A structural check: isinstance against the runtime-checkable protocol would evaluate
    # every member (``nbytes`` included) on each prediction.
    log_likelihood = getattr(memory, "log_likelihood", None)
    if log_likelihood is None:
        return None
    stored = set(memory.classes)
    if any(c not in stored for c in head.classes):
        return None
    return log_likelihood(z_words, head.classes, threads=head.threads)


def combined_scores(
    head: Head,
    memory: ClassMemory | None,
    gbm_weight: float,
    z_words: np.ndarray,
    *,
    trusted: bool = False,
) -> np.ndarray:
    """float64 (n, C): the head logits, or with ``gbm_weight`` lambda > 0 and a generative
    memory ``log_softmax(logits) + lambda * log_softmax(log p(z | class))``. ``trusted``:
    words ``Runtime.embed`` made (:meth:`edgecl.device.head.Head.logits`; their checks
    skipped, the same scores)."""
    if gbm_weight > 0:
        fused = _fused_scores(head, memory, gbm_weight, z_words, trusted)
        if fused is not None:
            return fused
    logits = head.logits(z_words, trusted=trusted).astype(np.float64)
    if gbm_weight <= 0:
        return logits
    ll = class_log_likelihood(head, memory, z_words)
    if ll is None:
        return logits
    return log_softmax(logits) + gbm_weight * log_softmax(ll)


def _fused_scores(
    head: Head, memory: ClassMemory | None, gbm_weight: float, z_words: np.ndarray, trusted: bool
) -> np.ndarray | None:
    """The combined score in one Numba pass (:func:`edgecl.kernels.scores.combined_scores`)
    when the memory lays out its likelihood tables (``likelihood_tables``:
    :class:`edgecl.memory.GBMMemory`) and stores every head class; else None."""
    tables = getattr(memory, "likelihood_tables", None)
    if tables is None:
        return None
    stored = set(memory.classes)
    if any(c not in stored for c in head.classes):
        return None
    # (Numba, loaded on first use)
    from edgecl.kernels.scores import combined_scores as fused
    from edgecl.kernels.scores import combined_scores_trusted

    a, const, offsets = tables(head.classes)
    if trusted and head.serial_for(z_words.shape[0]):  # own tables, the runtime's own words
        return combined_scores_trusted(
            z_words, head.weight, head.bias, a, const, offsets, gbm_weight
        )
    return fused(
        z_words,
        head.weight,
        head.bias,
        a,
        const,
        offsets,
        head.n_bits,
        gbm_weight,
        threads=head.threads,
    )
