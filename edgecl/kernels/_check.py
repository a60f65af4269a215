"""Boundary checks shared by the kernel wrappers (plain Python, run before any Numba core).

Every message says what was expected and what came. A failed check changes nothing;
arrays that pass are returned C-contiguous (a copy only when the caller's is not).
"""

from __future__ import annotations

import numbers

import numpy as np

from edgecl.kernels.bits import WORD_BITS, WORD_DTYPE, tail_bits_clear


def check_count(n: object, name: str = "n", minimum: int = 1) -> int:
    """An integer count ``>= minimum`` (bools refused)."""
    if type(n) is int and n >= minimum:  # the common case, without the ABC check
        return n
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"expected an integer {name}, got {type(n).__name__}")
    n = int(n)
    if n < minimum:
        raise ValueError(f"expected {name} >= {minimum}, got {n}")
    return n


def check_array(a: object, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"expected {name} as a numpy array, got {type(a).__name__}")
    return a


def check_words(
    a: object, name: str, ndims: tuple[int, ...], n: int | None = None, axes: str = ""
) -> np.ndarray:
    """Packed ``uint64`` words with one of ``ndims`` axes; the last axis holds ``n_words(n)``.

    Tail bits past ``n`` in the last word must be zero (the bit convention): a set tail
    bit would silently change every XOR-popcount, so it is refused here.
    """
    a = check_array(a, name)
    if a.dtype != WORD_DTYPE:
        raise TypeError(f"expected uint64 words for {name}, got dtype {a.dtype}")
    if a.ndim not in ndims:
        want = " or ".join(str(d) for d in ndims)
        extra = f" {axes}" if axes else ""
        raise ValueError(f"expected {name} with {want} axes{extra}, got shape {a.shape}")
    if n is not None:
        nw = (n + WORD_BITS - 1) // WORD_BITS  # n_words(n), n already checked
        if a.shape[-1] != nw:
            raise ValueError(
                f"expected {nw} words along the last axis of {name} for n={n} bits, "
                f"got {a.shape[-1]} (shape {a.shape})"
            )
        if not tail_bits_clear(a, n):
            raise ValueError(f"expected zero tail bits past bit {n} in {name}, got set bits")
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a


def check_float32(a: object, name: str, ndims: tuple[int, ...], axes: str = "") -> np.ndarray:
    a = check_array(a, name)
    if a.dtype != np.float32:
        raise TypeError(f"expected float32 {name}, got dtype {a.dtype}")
    if a.ndim not in ndims:
        want = " or ".join(str(d) for d in ndims)
        extra = f" {axes}" if axes else ""
        raise ValueError(f"expected {name} with {want} axes{extra}, got shape {a.shape}")
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a
