"""A convolution's geometry: its padding as (top, bottom, left, right) and its output size.
Plain Python (no Numba), so the layer program can check shapes without compiling kernels."""

from __future__ import annotations

import numbers

__all__ = ["conv_out_size", "conv_pads"]


def conv_pads(padding, kh: int, kw: int) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of a binary conv's ``padding``: ``'same'``
    (``k // 2`` every side), ``'valid'`` (none) or four ints >= 0 as given."""
    if isinstance(padding, str):
        if padding == "same":
            return kh // 2, kh // 2, kw // 2, kw // 2
        if padding == "valid":
            return 0, 0, 0, 0
    elif (
        isinstance(padding, (tuple, list))
        and len(padding) == 4
        and all(isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in padding)
        and all(0 <= p < max(kh, kw) for p in padding)
    ):
        return tuple(int(p) for p in padding)  # type: ignore[return-value]
    raise ValueError(
        f"expected padding 'same', 'valid' or (top, bottom, left, right) ints in "
        f"[0, {max(kh, kw)}), got {padding!r}"
    )


def conv_out_size(h: int, w: int, kh: int, kw: int, stride: int, pads) -> tuple[int, int]:
    """(Ho, Wo) of a conv on an h x w input with ``pads`` (top, bottom, left, right)."""
    top, bottom, left, right = pads
    return (h + top + bottom - kh) // stride + 1, (w + left + right - kw) // stride + 1
