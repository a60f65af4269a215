"""Thresholds read off torch's own modules: where, over every value an op can hand on,
the bit that the BatchNorms, biases and step after it compute turns on.

A binary layer's accumulator is an integer in ``[-n, n]`` (n = fan-in): the step function
is evaluated on every integer of that range and the threshold read off, ``acc >= t``
(``acc <= t`` where the bit falls, the flip), ties included, with extreme thresholds for
constant channels. A float input (the float first layer) is bisected over all float32
values instead. Used by :mod:`edgecl.export.lower`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from edgecl.errors import ExportError

__all__ = ["StepFn", "float_thresholds", "int_thresholds"]

_F32_MAX = float(np.finfo(np.float32).max)

# A step function maps a torch value (channel axis 1) to 0/1 bits with C * r channels,
# channel c * r + j for input channel c and repeat j.
StepFn = Callable[[torch.Tensor], torch.Tensor]


def _arrange(values: torch.Tensor, c: int, r: int, layout: str) -> tuple[torch.Tensor, Any]:
    """Place candidate values (C*r,) so output bit c*r+j reads input channel c at slot j.

    ``values`` is (C, K) (the same K candidates for every channel) or (C, r) (one per
    output bit). Returns the torch input and a function picking the output bits (C*r, K).
    """
    k = values.shape[1]
    if layout == "1d":
        x = values.T.contiguous()  # (K, C)

        def pick(out):
            return out.T  # (C*r, K)

    elif layout == "2d_spatial":
        x = values.reshape(1, c, 1, k).contiguous()

        def pick(out):
            return out[0, :, 0, :]

    else:  # "2d_point"
        x = values.T.reshape(k, c, 1, 1).contiguous()

        def pick(out):
            return out[:, :, 0, 0].T

    return x, pick


def int_thresholds(
    fn: StepFn, c: int, r: int, n: int, layout: str
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds for integer accumulators in [-n, n], read off ``fn`` on every integer."""
    a = torch.arange(-n, n + 1, dtype=torch.float32)
    x, pick = _arrange(a.expand(c, -1), c, r, layout)
    with torch.no_grad():
        bits = pick(fn(x)).cpu().numpy() > 0.5  # (C*r, K)
    vals = np.arange(-n, n + 1, dtype=np.int64)
    thr = np.empty(c * r, np.int64)
    flip = np.zeros(c * r, bool)
    d = np.diff(bits.astype(np.int8), axis=1)
    for o in range(c * r):
        row = bits[o]
        if row.all():
            thr[o] = -n
        elif not row.any():
            thr[o] = n + 1
        elif (d[o] >= 0).all():
            thr[o] = vals[np.argmax(row)]
        elif (d[o] <= 0).all():
            thr[o], flip[o] = vals[len(row) - 1 - np.argmax(row[::-1])], True
        else:
            raise ExportError(f"channel {o // r}: the bit is not monotone in the accumulator")
    return thr.astype(np.int32), flip


def _f32_key(x: np.ndarray) -> np.ndarray:
    i = np.asarray(x, np.float32).view(np.int32).astype(np.int64)
    return np.where(i >= 0, i, -(i & 0x7FFFFFFF) - 1)


def _key_f32(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.int64)
    bits = np.where(k >= 0, k, (-k - 1) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


def float_thresholds(fn: StepFn, c: int, r: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds on float32 inputs, by bisection over every float32 value per bit."""
    slots = max(r, 2) if layout == "2d_spatial" else r
    o = np.arange(c * r)

    def g(vals: np.ndarray) -> np.ndarray:
        cand = np.zeros((c, slots), np.float32)
        cand[:, :r] = vals.reshape(c, r)
        x, pick = _arrange(torch.from_numpy(cand), c, r, layout)
        with torch.no_grad():
            out = pick(fn(x)).cpu().numpy() > 0.5  # (C*r, slots)
        return out[o, o % r]

    lo = np.full(c * r, _f32_key(np.float32(-_F32_MAX)))
    hi = np.full(c * r, _f32_key(np.float32(_F32_MAX)))
    g_lo, g_hi = g(_key_f32(lo)), g(_key_f32(hi))
    moving = g_lo != g_hi
    while True:
        active = moving & (hi - lo > 1)
        if not active.any():
            break
        mid = (lo + hi) // 2
        gm = g(_key_f32(np.where(active, mid, lo)))
        to_hi = active & (gm == g_hi)
        to_lo = active & (gm != g_hi)
        hi = np.where(to_hi, mid, hi)
        lo = np.where(to_lo, mid, lo)
    thr = np.where(g_lo & g_hi, -np.inf, np.inf).astype(np.float32)
    inc = moving & g_hi
    dec = moving & g_lo
    thr[inc] = _key_f32(hi[inc])
    thr[dec] = _key_f32(lo[dec])
    return thr, dec.copy()
