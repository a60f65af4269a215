"""The first layer as a float64 GEMM in register tiles, the threshold from the registers.

Tiles of 4 patches by 4 vectors of 8 channels (AVX-512's 32 registers), or by 2 vectors
of 4 channels (AVX2's 16 ymm: 8 accumulators, as many as 2 FMA ports of latency 4 keep
busy), keep their float64 accumulators in registers across all the taps:
``acc = fma(x[k], w[k, q], acc)`` for k in (di, dj, c) order from +0.0
(:mod:`edgecl.kernels.floatvec`, vectors as wide as the registers), each tap read from
the image padded once with ``pad_value``. Each float32 x float32 product is exact in
float64, so the fused multiply-add rounds as the multiply then the add: the same sums in
the same order as the 3-tap core of :mod:`edgecl.kernels.first_layer`.

The weights come with each channel's sign folded in (``sgn * w``: exact), so
``sgn * float32(sum + bias) >= sthr`` is ``float32(sum' + sgn * bias) >= sthr``
(negation commutes with every rounding; sums that differ only in the sign of a zero
compare alike), which is monotone in ``sum'``: it is ``sum' >= m`` for the channel's
:func:`~edgecl.kernels.first_layer.sum_thresholds` ``m`` (found once; a NaN sum never
fires), one compare in the registers. For 2x2 pools of stride 2, the 4 patches of a
tile are one pool window, and the window's bit is ``any(sum' >= m)`` over them
(:func:`~edgecl.kernels.floatvec.fv_any_ge_bits`), straight into the packed output
word. Other pools gather a pooled row's patches, threshold every sum into packed words
and OR them over each window. No sum is ever stored. Tests compare it with
:func:`edgecl.kernels.first_layer.conv_threshold_pool_reference` bit for bit
(``pass_taps=9``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.block_gemm import pool_bit_rows
from edgecl.kernels.floatvec import (
    fv_any_ge_bits,
    fv_fma,
    fv_ge_bits,
    fv_load,
    fv_splat,
    fv_splat_at,
    fv_zero,
)
from edgecl.kernels.fused_bytes import gather_patch, tap_offsets
from edgecl.kernels.popcount import numba_target

__all__ = ["fill_padded", "first_layer_rows"]

_WIDE = "avx512f" in numba_target().features
_W = 8 if _WIDE else 4  # float64 lanes of one vector register
_TILE = 4 * _W if _WIDE else 2 * _W  # channels of one tile: 4 or 2 vectors per patch


@njit(cache=True, inline="always")
def _bits(acc, q, thr):
    """The bits of channels ``q .. q + _W - 1`` from their (sign-folded) sums."""
    return fv_ge_bits(acc, fv_load(_W, thr, (q,)))


@njit(cache=True, inline="always")
def _any_bits(a, b, c, d, q, thr):
    """The bits of channels ``q .. q + _W - 1`` of a window whose 4 sums are ``a .. d``."""
    return fv_any_ge_bits(a, b, c, d, fv_load(_W, thr, (q,)))


@njit(cache=True, inline="always")
def _joined(b0, b1, b2, b3):
    """4 groups of ``_W`` bits as one group of ``4 * _W``."""
    w = np.uint64(_W)
    return b0 | (b1 << w) | (b2 << (w + w)) | (b3 << (w + w + w))


@njit(cache=True, inline="always")
def _patch_bits(a0, a1, a2, a3, o, thr):
    """The bits of channels ``o .. o + 4 * _W - 1`` of one patch from 4 vectors of sums."""
    return _joined(
        _bits(a0, o, thr),
        _bits(a1, o + _W, thr),
        _bits(a2, o + 2 * _W, thr),
        _bits(a3, o + 3 * _W, thr),
    )


@njit(cache=True, inline="always")
def _sums4x4(xp, c0, c1, c2, c3, offs, wk, o):
    """Sums of the patches at corners ``c0 .. c3`` of the flat padded image ``xp`` against
    channels ``o .. o + 31``: 16 vectors, patch-major."""
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = fv_zero(_W)
    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = fv_zero(_W)
    for k in range(offs.shape[0]):
        w0 = fv_load(_W, wk, (k, o))
        w1 = fv_load(_W, wk, (k, o + _W))
        w2 = fv_load(_W, wk, (k, o + 2 * _W))
        w3 = fv_load(_W, wk, (k, o + 3 * _W))
        off = offs[k]
        x0 = fv_splat_at(_W, xp, (c0 + off,))
        a00, a01 = fv_fma(x0, w0, a00), fv_fma(x0, w1, a01)
        a02, a03 = fv_fma(x0, w2, a02), fv_fma(x0, w3, a03)
        x1 = fv_splat_at(_W, xp, (c1 + off,))
        a10, a11 = fv_fma(x1, w0, a10), fv_fma(x1, w1, a11)
        a12, a13 = fv_fma(x1, w2, a12), fv_fma(x1, w3, a13)
        x2 = fv_splat_at(_W, xp, (c2 + off,))
        a20, a21 = fv_fma(x2, w0, a20), fv_fma(x2, w1, a21)
        a22, a23 = fv_fma(x2, w2, a22), fv_fma(x2, w3, a23)
        x3 = fv_splat_at(_W, xp, (c3 + off,))
        a30, a31 = fv_fma(x3, w0, a30), fv_fma(x3, w1, a31)
        a32, a33 = fv_fma(x3, w2, a32), fv_fma(x3, w3, a33)
    return (a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33)


@njit(cache=True, inline="always")
def _sums4x2(xp, c0, c1, c2, c3, offs, wk, o):
    """Sums of the patches at corners ``c0 .. c3`` against channels ``o .. o + 2 * _W - 1``:
    8 vectors, patch-major (AVX2's tile)."""
    a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = fv_zero(_W)
    for k in range(offs.shape[0]):
        w0 = fv_load(_W, wk, (k, o))
        w1 = fv_load(_W, wk, (k, o + _W))
        off = offs[k]
        x0 = fv_splat_at(_W, xp, (c0 + off,))
        a00, a01 = fv_fma(x0, w0, a00), fv_fma(x0, w1, a01)
        x1 = fv_splat_at(_W, xp, (c1 + off,))
        a10, a11 = fv_fma(x1, w0, a10), fv_fma(x1, w1, a11)
        x2 = fv_splat_at(_W, xp, (c2 + off,))
        a20, a21 = fv_fma(x2, w0, a20), fv_fma(x2, w1, a21)
        x3 = fv_splat_at(_W, xp, (c3 + off,))
        a30, a31 = fv_fma(x3, w0, a30), fv_fma(x3, w1, a31)
    return (a00, a01, a10, a11, a20, a21, a30, a31)


@njit(cache=True, inline="always")
def _tile_rows(xp, c0, c1, c2, c3, offs, wk, thr, o):
    """The bits of channels ``o .. o + _TILE - 1`` (bits ``0 .. _TILE - 1``) of each of the
    4 patches at corners ``c0 .. c3``."""
    if _WIDE:
        a = _sums4x4(xp, c0, c1, c2, c3, offs, wk, o)
        return (
            _patch_bits(a[0], a[1], a[2], a[3], o, thr),
            _patch_bits(a[4], a[5], a[6], a[7], o, thr),
            _patch_bits(a[8], a[9], a[10], a[11], o, thr),
            _patch_bits(a[12], a[13], a[14], a[15], o, thr),
        )
    a = _sums4x2(xp, c0, c1, c2, c3, offs, wk, o)
    w, q1 = np.uint64(_W), o + _W
    return (
        _bits(a[0], o, thr) | (_bits(a[1], q1, thr) << w),
        _bits(a[2], o, thr) | (_bits(a[3], q1, thr) << w),
        _bits(a[4], o, thr) | (_bits(a[5], q1, thr) << w),
        _bits(a[6], o, thr) | (_bits(a[7], q1, thr) << w),
    )


@njit(cache=True, inline="always")
def _tile_window(xp, c0, c1, c2, c3, offs, wk, thr, o):
    """The bits of channels ``o .. o + _TILE - 1`` of the 2x2 window whose 4 patches are at
    ``c0 .. c3``: a channel fires where any of its 4 sums reaches its threshold."""
    if _WIDE:
        a = _sums4x4(xp, c0, c1, c2, c3, offs, wk, o)
        return _joined(
            _any_bits(a[0], a[4], a[8], a[12], o, thr),
            _any_bits(a[1], a[5], a[9], a[13], o + _W, thr),
            _any_bits(a[2], a[6], a[10], a[14], o + 2 * _W, thr),
            _any_bits(a[3], a[7], a[11], a[15], o + 3 * _W, thr),
        )
    a = _sums4x2(xp, c0, c1, c2, c3, offs, wk, o)
    low = _any_bits(a[0], a[2], a[4], a[6], o, thr)
    return low | (_any_bits(a[1], a[3], a[5], a[7], o + _W, thr) << np.uint64(_W))


@njit(cache=True, inline="always")
def _window_rows(xp, s, pi, wp, c, stride, offs, wk, thr, out):
    """Pooled row ``pi`` of image ``s`` for a 2x2 pool of stride 2: each tile is one
    window's 4 patches, its bits straight into the packed output words."""
    row0 = 2 * pi * stride * wp
    row1 = (2 * pi + 1) * stride * wp
    for px in range(out.shape[2]):
        col0 = 2 * px * stride
        col1 = (2 * px + 1) * stride
        c0, c1 = (row0 + col0) * c, (row0 + col1) * c
        c2, c3 = (row1 + col0) * c, (row1 + col1) * c
        for kk in range(out.shape[3]):
            word = np.uint64(0)
            for t in range(0, 64, _TILE):
                bits = _tile_window(xp, c0, c1, c2, c3, offs, wk, thr, kk * 64 + t)
                word |= bits << np.uint64(t)
            out[s, pi, px, kk] = word


@njit(cache=True, inline="always")
def _row_bits(buf, taps, wk, thr, bits):
    """``bits[r]``: the threshold bits of every channel of patch row ``r`` of ``buf`` (4
    patches at a time, leftover patches ``_W`` channels at a time); ``taps`` = ``0 .. K - 1``."""
    n_rows, n_k = buf.shape
    flat = buf.reshape(-1)
    bits[:] = 0
    r4 = n_rows - n_rows % 4
    for o in range(0, wk.shape[1], _TILE):
        sh = np.uint64(o % 64)
        for r in range(0, r4, 4):
            c = (r * n_k, (r + 1) * n_k, (r + 2) * n_k, (r + 3) * n_k)
            b = _tile_rows(flat, c[0], c[1], c[2], c[3], taps, wk, thr, o)
            bits[r, o // 64] |= b[0] << sh
            bits[r + 1, o // 64] |= b[1] << sh
            bits[r + 2, o // 64] |= b[2] << sh
            bits[r + 3, o // 64] |= b[3] << sh
    for r in range(r4, n_rows):
        for o in range(0, wk.shape[1], _W):
            acc = fv_zero(_W)
            for k in range(n_k):
                acc = fv_fma(fv_splat(_W, buf[r, k]), fv_load(_W, wk, (k, o)), acc)
            bits[r, o // 64] |= _bits(acc, o, thr) << np.uint64(o % 64)


@njit(cache=True, inline="always")
def fill_padded(xp, x, s, top, left, wp):
    """Image ``s`` of ``x`` into the flat padded image ``xp`` (its pads already filled)."""
    c = x.shape[3]
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            for cc in range(c):
                xp[((i + top) * wp + j + left) * c + cc] = x[s, i, j, cc]


@njit(cache=True)
def first_layer_rows(x, wk, thr, kh, kw, pads, stride, pad_value, pool, pstride, out):
    """The fused first layer (module docstring) on float32 ``x`` (N, H, W, C) into ``out``
    (N, Ho, Wo, n_words(O)); ``wk`` (taps padded, O64) the sign-folded float64 weights and
    ``thr`` (O64,) the sum thresholds, as :class:`edgecl.kernels.first_layer.FirstLayer`
    lays them out (``wk_signed``, ``sum_thr``; O64 a multiple of 64)."""
    n, h, wd, c = x.shape
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, wd + left + right
    xp = np.full(hp * wp * c, pad_value, np.float64)  # one padded image, flat
    offs = tap_offsets(kh, kw, wp, c)
    window = pool == 2 and pstride == 2
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_cols = (out.shape[2] - 1) * step + win
    n_rows = 0 if window else win * n_cols
    buf = np.zeros((n_rows, wk.shape[0]), np.float64)  # taps past kh * kw * c stay 0
    bits = np.empty((n_rows, wk.shape[1] // 64), np.uint64)
    taps = np.arange(wk.shape[0])
    for s in range(n):
        fill_padded(xp, x, s, top, left, wp)
        for pi in range(out.shape[1]):
            if window:
                _window_rows(xp, s, pi, wp, c, stride, offs, wk, thr, out)
                continue
            for a in range(win):
                i = (pi * step + a) * stride
                for b in range(n_cols):
                    corner = (i * wp + b * stride) * c
                    gather_patch(buf, a * n_cols + b, xp, corner, offs, kh * kw * c)
            _row_bits(buf, taps, wk, thr, bits)
            pool_bit_rows(bits, n_cols, win, step, out, s, pi)
