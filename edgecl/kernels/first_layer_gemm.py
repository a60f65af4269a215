"""The first layer as a float32 GEMM in register tiles, decided exactly from the registers.

The bit of a conv output is ``s >= m`` for its float64 sum ``s`` (the float32 products
summed in tap order from +0.0, as the 3-tap core of :mod:`edgecl.kernels.first_layer`
sums them) and the channel's :func:`~edgecl.kernels.first_layer.sum_thresholds` ``m``.
The tiles compute the same sums in float32, twice the lanes of float64: 4 patches by 4
vectors of 16 channels (AVX-512's 32 registers) or by 2 vectors of 8 (AVX2's 16 ymm: 8
accumulators, as many as 2 FMA ports of latency 4 keep busy), ``acc = fma(x[k], w[k, q],
acc)`` in registers across all the taps (:mod:`edgecl.kernels.floatvec`), each tap read
from the image padded once with ``pad_value``.

A float32 sum is within ``e = 1.0625 n (2^-24 + 2^-53) L X + n 2^-149`` of the float64
one (the FMA dot-product bound ``gamma_n sum |w x|`` of both, Higham's Theorem 3.1 with one
rounding a step, underflow included: ``n`` taps, ``L`` the channel's ``sum |w|``, ``X``
the largest finite ``|x|`` of the padded image), so ``s32 >= hi`` (``hi`` the least float32
``>= m + e``) fires for certain and ``s32 < lo`` (``lo`` the largest float32 ``<= m - e``)
does not; ``hi`` and ``lo`` are set once an image. An output between them (the float32
sum within ``e`` of the threshold: about ``1e-6`` of the sums' range, rare) is decided by
its exact float64 sum in tap order. An image with an infinite or NaN value (its sums
could be NaN), an image whose sums could overflow float32 (``L X > 2^100``), or a layer
with a non-finite weight, is decided exactly throughout, so the tiles' sums are finite.
The bits are those of the float64 sums, bit for bit.

The weights come with each channel's sign folded in (``sgn * w``: exact), so
``sgn * float32(sum + bias) >= sthr`` is ``float32(sum' + sgn * bias) >= sthr``
(negation commutes with every rounding; sums that differ only in the sign of a zero
compare alike), monotone in ``sum'``: ``sum' >= m``. For 2x2 pools of stride 2, the 4
patches of a tile are one pool window, and the window's bit is ``any(sum' >= m)`` over
them: its largest float32 sum (:func:`~edgecl.kernels.floatvec.fv_max4`, finite sums)
against ``hi`` and ``lo``, straight into the packed output word. Other pools (and none)
run over a pooled row's patches, read from the padded image at their corners (nothing
gathered), threshold every sum into packed words and OR them over each window. No sum is
ever stored. Tests compare it with
:func:`edgecl.kernels.first_layer.conv_threshold_pool_reference` bit for bit
(``pass_taps=9``), near-threshold sums and overflowing images included.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.block_gemm import pool_bit_rows
from edgecl.kernels.borrow import borrowed
from edgecl.kernels.floatvec import (
    fv_fma,
    fv_ge_bits,
    fv_load,
    fv_max4,
    fv_splat_at,
    fv_zero,
)
from edgecl.kernels.fused_bytes import tap_offsets
from edgecl.kernels.popcount import numba_target

__all__ = ["fill_padded", "first_layer_rows", "image_bounds"]

_WIDE = "avx512f" in numba_target().features
_W = 16 if _WIDE else 8  # float32 lanes of one vector register
_TILE = 4 * _W if _WIDE else 2 * _W  # channels of one tile: 4 or 2 vectors per patch
_ALL = np.uint64((1 << _TILE) - 1) if _TILE < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)
#: most taps the error bound covers (``n 2^-24 <= 2^-5``: ``gamma_n <= 1.032 n u``)
MAX_TAPS = 1 << 19
#: ``L X`` above this: the image is decided exactly (no float32 sum can overflow below it)
_LARGEST = 2.0**100


_TINY32 = np.float32(2.0**-149)  # the least float32 above zero
_ULP32 = np.float32(2.0**-23)  # |f| 2^-23 is at least one ulp of a normal float32 f
_MAX32 = np.float32(np.finfo(np.float32).max)
_MAGNITUDE = np.uint32(0x7FFFFFFF)
_INF_BITS = np.uint32(0x7F800000)


@njit(cache=True, inline="always")
def _f32_at_least(v):
    """A float32 ``>= v`` (float64 ``v``, not NaN), at most 2 ulps above the least one."""
    f = np.float32(v)
    if np.float64(f) < v:  # f + |f| 2^-23 + 2^-149 rounds to above f, on subnormals too
        f = -_MAX32 if f == -np.inf else f + (abs(f) * _ULP32 + _TINY32)
    return f


@njit(cache=True, inline="always")
def _f32_at_most(v):
    """A float32 ``<= v`` (float64 ``v``, not NaN), at most 2 ulps below the largest one."""
    f = np.float32(v)
    if np.float64(f) > v:
        f = _MAX32 if f == np.inf else f - (abs(f) * _ULP32 + _TINY32)
    return f


@njit(cache=True)
def image_bounds(xp, l1, m, n_taps, hi, lo):
    """``hi``/``lo`` (float32, one a channel) of the module docstring for the padded image
    ``xp``, channel ``sum |w|`` ``l1`` and sum thresholds ``m``; False (``hi``/``lo``
    unset) where the image must be decided exactly (a non-finite value among them)."""
    # the largest |x| as the integer max of the magnitudes' bit patterns (the same order
    # for floats >= 0; NaN and infinities are the patterns >= 0x7f800000)
    bits = xp.view(np.uint32)
    top = np.uint32(0)
    for i in range(bits.shape[0]):
        top = np.uint32(max(top, np.uint32(bits[i] & _MAGNITUDE)))
    if top >= _INF_BITS or n_taps > MAX_TAPS:
        return False
    big = np.full(1, top, np.uint32).view(np.float32)[0]
    scale = 1.0625 * n_taps * (2.0**-24 + 2.0**-53) * np.float64(big)
    floor = n_taps * 2.0**-149
    for q in range(m.shape[0]):
        if not l1[q] * big <= _LARGEST:  # NaN or infinite weights too
            return False
        mq = m[q]
        if not abs(mq) < np.inf:  # +-inf or NaN: every sum compares alike in both
            hi[q] = lo[q] = np.float32(mq)
            continue
        e = scale * l1[q] + floor
        # m +- e rounded in float64, moved by more than that rounding (2^-53 of it)
        up, down = mq + e, mq - e
        hi[q] = _f32_at_least(up + abs(up) * 2.0**-51)
        lo[q] = _f32_at_most(down - abs(down) * 2.0**-51)
    return True


@njit(cache=True, inline="always")
def _exact_sum(flat, corner, offs, wk64, q):
    """The float64 sum of channel ``q`` of the patch at ``corner`` of ``flat``, in tap
    order from +0.0 (each float32 x float32 product exact in float64)."""
    s = 0.0
    for k in range(offs.shape[0]):
        s += np.float64(flat[corner + offs[k]]) * wk64[k, q]
    return s


@njit(cache=True, inline="always")
def _exact_bits(flat, corners, offs, wk64, m, o, unsure):
    """The bits in ``unsure`` (channel ``o + t`` at bit ``t``) of ``any(s >= m)`` over the
    patches at ``corners``, from their exact float64 sums."""
    bits = np.uint64(0)
    for t in range(64):
        if not (unsure >> np.uint64(t)) & np.uint64(1):
            continue
        q = o + t
        for corner in corners:
            if _exact_sum(flat, corner, offs, wk64, q) >= m[q]:
                bits |= np.uint64(1) << np.uint64(t)
                break
    return bits


@njit(cache=True, inline="always")
def _decided(sure, maybe, flat, corners, offs, wk64, m, o, exact, every):
    """The bits from a tile's certain ones (``sure``: ``s32 >= hi``; ``maybe``: ``s32 >=
    lo``), the outputs in between (or all of ``every``, where ``exact``) from their float64
    sums."""
    unsure = every if exact else maybe & ~sure
    if unsure:
        keep = np.uint64(0) if exact else sure
        return keep | _exact_bits(flat, corners, offs, wk64, m, o, unsure)
    return sure


@njit(cache=True, inline="always")
def _bits(acc, q, thr):
    """The bits of channels ``q .. q + _W - 1`` where their sums reach ``thr``."""
    return fv_ge_bits(acc, fv_load(_W, thr, (q,)))


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
    channels ``o .. o + 4 * _W - 1``: 16 vectors, patch-major."""
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
def _pair_bits(a0, a1, o, thr):
    """The bits of channels ``o .. o + 2 * _W - 1`` of one patch from 2 vectors of sums."""
    return _bits(a0, o, thr) | (_bits(a1, o + _W, thr) << np.uint64(_W))


