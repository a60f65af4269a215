"""The small checks of a manifest (the layer program's entries, and the bundle's other
sections, :mod:`edgecl.bundle.manifest` and :mod:`edgecl.bundle.specs`); each raises
:class:`~edgecl.errors.BundleError` saying what was expected and what came."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgecl.errors import BundleError

__all__ = ["ArrayLike", "ArraySpecs", "array_shape", "need", "pos_int", "shape_list"]

#: An array as the checks see it: the array itself, its ``(shape, dtype.str)``, or its
#: entry in a manifest's ``arrays`` table (``{"shape": [...], "dtype": "<f4", ...}``).
ArrayLike = Any
#: ``{array name: (shape, dtype.str)}``: what validation knows of a bundle's arrays
#: (from the arrays themselves, or from the manifest's ``arrays`` table before reading).
ArraySpecs = Mapping[str, tuple[tuple[int, ...], str]]


def need(cond: object, message: str) -> None:
    """Raise :class:`BundleError` with ``message`` unless ``cond`` holds."""
    if not cond:
        raise BundleError(message)


def pos_int(v: object, what: str, minimum: int = 1) -> int:
    """``v`` as an int >= ``minimum`` (bool refused)."""
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= minimum
    need(ok, f"{what}: expected an integer >= {minimum}, got {v!r}")
    return v  # type: ignore[return-value]


def shape_list(v: object, what: str) -> tuple[int, ...]:
    """A manifest shape: ``[F]`` or ``[H, W, C]`` of positive ints."""
    need(isinstance(v, list) and len(v) in (1, 3), f"{what}: expected [F] or [H, W, C], got {v!r}")
    return tuple(pos_int(s, what) for s in v)  # type: ignore[union-attr]


def array_shape(
    arrays: Mapping[str, ArrayLike], ref: object, what: str, dtype: str, ndim: int | None = None
) -> tuple[int, ...]:
    """The shape of the array ``ref`` names, after checking it exists with ``dtype`` (and
    ``ndim`` axes)."""
    need(isinstance(ref, str) and ref in arrays, f"{what}: expected an array name, got {ref!r}")
    a = arrays[ref]  # type: ignore[index]
    if isinstance(a, tuple):
        shape, dt = tuple(a[0]), a[1]
    elif isinstance(a, Mapping):
        shape, dt = tuple(a["shape"]), a["dtype"]
    else:
        shape, dt = tuple(a.shape), a.dtype.str
    need(dt == dtype, f"{what} ({ref}): expected dtype {dtype}, got {dt}")
    need(ndim is None or len(shape) == ndim, f"{what} ({ref}): expected {ndim} axes, got {shape}")
    return shape
