"""The vector cores of the fused binary block (:mod:`edgecl.kernels.block`), and its padding.

The same products as the word cores there, for the AVX2 / NEON / AVX-512BW strategies
(:mod:`edgecl.kernels.popcount`): output channels ``lanes`` at a time in vector registers
(:mod:`edgecl.kernels.wordvec`), the input word broadcast, the popcount of every byte
added in 8-bit lanes over up to :data:`~edgecl.kernels.wordvec.BYTE_STEPS` words of the
patch, then widened once per channel (the byte sums of each 64-bit lane). Four vectors
of channels stay in registers across the whole patch (register blocking over output
channels), so the patch words are read once per ``4 * lanes`` channels. On the
one-padded fast path the counts never leave the registers: each is compared with its
channel's count range (the threshold) and the bits of the pool window are ORed.
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
    wv_max_small,
    wv_nibble_counts,
    wv_range_bits,
    wv_splat,
    wv_splat_at,
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
def gather_patch(patch, p, flat, corner, offs, n):
    """``patch[p, :n]`` = the values of a flat padded image at ``corner + offs``."""
    for k in range(n):
        patch[p, k] = flat[corner + offs[k]]


_LO = np.uint64(0x0F0F0F0F0F0F0F0F)
_FOUR = np.uint64(4)


@njit(cache=True, inline="always")
def _nibble_step(acc, xl, xh, wn, k, q, lanes):
    """``acc`` plus the byte popcounts of ``x XOR w`` from their nibbles: the low nibbles
    in row ``k`` of ``wn``, the high ones in row ``k + 1`` (no shift or mask per step)."""
    acc = wv_add_bytes(acc, wv_nibble_counts(wv_xor(xl, wv_load(lanes, wn, (k, q)))))
    return wv_add_bytes(acc, wv_nibble_counts(wv_xor(xh, wv_load(lanes, wn, (k + 1, q)))))


def nibble_split(w: np.ndarray) -> np.ndarray:
    """``w`` (K, O) words as (2K, O): row ``2k`` the low nibble of every byte of row ``k``,
    row ``2k + 1`` the high nibble (each in the low 4 bits of its byte)."""
    out = np.empty((2 * w.shape[0], w.shape[1]), np.uint64)
    out[0::2] = w & _LO
    out[1::2] = (w >> _FOUR) & _LO
    return out


@njit(cache=True, inline="always")
def _gather_nibbles(patch, p, flat, corner, offs, n):
    """``patch[p, :2n]`` = the values of a flat padded image at ``corner + offs``, split
    into nibbles as :func:`nibble_split` (low, high)."""
    for k in range(n):
        v = flat[corner + offs[k]]
        patch[p, 2 * k] = v & _LO
        patch[p, 2 * k + 1] = (v >> _FOUR) & _LO


@njit(cache=True, inline="always")
def _window_bits(m0, m1, m2, m3, lo, width, q, lanes):
    """The bits of channels ``q .. q + 4 * lanes - 1`` from their largest counts."""
    sh = np.uint64(lanes)
    b = wv_range_bits(m0, wv_load(lanes, lo, (q,)), wv_load(lanes, width, (q,)))
    b |= (
        wv_range_bits(m1, wv_load(lanes, lo, (q + lanes,)), wv_load(lanes, width, (q + lanes,)))
        << sh
    )
    q2, q3 = q + 2 * lanes, q + 3 * lanes
    b |= wv_range_bits(m2, wv_load(lanes, lo, (q2,)), wv_load(lanes, width, (q2,))) << (sh + sh)
    b |= wv_range_bits(m3, wv_load(lanes, lo, (q3,)), wv_load(lanes, width, (q3,))) << (3 * sh)
    return b


@njit(cache=True, inline="always")
def _group_bits(patch, p0, n_pix, n_k, wn, lo, width, q, lanes):
    """Bits of channels ``q .. q + 4 * lanes - 1`` of the pool window (the patch rows
    ``p0 .. p0 + n_pix - 1``, in nibbles as ``wn``: :func:`nibble_split`): the counts in
    :func:`ge_form` (each fires at ``count >= lo``), so the window's bit is that of its
    largest count: one range test per window; ``n_k <= BYTE_STEPS`` (no widening on the
    way)."""
    m0 = m1 = m2 = m3 = wv_zero(lanes)
    for p in range(p0, p0 + n_pix):
        a0 = a1 = a2 = a3 = wv_zero(lanes)
        for k in range(0, 2 * n_k, 2):
            xl = wv_splat_at(lanes, patch, (p, k))
            xh = wv_splat_at(lanes, patch, (p, k + 1))
            a0 = _nibble_step(a0, xl, xh, wn, k, q, lanes)
            a1 = _nibble_step(a1, xl, xh, wn, k, q + lanes, lanes)
            a2 = _nibble_step(a2, xl, xh, wn, k, q + 2 * lanes, lanes)
            a3 = _nibble_step(a3, xl, xh, wn, k, q + 3 * lanes, lanes)
        m0, m1 = wv_max_small(m0, wv_lane_sums(a0)), wv_max_small(m1, wv_lane_sums(a1))
        m2, m3 = wv_max_small(m2, wv_lane_sums(a2)), wv_max_small(m3, wv_lane_sums(a3))
    return _window_bits(m0, m1, m2, m3, lo, width, q, lanes)


@njit(cache=True, inline="always")
def _group_bits_words(patch, p0, n_pix, n_k, wk, lo, width, q, lanes):
    """:func:`_group_bits` on whole words (``wk`` and the patch as they are), any ``n_k``
    (the byte lanes widened every :data:`~edgecl.kernels.wordvec.BYTE_STEPS` words)."""
    m0 = m1 = m2 = m3 = wv_zero(lanes)
    for p in range(p0, p0 + n_pix):
        s0 = s1 = s2 = s3 = wv_zero(lanes)
        for k0 in range(0, n_k, BYTE_STEPS):  # byte lanes widened every BYTE_STEPS words
            a0 = a1 = a2 = a3 = wv_zero(lanes)
            for k in range(k0, min(k0 + BYTE_STEPS, n_k)):
                xv = wv_splat_at(lanes, patch, (p, k))
                a0 = _step(a0, xv, wv_load(lanes, wk, (k, q)))
                a1 = _step(a1, xv, wv_load(lanes, wk, (k, q + lanes)))
                a2 = _step(a2, xv, wv_load(lanes, wk, (k, q + 2 * lanes)))
                a3 = _step(a3, xv, wv_load(lanes, wk, (k, q + 3 * lanes)))
            s0, s1 = wv_add(s0, wv_lane_sums(a0)), wv_add(s1, wv_lane_sums(a1))
            s2, s3 = wv_add(s2, wv_lane_sums(a2)), wv_add(s3, wv_lane_sums(a3))
        m0, m1 = wv_max_small(m0, s0), wv_max_small(m1, s1)
        m2, m3 = wv_max_small(m2, s2), wv_max_small(m3, s3)
    return _window_bits(m0, m1, m2, m3, lo, width, q, lanes)


@njit(cache=True, inline="always")
def _pair_sums_words(patch, pa, pb, n_k, wk, q, lanes):
    """The popcount sums of patch rows ``pa`` and ``pb`` against channels ``q .. q + 4 *
    lanes - 1`` (4 vectors each), each weight vector loaded once for both: 8 byte
    accumulators, widened every :data:`~edgecl.kernels.wordvec.BYTE_STEPS` words."""
    s0 = s1 = s2 = s3 = t0 = t1 = t2 = t3 = wv_zero(lanes)
    for k0 in range(0, n_k, BYTE_STEPS):
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = wv_zero(lanes)
        for k in range(k0, min(k0 + BYTE_STEPS, n_k)):
            xa = wv_splat_at(lanes, patch, (pa, k))
            xb = wv_splat_at(lanes, patch, (pb, k))
            w = wv_load(lanes, wk, (k, q))
            a0, b0 = _step(a0, xa, w), _step(b0, xb, w)
            w = wv_load(lanes, wk, (k, q + lanes))
            a1, b1 = _step(a1, xa, w), _step(b1, xb, w)
            w = wv_load(lanes, wk, (k, q + 2 * lanes))
            a2, b2 = _step(a2, xa, w), _step(b2, xb, w)
            w = wv_load(lanes, wk, (k, q + 3 * lanes))
            a3, b3 = _step(a3, xa, w), _step(b3, xb, w)
        s0, s1 = wv_add(s0, wv_lane_sums(a0)), wv_add(s1, wv_lane_sums(a1))
        s2, s3 = wv_add(s2, wv_lane_sums(a2)), wv_add(s3, wv_lane_sums(a3))
        t0, t1 = wv_add(t0, wv_lane_sums(b0)), wv_add(t1, wv_lane_sums(b1))
        t2, t3 = wv_add(t2, wv_lane_sums(b2)), wv_add(t3, wv_lane_sums(b3))
    return s0, s1, s2, s3, t0, t1, t2, t3


@njit(cache=True, inline="always")
def _pair_bits_words(patch, p0, n_k, wk, lo, width, q, lanes):
    """:func:`_group_bits_words` of two single-patch windows at once (patch rows ``p0``
    and ``p0 + 1``, no pool, :func:`_pair_sums_words`): the bits of the first, then of the
    second."""
    s = _pair_sums_words(patch, p0, p0 + 1, n_k, wk, q, lanes)
    first = _window_bits(s[0], s[1], s[2], s[3], lo, width, q, lanes)
    return first, _window_bits(s[4], s[5], s[6], s[7], lo, width, q, lanes)


@njit(cache=True, inline="always")
def _window_bits_pairs(patch, p0, n_pix, n_k, wk, lo, width, q, lanes):
    """:func:`_group_bits_words` of a pool window of an even ``n_pix`` patches, two at a
    time (:func:`_pair_sums_words`): the window's bit from its largest count."""
    m0 = m1 = m2 = m3 = wv_zero(lanes)
    for p in range(p0, p0 + n_pix, 2):
        s = _pair_sums_words(patch, p, p + 1, n_k, wk, q, lanes)
        m0, m1 = (
            wv_max_small(m0, wv_max_small(s[0], s[4])),
            wv_max_small(m1, wv_max_small(s[1], s[5])),
        )
        m2, m3 = (
            wv_max_small(m2, wv_max_small(s[2], s[6])),
            wv_max_small(m3, wv_max_small(s[3], s[7])),
        )
    return _window_bits(m0, m1, m2, m3, lo, width, q, lanes)