@njit(cache=True, inline="always")
def _tile_rows(xp, c0, c1, c2, c3, offs, wk, hi, lo, o):
    """Of each of the 4 patches at corners ``c0 .. c3``, the bits of channels ``o .. o +
    _TILE - 1`` whose float32 sums reach ``hi``, then those that reach ``lo``."""
    if _WIDE:
        a = _sums4x4(xp, c0, c1, c2, c3, offs, wk, o)
        return (
            (
                _patch_bits(a[0], a[1], a[2], a[3], o, hi),
                _patch_bits(a[4], a[5], a[6], a[7], o, hi),
                _patch_bits(a[8], a[9], a[10], a[11], o, hi),
                _patch_bits(a[12], a[13], a[14], a[15], o, hi),
            ),
            (
                _patch_bits(a[0], a[1], a[2], a[3], o, lo),
                _patch_bits(a[4], a[5], a[6], a[7], o, lo),
                _patch_bits(a[8], a[9], a[10], a[11], o, lo),
                _patch_bits(a[12], a[13], a[14], a[15], o, lo),
            ),
        )
    a = _sums4x2(xp, c0, c1, c2, c3, offs, wk, o)
    return (
        (
            _pair_bits(a[0], a[1], o, hi),
            _pair_bits(a[2], a[3], o, hi),
            _pair_bits(a[4], a[5], o, hi),
            _pair_bits(a[6], a[7], o, hi),
        ),
        (
            _pair_bits(a[0], a[1], o, lo),
            _pair_bits(a[2], a[3], o, lo),
            _pair_bits(a[4], a[5], o, lo),
            _pair_bits(a[6], a[7], o, lo),
        ),
    )


