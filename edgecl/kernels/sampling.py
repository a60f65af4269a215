"""Bernoulli sampling straight into packed words, NumPy + Numba only.

``sample_bernoulli_words(thresholds, rows, n_bits, seed)`` draws, for output row ``m``,
bit ``j`` = 1 with probability ``thresholds[rows[m], j] / 65536`` (GBM paper §3.2:
a pseudo-exemplar is a realisation of the Bernoulli process of the chosen prototype).
Probabilities are 16-bit fixed point: ``thresholds`` are ``uint32`` in ``[0, 65536]``;
the mid-point levels ``(i + 0.5) / 2^q`` of q <= 15 bit prototypes are exact.

Random numbers come from SplitMix64 (Steele et al. 2014), one stream per output row
seeded from ``(seed, m)``, each 64-bit draw giving four 16-bit uniforms — a pure
function of its arguments (no hidden global state), bit-identical in the NumPy
``_reference`` twin. Tail bits past ``n_bits`` are zero.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.kernels.bits import PROB_ONE, WORD_BITS, WORD_DTYPE, n_words

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ROW = np.uint64(0xD1B54A32D192ED03)


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _sample(thresholds, rows, n_bits, seed):
    # Counter-based: draw t of row m is mix(state_m + (t + 1) * golden), so the 16 draws of
    # a word are independent and the loop is branch-free (LLVM vectorises it).
    m_count = rows.shape[0]
    nw = (n_bits + 63) // 64
    out = np.zeros((m_count, nw), dtype=np.uint64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    for m in range(m_count):
        r = rows[m]
        state = _mix(seed + np.uint64(m) * np.uint64(0xD1B54A32D192ED03))
        for w in range(nw):
            acc = np.uint64(0)
            j0 = w * 64
            if j0 + 64 <= n_bits:
                for d in range(16):
                    rnd = _mix(state + np.uint64(w * 16 + d + 1) * golden)
                    for lane in range(4):
                        u = np.uint32((rnd >> np.uint64(16 * lane)) & np.uint64(0xFFFF))
                        bit = np.uint64(u < thresholds[r, j0 + 4 * d + lane])
                        acc |= bit << np.uint64(4 * d + lane)
            else:
                for jj in range(n_bits - j0):
                    d = jj >> 2
                    lane = jj & 3
                    rnd = _mix(state + np.uint64(w * 16 + d + 1) * golden)
                    u = np.uint32((rnd >> np.uint64(16 * lane)) & np.uint64(0xFFFF))
                    bit = np.uint64(u < thresholds[r, j0 + jj])
                    acc |= bit << np.uint64(jj)
            out[m, w] = acc
    return out


def _check(thresholds: np.ndarray, rows: np.ndarray, n_bits: int):
    thresholds = np.asarray(thresholds)
    if thresholds.dtype != np.uint32:
        raise TypeError(f"expected uint32 thresholds, got dtype {thresholds.dtype}")
    if thresholds.ndim != 2 or thresholds.shape[1] != n_bits:
        raise ValueError(f"expected thresholds of shape (p, {n_bits}), got {thresholds.shape}")
    if thresholds.size and thresholds.max() > PROB_ONE:
        raise ValueError(f"expected thresholds <= {PROB_ONE}, got {thresholds.max()}")
    rows = np.asarray(rows)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"expected a 1-D integer array of rows, got {rows.dtype} {rows.shape}")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= thresholds.shape[0]):
        raise ValueError(
            f"expected rows in [0, {thresholds.shape[0]}), got [{rows.min()}, {rows.max()}]"
        )
    return np.ascontiguousarray(thresholds), np.ascontiguousarray(rows)


def sample_bernoulli_words(
    thresholds: np.ndarray, rows: np.ndarray, n_bits: int, seed: int
) -> np.ndarray:
    """Packed Bernoulli draws (M, n_words(n_bits)) ``uint64``; row m uses
    ``thresholds[rows[m]]``."""
    n_bits = int(n_bits)
    thresholds, rows = _check(thresholds, rows, n_bits)
    return _sample(thresholds, rows, n_bits, np.uint64(int(seed) % (1 << 64)))


def _mix_ref(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def sample_bernoulli_words_reference(
    thresholds: np.ndarray, rows: np.ndarray, n_bits: int, seed: int
) -> np.ndarray:
    """NumPy twin of :func:`sample_bernoulli_words` (the same SplitMix64 streams, bit-exact)."""
    n_bits = int(n_bits)
    thresholds, rows = _check(thresholds, rows, n_bits)
    m_count = rows.shape[0]
    seed = np.uint64(int(seed) % (1 << 64))
    with np.errstate(over="ignore"):
        state = _mix_ref(seed + np.arange(m_count, dtype=np.uint64) * _ROW)
        n_draws = (n_bits + 3) // 4
        steps = np.arange(1, n_draws + 1, dtype=np.uint64) * _GOLDEN
        rnd = _mix_ref(state[:, None] + steps[None, :])  # (M, n_draws)
    lanes = (rnd[:, :, None] >> (np.uint64(16) * np.arange(4, dtype=np.uint64))) & np.uint64(0xFFFF)
    u = lanes.reshape(m_count, n_draws * 4)[:, :n_bits].astype(np.uint32)
    bits = u < thresholds[rows]
    padded = np.zeros((m_count, n_words(n_bits) * WORD_BITS), dtype=np.uint8)
    padded[:, :n_bits] = bits
    packed = np.packbits(padded, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(WORD_DTYPE).reshape(m_count, -1)


__all__ = ["PROB_ONE", "sample_bernoulli_words", "sample_bernoulli_words_reference"]
