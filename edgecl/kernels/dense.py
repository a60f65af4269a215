"""Binary dense layer: XNOR-popcount products of packed ±1 vectors.

For ±1 vectors of length ``n`` packed by :mod:`edgecl.kernels.bits`,
``dot(a, w) = n - 2 * popcount(a XOR w)`` (the XNOR-popcount product of XNOR-Net and BNN,
in the form Larq Compute Engine uses). Tail bits are zero in both operands, so they never
count.

The Numba core is a register-tiled GEMM, in the form the popcount strategy of Numba's
target asks for (:mod:`edgecl.kernels.popcount`): with AVX-512 VPOPCNTDQ, word loops in
tiles of 4 rows of ``x`` by 4 rows of ``w`` (16 ``uint64`` accumulators; LLVM vectorises
the XOR + ``ctpop`` to ``vpopcntq`` on zmm registers), leftover rows as GEMVs; with AVX2,
AVX-512BW or NEON, byte accumulators on vectors of words in 2x4 and 1x4 tiles
(:mod:`edgecl.kernels.bytegemm`); the portable strategy, word loops in 1x4 tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange, types
from numba.core import errors
from numba.core.extending import overload

from edgecl.kernels._check import check_count, check_words
from edgecl.kernels._threads import check_threads, num_threads
from edgecl.kernels.bits import unpack_bits
from edgecl.kernels.bytegemm import bytes_range
from edgecl.kernels.outvec import TILE_CHANNELS, outvec_tiles_range
from edgecl.kernels.popcount import (
    WORD_NARROW,
    WORD_WIDE,
    PopcountStrategy,
    get_strategy,
    popcount64,
    token_mode,
)

# Output rows handed to one parallel task (a multiple of the 4-row tile).
_CHUNK = 64


@njit(cache=True)
def _dot1(x, w, b, o, nbits):
    """One ±1 dot product: row ``b`` of ``x`` with row ``o`` of ``w``."""
    a = np.uint64(0)
    for k in range(x.shape[1]):
        a += popcount64(x[b, k] ^ w[o, k])
    return nbits - 2 * np.int64(a)


@njit(cache=True)
def _tile41(x, w, b, o, nbits, out):
    """Rows ``b..b+3`` of ``x`` against row ``o`` of ``w``."""
    a0 = np.uint64(0)
    a1 = np.uint64(0)
    a2 = np.uint64(0)
    a3 = np.uint64(0)
    for k in range(x.shape[1]):
        wk = w[o, k]
        a0 += popcount64(x[b, k] ^ wk)
        a1 += popcount64(x[b + 1, k] ^ wk)
        a2 += popcount64(x[b + 2, k] ^ wk)
        a3 += popcount64(x[b + 3, k] ^ wk)
    out[b, o] = nbits - 2 * np.int64(a0)
    out[b + 1, o] = nbits - 2 * np.int64(a1)
    out[b + 2, o] = nbits - 2 * np.int64(a2)
    out[b + 3, o] = nbits - 2 * np.int64(a3)


@njit(cache=True)
def _tile14(x, w, b, o, nbits, out):
    """Row ``b`` of ``x`` against rows ``o..o+3`` of ``w`` (the AVX2 tile)."""
    a0 = np.uint64(0)
    a1 = np.uint64(0)
    a2 = np.uint64(0)
    a3 = np.uint64(0)
    for k in range(x.shape[1]):
        xk = x[b, k]
        a0 += popcount64(xk ^ w[o, k])
        a1 += popcount64(xk ^ w[o + 1, k])
        a2 += popcount64(xk ^ w[o + 2, k])
        a3 += popcount64(xk ^ w[o + 3, k])
    out[b, o] = nbits - 2 * np.int64(a0)
    out[b, o + 1] = nbits - 2 * np.int64(a1)
    out[b, o + 2] = nbits - 2 * np.int64(a2)
    out[b, o + 3] = nbits - 2 * np.int64(a3)


@njit(cache=True)
def _tile44(x, w, b, o, nbits, out):
    """Rows ``b..b+3`` of ``x`` against rows ``o..o+3`` of ``w``: 16 register accumulators."""
    a00 = np.uint64(0)
    a01 = np.uint64(0)
    a02 = np.uint64(0)
    a03 = np.uint64(0)
    a10 = np.uint64(0)
    a11 = np.uint64(0)
    a12 = np.uint64(0)
    a13 = np.uint64(0)
    a20 = np.uint64(0)
    a21 = np.uint64(0)
    a22 = np.uint64(0)
    a23 = np.uint64(0)
    a30 = np.uint64(0)
    a31 = np.uint64(0)
    a32 = np.uint64(0)
    a33 = np.uint64(0)
    for k in range(x.shape[1]):
        x0 = x[b, k]
        x1 = x[b + 1, k]
        x2 = x[b + 2, k]
        x3 = x[b + 3, k]
        w0 = w[o, k]
        w1 = w[o + 1, k]
        w2 = w[o + 2, k]
        w3 = w[o + 3, k]
        a00 += popcount64(x0 ^ w0)
        a01 += popcount64(x0 ^ w1)
        a02 += popcount64(x0 ^ w2)
        a03 += popcount64(x0 ^ w3)
        a10 += popcount64(x1 ^ w0)
        a11 += popcount64(x1 ^ w1)
        a12 += popcount64(x1 ^ w2)
        a13 += popcount64(x1 ^ w3)
        a20 += popcount64(x2 ^ w0)
        a21 += popcount64(x2 ^ w1)
        a22 += popcount64(x2 ^ w2)
        a23 += popcount64(x2 ^ w3)
        a30 += popcount64(x3 ^ w0)
        a31 += popcount64(x3 ^ w1)
        a32 += popcount64(x3 ^ w2)
        a33 += popcount64(x3 ^ w3)
    out[b, o] = nbits - 2 * np.int64(a00)
    out[b, o + 1] = nbits - 2 * np.int64(a01)
    out[b, o + 2] = nbits - 2 * np.int64(a02)
    out[b, o + 3] = nbits - 2 * np.int64(a03)
    out[b + 1, o] = nbits - 2 * np.int64(a10)
    out[b + 1, o + 1] = nbits - 2 * np.int64(a11)
    out[b + 1, o + 2] = nbits - 2 * np.int64(a12)
    out[b + 1, o + 3] = nbits - 2 * np.int64(a13)
    out[b + 2, o] = nbits - 2 * np.int64(a20)
    out[b + 2, o + 1] = nbits - 2 * np.int64(a21)
    out[b + 2, o + 2] = nbits - 2 * np.int64(a22)
    out[b + 2, o + 3] = nbits - 2 * np.int64(a23)
    out[b + 3, o] = nbits - 2 * np.int64(a30)
    out[b + 3, o + 1] = nbits - 2 * np.int64(a31)
    out[b + 3, o + 2] = nbits - 2 * np.int64(a32)
    out[b + 3, o + 3] = nbits - 2 * np.int64(a33)


@njit(cache=True)
def _rows(x, w, nbits, out, b0, o0, o1):
    """Rows ``b0..`` of ``x`` one at a time (a GEMV each); kept out of line on purpose:
    LLVM vectorises it better as its own function (measured: ~1.4x on the batch-1 GEMV)."""
    for b in range(b0, x.shape[0]):
        for o in range(o0, o1):
            out[b, o] = _dot1(x, w, b, o, nbits)


@njit(cache=True)
def _wide_range(x, w, nbits, out, o0, o1):
    """4x4 word tiles (16 accumulators: right with AVX-512's 32 registers and a native
    vector popcount), leftover rows as GEMVs."""
    B = x.shape[0]
    o4 = o0 + (o1 - o0) - (o1 - o0) % 4
    b4 = B - B % 4
    for o in range(o0, o4, 4):
        for b in range(0, b4, 4):
            _tile44(x, w, b, o, nbits, out)
    for o in range(o4, o1):
        for b in range(0, b4, 4):
            _tile41(x, w, b, o, nbits, out)
    _rows(x, w, nbits, out, b4, o0, o1)


@njit(cache=True)
def _narrow_range(x, w, nbits, out, o0, o1):
    """1x4 word tiles (the portable loop: 4 accumulators)."""
    B = x.shape[0]
    o4 = o0 + (o1 - o0) - (o1 - o0) % 4
    for o in range(o0, o4, 4):
        for b in range(B):
            _tile14(x, w, b, o, nbits, out)
    _rows(x, w, nbits, out, 0, o4, o1)


def dense_range(x, w, nbits, out, o0, o1, token):
    """``out[:, o0:o1]`` of the packed product of ``x`` (B, K) and ``w`` (O, K).

    ``token`` is a :class:`~edgecl.kernels.popcount.PopcountStrategy`'s token; its mode
    is ``WORD_WIDE``, ``WORD_NARROW``, or the byte-vector width
    (:mod:`edgecl.kernels.bytegemm`). In ``@njit`` code each token type compiles only
    its own core.
    """
    raise TypeError("dense_range is only callable from @njit code")


@overload(dense_range, prefer_literal=True, jit_options={"cache": True})
def _dense_range_impl(x, w, nbits, out, o0, o1, token):
    if not isinstance(token, types.BaseTuple):
        raise errors.TypingError(f"expected a popcount strategy token (a tuple), got {token}")
    lanes = token_mode(token)
    if lanes > 0:

        def impl(x, w, nbits, out, o0, o1, token):
            bytes_range(x, w, nbits, out, o0, o1, lanes)

    elif lanes == WORD_NARROW:

        def impl(x, w, nbits, out, o0, o1, token):
            _narrow_range(x, w, nbits, out, o0, o1)

    else:

        def impl(x, w, nbits, out, o0, o1, token):
            _wide_range(x, w, nbits, out, o0, o1)

    return impl


@njit(cache=True)
def _dense_serial(x, w, nbits, out, token):
    dense_range(x, w, nbits, out, 0, w.shape[0], token)


@njit(cache=True, parallel=True)
def _dense_parallel(x, w, nbits, out, token):
    n_out = w.shape[0]
    n_chunks = (n_out + _CHUNK - 1) // _CHUNK
    for c in prange(n_chunks):
        o0 = c * _CHUNK
        dense_range(x, w, nbits, out, o0, min(o0 + _CHUNK, n_out), token)


def dense_words(
    x: np.ndarray, w: np.ndarray, nbits: int, threads: int, strategy: str | None = None
) -> np.ndarray:
    """Checked-elsewhere core call: ``x`` (B, K), ``w`` (O, K) C-contiguous uint64;
    ``strategy`` a name of :data:`~edgecl.kernels.popcount.STRATEGIES` (None: this CPU's)."""
    token = get_strategy(strategy).token
    out = np.empty((x.shape[0], w.shape[0]), np.int32)
    if threads == 1:
        _dense_serial(x, w, nbits, out, token)
    else:
        with num_threads(threads):
            _dense_parallel(x, w, nbits, out, token)
    return out


def _check_dense(x_words, w_words, n):
    n = check_count(n, "n")
    x = check_words(x_words, "x_words", (1, 2), n, "(B, W) or (W,)")
    w = check_words(w_words, "w_words", (2,), n, "(O, W)")
    return x, w, n


def binary_dense(
    x_words: np.ndarray, w_words: np.ndarray, n: int, *, threads: int = 1
) -> np.ndarray:
    """±1 dot products of packed rows: ``n - 2 * popcount(x XOR w)`` summed over words.

    ``x_words`` (B, W) or (W,) and ``w_words`` (O, W) are ``uint64`` with
    ``W == n_words(n)``; returns ``int32`` (B, O) (or (O,) for a 1-D ``x_words``).
    ``threads > 1`` splits the output rows over Numba threads.
    """
    x, w, n = _check_dense(x_words, w_words, n)
    threads = check_threads(threads)
    out = dense_words(x.reshape(-1, x.shape[-1]), w, n, threads)
    return out[0] if x.ndim == 1 else out


def binary_dense_reference(x_words: np.ndarray, w_words: np.ndarray, n: int) -> np.ndarray:
    """NumPy twin of :func:`binary_dense`: unpack to ±1 and multiply in int64."""
    x, w, n = _check_dense(x_words, w_words, n)
    xs = unpack_bits(x, n).astype(np.int64) * 2 - 1
    ws = unpack_bits(w, n).astype(np.int64) * 2 - 1
    return (xs @ ws.T).astype(np.int32)


@njit(cache=True)
def _tiles_serial(x, tiles, nbits, out):
    outvec_tiles_range(x, tiles, nbits, out, 0, tiles.shape[0])


@njit(cache=True, parallel=True)
def _tiles_parallel(x, tiles, nbits, out):
    per_task = _CHUNK // TILE_CHANNELS
    n_tiles = tiles.shape[0]
    for c in prange((n_tiles + per_task - 1) // per_task):
        t0 = c * per_task
        outvec_tiles_range(x, tiles, nbits, out, t0, min(t0 + per_task, n_tiles))


@dataclass(frozen=True)
class DenseWeights:
    """A binary dense layer's packed weights, laid out once for a popcount strategy
    (:func:`prepare_dense`), as a converted model keeps them: ``words`` (O, W) as given;
    ``tiles`` the same bits as (T, W, 32) where the strategy runs the output-vectorised
    GEMM (``vpopcntdq``: 8 output channels per ``vpopcntq``,
    :func:`~edgecl.kernels.outvec.outvec_tiles_range`): channels ``32 t ..`` of tile ``t``,
    each tile's words contiguous, the channels past O zero; else None. Both arrays are
    read-only copies."""

    words: np.ndarray
    n: int
    strategy: PopcountStrategy
    tiles: np.ndarray | None


def prepare_dense(w_words: np.ndarray, n: int, *, strategy: str | None = None) -> DenseWeights:
    """Lay out ``w_words`` (O, W) ``uint64``, ``W == n_words(n)``, for
    :func:`binary_dense_prepared` with ``strategy`` (a name of
    :data:`~edgecl.kernels.popcount.STRATEGIES`; None: this CPU's)."""
    n = check_count(n, "n")
    w = check_words(w_words, "w_words", (2,), n, "(O, W)")
    strat = get_strategy(strategy)
    words = np.array(w, dtype=np.uint64, order="C", copy=True)
    words.flags.writeable = False
    tiles = None
    if strat.mode == WORD_WIDE:
        n_out, n_w = words.shape
        n_tiles = -(-n_out // TILE_CHANNELS)
        padded = np.zeros((n_tiles * TILE_CHANNELS, n_w), np.uint64)
        padded[:n_out] = words
        tiles = np.ascontiguousarray(padded.reshape(n_tiles, TILE_CHANNELS, n_w).transpose(0, 2, 1))
        tiles.flags.writeable = False
    return DenseWeights(words, n, strat, tiles)


def binary_dense_prepared(
    x_words: np.ndarray, weights: DenseWeights, *, threads: int = 1
) -> np.ndarray:
    """:func:`binary_dense` of ``x_words`` (B, W) or (W,) with weights from
    :func:`prepare_dense`: the same ``int32`` (B, O) (or (O,)), bit for bit."""
    if not isinstance(weights, DenseWeights):
        raise TypeError(f"expected weights from prepare_dense, got {type(weights).__name__}")
    n = weights.n
    x = check_words(x_words, "x_words", (1, 2), n, "(B, W) or (W,)")
    threads = check_threads(threads)
    rows = x.reshape(-1, x.shape[-1])
    if weights.tiles is None:
        out = dense_words(rows, weights.words, n, threads, weights.strategy.name)
    else:
        out = np.empty((rows.shape[0], weights.words.shape[0]), np.int32)
        if threads == 1:
            _tiles_serial(rows, weights.tiles, n, out)
        else:
            with num_threads(threads):
                _tiles_parallel(rows, weights.tiles, n, out)
    return out[0] if x.ndim == 1 else out


__all__ = [
    "DenseWeights",
    "binary_dense",
    "binary_dense_prepared",
    "binary_dense_reference",
    "prepare_dense",
]
