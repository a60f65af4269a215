"""The device's combined score in one pass: head logits plus the class memory's likelihood.

``log_softmax(z @ W + b) + lam * log_softmax(ll)`` with ``ll[c] = logsumexp_k (z . A[:, k]
+ const[k])`` over the components ``k`` of class ``c`` (``offsets[c] <= k <
offsets[c + 1]``; eq. 3's mixture as :meth:`edgecl.memory.GBMMemory.log_likelihood` lays it
out). One walk over the set bits of each embedding feeds both products (each summed as
:func:`edgecl.kernels.float_dense.binary_float_dense` sums it, float32 rows four at a time),
then a few float64 reductions on tiny rows: no NumPy call per step. Its NumPy twin,
:func:`combined_scores_reference`, is the unfused computation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from edgecl.kernels._check import check_count, check_float32, check_words
from edgecl.kernels._threads import check_threads, num_threads
from edgecl.kernels.float_dense import (
    _add_rows,
    _set_bits,
    binary_float_dense_reference,
)

__all__ = ["combined_scores", "combined_scores_reference", "combined_scores_trusted"]


@njit(cache=True)
def _log_softmax_into(v, out):
    """``out = v - logsumexp(v)`` (float64, stable; all -inf gives NaN, as NumPy)."""
    top = -np.inf
    for i in range(v.shape[0]):
        if v[i] > top:
            top = v[i]
    s = 0.0
    for i in range(v.shape[0]):
        s += np.exp(v[i] - top)
    lse = top + np.log(s)
    for i in range(v.shape[0]):
        out[i] = v[i] - lse


@njit(cache=True)
def _scores_row(z, b, hw, hb, a, const, offsets, lam, idx, hrow, arow, lrow, ll, out):
    cnt = _set_bits(z, b, idx)
    n_cls = hrow.shape[0]
    for c in range(n_cls):
        hrow[c] = 0.0
    _add_rows(hrow, hw, idx, cnt)
    for c in range(n_cls):
        lrow[c] = np.float64(hrow[c] + hb[c])  # float32 logits, as the head's
    _log_softmax_into(lrow, out[b])
    if lam <= 0.0:
        return
    for k in range(arow.shape[0]):
        arow[k] = 0.0
    _add_rows(arow, a, idx, cnt)
    for c in range(n_cls):
        k0, k1 = offsets[c], offsets[c + 1]
        top = -np.inf
        for k in range(k0, k1):
            v = np.float64(arow[k]) + const[k]
            if v > top:
                top = v
        if top == -np.inf:  # no component, or every one impossible
            ll[c] = -np.inf
            continue
        s = 0.0
        for k in range(k0, k1):
            s += np.exp(np.float64(arow[k]) + const[k] - top)
        ll[c] = top + np.log(s)
    _log_softmax_into(ll, lrow)
    for c in range(n_cls):
        out[b, c] += lam * lrow[c]


@njit(cache=True)
def _scores_serial(z, hw, hb, a, const, offsets, lam, out):
    n_cls = hw.shape[1]
    idx = np.empty(z.shape[1] * 64, np.int32)
    hrow = np.empty(n_cls, np.float32)
    arow = np.empty(a.shape[1], np.float32)
    lrow = np.empty(n_cls, np.float64)
    ll = np.empty(n_cls, np.float64)
    for b in range(z.shape[0]):
        _scores_row(z, b, hw, hb, a, const, offsets, lam, idx, hrow, arow, lrow, ll, out)


@njit(cache=True, parallel=True)
def _scores_parallel(z, hw, hb, a, const, offsets, lam, out):
    n_cls = hw.shape[1]
    for b in prange(z.shape[0]):
        idx = np.empty(z.shape[1] * 64, np.int32)
        hrow = np.empty(n_cls, np.float32)
        arow = np.empty(a.shape[1], np.float32)
        lrow = np.empty(n_cls, np.float64)
        ll = np.empty(n_cls, np.float64)
        _scores_row(z, b, hw, hb, a, const, offsets, lam, idx, hrow, arow, lrow, ll, out)


@njit(cache=True)
def _offsets_ok(offsets, k_total):
    """0 first, ``k_total`` last, never decreasing (one call: cheaper than NumPy's)."""
    if offsets[0] != 0 or offsets[offsets.shape[0] - 1] != k_total:
        return False
    for i in range(1, offsets.shape[0]):
        if offsets[i] < offsets[i - 1]:
            return False
    return True


def _check(z_words, head_weight, head_bias, a, const, offsets, n_bits):
    n = check_count(n_bits, "n_bits")
    z = check_words(z_words, "z_words", (2,), n, "(N, W)")
    hw = check_float32(head_weight, "head_weight", (2,), "(D, C)")
    hb = check_float32(head_bias, "head_bias", (1,), "(C,)")
    a = check_float32(a, "a", (2,), "(D, K_total)")
    if hw.shape[0] != n or a.shape[0] != n:
        raise ValueError(f"expected head_weight and a with {n} rows, got {hw.shape} and {a.shape}")
    n_cls = hw.shape[1]
    if hb.shape != (n_cls,):
        raise ValueError(f"expected head_bias of shape ({n_cls},), got {hb.shape}")
    const = np.ascontiguousarray(const, np.float64)
    offsets = np.ascontiguousarray(offsets, np.int64)
    if const.shape != (a.shape[1],):
        raise ValueError(f"expected const of shape ({a.shape[1]},), got {const.shape}")
    if offsets.shape != (n_cls + 1,) or not _offsets_ok(offsets, a.shape[1]):
        raise ValueError(
            f"expected {n_cls + 1} non-decreasing offsets from 0 to {a.shape[1]}, "
            f"got {offsets.tolist()!r:.200}"
        )
    return z, hw, hb, a, const, offsets, n


def combined_scores(
    z_words: np.ndarray,
    head_weight: np.ndarray,
    head_bias: np.ndarray,
    a: np.ndarray,
    const: np.ndarray,
    offsets: np.ndarray,
    n_bits: int,
    gbm_weight: float,
    *,
    threads: int = 1,
) -> np.ndarray:
    """float64 (N, C): ``log_softmax(logits) + gbm_weight * log_softmax(ll)``.

    ``z_words`` (N, n_words(n_bits)) packed {0,1} embeddings; ``head_weight`` float32
    (D, C), ``head_bias`` float32 (C,): ``logits = float32(z @ W) + b``; ``a`` float32
    (D, K_total), ``const`` (K_total,): component ``k`` scores ``z . a[:, k] + const[k]``,
    class ``c`` owns components ``offsets[c]:offsets[c + 1]`` and ``ll[c]`` is their
    logsumexp (-inf for none). ``gbm_weight <= 0`` gives ``log_softmax(logits)``."""
    z, hw, hb, a, const, offsets, _ = _check(
        z_words, head_weight, head_bias, a, const, offsets, n_bits
    )
    threads = check_threads(threads)
    if threads == 1 or z.shape[0] == 1:
        return combined_scores_trusted(z, hw, hb, a, const, offsets, gbm_weight)
    out = np.empty((z.shape[0], hw.shape[1]), np.float64)
    with num_threads(threads):
        _scores_parallel(z, hw, hb, a, const, offsets, float(gbm_weight), out)
    return out


def combined_scores_trusted(
    z_words: np.ndarray,
    head_weight: np.ndarray,
    head_bias: np.ndarray,
    a: np.ndarray,
    const: np.ndarray,
    offsets: np.ndarray,
    gbm_weight: float,
) -> np.ndarray:
    """:func:`combined_scores` with no checks, one thread: for words, a head and tables
    the caller made itself (C-contiguous (N, n_words(D)) uint64 words with clear tail
    bits, as ``Runtime.embed`` makes them; float32 ``head_weight`` (D, C), ``head_bias``
    (C,) and ``a`` (D, K_total); float64 ``const``; int64 ``offsets`` as
    :meth:`edgecl.memory.GBMMemory.likelihood_tables` lays them out). The same scores."""
    out = np.empty((z_words.shape[0], head_weight.shape[1]), np.float64)
    _scores_serial(z_words, head_weight, head_bias, a, const, offsets, float(gbm_weight), out)
    return out


def _log_softmax(v: np.ndarray) -> np.ndarray:
    top = v.max(axis=1, keepdims=True)
    return v - (top + np.log(np.exp(v - top).sum(axis=1, keepdims=True)))


def combined_scores_reference(
    z_words: np.ndarray,
    head_weight: np.ndarray,
    head_bias: np.ndarray,
    a: np.ndarray,
    const: np.ndarray,
    offsets: np.ndarray,
    n_bits: int,
    gbm_weight: float,
) -> np.ndarray:
    """NumPy twin of :func:`combined_scores` (same arguments): the two dense products, then
    a logsumexp per class and the two log-softmaxes, array by array."""
    z, hw, hb, a, const, offsets, n = _check(
        z_words, head_weight, head_bias, a, const, offsets, n_bits
    )
    logits = (binary_float_dense_reference(z, hw, n) + hb).astype(np.float64)
    out = _log_softmax(logits)
    if gbm_weight <= 0:
        return out
    comp = binary_float_dense_reference(z, a, n).astype(np.float64) + const
    ll = np.full((z.shape[0], hw.shape[1]), -np.inf)
    for c in range(hw.shape[1]):
        part = comp[:, offsets[c] : offsets[c + 1]]
        if part.shape[1] == 0:
            continue
        top = part.max(axis=1)
        with np.errstate(invalid="ignore"):
            lse = top + np.log(np.exp(part - top[:, None]).sum(axis=1))
        ll[:, c] = np.where(top == -np.inf, -np.inf, lse)
    return out + gbm_weight * _log_softmax(ll)
