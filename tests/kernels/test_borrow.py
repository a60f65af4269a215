"""kernels/borrow.py: a borrowed view reads and writes its array's data, in every layout."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from edgecl.kernels.borrow import borrowed


@njit(cache=True)
def _write_last(a, v):
    b = borrowed(a)
    b[-1] = v
    return b.sum(), b.shape, b.strides


def test_a_borrowed_view_is_its_array():
    rows = np.arange(12, dtype=np.uint64).reshape(3, 4)
    for a in (np.arange(7.0), rows, np.arange(10.0)[::3]):
        keep = a.copy()
        total, shape, strides = _write_last(a, a.dtype.type(5))
        keep[-1] = 5
        np.testing.assert_array_equal(a, keep)
        assert total == keep.sum() and shape == a.shape and strides == a.strides


def test_only_arrays_are_borrowed():
    @njit
    def scalar(x):
        return borrowed(x)

    with pytest.raises(TypingError):
        scalar(3.0)
