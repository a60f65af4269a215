"""The first layer as a float64 GEMM a pooled row at a time, in register tiles.

For each pooled output row the patches of the conv rows its pool windows cover are
gathered (k in (di, dj, c) order, from the image padded once with ``pad_value``), then a
tile of 4 patches by 4 vectors of 8 channels (AVX-512's 32 registers) keeps its 16
float64 accumulators in registers across all the taps: ``acc = fma(patch[k], w[k, q],
acc)`` for k in order from +0.0 (:mod:`edgecl.kernels.floatvec`, vectors as wide as the
registers). Each float32 x float32 product is exact in float64, so the fused multiply-add
rounds as the multiply then the add: the same sums in the same order as the 3-tap core of
:mod:`edgecl.kernels.first_layer`. Then ``y = float32(sum + bias)``, ``bit = sgn * y >=
sthr`` (NaN gives 0), ORed over each pool window and packed 64 channels to a word. Tests
compare it with :func:`edgecl.kernels.first_layer.conv_threshold_pool_reference` bit for
bit (``pass_taps=9``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.block import gather_patch, tap_offsets
from edgecl.kernels.floatvec import fv_fma, fv_load, fv_splat, fv_store, fv_zero

__all__ = ["fill_padded", "first_layer_rows"]

_W = 8  # float64 lanes of one AVX-512 register


@njit(cache=True, inline="always")
def _tile_wide(buf, wk, r, o, res):
    """Patches ``r .. r + 3`` against channels ``o .. o + 31`` (16 zmm accumulators)."""
    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = fv_zero(_W)
    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = fv_zero(_W)
    for k in range(wk.shape[0]):
        w0 = fv_load(_W, wk, (k, o))
        w1 = fv_load(_W, wk, (k, o + _W))
        w2 = fv_load(_W, wk, (k, o + 2 * _W))
        w3 = fv_load(_W, wk, (k, o + 3 * _W))
        x0 = fv_splat(_W, buf[r, k])
        a00, a01 = fv_fma(x0, w0, a00), fv_fma(x0, w1, a01)
        a02, a03 = fv_fma(x0, w2, a02), fv_fma(x0, w3, a03)
        x1 = fv_splat(_W, buf[r + 1, k])
        a10, a11 = fv_fma(x1, w0, a10), fv_fma(x1, w1, a11)
        a12, a13 = fv_fma(x1, w2, a12), fv_fma(x1, w3, a13)
        x2 = fv_splat(_W, buf[r + 2, k])
        a20, a21 = fv_fma(x2, w0, a20), fv_fma(x2, w1, a21)
        a22, a23 = fv_fma(x2, w2, a22), fv_fma(x2, w3, a23)
        x3 = fv_splat(_W, buf[r + 3, k])
        a30, a31 = fv_fma(x3, w0, a30), fv_fma(x3, w1, a31)
        a32, a33 = fv_fma(x3, w2, a32), fv_fma(x3, w3, a33)
    for i, (c0, c1, c2, c3) in enumerate(
        ((a00, a01, a02, a03), (a10, a11, a12, a13), (a20, a21, a22, a23), (a30, a31, a32, a33))
    ):
        fv_store(res, (r + i, o), c0)
        fv_store(res, (r + i, o + _W), c1)
        fv_store(res, (r + i, o + 2 * _W), c2)
        fv_store(res, (r + i, o + 3 * _W), c3)


@njit(cache=True, inline="always")
def _row1(buf, wk, r, res):
    """Patch ``r`` against every channel, 8 at a time (leftover rows)."""
    for o in range(0, wk.shape[1], _W):
        a = fv_zero(_W)
        for k in range(wk.shape[0]):
            a = fv_fma(fv_splat(_W, buf[r, k]), fv_load(_W, wk, (k, o)), a)
        fv_store(res, (r, o), a)


@njit(cache=True, inline="always")
def _sums(buf, wk, n_rows, res):
    """``res[r, q] = sum_k buf[r, k] * wk[k, q]`` (k in order) for rows ``< n_rows``."""
    r4 = n_rows - n_rows % 4
    for o in range(0, wk.shape[1], 4 * _W):
        for r in range(0, r4, 4):
            _tile_wide(buf, wk, r, o, res)
    for r in range(r4, n_rows):
        _row1(buf, wk, r, res)


@njit(cache=True, inline="always")
def fill_padded(xp, x, s, top, left, wp):
    """Image ``s`` of ``x`` into the flat padded image ``xp`` (its pads already filled)."""
    c = x.shape[3]
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            for cc in range(c):
                xp[((i + top) * wp + j + left) * c + cc] = x[s, i, j, cc]


@njit(cache=True, inline="always")
def _bit(res, r, q, bias, sgn, sthr):
    return sgn[q] * np.float32(res[r, q] + bias[q]) >= sthr[q]


@njit(cache=True, inline="always")
def _pack(res, n_cols, win, step, bias, sgn, sthr, out, s, pi):
    """``out[s, pi, pj, k]``: the bits of ``res``'s rows ORed over each pool window (the
    1x1 and 2x2 windows written out, so LLVM vectorises the channel loop)."""
    for pj in range(out.shape[2]):
        r0 = pj * step
        r1 = n_cols + r0
        for kk in range(out.shape[3]):
            word = np.uint64(0)
            for t in range(64):
                q = kk * 64 + t
                if win == 1:
                    hit = _bit(res, r0, q, bias, sgn, sthr)
                elif win == 2:
                    hit = _bit(res, r0, q, bias, sgn, sthr) | _bit(res, r0 + 1, q, bias, sgn, sthr)
                    hit |= _bit(res, r1, q, bias, sgn, sthr) | _bit(res, r1 + 1, q, bias, sgn, sthr)
                else:
                    hit = False
                    for a in range(win):
                        for b in range(win):
                            hit |= _bit(res, a * n_cols + r0 + b, q, bias, sgn, sthr)
                word |= np.uint64(hit) << np.uint64(t)
            out[s, pi, pj, kk] = word


@njit(cache=True)
def first_layer_rows(x, wk, kh, kw, bias, pads, stride, pad_value, sgn, sthr, pool, pstride, out):
    """The fused first layer (module docstring) on float32 ``x`` (N, H, W, C) into ``out``
    (N, Ho, Wo, n_words(O)); ``wk`` (taps padded, O64) float64 as
    :class:`edgecl.kernels.first_layer.FirstLayer` lays it out (O64 a multiple of 64)."""
    n, h, wd, c = x.shape
    top, bottom, left, right = pads
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_cols = (out.shape[2] - 1) * step + win
    hp, wp = h + top + bottom, wd + left + right
    xp = np.full(hp * wp * c, pad_value, np.float64)  # one padded image, flat
    offs = tap_offsets(kh, kw, wp, c)
    n_rows = win * n_cols
    buf = np.zeros((n_rows, wk.shape[0]), np.float64)  # taps past kh * kw * c stay 0
    res = np.empty((n_rows, wk.shape[1]), np.float64)
    for s in range(n):
        fill_padded(xp, x, s, top, left, wp)
        for pi in range(out.shape[1]):
            for a in range(win):
                i = (pi * step + a) * stride
                for b in range(n_cols):
                    corner = (i * wp + b * stride) * c
                    gather_patch(buf, a * n_cols + b, xp, corner, offs, kh * kw * c)
            _sums(buf, wk, n_rows, res)
            _pack(res, n_cols, win, step, bias, sgn, sthr, out, s, pi)
