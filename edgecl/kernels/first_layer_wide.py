"""The first layer's Numba core for targets with 32 vector registers (AVX-512): 9 taps per
pass (:mod:`edgecl.kernels.first_layer` sums 3 per pass, for AVX2's 16 registers).

Same float64 sums in the same order as :func:`edgecl.kernels.first_layer.conv2d_float`
(the bits equal :func:`edgecl.kernels.first_layer.conv_threshold_pool_reference`'s); only
how many taps each pass over the channels adds differs: here the 36 broadcast patch values
of four outputs stay in registers. Called through
:func:`edgecl.kernels.first_layer.conv_threshold_pool` (``pass_taps=9``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.block import gather_patch, tap_offsets

#: Taps per pass; a layer's taps are padded with zero taps to a multiple of it.
WIDE_TAPS = 9


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_word(acc, wk, k0, patch, p, bias, sgn, sthr, q0):
    """Bits ``q0..q0 + 63`` (one word) of ``sgn * float32(acc + the last 9 taps + bias) >=
    sthr`` for the conv output of ``patch[p]``: a reduction with no store and a fixed trip
    count, so LLVM vectorises it across channels (channels are padded to whole words)."""
    p0, p1, p2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    p3, p4, p5 = patch[p, k0 + 3], patch[p, k0 + 4], patch[p, k0 + 5]
    p6, p7, p8 = patch[p, k0 + 6], patch[p, k0 + 7], patch[p, k0 + 8]
    word = np.uint64(0)
    for t in range(64):
        q = q0 + t
        a = acc[p, q] + p0 * wk[k0, q] + p1 * wk[k0 + 1, q] + p2 * wk[k0 + 2, q]
        a = a + p3 * wk[k0 + 3, q] + p4 * wk[k0 + 4, q] + p5 * wk[k0 + 5, q]
        a = a + p6 * wk[k0 + 6, q] + p7 * wk[k0 + 7, q] + p8 * wk[k0 + 8, q]
        word |= np.uint64(sgn[q] * np.float32(a + bias[q]) >= sthr[q]) << np.uint64(t)
    return word


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_word4(acc, wk, k0, patch, p, bias, sgn, sthr, q0):
    """:func:`_tail_word` for the outputs of ``patch[p .. p + 3]`` at once, ORed: four
    independent sums per channel (each in the same order as alone) share the weight
    loads and hide the FMA latency."""
    a0, a1, a2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    a3, a4, a5 = patch[p, k0 + 3], patch[p, k0 + 4], patch[p, k0 + 5]
    a6, a7, a8 = patch[p, k0 + 6], patch[p, k0 + 7], patch[p, k0 + 8]
    b0, b1, b2 = patch[p + 1, k0], patch[p + 1, k0 + 1], patch[p + 1, k0 + 2]
    b3, b4, b5 = patch[p + 1, k0 + 3], patch[p + 1, k0 + 4], patch[p + 1, k0 + 5]
    b6, b7, b8 = patch[p + 1, k0 + 6], patch[p + 1, k0 + 7], patch[p + 1, k0 + 8]
    c0, c1, c2 = patch[p + 2, k0], patch[p + 2, k0 + 1], patch[p + 2, k0 + 2]
    c3, c4, c5 = patch[p + 2, k0 + 3], patch[p + 2, k0 + 4], patch[p + 2, k0 + 5]
    c6, c7, c8 = patch[p + 2, k0 + 6], patch[p + 2, k0 + 7], patch[p + 2, k0 + 8]
    d0, d1, d2 = patch[p + 3, k0], patch[p + 3, k0 + 1], patch[p + 3, k0 + 2]
    d3, d4, d5 = patch[p + 3, k0 + 3], patch[p + 3, k0 + 4], patch[p + 3, k0 + 5]
    d6, d7, d8 = patch[p + 3, k0 + 6], patch[p + 3, k0 + 7], patch[p + 3, k0 + 8]
    word = np.uint64(0)
    for t in range(64):
        q = q0 + t
        w0, w1, w2 = wk[k0, q], wk[k0 + 1, q], wk[k0 + 2, q]
        w3, w4, w5 = wk[k0 + 3, q], wk[k0 + 4, q], wk[k0 + 5, q]
        w6, w7, w8 = wk[k0 + 6, q], wk[k0 + 7, q], wk[k0 + 8, q]
        sa = acc[p, q] + a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3 + a4 * w4
        sa = sa + a5 * w5 + a6 * w6 + a7 * w7 + a8 * w8
        sb = acc[p + 1, q] + b0 * w0 + b1 * w1 + b2 * w2 + b3 * w3 + b4 * w4
        sb = sb + b5 * w5 + b6 * w6 + b7 * w7 + b8 * w8
        sc = acc[p + 2, q] + c0 * w0 + c1 * w1 + c2 * w2 + c3 * w3 + c4 * w4
        sc = sc + c5 * w5 + c6 * w6 + c7 * w7 + c8 * w8
        sd = acc[p + 3, q] + d0 * w0 + d1 * w1 + d2 * w2 + d3 * w3 + d4 * w4
        sd = sd + d5 * w5 + d6 * w6 + d7 * w7 + d8 * w8
        g, t0, bq = sgn[q], sthr[q], bias[q]
        hit = (g * np.float32(sa + bq) >= t0) | (g * np.float32(sb + bq) >= t0)
        hit |= (g * np.float32(sc + bq) >= t0) | (g * np.float32(sd + bq) >= t0)
        word |= np.uint64(hit) << np.uint64(t)
    return word


@njit(cache=True, fastmath={"contract"}, inline="always")
def _tail_words4(acc, wk, k0, patch, p, bias, sgn, sthr, q0):
    """:func:`_tail_word4` with the four words kept apart (four conv outputs, no pool)."""
    a0, a1, a2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    a3, a4, a5 = patch[p, k0 + 3], patch[p, k0 + 4], patch[p, k0 + 5]
    a6, a7, a8 = patch[p, k0 + 6], patch[p, k0 + 7], patch[p, k0 + 8]
    b0, b1, b2 = patch[p + 1, k0], patch[p + 1, k0 + 1], patch[p + 1, k0 + 2]
    b3, b4, b5 = patch[p + 1, k0 + 3], patch[p + 1, k0 + 4], patch[p + 1, k0 + 5]
    b6, b7, b8 = patch[p + 1, k0 + 6], patch[p + 1, k0 + 7], patch[p + 1, k0 + 8]
    c0, c1, c2 = patch[p + 2, k0], patch[p + 2, k0 + 1], patch[p + 2, k0 + 2]
    c3, c4, c5 = patch[p + 2, k0 + 3], patch[p + 2, k0 + 4], patch[p + 2, k0 + 5]
    c6, c7, c8 = patch[p + 2, k0 + 6], patch[p + 2, k0 + 7], patch[p + 2, k0 + 8]
    d0, d1, d2 = patch[p + 3, k0], patch[p + 3, k0 + 1], patch[p + 3, k0 + 2]
    d3, d4, d5 = patch[p + 3, k0 + 3], patch[p + 3, k0 + 4], patch[p + 3, k0 + 5]
    d6, d7, d8 = patch[p + 3, k0 + 6], patch[p + 3, k0 + 7], patch[p + 3, k0 + 8]
    wa = np.uint64(0)
    wb = np.uint64(0)
    wc = np.uint64(0)
    wd = np.uint64(0)
    for t in range(64):
        q = q0 + t
        w0, w1, w2 = wk[k0, q], wk[k0 + 1, q], wk[k0 + 2, q]
        w3, w4, w5 = wk[k0 + 3, q], wk[k0 + 4, q], wk[k0 + 5, q]
        w6, w7, w8 = wk[k0 + 6, q], wk[k0 + 7, q], wk[k0 + 8, q]
        sa = acc[p, q] + a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3 + a4 * w4
        sa = sa + a5 * w5 + a6 * w6 + a7 * w7 + a8 * w8
        sb = acc[p + 1, q] + b0 * w0 + b1 * w1 + b2 * w2 + b3 * w3 + b4 * w4
        sb = sb + b5 * w5 + b6 * w6 + b7 * w7 + b8 * w8
        sc = acc[p + 2, q] + c0 * w0 + c1 * w1 + c2 * w2 + c3 * w3 + c4 * w4
        sc = sc + c5 * w5 + c6 * w6 + c7 * w7 + c8 * w8
        sd = acc[p + 3, q] + d0 * w0 + d1 * w1 + d2 * w2 + d3 * w3 + d4 * w4
        sd = sd + d5 * w5 + d6 * w6 + d7 * w7 + d8 * w8
        g, t0, bq = sgn[q], sthr[q], bias[q]
        sh = np.uint64(t)
        wa |= np.uint64(g * np.float32(sa + bq) >= t0) << sh
        wb |= np.uint64(g * np.float32(sb + bq) >= t0) << sh
        wc |= np.uint64(g * np.float32(sc + bq) >= t0) << sh
        wd |= np.uint64(g * np.float32(sd + bq) >= t0) << sh
    return wa, wb, wc, wd


@njit(cache=True, fastmath={"contract"}, inline="always")
def _head9(acc, wk, k0, patch, p):
    """``acc[p, q] += patch[p, k] * wk[k, q]`` for the 9 taps ``k0 .. k0 + 8``, k in order
    (one pass over the accumulator row for 9 taps: the same sums as tap by tap)."""
    a0, a1, a2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    a3, a4, a5 = patch[p, k0 + 3], patch[p, k0 + 4], patch[p, k0 + 5]
    a6, a7, a8 = patch[p, k0 + 6], patch[p, k0 + 7], patch[p, k0 + 8]
    for q in range(wk.shape[1]):
        sa = acc[p, q] + a0 * wk[k0, q] + a1 * wk[k0 + 1, q] + a2 * wk[k0 + 2, q]
        sa = sa + a3 * wk[k0 + 3, q] + a4 * wk[k0 + 4, q] + a5 * wk[k0 + 5, q]
        acc[p, q] = sa + a6 * wk[k0 + 6, q] + a7 * wk[k0 + 7, q] + a8 * wk[k0 + 8, q]


@njit(cache=True, fastmath={"contract"}, inline="always")
def _head9x4(acc, wk, k0, patch, p):
    """:func:`_head9` for ``patch[p .. p + 3]`` at once (the weight loads shared)."""
    a0, a1, a2 = patch[p, k0], patch[p, k0 + 1], patch[p, k0 + 2]
    a3, a4, a5 = patch[p, k0 + 3], patch[p, k0 + 4], patch[p, k0 + 5]
    a6, a7, a8 = patch[p, k0 + 6], patch[p, k0 + 7], patch[p, k0 + 8]
    b0, b1, b2 = patch[p + 1, k0], patch[p + 1, k0 + 1], patch[p + 1, k0 + 2]
    b3, b4, b5 = patch[p + 1, k0 + 3], patch[p + 1, k0 + 4], patch[p + 1, k0 + 5]
    b6, b7, b8 = patch[p + 1, k0 + 6], patch[p + 1, k0 + 7], patch[p + 1, k0 + 8]
    c0, c1, c2 = patch[p + 2, k0], patch[p + 2, k0 + 1], patch[p + 2, k0 + 2]
    c3, c4, c5 = patch[p + 2, k0 + 3], patch[p + 2, k0 + 4], patch[p + 2, k0 + 5]
    c6, c7, c8 = patch[p + 2, k0 + 6], patch[p + 2, k0 + 7], patch[p + 2, k0 + 8]
    d0, d1, d2 = patch[p + 3, k0], patch[p + 3, k0 + 1], patch[p + 3, k0 + 2]
    d3, d4, d5 = patch[p + 3, k0 + 3], patch[p + 3, k0 + 4], patch[p + 3, k0 + 5]
    d6, d7, d8 = patch[p + 3, k0 + 6], patch[p + 3, k0 + 7], patch[p + 3, k0 + 8]
    for q in range(wk.shape[1]):
        w0, w1, w2 = wk[k0, q], wk[k0 + 1, q], wk[k0 + 2, q]
        w3, w4, w5 = wk[k0 + 3, q], wk[k0 + 4, q], wk[k0 + 5, q]
        w6, w7, w8 = wk[k0 + 6, q], wk[k0 + 7, q], wk[k0 + 8, q]
        sa = acc[p, q] + a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3 + a4 * w4
        acc[p, q] = sa + a5 * w5 + a6 * w6 + a7 * w7 + a8 * w8
        sb = acc[p + 1, q] + b0 * w0 + b1 * w1 + b2 * w2 + b3 * w3 + b4 * w4
        acc[p + 1, q] = sb + b5 * w5 + b6 * w6 + b7 * w7 + b8 * w8
        sc = acc[p + 2, q] + c0 * w0 + c1 * w1 + c2 * w2 + c3 * w3 + c4 * w4
        acc[p + 2, q] = sc + c5 * w5 + c6 * w6 + c7 * w7 + c8 * w8
        sd = acc[p + 3, q] + d0 * w0 + d1 * w1 + d2 * w2 + d3 * w3 + d4 * w4
        acc[p + 3, q] = sd + d5 * w5 + d6 * w6 + d7 * w7 + d8 * w8


@njit(cache=True, fastmath={"contract"}, inline="always")
def _heads(acc, wk, head, patch, m):
    """The accumulators of ``patch[0 .. m - 1]``: their first ``head`` taps (a multiple of
    9), summed in order from 0.0, four outputs at a time."""
    for p in range(m):
        for q in range(wk.shape[1]):
            acc[p, q] = 0.0
    p = 0
    while p + 4 <= m:
        for k0 in range(0, head, WIDE_TAPS):
            _head9x4(acc, wk, k0, patch, p)
        p += 4
    while p < m:
        for k0 in range(0, head, WIDE_TAPS):
            _head9(acc, wk, k0, patch, p)
        p += 1


@njit(cache=True, fastmath={"contract"})
def conv_thr_pool_wide(x, wk, kh, kw, bias, pads, stride, pad_value, sgn, sthr, pool, pstride, out):
    """For each pooled output and each conv output of its ``win x win`` window (without a
    pool: for every four conv outputs of a row): the patch (k in (di, dj, c) order, from the
    image padded once with ``pad_value``), then ``sum_k patch[k] * wk[k, q]`` in float64, k
    in order (each float32 x float32 product is exact in float64, so contracting it into an
    FMA rounds exactly as a multiply then an add), ``y = float32(sum + bias)``, and the bits
    ``sgn * y >= sthr`` (ORed over the pool window) into packed words. Four conv outputs
    share every weight load, the channels are the vector lanes."""
    n, h, wd, c = x.shape
    n_k, o = wk.shape
    head = n_k - WIDE_TAPS
    top, bottom, left, right = pads
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_pix = win * win if pool > 0 else 4
    hp, wp = h + top + bottom, wd + left + right
    xp = np.full(hp * wp * c, pad_value, np.float64)  # one padded image, flat
    offs = tap_offsets(kh, kw, wp, c)
    patch = np.zeros((n_pix, n_k), np.float64)  # taps past kh * kw * c stay 0
    acc = np.zeros((n_pix, o), np.float64)
    for s in range(n):
        for i in range(h):
            for j in range(wd):
                for cc in range(c):
                    xp[((i + top) * wp + j + left) * c + cc] = x[s, i, j, cc]
        for pi in range(out.shape[1]):
            if pool == 0:
                pj = 0
                while pj < out.shape[2]:
                    m = min(4, out.shape[2] - pj)
                    for p in range(m):
                        corner = (pi * stride * wp + (pj + p) * stride) * c
                        gather_patch(patch, p, xp, corner, offs, kh * kw * c)
                    _heads(acc, wk, head, patch, m)
                    for kk in range(out.shape[3]):
                        if m == 4:
                            w0, w1, w2, w3 = _tail_words4(
                                acc, wk, head, patch, 0, bias, sgn, sthr, kk * 64
                            )
                            out[s, pi, pj, kk] = w0
                            out[s, pi, pj + 1, kk] = w1
                            out[s, pi, pj + 2, kk] = w2
                            out[s, pi, pj + 3, kk] = w3
                        else:
                            for p in range(m):
                                out[s, pi, pj + p, kk] = _tail_word(
                                    acc, wk, head, patch, p, bias, sgn, sthr, kk * 64
                                )
                    pj += m
                continue
            for pj in range(out.shape[2]):
                for p in range(n_pix):
                    i = (pi * step + p // win) * stride
                    j = (pj * step + p % win) * stride
                    gather_patch(patch, p, xp, (i * wp + j) * c, offs, kh * kw * c)
                _heads(acc, wk, head, patch, n_pix)
                for kk in range(out.shape[3]):
                    word = np.uint64(0)
                    p = 0
                    while p + 4 <= n_pix:
                        word |= _tail_word4(acc, wk, head, patch, p, bias, sgn, sthr, kk * 64)
                        p += 4
                    while p < n_pix:
                        word |= _tail_word(acc, wk, head, patch, p, bias, sgn, sthr, kk * 64)
                        p += 1
                    out[s, pi, pj, kk] = word
