"""Shared pieces of the class memories: the byte rule, seeds, counts, state arrays.
(The name and packed-words checks are :mod:`edgecl.validate`'s.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from edgecl.errors import BundleError, InvalidTypeError, InvalidValueError, UnknownClassError
from edgecl.kernels.bits import WORD_BITS, n_words
from edgecl.validate import as_generator, check_class_name


def stored_nbytes(bits_per_row: int, rows: int = 1) -> int:
    """THE storage rounding rule of every class memory, stated once.

    A stored block is ``rows`` rows of ``bits_per_row`` bits; each row is padded to whole
    64-bit words (the bit convention of :mod:`edgecl.kernels.bits`). GBM stores one row of
    ``K*D*q`` bits per class (its q-bit prototypes, packed); the latent buffer stores ``E``
    rows of ``D`` bits per class. Scalars beside them (``pi`` as float32, counts as uint32)
    are whole 4-byte values and need no rounding.
    """
    return int(rows) * n_words(int(bits_per_row)) * (WORD_BITS // 8)


def as_rng(seed: Any = None, rng: Any = None) -> np.random.Generator:
    """A Generator from ``seed`` (:func:`edgecl.validate.as_generator`) or ``rng`` (a
    Generator); not both."""
    if seed is not None and rng is not None:
        raise InvalidValueError("expected seed or rng, got both")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise InvalidTypeError(
                f"expected rng as numpy.random.Generator, got {type(rng).__name__}"
            )
        return rng
    return as_generator(seed)


def check_counts(counts: Mapping[str, int], classes: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(counts, Mapping):
        raise InvalidTypeError(
            f"expected counts as a mapping class -> int, got {type(counts).__name__}"
        )
    out: dict[str, int] = {}
    for name, c in counts.items():
        if name not in classes:
            raise UnknownClassError(
                f"expected a stored class, got {name!r} (stored: {list(classes)})"
            )
        if not isinstance(c, (int, np.integer)) or int(c) < 0:
            raise InvalidValueError(f"expected a non-negative int count for {name!r}, got {c!r}")
        out[name] = int(c)
    return out


def check_array(arrays: Mapping[str, np.ndarray], key: str, dtype, shape: tuple) -> np.ndarray:
    """Validate one array of a saved state (used by from_state)."""
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
        check_class_name(name)
        if name not in self._classes:
            raise UnknownClassError(
                f"expected a stored class, got {name!r} (stored: {list(self._classes)})"
            )
        return self._classes[name]
