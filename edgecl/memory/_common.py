"""Shared pieces of the class memories: input checks, the byte rule, seeds, names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecl.kernels.bits import WORD_BITS, WORD_DTYPE, n_words, tail_mask


def stored_nbytes(bits_per_row: int, rows: int = 1) -> int:
    """THE storage rounding rule of every class memory, stated once.

    A stored block is ``rows`` rows of ``bits_per_row`` bits; each row is padded to whole
    64-bit words (the bit convention of :mod:`edgecl.kernels.bits`). GBM stores one row of
    ``K*D*q`` bits per class (its q-bit prototypes, packed); the latent buffer stores ``E``
    rows of ``D`` bits per class. Scalars beside them (``pi`` as float32, counts as uint32)
    are whole 4-byte values and need no rounding.
    """
    return int(rows) * n_words(int(bits_per_row)) * (WORD_BITS // 8)


def check_words(z_words: Any, n_bits: int, *, what: str = "z_words") -> np.ndarray:
    """Validate packed {0,1} embeddings: (N >= 1, n_words(D)) uint64 with zero tail bits.

    Returns a C-contiguous array (a copy when the input was not one; never mutated).
    """
    z = np.asarray(z_words)
    nw = n_words(n_bits)
    if z.dtype != WORD_DTYPE:
        hint = ""
        if np.issubdtype(z.dtype, np.number) or z.dtype == np.bool_:
            if z.size and not np.all((z == 0) | (z == 1)):
                hint = " (and the values are not binary: expected {0,1} embeddings)"
            else:
                hint = "; pack {0,1} data with edgecl.kernels.bits.pack_bits"
        raise TypeError(f"expected {what} as uint64 packed words, got dtype {z.dtype}{hint}")
    if z.ndim != 2 or z.shape[1] != nw:
        raise ValueError(f"expected {what} of shape (n, {nw}) for D={n_bits} bits, got {z.shape}")
    if z.shape[0] == 0:
        raise ValueError(f"expected at least one sample in {what}, got an empty class (0, {nw})")
    if n_bits % WORD_BITS and np.any(z[:, -1] & ~tail_mask(n_bits)):
        raise ValueError(
            f"expected {what} with tail bits past bit {n_bits} zero, got some set "
            "(wrong n_bits, or words not made by pack_bits)"
        )
    return np.ascontiguousarray(z)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"expected a class name as a non-empty str, got {name!r}")
    return name


def as_rng(seed: Any = None, rng: Any = None) -> np.random.Generator:
    """A Generator from ``seed`` (int or None) or ``rng`` (a Generator); not both."""
    if seed is not None and rng is not None:
        raise ValueError("expected seed or rng, got both")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"expected rng as numpy.random.Generator, got {type(rng).__name__}")
        return rng
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(f"expected an int seed, got {type(seed).__name__}")
    return np.random.default_rng(seed)


def check_counts(counts: Mapping[str, int], classes: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(counts, Mapping):
        raise TypeError(f"expected counts as a mapping class -> int, got {type(counts).__name__}")
    out: dict[str, int] = {}
    for name, c in counts.items():
        if name not in classes:
            raise KeyError(f"expected a stored class, got {name!r} (stored: {list(classes)})")
        if not isinstance(c, (int, np.integer)) or int(c) < 0:
            raise ValueError(f"expected a non-negative int count for {name!r}, got {c!r}")
        out[name] = int(c)
    return out


def check_array(arrays: Mapping[str, np.ndarray], key: str, dtype, shape: tuple) -> np.ndarray:
    """Validate one array of a saved state (used by from_state)."""
    from edgecl.errors import BundleError

    if key not in arrays:
        raise BundleError(f"expected array {key!r} in the memory state, got {sorted(arrays)}")
    a = np.asarray(arrays[key])
    if a.dtype != np.dtype(dtype):
        raise BundleError(f"expected {key} of dtype {np.dtype(dtype)}, got {a.dtype}")
    if a.shape != tuple(shape):
        raise BundleError(f"expected {key} of shape {tuple(shape)}, got {a.shape}")
    return np.array(a, copy=True)


class ClassStore:
    """What both class memories share: ``n_bits``, the named classes in insertion order
    (``self._classes``, a dict), membership, ``len`` and the lookup that names what is stored."""

    _n_bits: int
    _classes: dict[str, Any]

    @property
    def n_bits(self) -> int:
        return self._n_bits

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_bits={self._n_bits}, classes={len(self._classes)}, "
            f"nbytes={self.nbytes})"
        )

    def _get(self, name: str) -> Any:
        check_name(name)
        if name not in self._classes:
            raise KeyError(f"expected a stored class, got {name!r} (stored: {list(self._classes)})")
        return self._classes[name]
