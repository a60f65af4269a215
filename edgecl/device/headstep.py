"""The learner's head SGD step in the transposed, dense layout (GBM §3.2's classifier update).

Same math as :func:`edgecl.kernels.head.softmax_head_step` (its NumPy twin
:func:`edgecl.kernels.head.softmax_head_step_reference` is this step's reference too), laid
out for speed at the learner's sizes (B = 64 samples, D = 512 bits, C ~ 10 classes): the
batch is unpacked once to float32 {0,1} rows, the head is kept transposed ``(C, D)`` so both
products run along contiguous D-long rows that LLVM vectorises (``fastmath`` lets it
reassociate the float32 sums), and nothing is allocated per step (the caller passes the
work arrays). Measured 4x faster than the set-bit walk at these sizes (benchmarks/device.py).

With ``x`` in {0,1}^D, ``Wt`` (C, D), ``b`` (C,), targets ``t``::

    z = Wt x + b;  G = (softmax(z) - onehot(t)) / B
    Wt' = Wt - lr * (G^T X + weight_decay * Wt);  b' = b - lr * sum_i G_i
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from edgecl.kernels.bits import n_words

__all__ = ["HeadStepper", "head_step_t"]


@njit(cache=True, fastmath=True)
def _step_t(x, n, wt, bias, targets, lr, wd, new_wt, new_b, xf, g, logits):
    n_batch = x.shape[0]
    n_cls = wt.shape[0]
    one = np.uint64(1)
    for b in range(n_batch):
        for k in range(x.shape[1]):
            word = x[b, k]
            base = k * 64
            m = min(64, n - base)
            for i in range(m):
                xf[b, base + i] = np.float32((word >> np.uint64(i)) & one)
    loss = 0.0
    for b in range(n_batch):
        mx = -np.inf
        for c in range(n_cls):
            s = np.float32(0.0)
            row = wt[c]
            xb = xf[b]
            for j in range(n):
                s += xb[j] * row[j]
            v = np.float64(s + bias[c])
            logits[c] = v
            mx = max(mx, v)
        tot = 0.0
        for c in range(n_cls):
            tot += math.exp(logits[c] - mx)
        lse = mx + math.log(tot)
        t = targets[b]
        loss += lse - logits[t]
        for c in range(n_cls):
            p = math.exp(logits[c] - lse)
            g[b, c] = np.float32((p - (1.0 if c == t else 0.0)) / n_batch)
    lr32 = np.float32(lr)
    keep = np.float32(1.0) - lr32 * np.float32(wd)
    for c in range(n_cls):
        row = new_wt[c]
        old = wt[c]
        for j in range(n):
            row[j] = old[j] * keep
        db = np.float32(0.0)
        for b in range(n_batch):
            gb = g[b, c]
            db += gb
            step = lr32 * gb
            xb = xf[b]
            for j in range(n):
                row[j] -= step * xb[j]
        new_b[c] = bias[c] - lr32 * db
    return loss / n_batch


class HeadStepper:
    """Work arrays for :func:`_step_t`, reused across the steps of one training run."""

    def __init__(self, n_bits: int, n_classes: int, max_batch: int) -> None:
        self.n_bits = int(n_bits)
        self.xf = np.empty((int(max_batch), self.n_bits), np.float32)
        self.g = np.empty((int(max_batch), int(n_classes)), np.float32)
        self.logits = np.empty(int(n_classes), np.float64)

    def __call__(
        self,
        x_words: np.ndarray,
        wt: np.ndarray,
        bias: np.ndarray,
        targets: np.ndarray,
        lr: float,
        weight_decay: float,
        new_wt: np.ndarray,
        new_b: np.ndarray,
    ) -> float:
        """One step from ``(wt, bias)`` into ``(new_wt, new_b)``; returns the loss before it.
        Inputs are trusted (the learner checks them once); ``new_*`` may not alias the old."""
        b = x_words.shape[0]
        if b > self.xf.shape[0]:
            self.xf = np.empty((b, self.n_bits), np.float32)
            self.g = np.empty((b, self.g.shape[1]), np.float32)
        return float(
            _step_t(
                x_words,
                self.n_bits,
                wt,
                bias,
                targets,
                float(lr),
                float(weight_decay),
                new_wt,
                new_b,
                self.xf[:b],
                self.g[:b],
                self.logits,
            )
        )


def head_step_t(
    x_words: np.ndarray,
    n_bits: int,
    weight: np.ndarray,
    bias: np.ndarray,
    targets: np.ndarray,
    lr: float,
    *,
    weight_decay: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One step with the usual ``(D, C)`` layout, checked at the boundary (the same
    signature as :func:`edgecl.kernels.head.softmax_head_step`; returns new arrays)."""
    x = np.asarray(x_words)
    if x.dtype != np.uint64 or x.ndim != 2 or x.shape[1] != n_words(n_bits) or len(x) < 1:
        raise ValueError(
            f"expected packed words (B >= 1, {n_words(n_bits)}) uint64, got {x.dtype} {x.shape}"
        )
    w = np.asarray(weight, np.float32)
    bb = np.ascontiguousarray(bias, np.float32)
    if w.ndim != 2 or w.shape[0] != n_bits or bb.shape != (w.shape[1],):
        raise ValueError(f"expected weight ({n_bits}, C) and bias (C,), got {w.shape}, {bb.shape}")
    t = np.asarray(targets)
    if not np.issubdtype(t.dtype, np.integer) or t.shape != (len(x),):
        raise ValueError(f"expected {len(x)} integer targets, got {t.dtype} {t.shape}")
    if len(t) and (t.min() < 0 or t.max() >= w.shape[1]):
        raise ValueError(f"expected targets in [0, {w.shape[1]}), got [{t.min()}, {t.max()}]")
    if not (math.isfinite(lr) and lr >= 0 and math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"expected finite lr, weight_decay >= 0, got {lr}, {weight_decay}")
    wt = np.ascontiguousarray(w.T)
    new_wt, new_b = np.empty_like(wt), np.empty_like(bb)
    step = HeadStepper(n_bits, w.shape[1], len(x))
    x = np.ascontiguousarray(x)
    loss = step(x, wt, bb, t.astype(np.int64), lr, weight_decay, new_wt, new_b)
    return np.ascontiguousarray(new_wt.T), new_b, loss