@njit(cache=True, inline="always")
def _window_max(a):
    """The largest of a 2x2 window's 4 sums (``a``, patch-major), one vector of ``_W``
    channels after another: ``_TILE`` channels."""
    if _WIDE:
        return (
            fv_max4(a[0], a[4], a[8], a[12]),
            fv_max4(a[1], a[5], a[9], a[13]),
            fv_max4(a[2], a[6], a[10], a[14]),
            fv_max4(a[3], a[7], a[11], a[15]),
        )
    return (fv_max4(a[0], a[2], a[4], a[6]), fv_max4(a[1], a[3], a[5], a[7]))


@njit(cache=True, inline="always")
def _tile_window(xp, c0, c1, c2, c3, offs, wk, hi, lo, o):
    """Of the 2x2 window whose 4 patches are at ``c0 .. c3``, the bits of channels ``o ..
    o + _TILE - 1`` where its largest float32 sum reaches ``hi``, then ``lo``."""
    if _WIDE:
        top = _window_max(_sums4x4(xp, c0, c1, c2, c3, offs, wk, o))
        return _patch_bits(top[0], top[1], top[2], top[3], o, hi), _patch_bits(
            top[0], top[1], top[2], top[3], o, lo
        )
    top = _window_max(_sums4x2(xp, c0, c1, c2, c3, offs, wk, o))
    return _pair_bits(top[0], top[1], o, hi), _pair_bits(top[0], top[1], o, lo)


@njit(cache=True, inline="always")
def _window_rows(xp, s, pi, wp, c, stride, offs, wk, hi, lo, wk64, m, exact, out):
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
                o = kk * 64 + t
                sure, maybe = _tile_window(xp, c0, c1, c2, c3, offs, wk, hi, lo, o)
                corners = (c0, c1, c2, c3)
                bits = _decided(sure, maybe, xp, corners, offs, wk64, m, o, exact, _ALL)
                word |= bits << np.uint64(t)
            out[s, pi, px, kk] = word


