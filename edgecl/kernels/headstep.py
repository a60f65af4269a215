"""The head SGD step in the transposed, dense layout (GBM §3.2's classifier update): the
one fast step, behind :func:`edgecl.kernels.head.softmax_head_step` (checked) and used
unchecked by the device learner through :class:`HeadStepper`.

Its NumPy twin is :func:`edgecl.kernels.head.softmax_head_step_reference`. Laid out for
speed at the learner's sizes (B = 64 samples, D = 512 bits, C ~ 10 classes): the batch is
unpacked once to float32 {0,1} rows, the head is kept transposed ``(C, D)`` so both products
run along contiguous D-long rows that LLVM vectorises (``fastmath`` lets it reassociate the
float32 sums), and nothing is allocated per step (the caller passes the work arrays).
Measured 4x faster than a set-bit walk at these sizes (benchmarks/device.py).

With ``x`` in {0,1}^D, ``Wt`` (C, D), ``b`` (C,), targets ``t``::

    z = Wt x + b;  G = (softmax(z) - onehot(t)) / B
    Wt' = Wt - lr * (G^T X + weight_decay * Wt);  b' = b - lr * sum_i G_i
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["HeadStepper"]


@njit(cache=True)
def _put4(z, b, c, v0, v1, v2, v3):
    """``z[b, c:c + 4] = v0..v3``, dropping what falls past the batch or the classes."""
    if b < z.shape[0]:
        n_cls = z.shape[1]
        z[b, c] = v0
        if c + 1 < n_cls:
            z[b, c + 1] = v1
        if c + 2 < n_cls:
            z[b, c + 2] = v2
        if c + 3 < n_cls:
            z[b, c + 3] = v3


@njit(cache=True, fastmath=True)
def _forward_t(xf, wt, z):
    """``z[b, c] = xf[b] . wt[c]`` in tiles of 4 classes x 4 samples (16 float32 sums per
    pass over D, each row loaded once per tile). Past the last class or sample a tile
    repeats the last row and drops the sums."""
    n_batch, n = xf.shape
    n_cls = wt.shape[0]
    for c in range(0, n_cls, 4):
        r0 = wt[c]
        r1 = wt[min(c + 1, n_cls - 1)]
        r2 = wt[min(c + 2, n_cls - 1)]
        r3 = wt[min(c + 3, n_cls - 1)]
        for b in range(0, n_batch, 4):
            x0 = xf[b]
            x1 = xf[min(b + 1, n_batch - 1)]
            x2 = xf[min(b + 2, n_batch - 1)]
            x3 = xf[min(b + 3, n_batch - 1)]
            a00 = a01 = a02 = a03 = np.float32(0.0)
            a10 = a11 = a12 = a13 = np.float32(0.0)
            a20 = a21 = a22 = a23 = np.float32(0.0)
            a30 = a31 = a32 = a33 = np.float32(0.0)
            for j in range(n):
                y0 = x0[j]
                y1 = x1[j]
                y2 = x2[j]
                y3 = x3[j]
                u0 = r0[j]
                u1 = r1[j]
                u2 = r2[j]
                u3 = r3[j]
                a00 += y0 * u0
                a01 += y0 * u1
                a02 += y0 * u2
                a03 += y0 * u3
                a10 += y1 * u0
                a11 += y1 * u1
                a12 += y1 * u2
                a13 += y1 * u3
                a20 += y2 * u0
                a21 += y2 * u1
                a22 += y2 * u2
                a23 += y2 * u3
                a30 += y3 * u0
                a31 += y3 * u1
                a32 += y3 * u2
                a33 += y3 * u3
            _put4(z, b, c, a00, a01, a02, a03)
            _put4(z, b + 1, c, a10, a11, a12, a13)
            _put4(z, b + 2, c, a20, a21, a22, a23)
            _put4(z, b + 3, c, a30, a31, a32, a33)


@njit(cache=True, fastmath=True)
def _backward_t(xf, wt, g, lr32, keep, new_wt):
    """``new_wt[c] = keep * wt[c] - lr * sum_b g[b, c] * xf[b]``, 4 classes x 4 samples per
    pass over D (one load and store of each output row per 4 samples); the classes and
    samples past the last whole tile one at a time."""
    n_batch, n = xf.shape
    n_cls = wt.shape[0]
    for c in range(n_cls):
        row = new_wt[c]
        old = wt[c]
        for j in range(n):
            row[j] = old[j] * keep
    c4 = n_cls - n_cls % 4
    b4 = n_batch - n_batch % 4
    for c in range(0, c4, 4):
        r0 = new_wt[c]
        r1 = new_wt[c + 1]
        r2 = new_wt[c + 2]
        r3 = new_wt[c + 3]
        for b in range(0, b4, 4):
            x0 = xf[b]
            x1 = xf[b + 1]
            x2 = xf[b + 2]
            x3 = xf[b + 3]
            a0, a1, a2, a3 = (
                lr32 * g[b, c],
                lr32 * g[b + 1, c],
                lr32 * g[b + 2, c],
                lr32 * g[b + 3, c],
            )
            e0, e1, e2, e3 = (
                lr32 * g[b, c + 1],
                lr32 * g[b + 1, c + 1],
                lr32 * g[b + 2, c + 1],
                lr32 * g[b + 3, c + 1],
            )
            f0, f1, f2, f3 = (
                lr32 * g[b, c + 2],
                lr32 * g[b + 1, c + 2],
                lr32 * g[b + 2, c + 2],
                lr32 * g[b + 3, c + 2],
            )
            h0, h1, h2, h3 = (
                lr32 * g[b, c + 3],
                lr32 * g[b + 1, c + 3],
                lr32 * g[b + 2, c + 3],
                lr32 * g[b + 3, c + 3],
            )
            for j in range(n):
                y0 = x0[j]
                y1 = x1[j]
                y2 = x2[j]
                y3 = x3[j]
                r0[j] -= (a0 * y0 + a1 * y1) + (a2 * y2 + a3 * y3)
                r1[j] -= (e0 * y0 + e1 * y1) + (e2 * y2 + e3 * y3)
                r2[j] -= (f0 * y0 + f1 * y1) + (f2 * y2 + f3 * y3)
                r3[j] -= (h0 * y0 + h1 * y1) + (h2 * y2 + h3 * y3)
    for c in range(c4, n_cls):
        r0 = new_wt[c]
        for b in range(0, b4, 4):
            x0 = xf[b]
            x1 = xf[b + 1]
            x2 = xf[b + 2]
            x3 = xf[b + 3]
            a0, a1, a2, a3 = (
                lr32 * g[b, c],
                lr32 * g[b + 1, c],
                lr32 * g[b + 2, c],
                lr32 * g[b + 3, c],
            )
            for j in range(n):
                r0[j] -= (a0 * x0[j] + a1 * x1[j]) + (a2 * x2[j] + a3 * x3[j])
    for c in range(n_cls):
        r0 = new_wt[c]
        for b in range(b4, n_batch):
            a0 = lr32 * g[b, c]
            x0 = xf[b]
            for j in range(n):
                r0[j] -= a0 * x0[j]


@njit(cache=True, fastmath=True, error_model="numpy")  # a diverged head gives NaN, not a raise
def _step_t(x, n, wt, bias, targets, lr, wd, new_wt, new_b, xf, g, z):
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
    _forward_t(xf, wt, z)
    loss = 0.0
    e = np.empty(n_cls, np.float64)
    for b in range(n_batch):
        mx = -np.inf
        for c in range(n_cls):
            mx = max(mx, np.float64(z[b, c] + bias[c]))
        tot = 0.0
        for c in range(n_cls):
            e[c] = math.exp(np.float64(z[b, c] + bias[c]) - mx)
            tot += e[c]
        t = targets[b]
        loss += mx + math.log(tot) - np.float64(z[b, t] + bias[t])
        for c in range(n_cls):
            g[b, c] = np.float32((e[c] / tot - (1.0 if c == t else 0.0)) / n_batch)
    lr32 = np.float32(lr)
    keep = np.float32(1.0) - lr32 * np.float32(wd)
    _backward_t(xf, wt, g, lr32, keep, new_wt)
    for c in range(n_cls):
        db = np.float32(0.0)
        for b in range(n_batch):
            db += g[b, c]
        new_b[c] = bias[c] - lr32 * db
    return loss / n_batch


class HeadStepper:
    """Work arrays for :func:`_step_t`, reused across the steps of one training run."""

    def __init__(self, n_bits: int, n_classes: int, max_batch: int) -> None:
        self.n_bits = int(n_bits)
        self.xf = np.empty((int(max_batch), self.n_bits), np.float32)
        self.g = np.empty((int(max_batch), int(n_classes)), np.float32)
        self.z = np.empty((int(max_batch), int(n_classes)), np.float32)

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
            self.z = np.empty((b, self.z.shape[1]), np.float32)
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
                self.z[:b],
            )
        )
