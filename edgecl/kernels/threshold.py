"""Threshold activations: BatchNorm followed by sign, folded into one threshold per channel.

``sign(gamma * (acc - mean) / sqrt(var + eps) + beta) >= 0`` is ``acc >= thr`` where
``gamma > 0`` and ``acc <= thr`` where ``gamma < 0`` (``flip``); a channel whose output
never changes is given an extreme threshold by the exporter. The bits come out packed
along the channel axis, tail bits zero (bit 1 = +1, as :mod:`edgecl.kernels.bits`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels._check import check_array, check_float32
from edgecl.kernels.bits import WORD_DTYPE, n_words, pack_bits

_I32 = np.iinfo(np.int32)


@njit(cache=True)
def _threshold_core(acc, signed_thr, sign, out):
    """``bit = sign[c] * acc >= signed_thr[c]``, with ``signed_thr = sign * thr``.

    Negating both sides turns ``acc <= thr`` into ``-acc >= -thr`` (exact in int64 and
    in float), so one comparison serves both directions without a branch.
    """
    rows, n_ch = acc.shape
    for r in range(rows):
        for wi in range(out.shape[1]):
            c0 = wi * 64
            c1 = min(c0 + 64, n_ch)
            word = np.uint64(0)
            for c in range(c0, c1):
                if sign[c] * acc[r, c] >= signed_thr[c]:
                    word |= np.uint64(1) << np.uint64(c - c0)
            out[r, wi] = word


def _check_flip(flip, n_ch):
    flip = check_array(flip, "flip")
    if flip.dtype != np.bool_:
        raise TypeError(f"expected a bool flip array, got dtype {flip.dtype}")
    if flip.shape != (n_ch,):
        raise ValueError(f"expected flip of shape ({n_ch},), got {flip.shape}")
    return flip


def check_int_thresholds(thresholds: object, n_ch: int) -> np.ndarray:
    """Integer thresholds (n_ch,) within int32, returned as int64."""
    thresholds = check_array(thresholds, "thresholds")
    if not np.issubdtype(thresholds.dtype, np.integer):
        raise TypeError(f"expected integer thresholds, got dtype {thresholds.dtype}")
    if thresholds.shape != (n_ch,):
        raise ValueError(f"expected thresholds of shape ({n_ch},), got {thresholds.shape}")
    if thresholds.size and (thresholds.min() < _I32.min or thresholds.max() > _I32.max):
        raise ValueError("expected thresholds within the int32 range, got values outside it")
    return thresholds.astype(np.int64)


def _check_int(acc, thresholds, flip):
    acc = check_array(acc, "acc")
    if acc.dtype != np.int32:
        raise TypeError(f"expected int32 acc, got dtype {acc.dtype}")
    if acc.ndim < 1 or acc.shape[-1] < 1:
        raise ValueError(f"expected acc of shape (..., C) with C >= 1, got {acc.shape}")
    n_ch = acc.shape[-1]
    return acc, check_int_thresholds(thresholds, n_ch), _check_flip(flip, n_ch)


def _check_float(y, thresholds, flip):
    y = check_float32(y, "y", tuple(range(1, 33)), "(..., C)")
    if y.shape[-1] < 1:
        raise ValueError(f"expected y of shape (..., C) with C >= 1, got {y.shape}")
    n_ch = y.shape[-1]
    thresholds = check_array(thresholds, "thresholds")
    if thresholds.dtype != np.float32:
        raise TypeError(f"expected float32 thresholds, got dtype {thresholds.dtype}")
    if thresholds.shape != (n_ch,):
        raise ValueError(f"expected thresholds of shape ({n_ch},), got {thresholds.shape}")
    if np.isnan(thresholds).any():
        raise ValueError("expected thresholds without NaN, got NaN")
    return y, thresholds, _check_flip(flip, n_ch)


def _run(values, signed_thr, sign):
    n_ch = values.shape[-1]
    flat = np.ascontiguousarray(values).reshape(-1, n_ch)
    out = np.empty((flat.shape[0], n_words(n_ch)), WORD_DTYPE)
    _threshold_core(flat, signed_thr, sign, out)
    return out.reshape(values.shape[:-1] + (out.shape[1],))


def threshold(acc: np.ndarray, thresholds: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """Packed bits of ``acc >= thr`` (``acc <= thr`` where ``flip``), per channel.

    ``acc`` int32 (..., C), ``thresholds`` integer (C,) within int32, ``flip`` bool (C,);
    returns ``uint64`` (..., n_words(C)) with zero tail bits.
    """
    acc, thr, flip = _check_int(acc, thresholds, flip)
    sign = np.where(flip, -1, 1).astype(np.int64)
    return _run(acc, sign * thr, sign)


def threshold_reference(acc: np.ndarray, thresholds: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`threshold`."""
    acc, thr, flip = _check_int(acc, thresholds, flip)
    return pack_bits(np.where(flip, acc <= thr, acc >= thr))


def threshold_float(y: np.ndarray, thresholds: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """:func:`threshold` on float32 ``y`` (the float first layer + BatchNorm + sign).

    ``thresholds`` float32 (C,) (±inf allowed for constant channels). NaN in ``y`` gives 0.
    """
    y, thr, flip = _check_float(y, thresholds, flip)
    sign = np.where(flip, -1.0, 1.0).astype(np.float32)
    return _run(y, sign * thr, sign)


def threshold_float_reference(
    y: np.ndarray, thresholds: np.ndarray, flip: np.ndarray
) -> np.ndarray:
    """NumPy twin of :func:`threshold_float`."""
    y, thr, flip = _check_float(y, thresholds, flip)
    return pack_bits(np.where(flip, y <= thr, y >= thr))


__all__ = ["threshold", "threshold_float", "threshold_float_reference", "threshold_reference"]
