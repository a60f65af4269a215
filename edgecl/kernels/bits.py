"""The bit convention, stated once. Everything that packs or reads bits imports it.

- Words are ``uint64`` (:data:`WORD_DTYPE`), :data:`WORD_BITS` = 64 bits each.
- Bits are packed little-endian inside a word: element ``j`` of a row goes to
  bit ``j % 64`` of word ``j // 64``.
- Sign data: bit 1 means +1, bit 0 means -1; ``sign(0) = +1`` (bit = ``x >= 0``),
  as larq's ``ste_sign``. {0,1} data (Heaviside): the bit is the value.
- Tail bits (past ``n`` in the last word) are 0 in every packed operand, so they
  never count in an XOR-popcount.
- For ±1 vectors of length ``n``: ``dot(a, w) = n - 2 * popcount(a XOR w)``.
- Packing runs along one axis (the innermost: features or channels); that axis
  becomes ``n_words(n)`` long.
"""

from __future__ import annotations

import numpy as np

WORD_DTYPE = np.dtype(np.uint64)
WORD_BITS = 64
#: A Bernoulli probability of 1 in the 16-bit fixed point of sampling thresholds
#: (:mod:`edgecl.kernels.sampling`, :func:`edgecl.memory.quantize.thresholds`).
PROB_ONE = 65536


def n_words(n: int) -> int:
    """Number of 64-bit words that hold ``n`` bits."""
    n = int(n)
    if n < 0:
        raise ValueError(f"expected a non-negative bit count, got {n}")
    return (n + WORD_BITS - 1) // WORD_BITS


def tail_mask(n: int) -> np.uint64:
    """Mask of the bits of the last word that hold data (all ones when ``n % 64 == 0``)."""
    r = int(n) % WORD_BITS
    if r == 0:
        return np.uint64(0xFFFFFFFFFFFFFFFF)
    return np.uint64((1 << r) - 1)


def tail_bits_clear(words: np.ndarray, n: int) -> bool:
    """The tail-bit rule: every bit past bit ``n`` in the last word along the last axis of
    ``words`` (uint64) is zero. (A set tail bit would change every XOR-popcount.)"""
    if int(n) % WORD_BITS == 0 or words.size == 0:
        return True
    return not np.any(words[..., -1] & ~tail_mask(n))


def _pack_last_axis(bits: np.ndarray) -> np.ndarray:
    n = bits.shape[-1]
    nw = n_words(n)
    pad = nw * WORD_BITS - n
    b = bits.astype(np.uint8, copy=False)
    if pad:
        b = np.concatenate([b, np.zeros(b.shape[:-1] + (pad,), np.uint8)], axis=-1)
    packed = np.packbits(b, axis=-1, bitorder="little")  # (..., nw * 8) bytes
    words = np.ascontiguousarray(packed).view("<u8")
    return words.astype(WORD_DTYPE, copy=False).reshape(bits.shape[:-1] + (nw,))


def pack_bits(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pack boolean or {0,1} data into ``uint64`` words along ``axis``.

    Raises ``ValueError`` for values other than 0 and 1.
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("expected an array with at least one axis, got a scalar")
    if x.dtype != np.bool_:
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise TypeError(f"expected boolean or {{0,1}} numeric data, got dtype {x.dtype}")
        if x.size and not np.all((x == 0) | (x == 1)):
            raise ValueError("expected only 0 and 1 values for pack_bits; use pack_signs for ±1")
    moved = np.moveaxis(x != 0, axis, -1)
    return np.moveaxis(_pack_last_axis(moved), -1, axis)


def pack_signs(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pack the signs of real data along ``axis``: bit = ``x >= 0`` (sign(0) = +1).

    NaN is refused (its sign is undefined).
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("expected an array with at least one axis, got a scalar")
    if not (
        np.issubdtype(x.dtype, np.integer)
        or np.issubdtype(x.dtype, np.floating)
        or x.dtype == np.bool_
    ):
        raise TypeError(f"expected real numeric data, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError("expected finite values for pack_signs, got NaN")
    moved = np.moveaxis(x >= 0, axis, -1)
    return np.moveaxis(_pack_last_axis(moved), -1, axis)


def unpack_bits(words: np.ndarray, n: int, axis: int = -1) -> np.ndarray:
    """Unpack ``uint64`` words along ``axis`` into ``n`` {0,1} ``uint8`` values."""
    words = np.asarray(words)
    if words.dtype != WORD_DTYPE:
        raise TypeError(f"expected uint64 words, got dtype {words.dtype}")
    if words.ndim == 0:
        raise ValueError("expected an array with at least one axis, got a scalar")
    moved = np.moveaxis(words, axis, -1)
    if moved.shape[-1] != n_words(n):
        raise ValueError(
            f"expected {n_words(n)} words for n={n} bits along axis {axis}, got {moved.shape[-1]}"
        )
    as_bytes = np.ascontiguousarray(moved).astype("<u8", copy=False).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n]
    return np.moveaxis(bits, -1, axis)


def signs_from_bits(bits: np.ndarray) -> np.ndarray:
    """Map {0,1} bits to ±1 ``int8`` values (1 -> +1, 0 -> -1)."""
    return (np.asarray(bits, dtype=np.int8) * 2 - 1).astype(np.int8)


__all__ = [
    "PROB_ONE",
    "WORD_BITS",
    "WORD_DTYPE",
    "n_words",
    "pack_bits",
    "pack_signs",
    "signs_from_bits",
    "tail_bits_clear",
    "tail_mask",
    "unpack_bits",
]
