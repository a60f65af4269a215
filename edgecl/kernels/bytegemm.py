"""The XNOR-popcount GEMM core with byte accumulators (AVX2, NEON, AVX-512BW strategies).

``out[b, o] = nbits - 2 * sum_k popcount(x[b, k] XOR w[o, k])`` over packed words, as
the word core of :mod:`edgecl.kernels.dense`, but computed ``lanes`` words at a time in
vector registers (:mod:`edgecl.kernels.wordvec`): the popcount of every byte is added in
8-bit lanes for up to :data:`~edgecl.kernels.wordvec.BYTE_STEPS` vectors of the K loop,
then widened once per accumulator (one ``vpsadbw`` / ``uaddlv``), instead of once per word.

Register tiles: 2 rows of ``x`` by 4 rows of ``w`` (8 byte accumulators, each ``x`` and
``w`` vector loaded once per step and used 4 and 2 times), rows of ``x`` one at a time
against 4 rows of ``w`` (the batch-1 GEMV), then single dot products for the leftover
rows of ``w``. The last ``K % lanes`` words of every row go through ``popcount64``.
``lanes`` is a compile-time constant (a literal argument) the caller passes down.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.popcount import popcount64
from edgecl.kernels.wordvec import (
    BYTE_STEPS,
    wv_add_bytes,
    wv_byte_counts,
    wv_load,
    wv_total,
    wv_xor,
    wv_zero,
)


@njit(cache=True, inline="always")
def _step(acc, a, b):
    """``acc`` plus the byte popcounts of ``a XOR b``."""
    return wv_add_bytes(acc, wv_byte_counts(wv_xor(a, b)))


@njit(cache=True, inline="always")
def _tail(x, b, w, o, k0):
    """Popcount of ``x[b, k] XOR w[o, k]`` over the words ``k0..`` past the last vector."""
    t = np.uint64(0)
    for k in range(k0, x.shape[1]):
        t += popcount64(x[b, k] ^ w[o, k])
    return t


@njit(cache=True, inline="always")
def dot_bytes(x, b, w, o, lanes):
    """``sum_k popcount(x[b, k] XOR w[o, k])`` with one byte accumulator."""
    n_k = x.shape[1]
    kv = n_k - n_k % lanes
    t = np.uint64(0)
    k = 0
    while k < kv:
        stop = min(k + BYTE_STEPS * lanes, kv)
        a = wv_zero(lanes)
        while k < stop:
            a = _step(a, wv_load(lanes, x, (b, k)), wv_load(lanes, w, (o, k)))
            k += lanes
        t += wv_total(a)
    return t + _tail(x, b, w, o, kv)


@njit(cache=True, inline="always")
def _tile14(x, w, b, o, nbits, out, lanes):
    """Row ``b`` of ``x`` against rows ``o..o+3`` of ``w``: 4 byte accumulators."""
    n_k = x.shape[1]
    kv = n_k - n_k % lanes
    t0 = t1 = t2 = t3 = np.uint64(0)
    k = 0
    while k < kv:
        stop = min(k + BYTE_STEPS * lanes, kv)
        a0 = a1 = a2 = a3 = wv_zero(lanes)
        while k < stop:
            xv = wv_load(lanes, x, (b, k))
            a0 = _step(a0, xv, wv_load(lanes, w, (o, k)))
            a1 = _step(a1, xv, wv_load(lanes, w, (o + 1, k)))
            a2 = _step(a2, xv, wv_load(lanes, w, (o + 2, k)))
            a3 = _step(a3, xv, wv_load(lanes, w, (o + 3, k)))
            k += lanes
        t0 += wv_total(a0)
        t1 += wv_total(a1)
        t2 += wv_total(a2)
        t3 += wv_total(a3)
    out[b, o] = nbits - 2 * np.int64(t0 + _tail(x, b, w, o, kv))
    out[b, o + 1] = nbits - 2 * np.int64(t1 + _tail(x, b, w, o + 1, kv))
    out[b, o + 2] = nbits - 2 * np.int64(t2 + _tail(x, b, w, o + 2, kv))
    out[b, o + 3] = nbits - 2 * np.int64(t3 + _tail(x, b, w, o + 3, kv))


@njit(cache=True, inline="always")
def _tile24(x, w, b, o, nbits, out, lanes):
    """Rows ``b, b+1`` of ``x`` against rows ``o..o+3`` of ``w``: 8 byte accumulators."""
    n_k = x.shape[1]
    kv = n_k - n_k % lanes
    t00 = t01 = t02 = t03 = t10 = t11 = t12 = t13 = np.uint64(0)
    k = 0
    while k < kv:
        stop = min(k + BYTE_STEPS * lanes, kv)
        a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = wv_zero(lanes)
        while k < stop:
            x0 = wv_load(lanes, x, (b, k))
            x1 = wv_load(lanes, x, (b + 1, k))
            wv = wv_load(lanes, w, (o, k))
            a00 = _step(a00, x0, wv)
            a10 = _step(a10, x1, wv)
            wv = wv_load(lanes, w, (o + 1, k))
            a01 = _step(a01, x0, wv)
            a11 = _step(a11, x1, wv)
            wv = wv_load(lanes, w, (o + 2, k))
            a02 = _step(a02, x0, wv)
            a12 = _step(a12, x1, wv)
            wv = wv_load(lanes, w, (o + 3, k))
            a03 = _step(a03, x0, wv)
            a13 = _step(a13, x1, wv)
            k += lanes
        t00 += wv_total(a00)
        t01 += wv_total(a01)
        t02 += wv_total(a02)
        t03 += wv_total(a03)
        t10 += wv_total(a10)
        t11 += wv_total(a11)
        t12 += wv_total(a12)
        t13 += wv_total(a13)
    out[b, o] = nbits - 2 * np.int64(t00 + _tail(x, b, w, o, kv))
    out[b, o + 1] = nbits - 2 * np.int64(t01 + _tail(x, b, w, o + 1, kv))
    out[b, o + 2] = nbits - 2 * np.int64(t02 + _tail(x, b, w, o + 2, kv))
    out[b, o + 3] = nbits - 2 * np.int64(t03 + _tail(x, b, w, o + 3, kv))
    out[b + 1, o] = nbits - 2 * np.int64(t10 + _tail(x, b + 1, w, o, kv))
    out[b + 1, o + 1] = nbits - 2 * np.int64(t11 + _tail(x, b + 1, w, o + 1, kv))
    out[b + 1, o + 2] = nbits - 2 * np.int64(t12 + _tail(x, b + 1, w, o + 2, kv))
    out[b + 1, o + 3] = nbits - 2 * np.int64(t13 + _tail(x, b + 1, w, o + 3, kv))


@njit(cache=True)
def bytes_range(x, w, nbits, out, o0, o1, lanes):
    """``out[:, o0:o1]`` of the packed product of ``x`` (B, K) and ``w`` (O, K), both
    C-contiguous, with byte accumulators on ``lanes``-word vectors."""
    n_b = x.shape[0]
    b2 = n_b - n_b % 2
    o4 = o1 - (o1 - o0) % 4
    for o in range(o0, o4, 4):
        for b in range(0, b2, 2):
            _tile24(x, w, b, o, nbits, out, lanes)
        for b in range(b2, n_b):
            _tile14(x, w, b, o, nbits, out, lanes)
    for o in range(o4, o1):
        for b in range(n_b):
            out[b, o] = nbits - 2 * np.int64(dot_bytes(x, b, w, o, lanes))


__all__ = ["bytes_range", "dot_bytes"]
