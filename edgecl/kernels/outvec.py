"""The XNOR-popcount GEMM vectorised across output channels, for short reductions.

``out[b, o] = nbits - 2 * sum_k popcount(x[b, k] XOR wt[k, o])`` with the weights
transposed to ``(K, O)``: each word of ``x`` is broadcast and XORed with 8 output
channels' words at once (``vpopcntq`` on zmm registers, the ``vpopcntdq`` strategy), so
the 64-bit accumulators *are* the outputs: no horizontal reduction per output, which is
what the K-vectorised tiles of :mod:`edgecl.kernels.dense` pay for every output when K
is a few dozen words (a 3x3 conv on 256 channels: 36 words). Register tiles of 4 rows of
``x`` by 4 vectors of 8 channels (16 accumulators); leftover rows one at a time against 4
vectors, leftover
channel vectors one at a time, the last ``O % 8`` channels by ``popcount64``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.popcount import popcount64
from edgecl.kernels.wordvec import (
    wv_add,
    wv_load,
    wv_splat,
    wv_store_dots,
    wv_word_counts,
    wv_xor,
    wv_zero,
)

#: Reductions up to this many words take the output-vectorised GEMM (vpopcntdq strategy).
SHORT_K = 64

_L = 8  # output channels per vector (one zmm register of words)


@njit(cache=True, inline="always")
def _acc(acc, xv, wt, k, o):
    return wv_add(acc, wv_word_counts(wv_xor(xv, wv_load(_L, wt, (k, o)))))


@njit(cache=True, inline="always")
def _tile4x4(x, wt, b, o, nbits, out):
    """Rows ``b .. b + 3`` against channels ``o .. o + 31``."""
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = wv_zero(_L)
    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = wv_zero(_L)
    for k in range(x.shape[1]):
        x0 = wv_splat(_L, x[b, k])
        x1 = wv_splat(_L, x[b + 1, k])
        x2 = wv_splat(_L, x[b + 2, k])
        x3 = wv_splat(_L, x[b + 3, k])
        a00 = _acc(a00, x0, wt, k, o)
        a10 = _acc(a10, x1, wt, k, o)
        a20 = _acc(a20, x2, wt, k, o)
        a30 = _acc(a30, x3, wt, k, o)
        a01 = _acc(a01, x0, wt, k, o + _L)
        a11 = _acc(a11, x1, wt, k, o + _L)
        a21 = _acc(a21, x2, wt, k, o + _L)
        a31 = _acc(a31, x3, wt, k, o + _L)
        a02 = _acc(a02, x0, wt, k, o + 2 * _L)
        a12 = _acc(a12, x1, wt, k, o + 2 * _L)
        a22 = _acc(a22, x2, wt, k, o + 2 * _L)
        a32 = _acc(a32, x3, wt, k, o + 2 * _L)
        a03 = _acc(a03, x0, wt, k, o + 3 * _L)
        a13 = _acc(a13, x1, wt, k, o + 3 * _L)
        a23 = _acc(a23, x2, wt, k, o + 3 * _L)
        a33 = _acc(a33, x3, wt, k, o + 3 * _L)
    wv_store_dots(out, (b, o), a00, nbits)
    wv_store_dots(out, (b + 1, o), a10, nbits)
    wv_store_dots(out, (b + 2, o), a20, nbits)
    wv_store_dots(out, (b + 3, o), a30, nbits)
    wv_store_dots(out, (b, o + _L), a01, nbits)
    wv_store_dots(out, (b + 1, o + _L), a11, nbits)
    wv_store_dots(out, (b + 2, o + _L), a21, nbits)
    wv_store_dots(out, (b + 3, o + _L), a31, nbits)
    wv_store_dots(out, (b, o + 2 * _L), a02, nbits)
    wv_store_dots(out, (b + 1, o + 2 * _L), a12, nbits)
    wv_store_dots(out, (b + 2, o + 2 * _L), a22, nbits)
    wv_store_dots(out, (b + 3, o + 2 * _L), a32, nbits)
    wv_store_dots(out, (b, o + 3 * _L), a03, nbits)
    wv_store_dots(out, (b + 1, o + 3 * _L), a13, nbits)
    wv_store_dots(out, (b + 2, o + 3 * _L), a23, nbits)
    wv_store_dots(out, (b + 3, o + 3 * _L), a33, nbits)


@njit(cache=True, inline="always")
def _tile1x1(x, wt, b, o, nbits, out):
    """Row ``b`` against channels ``o .. o + 7``."""
    a = wv_zero(_L)
    for k in range(x.shape[1]):
        a = _acc(a, wv_splat(_L, x[b, k]), wt, k, o)
    wv_store_dots(out, (b, o), a, nbits)


@njit(cache=True, inline="always")
def _tile1x4(x, wt, b, o, nbits, out):
    """Row ``b`` against channels ``o .. o + 31`` (4 independent accumulators)."""
    a0 = a1 = a2 = a3 = wv_zero(_L)
    for k in range(x.shape[1]):
        xv = wv_splat(_L, x[b, k])
        a0 = _acc(a0, xv, wt, k, o)
        a1 = _acc(a1, xv, wt, k, o + _L)
        a2 = _acc(a2, xv, wt, k, o + 2 * _L)
        a3 = _acc(a3, xv, wt, k, o + 3 * _L)
    wv_store_dots(out, (b, o), a0, nbits)
    wv_store_dots(out, (b, o + _L), a1, nbits)
    wv_store_dots(out, (b, o + 2 * _L), a2, nbits)
    wv_store_dots(out, (b, o + 3 * _L), a3, nbits)


@njit(cache=True)
def outvec_range(x, wt, nbits, out, o0, o1):
    """``out[:, o0:o1]`` of the packed product of ``x`` (B, K) and ``wt`` (K, O), both
    C-contiguous, ``out`` (B, O) C-contiguous int32."""
    n_b = x.shape[0]
    b4 = n_b - n_b % 4
    o32 = o0 + (o1 - o0) - (o1 - o0) % (4 * _L)
    o8 = o0 + (o1 - o0) - (o1 - o0) % _L
    for o in range(o0, o32, 4 * _L):
        for b in range(0, b4, 4):
            _tile4x4(x, wt, b, o, nbits, out)
        for b in range(b4, n_b):
            _tile1x4(x, wt, b, o, nbits, out)
    for o in range(o32, o8, _L):
        for b in range(n_b):
            _tile1x1(x, wt, b, o, nbits, out)
    for b in range(n_b):
        for o in range(o8, o1):
            t = np.uint64(0)
            for k in range(x.shape[1]):
                t += popcount64(x[b, k] ^ wt[k, o])
            out[b, o] = nbits - 2 * np.int64(t)


__all__ = ["SHORT_K", "outvec_range"]