@njit(cache=True, inline="always")
def _row_bits(flat, corners, offs, wk, hi, lo, wk64, m, exact, bits):
    """``bits[r]``: the threshold bits of every channel of the patch at ``corners[r]`` of
    the flat padded image (4 patches at a time, leftover patches ``_W`` channels at a
    time); ``offs`` the taps' offsets from a corner."""
    n_rows = corners.shape[0]
    bits[:] = 0
    r4 = n_rows - n_rows % 4
    for o in range(0, wk.shape[1], _TILE):
        sh = np.uint64(o % 64)
        for r in range(0, r4, 4):
            c = (corners[r], corners[r + 1], corners[r + 2], corners[r + 3])
            sure, maybe = _tile_rows(flat, c[0], c[1], c[2], c[3], offs, wk, hi, lo, o)
            for i in range(4):
                b = _decided(sure[i], maybe[i], flat, (c[i],), offs, wk64, m, o, exact, _ALL)
                bits[r + i, o // 64] |= b << sh
    lanes = np.uint64((1 << _W) - 1)
    for r in range(r4, n_rows):
        corner = corners[r]
        for o in range(0, wk.shape[1], _W):
            acc = fv_zero(_W)
            for k in range(offs.shape[0]):
                x = fv_splat_at(_W, flat, (corner + offs[k],))
                acc = fv_fma(x, fv_load(_W, wk, (k, o)), acc)
            sure, maybe = _bits(acc, o, hi), _bits(acc, o, lo)
            b = _decided(sure, maybe, flat, (corner,), offs, wk64, m, o, exact, lanes)
            bits[r, o // 64] |= b << np.uint64(o % 64)


@njit(cache=True, inline="always")
def fill_padded(xp, x, s, top, left, wp):
    """Image ``s`` of ``x`` into the flat padded image ``xp`` (its pads already filled)."""
    c = x.shape[3]
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            for cc in range(c):
                xp[((i + top) * wp + j + left) * c + cc] = x[s, i, j, cc]


@njit(cache=True)
def first_layer_rows(x, wk, wk64, l1, m, kh, kw, pads, stride, pad_value, pool, pstride, out):
    """The fused first layer (module docstring) on float32 ``x`` (N, H, W, C) into ``out``
    (N, Ho, Wo, n_words(O)); ``wk`` (taps padded, O64) the sign-folded weights in float32
    and ``wk64`` in float64, ``l1`` (O64,) each channel's ``sum |w|`` and ``m`` (O64,) the
    sum thresholds, as :class:`edgecl.kernels.first_layer.FirstLayer` lays them out
    (``wk_signed32``, ``wk_signed``, ``wk_l1``, ``sum_thr``; O64 a multiple of 64)."""
    n, h, wd, c = x.shape
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, wd + left + right
    xp = np.full(hp * wp * c, np.float32(pad_value), np.float32)  # one padded image, flat
    offs = tap_offsets(kh, kw, wp, c)
    window = pool == 2 and pstride == 2
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_cols = (out.shape[2] - 1) * step + win
    n_rows = 0 if window else win * n_cols
    corners = np.empty(n_rows, np.int64)  # of a pooled row's patches in the padded image
    bits = np.empty((n_rows, wk.shape[1] // 64), np.uint64)
    hi = np.empty(wk.shape[1], np.float32)
    lo = np.empty(wk.shape[1], np.float32)
    geometry = (top, left, wp, stride, win, step, n_cols, window)
    _layer_rows(x, wk, wk64, l1, m, geometry, out, xp, offs, corners, bits, hi, lo)


@njit(cache=True)
def _layer_rows(x, wk, wk64, l1, m, geometry, out, xp, offs, corners, bits, hi, lo):
    """:func:`first_layer_rows`' loops on the arrays it allocated, each borrowed (no
    reference counts in the loops, :mod:`edgecl.kernels.borrow`): the caller holds them."""
    top, left, wp, stride, win, step, n_cols, window = geometry
    c = x.shape[3]
    x, wk, wk64, m, l1 = borrowed(x), borrowed(wk), borrowed(wk64), borrowed(m), borrowed(l1)
    out, xp, offs, corners = borrowed(out), borrowed(xp), borrowed(offs), borrowed(corners)
    bits, hi, lo = borrowed(bits), borrowed(hi), borrowed(lo)
    for s in range(x.shape[0]):
        fill_padded(xp, x, s, top, left, wp)
        exact = not image_bounds(xp, l1, m, wk.shape[0], hi, lo)
        for pi in range(out.shape[1]):
            if window:
                _window_rows(xp, s, pi, wp, c, stride, offs, wk, hi, lo, wk64, m, exact, out)
                continue
            for a in range(win):
                i = (pi * step + a) * stride
                for b in range(n_cols):
                    corners[a * n_cols + b] = (i * wp + b * stride) * c
            _row_bits(xp, corners, offs, wk, hi, lo, wk64, m, exact, bits)
            pool_bit_rows(bits, n_cols, win, step, out, s, pi)
