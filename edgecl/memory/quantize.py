"""Uniform q-bit prototype quantization (GBM paper §3.1, "post-EM prototypes quantization").

Levels are MID-POINTS: level ``i`` of ``q`` bits means probability ``(i + 0.5) / 2^q``, never
exactly 0 or 1 (DESIGN.md's lesson: end-point levels make every q = 1 pseudo-exemplar the
same vector). ``q`` is 1..8, or 32 for float32 prototypes (stored as their raw bits).

Storage: the ``K x D`` levels of one class, row-major, each as ``q`` little-endian bits,
concatenated into one bit stream and packed into uint64 words (``n_words(K*D*q)``).
"""

from __future__ import annotations

import numpy as np

from edgecl.errors import InvalidValueError
from edgecl.kernels.bits import PROB_ONE, n_words, pack_bits, unpack_bits

ALLOWED_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 32)


def check_bits(q: int) -> int:
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or int(q) not in ALLOWED_BITS:
        raise InvalidValueError(f"expected prototype bits q in {ALLOWED_BITS}, got {q!r}")
    return int(q)


def quantize(mu: np.ndarray, q: int) -> np.ndarray:
    """Probabilities in [0, 1] -> levels ``floor(mu * 2^q)`` clipped to ``[0, 2^q - 1]``
    (uint8), or float32 for q = 32."""
    q = check_bits(q)
    mu = np.asarray(mu, dtype=np.float64)
    if mu.size and not (np.all(mu >= 0.0) and np.all(mu <= 1.0)):
        raise InvalidValueError("expected probabilities in [0, 1], got values outside or NaN")
    if q == 32:
        return mu.astype(np.float32)
    return np.clip(np.floor(mu * (1 << q)), 0, (1 << q) - 1).astype(np.uint8)


def dequantize(levels: np.ndarray, q: int) -> np.ndarray:
    """Levels -> mid-point probabilities ``(i + 0.5) / 2^q`` (float64); q = 32 passes through."""
    q = check_bits(q)
    if q == 32:
        return np.asarray(levels, dtype=np.float32).astype(np.float64)
    return (np.asarray(levels, dtype=np.float64) + 0.5) / (1 << q)


def thresholds(levels: np.ndarray, q: int) -> np.ndarray:
    """Levels -> 16-bit sampling thresholds (uint32) for
    :func:`edgecl.kernels.sampling.sample_bernoulli_words`; exact for q <= 8."""
    q = check_bits(q)
    if q == 32:
        p = np.clip(np.asarray(levels, dtype=np.float64), 0.0, 1.0)
        return np.rint(p * PROB_ONE).astype(np.uint32)
    return ((2 * np.asarray(levels, dtype=np.uint32) + 1) << (15 - q)).astype(np.uint32)


def pack_levels(levels: np.ndarray, q: int) -> np.ndarray:
    """Levels (K, D) -> one packed bit stream of ``n_words(K*D*q)`` uint64 words."""
    q = check_bits(q)
    flat = np.ascontiguousarray(levels).reshape(-1)
    ints = flat.view(np.uint32) if q == 32 else flat.astype(np.uint32)
    bits = (ints[:, None] >> np.arange(q, dtype=np.uint32)) & np.uint32(1)
    return pack_bits(bits.reshape(-1).astype(np.uint8))


def unpack_levels(words: np.ndarray, k: int, d: int, q: int) -> np.ndarray:
    """Inverse of :func:`pack_levels`."""
    q = check_bits(q)
    total = int(k) * int(d) * q
    if words.shape != (n_words(total),):
        raise InvalidValueError(
            f"expected {n_words(total)} words for K={k}, D={d}, q={q}, got {words.shape}"
        )
    bits = unpack_bits(words, total).reshape(int(k) * int(d), q).astype(np.uint32)
    ints = (bits << np.arange(q, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    if q == 32:
        return ints.view(np.float32).reshape(int(k), int(d))
    return ints.astype(np.uint8).reshape(int(k), int(d))


__all__ = ["ALLOWED_BITS", "dequantize", "pack_levels", "quantize", "thresholds", "unpack_levels"]
