"""The fused binary block on AVX-512 VPOPCNTDQ as a GEMM a pooled row at a time.

For each pooled output row, the patches of the conv rows its pool windows cover are
gathered into a small buffer (rows of ``kh * kw * Cw`` words, from the input padded once
with all-ones pixels), the output-vectorised XNOR-popcount GEMM
(:func:`edgecl.kernels.outvec.outvec_bits_range`: 4 patches x 32 channels of ``vpopcntq``
accumulators in registers across the whole patch) tests each count against its range
(``bit = sgn * dot >= sthr`` as ``lo <= count <= lo + width``, one compare and a mask move
per 8 channels) straight from the registers into packed words, and the words of each pool
window are ORed. Only the bits of one pooled row exist at a time, never a dot.

Same bits as :func:`edgecl.kernels.block.binary_conv_threshold_pool_reference` (tests run
it against the twin on odd sizes); used by :mod:`edgecl.kernels.block` for one-padded
blocks with ``repeat == 1`` on the ``vpopcntdq`` strategy, where the per-pixel core keeps
its 64-bit accumulators in memory and the short-patch core sums at most 18 words.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from edgecl.kernels.fused_bytes import count_ranges, gather_patch, pad_words, tap_offsets
from edgecl.kernels.outvec import outvec_bits_range

__all__ = [
    "gemm_block_parallel",
    "gemm_block_serial",
    "gemm_rows",
    "padded_ranges",
    "pool_bit_rows",
]


def padded_ranges(sgn: np.ndarray, sthr: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~edgecl.kernels.fused_bytes.count_ranges` (``lo <= popcount <= lo + width``
    exactly where ``sgn * dot >= sthr``) padded with empty ranges to a multiple of 8
    channels, as :func:`~edgecl.kernels.outvec.outvec_bits_range` loads them."""
    n = len(sgn)
    lo, width = count_ranges(np.asarray(sgn, np.int64), np.asarray(sthr, np.int64), n_bits)
    n8 = -(-n // 8) * 8
    lo8 = np.full(n8, n_bits + 1, np.uint64)
    width8 = np.zeros(n8, np.uint64)
    lo8[:n], width8[:n] = lo, width
    return lo8, width8


@njit(cache=True, inline="always")
def pool_bit_rows(bits, n_cols, win, step, out, img, py):
    """``out[img, py, px, k]`` = OR of ``bits[a * n_cols + px * step + b, k]`` over the pool
    window ``a, b < win`` (the bits of each conv output of the pooled row's window rows)."""
    for px in range(out.shape[2]):
        r0 = px * step
        for k in range(out.shape[3]):
            word = np.uint64(0)
            for a in range(win):
                for b in range(win):
                    word |= bits[a * n_cols + r0 + b, k]
            out[img, py, px, k] = word


@njit(cache=True, inline="always")
def gemm_rows(xflat, r, wt, lo, width, offs, geom, out, buf, bits):
    """Pooled output row ``r`` (image ``r // Po``, row ``r % Po``) from ``xflat`` (N, Hp *
    Wp * Cw), the input padded once with +1 pixels; ``geom`` = ``(nbits, kh, kw, stride,
    pool, pool_stride, Wp, Cw)``, ``offs`` the patch's tap offsets; ``buf`` / ``bits``:
    work rows for ``win * n_cols`` patches, ``n_cols`` the conv columns the row's pool
    windows read."""
    nbits, kh, kw, stride, pool, pstride, wp, cw = geom
    po = out.shape[1]
    img, py = r // po, r % po
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_cols = (out.shape[2] - 1) * step + win
    n_k = kh * kw * cw
    for a in range(win):
        row = (py * step + a) * stride * wp
        for b in range(n_cols):
            gather_patch(buf, a * n_cols + b, xflat[img], (row + b * stride) * cw, offs, n_k)
    outvec_bits_range(buf, wt, lo, width, bits)
    pool_bit_rows(bits, n_cols, win, step, out, img, py)


@njit(cache=True)
def _work(wt, geom, wo):
    pool, pstride = geom[4], geom[5]
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    rows = win * ((wo - 1) * step + win)
    n_out_words = (wt.shape[1] + 63) // 64
    return np.empty((rows, wt.shape[0]), np.uint64), np.empty((rows, n_out_words), np.uint64)


@njit(cache=True)
def _padded(x, ones, geom):
    """The input padded with +1 pixels, flat per image; the tap offsets; the rows' geometry
    (``geom`` = ``(nbits, kh, kw, stride, top, bottom, left, right, pool, pool_stride)``)."""
    nbits, kh, kw, stride, top, bottom, left, right, pool, pstride = geom
    xp = pad_words(x, top, bottom, left, right, ones)
    wp, cw = xp.shape[2], xp.shape[3]
    g = (nbits, kh, kw, stride, pool, pstride, wp, cw)
    return xp.reshape(x.shape[0], -1), tap_offsets(kh, kw, wp, cw), g


@njit(cache=True)
def gemm_block_serial(x, wt, lo, width, ones, geom, out, token):
    """The fused block (module docstring) on ``x`` (N, H, W, Cw) words into ``out``
    (N, Po, Qo, n_words(O)); ``wt`` (kh * kw * Cw, O) words (the block's ``(kh, kw, Cw,
    O)`` weights as a matrix), ``lo`` / ``width`` uint64 from :func:`padded_ranges`;
    ``token`` unused (the block cores' common signature)."""
    xflat, offs, g = _padded(x, ones, geom)
    buf, bits = _work(wt, g, out.shape[2])
    for r in range(out.shape[0] * out.shape[1]):
        gemm_rows(xflat, r, wt, lo, width, offs, g, out, buf, bits)


@njit(cache=True, parallel=True)
def gemm_block_parallel(x, wt, lo, width, ones, geom, out, token):
    """:func:`gemm_block_serial` with the pooled rows split over Numba threads."""
    xflat, offs, g = _padded(x, ones, geom)
    for r in prange(out.shape[0] * out.shape[1]):
        buf, bits = _work(wt, g, out.shape[2])
        gemm_rows(xflat, r, wt, lo, width, offs, g, out, buf, bits)
