"""The checks many parts repeat, stated once (torch-free): positive ints, class names and
packed embedding words. Each raises :class:`~edgecl.errors.InvalidTypeError` (a
``TypeError``) for a value of the wrong kind and :class:`~edgecl.errors.InvalidValueError`
(a ``ValueError``) for a bad value, the message saying what was expected and what came."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgecl.errors import InvalidTypeError, InvalidValueError
from edgecl.kernels.bits import WORD_DTYPE, n_words, tail_bits_clear
from edgecl.kernels.rng import check_seed

__all__ = [
    "MAX_NAME",
    "as_generator",
    "check_class_name",
    "check_class_names",
    "check_words",
    "pos_int",
]

#: The longest class name, in characters.
MAX_NAME = 128

_SEPARATORS = ("/", "\\")


def pos_int(value: Any, what: str, minimum: int = 1) -> int:
    """``value`` as a plain int ``>= minimum`` (bool refused); ``InvalidValueError``
    otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidValueError(f"expected {what} as an int >= {minimum}, got {value!r}")
    return int(value)


def check_class_name(name: object) -> str:
    """A class name: a non-empty ``str`` of at most :data:`MAX_NAME` printable characters,
    with no path separator (names become file and folder names in the CLI's output).

    ``InvalidTypeError`` for a non-str, ``InvalidValueError`` for a bad str.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(f"expected a class name as str, got {type(name).__name__}")
    if (
        not name
        or len(name) > MAX_NAME
        or not name.isprintable()
        or any(s in name for s in _SEPARATORS)
    ):
        shown = repr(name) if len(name) <= 2 * MAX_NAME else f"{name[:MAX_NAME]!r}... "
        raise InvalidValueError(
            f"expected a non-empty class name of at most {MAX_NAME} printable characters "
            f"without '/' or '\\', got {shown} ({len(name)} characters)"
        )
    return name


def check_class_names(names: object, *, count: int | None = None) -> tuple[str, ...]:
    """A non-empty sequence (not a str) of distinct class names, each
    :func:`check_class_name`; with ``count``, exactly that many (one per head row)."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise InvalidTypeError(f"expected a sequence of class names, got {type(names).__name__}")
    out = tuple(check_class_name(name) for name in names)
    if not out:
        raise InvalidValueError("expected at least one class name, got none")
    if count is not None and len(out) != count:
        raise InvalidValueError(f"expected {count} class names (one per head row), got {len(out)}")
    if len(set(out)) != len(out):
        raise InvalidValueError(f"expected distinct class names, got {list(out)!r:.200}")
    return out


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
        raise InvalidTypeError(f"expected {what} as uint64 packed words, got dtype {z.dtype}{hint}")
    if z.ndim != 2 or z.shape[1] != nw:
        raise InvalidValueError(
            f"expected {what} of shape (n, {nw}) for D={n_bits} bits, got {z.shape}"
        )
    if z.shape[0] == 0:
        raise InvalidValueError(
            f"expected at least one sample in {what}, got an empty class (0, {nw})"
        )
    if not tail_bits_clear(z, n_bits):
        raise InvalidValueError(
            f"expected {what} with tail bits past bit {n_bits} zero, got some set "
            "(wrong n_bits, or words not made by pack_bits)"
        )
    return np.ascontiguousarray(z)


def as_generator(seed: object) -> np.random.Generator:
    """A random Generator from ``seed``: None (fresh entropy), an int >= 0, or a Generator
    (used as is)."""
    check_seed(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
