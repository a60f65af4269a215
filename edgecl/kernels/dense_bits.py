"""``dense_binary -> threshold`` at one thread: the weights laid out once as (K, O64), the
threshold on the counts in the registers (no dot is stored), each output bit straight
into its packed word.

The output channels are the vector lanes, the input word is broadcast. The threshold
``sgn * (n - 2 * popcount) >= sthr`` is the count range ``lo <= popcount <= lo + width``
(:func:`~edgecl.kernels.fused_bytes.count_ranges`). With vpopcntq (and the portable
strategy) the counts are :func:`~edgecl.kernels.outvec.outvec_bits_range`'s word tiles;
the byte strategies (AVX2, NEON, AVX-512BW) add the byte popcounts of up to
:data:`~edgecl.kernels.wordvec.BYTE_STEPS` words in 8-bit lanes before each widening,
4 vectors of channels at a time. Tests compare every strategy with
:func:`edgecl.kernels.dense_block.binary_dense_threshold_reference`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import errors, njit, types
from numba.extending import overload

from edgecl.kernels.bits import WORD_DTYPE, n_words
from edgecl.kernels.block import BinaryBlock
from edgecl.kernels.block_gemm import padded_ranges
from edgecl.kernels.outvec import outvec_bits_range
from edgecl.kernels.popcount import get_strategy, token_mode
from edgecl.kernels.wordvec import (
    BYTE_STEPS,
    wv_add,
    wv_add_bytes,
    wv_byte_counts,
    wv_lane_sums,
    wv_load,
    wv_range_bits,
    wv_splat_at,
    wv_xor,
    wv_zero,
)

__all__ = ["DenseBits", "dense_bits_runner", "prepare_dense_bits"]


@njit(cache=True, inline="always")
def _step(acc, xv, wt, k, q, lanes):
    """``acc`` plus the byte popcounts of ``x XOR wt[k, q .. q + lanes - 1]``."""
    return wv_add_bytes(acc, wv_byte_counts(wv_xor(xv, wv_load(lanes, wt, (k, q)))))


@njit(cache=True, inline="always")
def _counts4(x, b, wt, q, lanes):
    """The popcount sums of row ``b`` of ``x`` against channels ``q .. q + 4 * lanes - 1``
    of ``wt``: 4 vectors of byte lanes, widened every ``BYTE_STEPS`` words."""
    s0 = s1 = s2 = s3 = wv_zero(lanes)
    n_k = wt.shape[0]
    for k0 in range(0, n_k, BYTE_STEPS):
        a0 = a1 = a2 = a3 = wv_zero(lanes)
        for k in range(k0, min(k0 + BYTE_STEPS, n_k)):
            xv = wv_splat_at(lanes, x, (b, k))
            a0 = _step(a0, xv, wt, k, q, lanes)
            a1 = _step(a1, xv, wt, k, q + lanes, lanes)
            a2 = _step(a2, xv, wt, k, q + 2 * lanes, lanes)
            a3 = _step(a3, xv, wt, k, q + 3 * lanes, lanes)
        s0, s1 = wv_add(s0, wv_lane_sums(a0)), wv_add(s1, wv_lane_sums(a1))
        s2, s3 = wv_add(s2, wv_lane_sums(a2)), wv_add(s3, wv_lane_sums(a3))
    return s0, s1, s2, s3


@njit(cache=True, inline="always")
def _range(s, lo, width, q, lanes):
    return wv_range_bits(s, wv_load(lanes, lo, (q,)), wv_load(lanes, width, (q,)))


@njit(cache=True, inline="always")
def dense_bits_bytes(x, wt, lo, width, out, lanes):
    """Bit ``o`` of row ``b`` of ``out`` (B, O64 / 64): ``lo[o] <= count[b, o] <= lo[o] +
    width[o]`` for the popcount sums of ``x`` (B, K) against ``wt`` (K, O64), ``O64`` a
    multiple of ``4 * lanes``; byte accumulators of ``lanes`` words."""
    sh = np.uint64(lanes)
    for b in range(x.shape[0]):
        for kk in range(out.shape[1]):
            word = np.uint64(0)
            for g in range(0, 64, 4 * lanes):
                q = kk * 64 + g
                s0, s1, s2, s3 = _counts4(x, b, wt, q, lanes)
                bits = _range(s0, lo, width, q, lanes)
                bits |= _range(s1, lo, width, q + lanes, lanes) << sh
                bits |= _range(s2, lo, width, q + 2 * lanes, lanes) << (sh + sh)
                bits |= _range(s3, lo, width, q + 3 * lanes, lanes) << (sh + sh + sh)
                word |= bits << np.uint64(g)
            out[b, kk] = word


def dense_bits(x, wt, lo, width, out, token):
    """The byte cores or the word tiles, by ``token``'s strategy (at compile time)."""
    raise TypeError("dense_bits is only callable from @njit code")


