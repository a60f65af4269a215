"""Bernoulli-mixture (BMM) kernels on packed binary embeddings, NumPy + Numba only.

One EM pass of the GBM paper (gbm-generative-binary-memory, §3.1) over packed
``uint64`` rows ``z`` of ``n_bits`` {0,1} features:

- E-step, eq. 1, in log space:
  ``a[i, k] = log pi_k + sum_j z_ij log mu_kj + (1 - z_ij) log(1 - mu_kj)``
  ``= log pi_k + sum_j log(1 - mu_kj) + sum_{j: z_ij = 1} logit(mu_kj)`` — a bit-select sum.
  ``gamma[i, k] = exp(a[i, k] - logsumexp_l a[i, l])``.
- M-step statistics for eq. 2: ``S[k, j] = sum_i gamma_ik z_ij`` and ``N_k = sum_i gamma_ik``.
- eq. 3, ``ell = sum_i sum_k gamma_ik a[i, k]`` (the paper's stop-rule quantity), and the
  data log-likelihood ``L = sum_i logsumexp_k a[i, k]`` (what EM never decreases).

The fast kernel never unpacks the bits: the bit-select sum is read from a table
``T[b, v, k] = sum of logit(mu_k) over the bits set in byte value v at byte position b``
(one lookup per byte instead of one add per set bit), and the M-step statistics are
accumulated per (byte position, byte value) and expanded to bits once per pass. The loops
run one byte position at a time over all samples, so that position's table stays in L1
(measured in benchmarks/memory.py against a set-bit loop and unpack + BLAS).

``mu`` must already be clipped away from 0 and 1 (the caller owns the clip); ``pi`` may
hold zeros (a dead component gets ``gamma = 0``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels._check import check_words
from edgecl.kernels.bits import unpack_bits
from edgecl.kernels.popcount import popcount64


def _check_words(words: np.ndarray, n_bits: int, what: str = "z") -> np.ndarray:
    """(n, n_words(n_bits)) uint64 words with zero tail bits (:func:`check_words`)."""
    return check_words(np.asarray(words), what, (2,), n_bits, "(n, words)")


def _check_params(mu: np.ndarray, pi: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    pi = np.ascontiguousarray(pi, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[1] != n_bits or mu.shape[0] < 1:
        raise ValueError(f"expected mu of shape (k, {n_bits}) with k >= 1, got {mu.shape}")
    if pi.shape != (mu.shape[0],):
        raise ValueError(f"expected pi of shape ({mu.shape[0]},), got {pi.shape}")
    if not (np.all(mu > 0.0) and np.all(mu < 1.0)):
        raise ValueError("expected mu strictly inside (0, 1) (clip it first), got 0, 1 or NaN")
    if not (np.all(pi >= 0.0) and pi.sum() > 0.0):
        raise ValueError("expected pi >= 0 with a positive sum, got negative, NaN or all zero")
    return mu, pi


@njit(cache=True, inline="always")
def _responsibilities(a, base, per_sample):
    """eq. 1 in log space: ``a[i, k]`` (the bit-select sums) becomes ``gamma[i, k]``;
    returns ``(N_k, ell (eq. 3), loglik)`` and fills ``per_sample`` with logsumexp_k."""
    n = a.shape[0]
    k_count = base.shape[0]
    nk = np.zeros(k_count)
    ell_k = np.empty(k_count)
    ell = 0.0
    loglik = 0.0
    for i in range(n):
        top = -np.inf
        for k in range(k_count):
            a[i, k] += base[k]
            if a[i, k] > top:
                top = a[i, k]
        s = 0.0
        for k in range(k_count):
            diff = a[i, k] - top
            e = np.exp(diff) if diff > -700.0 else 0.0  # exp would underflow to 0
            ell_k[k] = a[i, k]
            a[i, k] = e
            s += e
        lse = top + np.log(s)
        loglik += lse
        per_sample[i] = lse
        inv = 1.0 / s
        for k in range(k_count):
            g = a[i, k] * inv
            if g > 0.0:
                ell += g * ell_k[k]
            a[i, k] = g
            nk[k] += g
    return nk, ell, loglik


@njit(cache=True)
def _em_pass_bits(words, n_bits, logit_t, base, want_stats):
    """:func:`_em_pass` for few samples: walks each sample's set bits (``logit_t`` (D, Kp),
    one vector add of Kp components per set bit) instead of building the byte tables,
    whose cost does not shrink with N (measured: 0.34 ms a pass at N = 100, D = 512,
    K = 8, against ~0.09 ms here, checks included)."""
    n, n_w = words.shape
    kp = logit_t.shape[1]
    k_count = base.shape[0]
    a = np.zeros((n, kp))
    per_sample = np.empty(n)
    # each sample's set bits, found once (E-step) and walked again for the M-step
    bits = np.empty((n, n_bits), np.int64)
    n_set = np.zeros(n, np.int64)
    one = np.uint64(1)
    for i in range(n):
        m = 0
        for w in range(n_w):
            word = words[i, w]
            while word:
                bits[i, m] = w * 64 + np.int64(popcount64((word & (~word + one)) - one))
                word &= word - one
                m += 1
        n_set[i] = m
        ai = a[i]
        for t in range(m):
            lj = logit_t[bits[i, t]]
            for k in range(kp):
                ai[k] += lj[k]
    nk, ell, loglik = _responsibilities(a, base, per_sample)
    stats_t = np.zeros((n_bits, kp))
    if want_stats:
        for i in range(n):
            gi = a[i]
            for t in range(n_set[i]):
                sj = stats_t[bits[i, t]]
                for k in range(kp):
                    sj[k] += gi[k]
    return np.ascontiguousarray(stats_t[:, :k_count].T), nk, ell, loglik, a, per_sample


#: Up to this many samples an E+M pass walks the set bits (:func:`_em_pass_bits`); above
#: it, the byte tables of :func:`_em_pass` (their fixed cost amortised over the samples).
SMALL_N = 512


def _pass(words, n_bits, logit, base, want_stats):
    """One pass by the kernel that suits ``len(words)``."""
    if words.shape[0] <= SMALL_N:
        kp = ((logit.shape[0] + 7) // 8) * 8
        logit_t = np.zeros((n_bits, kp))
        logit_t[:, : logit.shape[0]] = logit.T  # padded components add 0
        return _em_pass_bits(words, int(n_bits), logit_t, base, want_stats)
    return _em_pass(byte_planes(words), int(n_bits), logit, base, want_stats)


@njit(cache=True)
def _em_pass(planes, n_bits, logit, base, want_stats):
    # planes[b, i] is byte b of sample i (the packed words seen as bytes, transposed), so the
    # loops run byte position by byte position over all samples: the table of one position,
    # T[v, k] = sum of logit[k, 8b + t] over the bits t set in byte value v (16 KB at K = 8),
    # stays in L1 while the samples stream by. Components are padded to a multiple of 8
    # (padding adds 0) so the inner loops have a fixed, vectorisable shape.
    n_bytes, n = planes.shape
    k_count, d = logit.shape
    kp = ((k_count + 7) // 8) * 8
    a = np.zeros((n, kp))
    per_sample = np.empty(n)
    tab = np.zeros((256, kp))
    for b in range(n_bytes):
        for v in range(1, 256):
            low = v & (-v)
            t = 0
            while (1 << t) != low:
                t += 1
            j = 8 * b + t
            prev = v & (v - 1)
            for k in range(kp):
                add = logit[k, j] if (j < d and k < k_count) else 0.0
                tab[v, k] = tab[prev, k] + add
        row_b = planes[b]
        for i in range(n):
            v = row_b[i]
            for k in range(kp):
                a[i, k] += tab[v, k]
    nk, ell, loglik = _responsibilities(a, base, per_sample)
    stats = np.zeros((k_count, n_bits))
    if want_stats:
        # S[k, j] = sum_i gamma_ik z_ij: gamma summed per (byte position, byte value), then
        # each bit of the byte collects the sums of the values that have it set.
        acc = np.empty((256, kp))
        for b in range(n_bytes):
            acc[:, :] = 0.0
            row_b = planes[b]
            for i in range(n):
                v = row_b[i]
                for k in range(kp):
                    acc[v, k] += a[i, k]
            for t in range(8):
                j = 8 * b + t
                if j >= n_bits:
                    break
                bit = 1 << t
                for v in range(1, 256):
                    if v & bit:
                        for k in range(k_count):
                            stats[k, j] += acc[v, k]
    return stats, nk, ell, loglik, a, per_sample


def byte_planes(words: np.ndarray) -> np.ndarray:
    """Packed rows (N, W) uint64 -> their bytes transposed, (8W, N) uint8 (little-endian)."""
    return np.ascontiguousarray(words.astype("<u8", copy=False).view(np.uint8).T)


def _log_params(mu: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    log1m = np.log1p(-mu)
    logit = np.log(mu) - log1m
    with np.errstate(divide="ignore"):
        base = np.log(pi) + log1m.sum(axis=1)
    return logit, base


def bmm_em_stats(
    words: np.ndarray, n_bits: int, mu: np.ndarray, pi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One E-step (eq. 1) with the M-step sufficient statistics (eq. 2) and eq. 3.

    Returns ``(S, N_k, ell, loglik)``: ``S[k, j] = sum_i gamma_ik z_ij`` (K, D) float64,
    ``N_k = sum_i gamma_ik`` (K,), ``ell`` = eq. 3 at (mu, pi), ``loglik`` = the data
    log-likelihood ``sum_i log sum_k pi_k p(z_i | mu_k)``. The M-step is then
    ``mu = S / N_k[:, None]``, ``pi = N_k / n``.
    """
    words = _check_words(words, n_bits)
    mu, pi = _check_params(mu, pi, n_bits)
    logit, base = _log_params(mu, pi)
    stats, nk, ell, ll, _, _ = _pass(words, n_bits, logit, base, True)
    return stats, nk, float(ell), float(ll)


