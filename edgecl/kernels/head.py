"""One SGD step of a softmax linear head on {0,1} bit inputs (the device learner's head).

With ``x`` in {0,1}^n (packed), weight ``W`` (n, C), bias ``b`` (C,), targets ``t``:

- logits ``z = x W + b`` (sum of the rows of ``W`` whose bit is set, plus ``b``);
- loss ``L = mean_i [logsumexp(z_i) - z_i[t_i]]`` (stable log-softmax);
- ``G = (softmax(z) - onehot(t)) / B``; ``dW = x^T G + weight_decay * W``;
  ``db = sum_i G_i``;
- ``W' = W - lr * dW``, ``b' = b - lr * db``.

The fast step is :class:`edgecl.kernels.headstep.HeadStepper` (the batch unpacked once to
float32 rows, the head transposed, Numba); :func:`softmax_head_step` is it with the checks
at the boundary, :func:`softmax_head_step_reference` its NumPy twin in float64. Both return
new arrays and the loss before the update.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from edgecl.kernels._check import check_array, check_count, check_float32, check_words
from edgecl.kernels.bits import unpack_bits
from edgecl.kernels.headstep import HeadStepper


def _real(v, name, minimum=0.0):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"expected a real {name}, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v < minimum:
        raise ValueError(f"expected a finite {name} >= {minimum}, got {v}")
    return v


def _check(x_words, n, weight, bias, targets, lr, weight_decay):
    n = check_count(n, "n")
    x = check_words(x_words, "x_words", (2,), n, "(B, W)")
    if x.shape[0] < 1:
        raise ValueError(f"expected a batch of at least one row, got shape {x.shape}")
    weight = check_float32(weight, "weight", (2,), "(n, C)")
    if weight.shape[0] != n or weight.shape[1] < 1:
        raise ValueError(f"expected weight of shape ({n}, C) with C >= 1, got {weight.shape}")
    n_cls = weight.shape[1]
    bias = check_float32(bias, "bias", (1,), "(C,)")
    if bias.shape != (n_cls,):
        raise ValueError(f"expected bias of shape ({n_cls},), got {bias.shape}")
    targets = check_array(targets, "targets")
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"expected integer class indices as targets, got dtype {targets.dtype}")
    if targets.shape != (x.shape[0],):
        raise ValueError(f"expected targets of shape ({x.shape[0]},), got {targets.shape}")
    if targets.min() < 0 or targets.max() >= n_cls:
        raise ValueError(
            f"expected targets in [0, {n_cls}), got values in [{targets.min()}, {targets.max()}]"
        )
    lr = _real(lr, "lr")
    weight_decay = _real(weight_decay, "weight_decay")
    return x, n, weight, bias, targets.astype(np.int64), lr, weight_decay


def softmax_head_step(
    x_words: np.ndarray,
    n: int,
    weight: np.ndarray,
    bias: np.ndarray,
    targets: np.ndarray,
    lr: float,
    *,
    weight_decay: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One SGD step of the softmax head; returns ``(new_weight, new_bias, loss_before)``.

    ``x_words`` (B, W) packed {0,1} bits, ``weight`` float32 (n, C), ``bias`` float32 (C,),
    ``targets`` integer class indices (B,) in [0, C). The inputs are not modified.
    """
    x, n, weight, bias, targets, lr, weight_decay = _check(
        x_words, n, weight, bias, targets, lr, weight_decay
    )
    wt = np.ascontiguousarray(weight.T)
    new_wt, new_b = np.empty_like(wt), np.empty_like(bias)
    step = HeadStepper(n, weight.shape[1], x.shape[0])
    loss = step(x, wt, bias, targets, lr, weight_decay, new_wt, new_b)
    return np.ascontiguousarray(new_wt.T), new_b, loss


def softmax_head_step_reference(
    x_words: np.ndarray,
    n: int,
    weight: np.ndarray,
    bias: np.ndarray,
    targets: np.ndarray,
    lr: float,
    *,
    weight_decay: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """NumPy twin of :func:`softmax_head_step`, in float64 on unpacked bits."""
    x, n, weight, bias, targets, lr, weight_decay = _check(
        x_words, n, weight, bias, targets, lr, weight_decay
    )
    xs = unpack_bits(x, n).astype(np.float64)
    w64 = weight.astype(np.float64)
    z = xs @ w64 + bias.astype(np.float64)
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    rows = np.arange(x.shape[0])
    loss = float(np.mean(lse[:, 0] - z[rows, targets]))
    g = np.exp(z - lse)
    g[rows, targets] -= 1.0
    g /= x.shape[0]
    new_w = w64 - lr * (xs.T @ g + weight_decay * w64)
    new_b = bias.astype(np.float64) - lr * g.sum(axis=0)
    return new_w.astype(np.float32), new_b.astype(np.float32), loss


__all__ = ["softmax_head_step", "softmax_head_step_reference"]
