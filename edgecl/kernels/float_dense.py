"""Bits times a float32 matrix: the classifier head on binary embeddings.

``x @ W`` with ``x`` in {0,1} is the sum of the rows of ``W`` whose bit is set; with
``x`` in ±1 it is ``2 * sum(selected rows) - sum(all rows)``. The kernel walks the set
bits of each row (lowest first) and adds whole rows, four per pass over the output row,
so its cost follows the set bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from edgecl.kernels._check import check_count, check_float32, check_words
from edgecl.kernels._threads import check_threads, num_threads
from edgecl.kernels.bits import unpack_bits
from edgecl.kernels.popcount import popcount64


@njit(cache=True)
def _set_bits(x, b, idx):
    """Write the indices of the set bits of row ``b`` of ``x`` into ``idx``; return the count."""
    cnt = 0
    one = np.uint64(1)
    for k in range(x.shape[1]):
        word = x[b, k]
        while word != 0:
            low = word & (~word + one)
            idx[cnt] = k * 64 + np.int64(popcount64(low - one))
            cnt += 1
            word ^= low
    return cnt


@njit(cache=True)
def _add_rows(acc, mat, idx, cnt):
    """``acc += sum(mat[idx[:cnt]])``, four rows per pass over ``acc``."""
    n_cols = acc.shape[0]
    i = 0
    while i + 4 <= cnt:
        r0 = idx[i]
        r1 = idx[i + 1]
        r2 = idx[i + 2]
        r3 = idx[i + 3]
        for c in range(n_cols):
            acc[c] += (mat[r0, c] + mat[r1, c]) + (mat[r2, c] + mat[r3, c])
        i += 4
    while i < cnt:
        r0 = idx[i]
        for c in range(n_cols):
            acc[c] += mat[r0, c]
        i += 1


@njit(cache=True)
def _column_sums(weight):
    s = np.zeros(weight.shape[1], np.float32)
    for j in range(weight.shape[0]):
        for o in range(weight.shape[1]):
            s[o] += weight[j, o]
    return s


@njit(cache=True)
def _bfd_row(x, b, weight, signed, colsum, idx, out):
    for o in range(out.shape[1]):
        out[b, o] = 0.0
    _add_rows(out[b], weight, idx, _set_bits(x, b, idx))
    if signed:
        for o in range(out.shape[1]):
            out[b, o] = 2.0 * out[b, o] - colsum[o]


@njit(cache=True)
def _bfd_serial(x, weight, signed, out):
    colsum = _column_sums(weight) if signed else np.zeros(0, np.float32)
    idx = np.empty(x.shape[1] * 64, np.int32)
    for b in range(x.shape[0]):
        _bfd_row(x, b, weight, signed, colsum, idx, out)


@njit(cache=True, parallel=True)
def _bfd_parallel(x, weight, signed, out):
    colsum = _column_sums(weight) if signed else np.zeros(0, np.float32)
    for b in prange(x.shape[0]):
        idx = np.empty(x.shape[1] * 64, np.int32)
        _bfd_row(x, b, weight, signed, colsum, idx, out)


def _check(x_words, weight, n):
    n = check_count(n, "n")
    x = check_words(x_words, "x_words", (1, 2), n, "(B, W) or (W,)")
    weight = check_float32(weight, "weight", (2,), "(n, O)")
    if weight.shape[0] != n:
        raise ValueError(f"expected weight of shape ({n}, O) for n={n}, got {weight.shape}")
    return x, weight, n


def binary_float_dense(
    x_words: np.ndarray,
    weight: np.ndarray,
    n: int,
    *,
    signed: bool = False,
    threads: int = 1,
) -> np.ndarray:
    """``bits @ weight`` as float32 (B, O) (or (O,) for a 1-D ``x_words``).

    ``x_words`` (B, W) packed bits with ``W == n_words(n)``; ``weight`` float32 (n, O),
    row ``j`` multiplying input bit ``j``. ``signed=False``: inputs are {0,1} (sum of the
    selected rows); ``signed=True``: inputs are ±1. The caller adds any bias.
    ``threads > 1`` splits the batch over Numba threads.
    """
    x, weight, n = _check(x_words, weight, n)
    threads = check_threads(threads)
    x2 = x.reshape(-1, x.shape[-1])
    out = np.empty((x2.shape[0], weight.shape[1]), np.float32)
    if threads == 1:
        _bfd_serial(x2, weight, bool(signed), out)
    else:
        with num_threads(threads):
            _bfd_parallel(x2, weight, bool(signed), out)
    return out[0] if x.ndim == 1 else out


def binary_float_dense_trusted(
    x_words: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """``bits @ weight + bias`` (float32 (B, O)) with no checks, one thread: for words the
    caller made itself (C-contiguous (B, n_words(n)) uint64, tail bits clear) and a
    float32 (n, O) weight; the same sums as :func:`binary_float_dense` plus the bias."""
    out = np.empty((x_words.shape[0], weight.shape[1]), np.float32)
    _bfd_serial(x_words, weight, False, out)
    out += bias
    return out


def binary_float_dense_reference(
    x_words: np.ndarray, weight: np.ndarray, n: int, *, signed: bool = False
) -> np.ndarray:
    """NumPy twin of :func:`binary_float_dense`: unpack and multiply in float64."""
    x, weight, n = _check(x_words, weight, n)
    bits = unpack_bits(x, n).astype(np.float64)
    values = 2.0 * bits - 1.0 if signed else bits
    return (values @ weight.astype(np.float64)).astype(np.float32)


__all__ = ["binary_float_dense", "binary_float_dense_reference", "binary_float_dense_trusted"]