def bmm_em_stats_reference(
    words: np.ndarray, n_bits: int, mu: np.ndarray, pi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """NumPy twin of :func:`bmm_em_stats`: unpacks the bits and computes eqs. 1-3 densely."""
    words = _check_words(words, n_bits)
    mu, pi = _check_params(mu, pi, n_bits)
    z = unpack_bits(words, n_bits).astype(np.float64)
    with np.errstate(divide="ignore"):
        a = np.log(pi)[None, :] + z @ np.log(mu).T + (1.0 - z) @ np.log1p(-mu).T
    top = a.max(axis=1, keepdims=True)
    lse = top + np.log(np.exp(a - top).sum(axis=1, keepdims=True))
    gamma = np.exp(a - lse)
    with np.errstate(invalid="ignore"):
        ell = float(np.sum(np.where(gamma > 0, gamma * a, 0.0)))
    return gamma.T @ z, gamma.sum(axis=0), ell, float(lse.sum())


def bmm_responsibilities(
    words: np.ndarray, n_bits: int, mu: np.ndarray, pi: np.ndarray
) -> tuple[np.ndarray, float]:
    """Responsibilities ``gamma`` (N, K) of eq. 1 and the data log-likelihood."""
    words = _check_words(words, n_bits)
    mu, pi = _check_params(mu, pi, n_bits)
    logit, base = _log_params(mu, pi)
    _, _, _, ll, gamma, _ = _pass(words, n_bits, logit, base, False)
    return np.ascontiguousarray(gamma[:, : mu.shape[0]]), float(ll)


def bmm_responsibilities_reference(
    words: np.ndarray, n_bits: int, mu: np.ndarray, pi: np.ndarray
) -> tuple[np.ndarray, float]:
    """NumPy twin of :func:`bmm_responsibilities`."""
    words = _check_words(words, n_bits)
    mu, pi = _check_params(mu, pi, n_bits)
    z = unpack_bits(words, n_bits).astype(np.float64)
    with np.errstate(divide="ignore"):
        a = np.log(pi)[None, :] + z @ np.log(mu).T + (1.0 - z) @ np.log1p(-mu).T
    top = a.max(axis=1, keepdims=True)
    lse = top + np.log(np.exp(a - top).sum(axis=1, keepdims=True))
    return np.exp(a - lse), float(lse.sum())


def bmm_log_likelihood(
    words: np.ndarray, n_bits: int, mu: np.ndarray, pi: np.ndarray
) -> np.ndarray:
    """Per-sample log-likelihood ``log sum_k pi_k p(z_i | mu_k)`` (N,) float64."""
    words = _check_words(words, n_bits)
    mu, pi = _check_params(mu, pi, n_bits)
    logit, base = _log_params(mu, pi)
    return _pass(words, n_bits, logit, base, False)[5]


def bmm_log_likelihood_reference(
    words: np.ndarray, n_bits: int, mu: np.ndarray, pi: np.ndarray
) -> np.ndarray:
    """NumPy twin of :func:`bmm_log_likelihood`."""
    words = _check_words(words, n_bits)
    mu, pi = _check_params(mu, pi, n_bits)
    z = unpack_bits(words, n_bits).astype(np.float64)
    with np.errstate(divide="ignore"):
        a = np.log(pi)[None, :] + z @ np.log(mu).T + (1.0 - z) @ np.log1p(-mu).T
    top = a.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=1, keepdims=True)))[:, 0]


