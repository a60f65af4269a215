"""The XNOR-popcount GEMM vectorised across output channels, for short reductions.

``out[b, o] = nbits - 2 * sum_k popcount(x[b, k] XOR wt[k, o])`` with the weights
transposed to ``(K, O)``: each word of ``x`` is broadcast and XORed with 8 output
channels' words at once (``vpopcntq`` on zmm registers, the ``vpopcntdq`` strategy), so
the 64-bit accumulators *are* the outputs: no horizontal reduction per output, which is
what the K-vectorised tiles of :mod:`edgecl.kernels.dense` pay for every output when K
is a few dozen words (a 3x3 conv on 256 channels: 36 words). Register tiles of 4 rows of
``x`` by 4 vectors of 8 channels (16 accumulators); leftover rows one at a time against 4
vectors, leftover channel vectors one at a time, the last ``O % 8`` channels by
``popcount64``.

Two epilogues on the same tiles: :func:`outvec_range` stores the ±1 dots (int32)
(:func:`outvec_tiles_range` the same from weights laid out in contiguous 32-channel tiles,
for long reductions whose weights stream from memory);
:func:`outvec_bits_range` tests each count against a range and ORs the hits into packed
words (bit ``o % 64`` of word ``o // 64``), so a fused block never stores its dots.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.popcount import popcount64
from edgecl.kernels.wordvec import (
    wv_add,
    wv_load,
    wv_range_bits,
    wv_splat,
    wv_store_dots,
    wv_word_counts,
    wv_xor,
    wv_zero,
)

#: Reductions up to this many words take the output-vectorised GEMM (vpopcntdq strategy).
SHORT_K = 64

_L = 8  # output channels per vector (one zmm register of words)
#: output channels of one tile of :func:`outvec_tiles_range`'s weights
TILE_CHANNELS = 4 * _L


@njit(cache=True, inline="always")
def _acc(acc, xv, wt, k, o):
    return wv_add(acc, wv_word_counts(wv_xor(xv, wv_load(_L, wt, (k, o)))))


@njit(cache=True, inline="always")
def _counts4x4(x, wt, b, o):
    """Popcount sums of rows ``b .. b + 3`` against channels ``o .. o + 31``: 16 vectors,
    row-major (row ``b + i``, channels ``o + 8 j ..`` at ``4 i + j``)."""
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
    return (a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33)


@njit(cache=True, inline="always")
def _counts1x4(x, wt, b, o):
    """Popcount sums of row ``b`` against channels ``o .. o + 31`` (4 vectors)."""
    a0 = a1 = a2 = a3 = wv_zero(_L)
    for k in range(x.shape[1]):
        xv = wv_splat(_L, x[b, k])
        a0 = _acc(a0, xv, wt, k, o)
        a1 = _acc(a1, xv, wt, k, o + _L)
        a2 = _acc(a2, xv, wt, k, o + 2 * _L)
        a3 = _acc(a3, xv, wt, k, o + 3 * _L)
    return (a0, a1, a2, a3)


@njit(cache=True, inline="always")
def _counts1x1(x, wt, b, o):
    """Popcount sums of row ``b`` against channels ``o .. o + 7``."""
    a = wv_zero(_L)
    for k in range(x.shape[1]):
        a = _acc(a, wv_splat(_L, x[b, k]), wt, k, o)
    return a


@njit(cache=True, inline="always")
def _count1(x, wt, b, o):
    t = np.uint64(0)
    for k in range(x.shape[1]):
        t += popcount64(x[b, k] ^ wt[k, o])
    return t


@njit(cache=True, inline="always")
def _dots4(out, b, o, nbits, a0, a1, a2, a3):
    """Store the dots of 4 vectors of counts: row ``b``, channels ``o .. o + 31``."""
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
            a = _counts4x4(x, wt, b, o)
            _dots4(out, b, o, nbits, a[0], a[1], a[2], a[3])
            _dots4(out, b + 1, o, nbits, a[4], a[5], a[6], a[7])
            _dots4(out, b + 2, o, nbits, a[8], a[9], a[10], a[11])
            _dots4(out, b + 3, o, nbits, a[12], a[13], a[14], a[15])
        for b in range(b4, n_b):
            a4 = _counts1x4(x, wt, b, o)
            _dots4(out, b, o, nbits, a4[0], a4[1], a4[2], a4[3])
    for o in range(o32, o8, _L):
        for b in range(n_b):
            wv_store_dots(out, (b, o), _counts1x1(x, wt, b, o), nbits)
    for b in range(n_b):
        for o in range(o8, o1):
            out[b, o] = nbits - 2 * np.int64(_count1(x, wt, b, o))


@njit(cache=True)
def outvec_tiles_range(x, tiles, nbits, out, t0, t1):
    """Tiles ``t0 .. t1 - 1`` of the packed product of ``x`` (B, K) and weights laid out
    as ``tiles`` (T, K, 32): channels ``32 t .. 32 t + 31`` of the product, their (K, 32)
    words contiguous (one sequential stream a tile, where (K, O) strides a row of O words
    between words of the same channel); ``out`` (B, O) C-contiguous int32, ``O <= 32 T``
    (the pad channels of the last tile are computed, never stored)."""
    n_b, n_out = x.shape[0], out.shape[1]
    b4 = n_b - n_b % 4
    part = np.empty((4, 4 * _L), np.int32)  # a partial last tile's dots, before the copy
    for t in range(t0, t1):
        wt = tiles[t]
        o = t * 4 * _L
        n_keep = min(4 * _L, n_out - o)
        whole = n_keep == 4 * _L
        dst, o_dst = (out, o) if whole else (part, 0)
        for b in range(0, b4, 4):
            r = b if whole else 0
            a = _counts4x4(x, wt, b, 0)
            _dots4(dst, r, o_dst, nbits, a[0], a[1], a[2], a[3])
            _dots4(dst, r + 1, o_dst, nbits, a[4], a[5], a[6], a[7])
            _dots4(dst, r + 2, o_dst, nbits, a[8], a[9], a[10], a[11])
            _dots4(dst, r + 3, o_dst, nbits, a[12], a[13], a[14], a[15])
            if not whole:
                out[b : b + 4, o : o + n_keep] = part[:, :n_keep]
        for b in range(b4, n_b):
            a4 = _counts1x4(x, wt, b, 0)
            _dots4(dst, b if whole else 0, o_dst, nbits, a4[0], a4[1], a4[2], a4[3])
            if not whole:
                out[b, o : o + n_keep] = part[0, :n_keep]


@njit(cache=True, inline="always")
def _or_bits(out, b, o, bits):
    """OR the 8 channel bits ``bits`` of channels ``o .. o + 7`` into row ``b``."""
    out[b, o // 64] |= bits << np.uint64(o % 64)


@njit(cache=True, inline="always")
def _bits4(out, b, o, lo4, wd4, a0, a1, a2, a3):
    """OR the range bits of 4 vectors of counts into row ``b``, channels ``o .. o + 31``
    (``o % 32 == 0``: the 32 bits land in one word)."""
    word = wv_range_bits(a0, lo4[0], wd4[0])
    word |= wv_range_bits(a1, lo4[1], wd4[1]) << np.uint64(_L)
    word |= wv_range_bits(a2, lo4[2], wd4[2]) << np.uint64(2 * _L)
    word |= wv_range_bits(a3, lo4[3], wd4[3]) << np.uint64(3 * _L)
    out[b, o // 64] |= word << np.uint64(o % 64)


@njit(cache=True)
def outvec_bits_range(x, wt, lo, width, out):
    """Bit ``o`` of row ``b`` of ``out`` (B, n_words(O)) uint64, zeroed here: whether
    ``lo[o] <= count[b, o] <= lo[o] + width[o]`` for the popcount sums ``count`` of ``x``
    (B, K) against ``wt`` (K, O); ``lo``, ``width`` uint64 with at least ``O`` rounded up
    to 8 entries (pad channels never read past ``O``: their bits stay 0)."""
    n_b = x.shape[0]
    n_out = wt.shape[1]
    b4 = n_b - n_b % 4
    o32 = n_out - n_out % (4 * _L)
    o8 = n_out - n_out % _L
    out[:] = 0
    for o in range(0, o32, 4 * _L):
        lo4 = (wv_load(_L, lo, (o,)), wv_load(_L, lo, (o + _L,)))
        lo4 = lo4 + (wv_load(_L, lo, (o + 2 * _L,)), wv_load(_L, lo, (o + 3 * _L,)))
        wd4 = (wv_load(_L, width, (o,)), wv_load(_L, width, (o + _L,)))
        wd4 = wd4 + (wv_load(_L, width, (o + 2 * _L,)), wv_load(_L, width, (o + 3 * _L,)))
        for b in range(0, b4, 4):
            a = _counts4x4(x, wt, b, o)
            _bits4(out, b, o, lo4, wd4, a[0], a[1], a[2], a[3])
            _bits4(out, b + 1, o, lo4, wd4, a[4], a[5], a[6], a[7])
            _bits4(out, b + 2, o, lo4, wd4, a[8], a[9], a[10], a[11])
            _bits4(out, b + 3, o, lo4, wd4, a[12], a[13], a[14], a[15])
        for b in range(b4, n_b):
            a4 = _counts1x4(x, wt, b, o)
            _bits4(out, b, o, lo4, wd4, a4[0], a4[1], a4[2], a4[3])
    for o in range(o32, o8, _L):
        lov, wdv = wv_load(_L, lo, (o,)), wv_load(_L, width, (o,))
        for b in range(n_b):
            _or_bits(out, b, o, wv_range_bits(_counts1x1(x, wt, b, o), lov, wdv))
    for b in range(n_b):
        for o in range(o8, n_out):
            hit = _count1(x, wt, b, o) - lo[o] <= width[o]
            out[b, o // 64] |= np.uint64(hit) << np.uint64(o % 64)


__all__ = ["SHORT_K", "TILE_CHANNELS", "outvec_bits_range", "outvec_range", "outvec_tiles_range"]
