"""The vector cores of the fused binary block (:mod:`edgecl.kernels.block`), and its padding.

The same products as the word cores there, for the AVX2 / NEON / AVX-512BW strategies
(:mod:`edgecl.kernels.popcount`): output channels ``lanes`` at a time in vector registers
(:mod:`edgecl.kernels.wordvec`), the input word broadcast, the popcount of every byte
added in 8-bit lanes over up to :data:`~edgecl.kernels.wordvec.BYTE_STEPS` words of the
patch, then widened once per channel (the byte sums of each 64-bit lane). Four vectors
of channels stay in registers across the whole patch (register blocking over output
channels), so the patch words are read once per ``4 * lanes`` channels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.popcount import popcount64
from edgecl.kernels.wordvec import (
    BYTE_STEPS,
    wv_add,
    wv_add_bytes,
    wv_byte_counts,
    wv_lane_sums,
    wv_load,
    wv_splat,
    wv_store,
    wv_xor,
    wv_zero,
)


@njit(cache=True, inline="always")
def _step(acc, a, b):
    """``acc`` plus the byte popcounts of ``a XOR b``."""
    return wv_add_bytes(acc, wv_byte_counts(wv_xor(a, b)))


@njit(cache=True, inline="always")
def _flush(acc, o, a, lanes):
    """``acc[o .. o + lanes - 1] +=`` the byte sums of each word of ``a``."""
    wv_store(acc, (o,), wv_add(wv_load(lanes, acc, (o,)), wv_lane_sums(a)))


@njit(cache=True, inline="always")
def _inside(iy, ix, H, W):
    return 0 <= iy < H and 0 <= ix < W


@njit(cache=True, inline="always")
def _channels4(x, img, oy, ox, wt, acc, o, stride, top, left, lanes):
    """Channels ``o .. o + 4 * lanes - 1``: 4 byte accumulators over the inside taps."""
    H = x.shape[1]
    W = x.shape[2]
    kh, kw, cw, _ = wt.shape
    a0 = a1 = a2 = a3 = wv_zero(lanes)
    steps = 0
    for dy in range(kh):
        iy = oy * stride - top + dy
        for dx in range(kw):
            ix = ox * stride - left + dx
            if _inside(iy, ix, H, W):
                for c in range(cw):
                    xv = wv_splat(lanes, x[img, iy, ix, c])
                    a0 = _step(a0, xv, wv_load(lanes, wt, (dy, dx, c, o)))
                    a1 = _step(a1, xv, wv_load(lanes, wt, (dy, dx, c, o + lanes)))
                    a2 = _step(a2, xv, wv_load(lanes, wt, (dy, dx, c, o + 2 * lanes)))
                    a3 = _step(a3, xv, wv_load(lanes, wt, (dy, dx, c, o + 3 * lanes)))
                    steps += 1
                    if steps == BYTE_STEPS:
                        _flush(acc, o, a0, lanes)
                        _flush(acc, o + lanes, a1, lanes)
                        _flush(acc, o + 2 * lanes, a2, lanes)
                        _flush(acc, o + 3 * lanes, a3, lanes)
                        a0 = a1 = a2 = a3 = wv_zero(lanes)
                        steps = 0
    _flush(acc, o, a0, lanes)
    _flush(acc, o + lanes, a1, lanes)
    _flush(acc, o + 2 * lanes, a2, lanes)
    _flush(acc, o + 3 * lanes, a3, lanes)


@njit(cache=True, inline="always")
def _channels1(x, img, oy, ox, wt, acc, o, stride, top, left, lanes):
    """Channels ``o .. o + lanes - 1``: one byte accumulator over the inside taps."""
    H = x.shape[1]
    W = x.shape[2]
    kh, kw, cw, _ = wt.shape
    a0 = wv_zero(lanes)
    steps = 0
    for dy in range(kh):
        iy = oy * stride - top + dy
        for dx in range(kw):
            ix = ox * stride - left + dx
            if _inside(iy, ix, H, W):
                for c in range(cw):
                    xv = wv_splat(lanes, x[img, iy, ix, c])
                    a0 = _step(a0, xv, wv_load(lanes, wt, (dy, dx, c, o)))
                    steps += 1
                    if steps == BYTE_STEPS:
                        _flush(acc, o, a0, lanes)
                        a0 = wv_zero(lanes)
                        steps = 0
    _flush(acc, o, a0, lanes)


@njit(cache=True, inline="always")
def pixel_counts_bytes(x, img, oy, ox, wt, pad_pc, geom, acc, lanes):
    """``acc[o]`` = popcount of the XOR over the taps counted (+1 pad taps by their
    precomputed count); returns how many taps count. ``wt`` (kh, kw, Cw, O) C-contiguous."""
    _, _, stride, top, left, zero_pad, _, _ = geom
    H = x.shape[1]
    W = x.shape[2]
    kh, kw, cw, n_out = wt.shape
    for o in range(n_out):
        acc[o] = 0
    taps = 0
    for dy in range(kh):
        iy = oy * stride - top + dy
        for dx in range(kw):
            ix = ox * stride - left + dx
            if _inside(iy, ix, H, W):
                taps += 1
            elif not zero_pad:
                t = dy * kw + dx
                for o in range(n_out):
                    acc[o] += pad_pc[t, o]
                taps += 1
    nv = n_out - n_out % lanes
    o = 0
    while o + 4 * lanes <= nv:
        _channels4(x, img, oy, ox, wt, acc, o, stride, top, left, lanes)
        o += 4 * lanes
    while o < nv:
        _channels1(x, img, oy, ox, wt, acc, o, stride, top, left, lanes)
        o += lanes
    if nv < n_out:
        for dy in range(kh):
            iy = oy * stride - top + dy
            for dx in range(kw):
                ix = ox * stride - left + dx
                if _inside(iy, ix, H, W):
                    for c in range(cw):
                        xv = x[img, iy, ix, c]
                        for o in range(nv, n_out):
                            acc[o] += popcount64(xv ^ wt[dy, dx, c, o])
    return taps


@njit(cache=True, inline="always")
def fast_counts_bytes(patch, p, n_k, wk, cnt, lanes):
    """``cnt[p, q]`` = popcount of ``patch[p, :n_k] XOR wk[:n_k, q]`` for every ``q``
    (``wk.shape[1]`` a multiple of ``4 * lanes``, ``n_k <= BYTE_STEPS``: no flush)."""
    for q in range(0, wk.shape[1], 4 * lanes):
        a0 = a1 = a2 = a3 = wv_zero(lanes)
        for k in range(n_k):
            xv = wv_splat(lanes, patch[p, k])
            a0 = _step(a0, xv, wv_load(lanes, wk, (k, q)))
            a1 = _step(a1, xv, wv_load(lanes, wk, (k, q + lanes)))
            a2 = _step(a2, xv, wv_load(lanes, wk, (k, q + 2 * lanes)))
            a3 = _step(a3, xv, wv_load(lanes, wk, (k, q + 3 * lanes)))
        wv_store(cnt, (p, q), wv_lane_sums(a0))
        wv_store(cnt, (p, q + lanes), wv_lane_sums(a1))
        wv_store(cnt, (p, q + 2 * lanes), wv_lane_sums(a2))
        wv_store(cnt, (p, q + 3 * lanes), wv_lane_sums(a3))


@njit(cache=True, inline="always")
def gather_patch(patch, p, flat, corner, offs, n):
    """``patch[p, :n]`` = the values of a flat padded image at ``corner + offs``."""
    for k in range(n):
        patch[p, k] = flat[corner + offs[k]]


@njit(cache=True, inline="always")
def fast_row_bytes(xflat, r, wk, offs, sgn, sthr, geom, out, patch, cnt, lanes):
    """Pooled output row ``r`` of the one-padded fast path (as ``fused._fast_row``) with
    byte accumulators: every conv output's counts for all channels, then the threshold,
    the OR over the pool window and the packing."""
    n_bits, kh, kw, stride, pool, pstride, wp, cw = geom
    n_k = kh * kw * cw
    po = out.shape[1]
    img, py = r // po, r % po
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_pix = win * win
    for px in range(out.shape[2]):
        for p in range(n_pix):
            i = (py * step + p // win) * stride
            j = (px * step + p % win) * stride
            gather_patch(patch, p, xflat[img], (i * wp + j) * cw, offs, n_k)
            fast_counts_bytes(patch, p, n_k, wk, cnt, lanes)
        for kk in range(out.shape[3]):
            out[img, py, px, kk] = threshold_word(cnt, n_pix, n_bits, sgn, sthr, kk * 64)


@njit(cache=True, inline="always")
def _threshold_bits(cnt, p, n_pix, n_bits, sgn, sthr, q0):
    """Bits ``q0 .. q0 + 63`` of ``sgn * (n_bits - 2 * cnt) >= sthr``, ORed over the conv
    outputs ``p .. p + n_pix - 1`` (n_pix 1 or 4): a reduction with no store and a fixed
    trip count, so LLVM vectorises it across output channels."""
    word = np.uint64(0)
    n = np.int64(n_bits)
    if n_pix == 4:
        for t in range(64):
            q = q0 + t
            g, th = sgn[q], sthr[q]
            h0 = g * (n - 2 * np.int64(cnt[p, q])) >= th
            h1 = g * (n - 2 * np.int64(cnt[p + 1, q])) >= th
            h2 = g * (n - 2 * np.int64(cnt[p + 2, q])) >= th
            h3 = g * (n - 2 * np.int64(cnt[p + 3, q])) >= th
            word |= np.uint64(h0 | h1 | h2 | h3) << np.uint64(t)
    else:
        for t in range(64):
            q = q0 + t
            h0 = sgn[q] * (n - 2 * np.int64(cnt[p, q])) >= sthr[q]
            word |= np.uint64(h0) << np.uint64(t)
    return word


@njit(cache=True, inline="always")
def threshold_word(cnt, n_pix, n_bits, sgn, sthr, q0):
    """Bits ``q0 .. q0 + 63`` of ``sgn * (n_bits - 2 * cnt) >= sthr``, ORed over the conv
    outputs ``0 .. n_pix - 1`` (the pool window), 4 at a time."""
    word = np.uint64(0)
    p = 0
    while p < n_pix:
        m = 4 if p + 4 <= n_pix else 1
        word |= _threshold_bits(cnt, p, m, n_bits, sgn, sthr, q0)
        p += m
    return word


@njit(cache=True)
def pad_words(x, top, bottom, left, right, ones):
    """``x`` (N, H, W, Cw) in a border of all-+1 pixels (``ones`` words): ``top`` rows
    above, ``bottom`` below, ``left`` / ``right`` columns beside."""
    n, h, w, cw = x.shape
    xp = np.empty((n, h + top + bottom, w + left + right, cw), np.uint64)
    for s in range(n):
        for i in range(h + top + bottom):
            for j in range(w + left + right):
                inside = top <= i < h + top and left <= j < w + left
                for c in range(cw):
                    xp[s, i, j, c] = x[s, i - top, j - left, c] if inside else ones[c]
    return xp


@njit(cache=True)
def pad_counts(wt, ones):
    """``popcount(ones XOR w[tap, :, o])`` summed over the tap's words: ``(kh * kw, O)``."""
    kh, kw, cw, n_out = wt.shape
    s = np.zeros((kh * kw, n_out), np.uint64)
    for dy in range(kh):
        for dx in range(kw):
            for c in range(cw):
                for o in range(n_out):
                    s[dy * kw + dx, o] += popcount64(ones[c] ^ wt[dy, dx, c, o])
    return s


__all__ = [
    "fast_counts_bytes",
    "pad_counts",
    "pad_words",
    "fast_row_bytes",
    "gather_patch",
    "pixel_counts_bytes",
    "threshold_word",
]
