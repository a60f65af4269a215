"""Signs of float data packed into words in one pass: :func:`pack_float_signs`, the Numba
twin of :func:`edgecl.kernels.bits.pack_signs` (its NumPy reference) for float32 / float64
along the last axis. The bit convention is bits.py's: bit = ``x >= 0`` (sign(0) = +1,
-0.0 included), little-endian in the word, tail bits 0; NaN is refused, as there.

``pack_signs`` makes a boolean copy, pads it, packs bytes and views them (a dozen NumPy
passes and temporaries); this is one read of ``x`` and one write of the words: what a
binary layer on float input pays before its XNOR-popcount (``binary_dense(pack_float_signs(x),
...)``)."""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.errors import InvalidValueError
from edgecl.kernels.bits import WORD_BITS, WORD_DTYPE, n_words, pack_signs

__all__ = ["pack_float_signs", "pack_float_signs_reference"]


@njit(cache=True)
def _pack_rows(x, out):
    """``out[r, k]`` = the signs of ``x[r, 64 k .. 64 k + 63]``; True if any value is NaN."""
    n = x.shape[1]
    full = n // 64
    nan = False
    for r in range(x.shape[0]):
        for k in range(full):
            word = np.uint64(0)
            bad = False
            for t in range(64):
                v = x[r, k * 64 + t]
                word |= np.uint64(v >= 0) << np.uint64(t)
                bad |= v != v
            out[r, k] = word
            nan |= bad
        if full * 64 < n:
            word = np.uint64(0)
            for t in range(n - full * 64):
                v = x[r, full * 64 + t]
                word |= np.uint64(v >= 0) << np.uint64(t)
                nan |= v != v
            out[r, full] = word
    return nan


def pack_float_signs(x: np.ndarray) -> np.ndarray:
    """Pack the signs of float32 / float64 ``x`` along its last axis: ``uint64`` of shape
    ``x.shape[:-1] + (n_words(x.shape[-1]),)``, bit = ``x >= 0``; NaN raises
    :class:`~edgecl.errors.InvalidValueError` (a ValueError). Other dtypes go to
    :func:`edgecl.kernels.bits.pack_signs`, which it equals bit for bit."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64) or x.ndim == 0:
        return pack_signs(x)  # its checks and messages for everything else
    n = x.shape[-1]
    out = np.empty((*x.shape[:-1], n_words(n)), WORD_DTYPE)
    if x.size == 0:
        out[...] = 0
        return out
    rows = np.ascontiguousarray(x).reshape(-1, n)
    if _pack_rows(rows, out.reshape(-1, out.shape[-1])):
        raise InvalidValueError("expected finite values for pack_float_signs, got NaN")
    return out


def pack_float_signs_reference(x: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`pack_float_signs`: :func:`edgecl.kernels.bits.pack_signs`."""
    return pack_signs(x)


assert WORD_BITS == 64  # the cores pack 64 signs to a word
