"""The fused binary block on AVX-512 VPOPCNTDQ as a GEMM a pooled row at a time.

For each pooled output row, the patches of the conv rows its pool windows cover are
gathered into a small buffer (rows of ``kh * kw * Cw`` words, +1 pad pixels as all-ones
words, :func:`edgecl.kernels.conv.im2col_row`), the output-vectorised XNOR-popcount GEMM
(:func:`edgecl.kernels.outvec.outvec_range`: 4 patches x 32 channels of ``vpopcntq``
accumulators in registers across the whole patch) turns them into the rows' ±1 dots, and
``bit = sgn * dot >= sthr`` ORed over each pool window is packed 64 channels to a word.
Only the dots of one pooled row exist at a time (a few KiB, in L1), never a feature map.

Same bits as :func:`edgecl.kernels.block.binary_conv_threshold_pool_reference` (tests run
it against the twin on odd sizes); used by :mod:`edgecl.kernels.block` for one-padded
blocks with ``repeat == 1`` on the ``vpopcntdq`` strategy, where the per-pixel core keeps
its 64-bit accumulators in memory and the short-patch core sums at most 18 words.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from edgecl.kernels.conv import im2col_row
from edgecl.kernels.outvec import outvec_range

__all__ = ["count_bounds", "gemm_block_parallel", "gemm_block_serial", "gemm_rows"]


def count_bounds(sgn: np.ndarray, sthr: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """int32 ``lo``, ``hi`` with ``lo <= dot <= hi`` exactly when ``sgn * dot >= sthr``, for
    every dot in ``[-n_bits, n_bits]``: ``dot >= sthr`` where ``sgn`` is +1, ``dot <= -sthr``
    where -1, the bounds clamped to ``+-(n_bits + 1)`` (past every dot)."""
    edge = np.int64(n_bits) + 1
    up = np.asarray(sgn) > 0
    lo = np.where(up, np.clip(sthr, -edge, edge), -edge)
    hi = np.where(up, edge, np.clip(-np.asarray(sthr, np.int64), -edge, edge))
    return lo.astype(np.int32), hi.astype(np.int32)


@njit(cache=True, inline="always")
def _pack_row(res, n_cols, win, step, lo, hi, out, img, py):
    """``out[img, py, px, k]``: bit ``q`` of word ``k`` = OR over the pool window of
    ``lo[q] <= res[a * n_cols + px * step + b, q] <= hi[q]`` (:func:`count_bounds`, int32
    compares, no multiply): store-free reductions over 64 channels that LLVM vectorises (the
    1x1 and 2x2 windows written out, as a loop inside would keep the channel loop scalar)."""
    n_bits = lo.shape[0]
    for px in range(out.shape[2]):
        r0 = px * step
        for k in range(out.shape[3]):
            q0 = k * 64
            word = np.uint64(0)
            if win == 1:
                for t in range(min(64, n_bits - q0)):
                    q = q0 + t
                    hit = (res[r0, q] >= lo[q]) & (res[r0, q] <= hi[q])
                    word |= np.uint64(hit) << np.uint64(t)
            elif win == 2:
                r1 = n_cols + r0
                for t in range(min(64, n_bits - q0)):
                    q = q0 + t
                    a, b = lo[q], hi[q]
                    v0, v1, v2, v3 = res[r0, q], res[r0 + 1, q], res[r1, q], res[r1 + 1, q]
                    hit = ((v0 >= a) & (v0 <= b)) | ((v1 >= a) & (v1 <= b))
                    hit |= ((v2 >= a) & (v2 <= b)) | ((v3 >= a) & (v3 <= b))
                    word |= np.uint64(hit) << np.uint64(t)
            else:
                for t in range(min(64, n_bits - q0)):
                    q = q0 + t
                    hit = False
                    for a in range(win):
                        for b in range(win):
                            v = res[a * n_cols + r0 + b, q]
                            hit |= (v >= lo[q]) & (v <= hi[q])
                    word |= np.uint64(hit) << np.uint64(t)
            out[img, py, px, k] = word


@njit(cache=True, inline="always")
def gemm_rows(x, r, wt, lo, hi, ones, geom, out, buf, res):
    """Pooled output row ``r`` (image ``r // Po``, row ``r % Po``); ``geom`` = ``(nbits,
    kh, kw, stride, top, left, pool, pool_stride)``; ``buf`` / ``res``: work rows for
    ``win * n_cols`` patches, ``n_cols`` the conv columns the row's pool windows read."""
    nbits, kh, kw, stride, top, left, pool, pstride = geom
    po = out.shape[1]
    img, py = r // po, r % po
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    n_cols = (out.shape[2] - 1) * step + win
    for a in range(win):
        im2col_row(x, img, py * step + a, n_cols, kh, kw, stride, top, left, ones, buf, a * n_cols)
    outvec_range(buf, wt, nbits, res, 0, wt.shape[1])
    _pack_row(res, n_cols, win, step, lo, hi, out, img, py)


@njit(cache=True)
def _work(wt, geom, wo):
    pool, pstride = geom[6], geom[7]
    win = max(pool, 1)
    step = pstride if pool > 0 else 1
    rows = win * ((wo - 1) * step + win)
    return np.empty((rows, wt.shape[0]), np.uint64), np.empty((rows, wt.shape[1]), np.int32)


@njit(cache=True)
def gemm_block_serial(x, wt, lo, hi, ones, geom, out, token):
    """The fused block (module docstring) on ``x`` (N, H, W, Cw) words into ``out``
    (N, Po, Qo, n_words(O)); ``wt`` (kh * kw * Cw, O) words (the block's ``(kh, kw, Cw,
    O)`` weights as a matrix), ``lo`` / ``hi`` int32 (O,) from :func:`count_bounds`;
    ``token`` unused (the block cores' common signature)."""
    buf, res = _work(wt, geom, out.shape[2])
    for r in range(out.shape[0] * out.shape[1]):
        gemm_rows(x, r, wt, lo, hi, ones, geom, out, buf, res)


@njit(cache=True, parallel=True)
def gemm_block_parallel(x, wt, lo, hi, ones, geom, out, token):
    """:func:`gemm_block_serial` with the pooled rows split over Numba threads."""
    for r in prange(out.shape[0] * out.shape[1]):
        buf, res = _work(wt, geom, out.shape[2])
        gemm_rows(x, r, wt, lo, hi, ones, geom, out, buf, res)