def ge_form(
    wk: np.ndarray,
    sgn: np.ndarray,
    lo: np.ndarray,
    width: np.ndarray,
    ones: np.ndarray,
    n_k: int,
    n_bits: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The byte cores' form of the fast path's weights ``wk`` (rows ``0 .. n_k - 1`` the
    patch words) and count ranges (:func:`count_ranges`): every channel fires where its
    count reaches ``lo`` (``width`` = ``n``), so a pool window's bit is
    its largest count's. A channel that fires at small counts (``sgn > 0``: ``count <=
    b``) has the valid bits of its weights inverted (``ones`` per patch word), which
    makes its count ``n - count`` (``>= n - b``); empty ranges stay empty. ``n_bits``:
    the patch bits ``n``."""
    lo64, width64 = lo.astype(np.int64), width.astype(np.int64)
    empty = lo64 > n_bits
    small = (np.asarray(sgn) > 0) & ~empty
    wk_ge = wk.copy()
    mask = ones[np.arange(n_k) % len(ones)]
    wk_ge[:n_k, small] ^= mask[:, None]
    lo_ge = np.where(empty, n_bits + 1, np.where(small, n_bits - (lo64 + width64), lo64))
    return wk_ge, lo_ge.astype(np.uint64), np.full(len(lo), n_bits, np.uint64)


@njit(cache=True, inline="always")
def fast_row_bytes(xflat, r, wk, offs, lo, width, geom, out, patch, cnt, lanes):
    """Pooled output row ``r`` of the one-padded fast path (as ``block._fast_row``) with
    byte accumulators, 4 vectors of channels at a time over every conv output of the pool
    window, two patches a weight load where they pair up (two windows without a pool, a
    window's patches two by two in an even one): the counts never leave the registers;
    in :func:`ge_form` the pool window's bit is its largest count's, thresholded once by
    the count range ``lo <= count <= lo + width``.
    ``geom`` ends with ``nibbles``: 1 when ``wk`` holds the weights as
    :func:`nibble_split` makes them (``patch`` at least as wide), 0 for plain words;
    ``patch`` has a row per conv output of the pooled row (``Wo * pool**2``);
    ``cnt`` is unused (the word path's accumulator row)."""
    n_bits, kh, kw, stride, pool, pstride, wp, cw, nib = geom
    n_k = kh * kw * cw
    po = out.shape[1]
    img, py = r // po, r % po
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_pix = win * win
    group = 4 * lanes
    for px in range(out.shape[2]):  # every patch of the row first (``patch`` that tall)
        for p in range(n_pix):
            i = (py * step + p // win) * stride
            j = (px * step + p % win) * stride
            row = px * n_pix + p
            if nib:
                _gather_nibbles(patch, row, xflat[img], (i * wp + j) * cw, offs, n_k)
            else:
                gather_patch(patch, row, xflat[img], (i * wp + j) * cw, offs, n_k)
        for kk in range(out.shape[3]):
            out[img, py, px, kk] = 0
    for kk in range(out.shape[3]):  # then each group's weights across the whole row
        for g in range(0, 64, group):
            q = kk * 64 + g
            rest = 0
            if n_pix == 1 and not nib:  # no pool: two patches share each weight load
                rest = out.shape[2] - out.shape[2] % 2
                for px in range(0, rest, 2):
                    b0, b1 = _pair_bits_words(patch, px, n_k, wk, lo, width, q, lanes)
                    out[img, py, px, kk] |= b0 << np.uint64(g)
                    out[img, py, px + 1, kk] |= b1 << np.uint64(g)
            for px in range(rest, out.shape[2]):
                p0 = px * n_pix
                if nib:
                    bits = _group_bits(patch, p0, n_pix, n_k, wk, lo, width, q, lanes)
                elif n_pix % 2 == 0:  # pool windows of 2x2 (4x4 ..): patches in pairs
                    bits = _window_bits_pairs(patch, p0, n_pix, n_k, wk, lo, width, q, lanes)
                else:
                    bits = _group_bits_words(patch, p0, n_pix, n_k, wk, lo, width, q, lanes)
                out[img, py, px, kk] |= bits << np.uint64(g)


def count_ranges(sgn: np.ndarray, sthr: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, width)`` as ``uint64``: ``sgn * (n_bits - 2 * c) >= sthr`` exactly where
    ``lo <= c <= lo + width`` for a popcount ``c`` in ``0 .. n_bits`` (an empty range:
    ``lo = n_bits + 1``, ``width = 0``)."""
    lo = np.empty(len(sgn), np.uint64)
    width = np.zeros(len(sgn), np.uint64)
    for q, (g, t) in enumerate(zip(sgn.tolist(), sthr.tolist(), strict=True)):
        if g > 0:  # n - 2c >= t  <=>  c <= floor((n - t) / 2)
            a, b = 0, min((n_bits - t) // 2, n_bits)
        else:  # 2c - n >= t  <=>  c >= ceil((n + t) / 2)
            a, b = max(-((-(n_bits + t)) // 2), 0), n_bits
        if a > b:
            lo[q] = n_bits + 1
        else:
            lo[q], width[q] = a, b - a
    return lo, width


@njit(cache=True)
def tap_offsets(kh, kw, wp, cw):
    """Flat offset of each patch value from its patch's corner in an image of ``wp`` pixels
    a row and ``cw`` values a pixel, in (dy, dx, c) order (the weights' tap order)."""
    offs = np.empty(kh * kw * cw, np.int64)
    k = 0
    for dy in range(kh):
        for dx in range(kw):
            for c in range(cw):
                offs[k] = (dy * wp + dx) * cw + c
                k += 1
    return offs


@njit(cache=True, inline="always")
def fast_input(x, ones, geom):
    """The padded input flat per image, its tap offsets and the cores' geometry, from
    ``geom`` = ``(n_bits, kh, kw, stride, pool, pool_stride, nibbles, top, bottom, left,
    right)``."""
    n_bits, kh, kw, stride, pool, pstride, nib, top, bottom, left, right = geom
    xp = pad_words(x, top, bottom, left, right, ones)
    cw = x.shape[3]
    wp = xp.shape[2]
    offs = tap_offsets(kh, kw, wp, cw)
    g = (n_bits, kh, kw, stride, pool, pstride, wp, cw, nib)
    return xp.reshape(x.shape[0], -1), offs, g


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
    "count_ranges",
    "fast_input",
    "fast_row_bytes",
    "ge_form",
    "gather_patch",
    "nibble_split",
    "pad_counts",
    "pad_words",
    "pixel_counts_bytes",
    "tap_offsets",
]