@njit(cache=True)
def _hamming(x, protos):
    n, nw = x.shape
    p = protos.shape[0]
    out = np.empty((n, p), dtype=np.int64)
    for i in range(n):
        for c in range(p):
            s = np.uint64(0)
            for w in range(nw):
                s += popcount64(x[i, w] ^ protos[c, w])
            out[i, c] = np.int64(s)
    return out


def hamming_distances(words: np.ndarray, protos: np.ndarray, n_bits: int) -> np.ndarray:
    """Hamming distances (N, P) ``int64`` between packed rows and packed prototypes."""
    words = _check_words(words, n_bits)
    protos = _check_words(protos, n_bits, "prototypes")
    return _hamming(words, protos)


def hamming_distances_reference(words: np.ndarray, protos: np.ndarray, n_bits: int) -> np.ndarray:
    """NumPy twin of :func:`hamming_distances`."""
    words = _check_words(words, n_bits)
    protos = _check_words(protos, n_bits, "prototypes")
    x = unpack_bits(words, n_bits).astype(np.int64)
    p = unpack_bits(protos, n_bits).astype(np.int64)
    return (x[:, None, :] != p[None, :, :]).sum(axis=2).astype(np.int64)


__all__ = [
    "bmm_em_stats",
    "bmm_log_likelihood",
    "bmm_log_likelihood_reference",
    "bmm_em_stats_reference",
    "bmm_responsibilities",
    "bmm_responsibilities_reference",
    "hamming_distances",
    "hamming_distances_reference",
]
