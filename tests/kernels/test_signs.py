"""The one-pass sign packer (kernels/signs.py) equals bits.pack_signs bit for bit on odd
lengths, zeros of both signs, infinities and subnormals, and refuses NaN as it does."""

from __future__ import annotations

import numpy as np
import pytest

from edgecl.kernels import pack_float_signs, pack_signs
from edgecl.kernels.signs import pack_float_signs_reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (63,), (64,), (65,), (3, 129), (2, 3, 5, 200), (4, 0)])
def test_equals_the_reference(dtype, shape):
    rng = np.random.default_rng(sum(shape) + 7)
    x = rng.normal(size=shape).astype(dtype)
    flat = x.reshape(-1)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, -1e-45], dtype)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    got = pack_float_signs(x)
    want = pack_float_signs_reference(x)
    assert got.dtype == np.uint64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if shape[-1] % 64:
        assert not (got[..., -1] >> np.uint64(shape[-1] % 64)).any()  # tail bits stay 0


def test_strided_input_and_other_dtypes():
    x = np.random.default_rng(1).normal(size=(6, 130)).astype(np.float32)
    view = x[::2, 1:]  # not contiguous
    np.testing.assert_array_equal(pack_float_signs(view), pack_signs(view))
    ints = np.arange(-70, 70).reshape(2, 70)
    np.testing.assert_array_equal(pack_float_signs(ints), pack_signs(ints))


def test_nan_is_refused_and_nothing_changes():
    x = np.ones((2, 100), np.float32)
    x[1, 77] = np.nan
    keep = x.copy()
    with pytest.raises(ValueError, match="expected finite values"):
        pack_float_signs(x)
    np.testing.assert_array_equal(x, keep)
    with pytest.raises(ValueError, match="scalar"):
        pack_float_signs(np.float32(1.0))
