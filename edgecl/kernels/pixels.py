"""uint8 pixels to the network's normalised float32 input through a 256-entry table per
channel: :func:`normalize_uint8` and its NumPy twin. With the table made by
:meth:`edgecl.bundle.specs.InputSpec.normalize_table` (``(v * scale - mean) / std`` in
float32 for every byte value ``v``), the result is bit for bit
``InputSpec.normalize(x.astype(float32))``: one lookup in place of a copy and three passes."""

from __future__ import annotations

import numpy as np
from numba import njit

from edgecl.errors import InvalidTypeError, InvalidValueError

__all__ = ["normalize_uint8", "normalize_uint8_reference"]


@njit(cache=True)
def _lookup(x, table, out):
    """``out[p, c] = table[x[p, c], c]`` over pixels ``p`` (no index wrap, no modulo)."""
    for p in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[p, c] = table[np.intp(x[p, c]), c]


def _check(x: np.ndarray, table: np.ndarray) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise InvalidTypeError(f"expected uint8 pixels, got {getattr(x, 'dtype', type(x))}")
    if not isinstance(table, np.ndarray) or table.dtype != np.float32:
        raise InvalidTypeError(f"expected a float32 table, got {getattr(table, 'dtype', table)}")
    if table.ndim != 2 or table.shape[0] != 256 or x.ndim == 0 or x.shape[-1] != table.shape[1]:
        raise InvalidValueError(
            f"expected a (256, C) table and pixels (..., C), got {table.shape} and {x.shape}"
        )


def normalize_uint8(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[x[..., c], c]`` as float32 of ``x``'s shape (channels last)."""
    _check(x, table)
    out = np.empty(x.shape, np.float32)
    c = table.shape[1]
    _lookup(np.ascontiguousarray(x).reshape(-1, c), np.ascontiguousarray(table), out.reshape(-1, c))
    return out


def normalize_uint8_reference(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`normalize_uint8` (fancy indexing)."""
    _check(x, table)
    return table[x, np.arange(table.shape[1])]