@overload(dense_bits, jit_options={"cache": True})
def _dense_bits_impl(x, wt, lo, width, out, token):
    if not isinstance(token, types.BaseTuple):
        raise errors.TypingError(f"expected a popcount strategy token (a tuple), got {token}")
    lanes = token_mode(token)
    if lanes > 0:

        def impl(x, wt, lo, width, out, token):
            dense_bits_bytes(x, wt, lo, width, out, lanes)

    else:

        def impl(x, wt, lo, width, out, token):
            outvec_bits_range(x, wt, lo, width, out)

    return impl


@njit(cache=True)
def _dense_bits_core(x, wt, lo, width, out, token):
    dense_bits(x, wt, lo, width, out, token)


@dataclass(frozen=True)
class DenseBits:
    """A binary dense layer and its threshold laid out for :func:`dense_bits_runner`:
    ``wt`` (K, O64) words (zero columns past O), ``lo``/``width`` (O64,) the count
    ranges (empty past O), ``n_out`` = O."""

    wt: np.ndarray
    lo: np.ndarray
    width: np.ndarray
    n_out: int


def prepare_dense_bits(blk: BinaryBlock) -> DenseBits:
    """The dense layout of a prepared 1x1 block (``dense_binary -> threshold`` as
    :func:`edgecl.kernels.block.prepare_block` makes it, ``repeat`` 1)."""
    kh, kw, cw, n_out = blk.wt.shape
    if (kh, kw) != (1, 1) or blk.repeat != 1 or blk.pads != (0, 0, 0, 0) or blk.pool:
        raise ValueError(
            f"expected a 1x1 block with repeat 1, no pads and no pool, got a {kh}x{kw} "
            f"kernel, repeat {blk.repeat}, pads {blk.pads}, pool {blk.pool}"
        )
    o64 = n_words(n_out) * 64
    wt = np.zeros((cw, o64), WORD_DTYPE)
    wt[:, :n_out] = blk.wt.reshape(cw, n_out)
    lo, width = padded_ranges(blk.sgn, blk.sthr, blk.n_channels)
    lo64 = np.full(o64, blk.n_channels + 1, np.uint64)  # empty ranges: bit 0
    width64 = np.zeros(o64, np.uint64)
    lo64[: len(lo)], width64[: len(width)] = lo, width
    return DenseBits(wt=wt, lo=lo64, width=width64, n_out=n_out)


def dense_bits_runner(
    dense: DenseBits, strategy: str | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """``run(x)``: packed (B, n_words(O)) bits of ``x`` (B, K) C-contiguous uint64 words
    with zero tail bits (the layer program's invariant), on one thread with ``strategy``
    (None: this CPU's)."""
    token = get_strategy(strategy).token
    k, n_out_words = dense.wt.shape[0], dense.wt.shape[1] // 64

    def run(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != k or x.dtype != WORD_DTYPE:
            raise ValueError(f"expected (B, {k}) uint64 words, got {x.dtype} {x.shape}")
        out = np.empty((x.shape[0], n_out_words), WORD_DTYPE)
        _dense_bits_core(np.ascontiguousarray(x), dense.wt, dense.lo, dense.width, out, token)
        return out

    return run
