import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecl.kernels import n_words, pack_bits, pack_signs, tail_mask, unpack_bits

SIZES = [1, 63, 64, 65, 127, 1000]


@pytest.mark.parametrize("n", SIZES)
def test_round_trip_and_tail_zero(n):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 2, size=(3, n), dtype=np.uint8)
    w = pack_bits(x)
    assert w.dtype == np.uint64 and w.shape == (3, n_words(n))
    np.testing.assert_array_equal(unpack_bits(w, n), x)
    assert not np.any(w[:, -1] & ~tail_mask(n))


def test_little_endian_order():
    x = np.zeros(70, np.uint8)
    x[0] = 1
    x[65] = 1
    w = pack_bits(x)
    assert w[0] == 1 and w[1] == 2


def test_pack_signs_zero_is_plus_one():
    w = pack_signs(np.array([-1.0, 0.0, 2.0, -0.0]))
    # -0.0 >= 0 is True: sign(-0) = +1 as sign(0)
    assert int(w[0]) == 0b1110


def test_pack_along_other_axis():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(70, 5), dtype=np.uint8)
    w = pack_bits(x, axis=0)
    assert w.shape == (2, 5)
    np.testing.assert_array_equal(unpack_bits(w, 70, axis=0), x)


def test_bad_input():
    with pytest.raises(ValueError, match="0 and 1"):
        pack_bits(np.array([0, 2]))
    with pytest.raises(TypeError):
        pack_bits(np.array(["a"]))
    with pytest.raises(ValueError, match="NaN"):
        pack_signs(np.array([np.nan]))
    with pytest.raises(ValueError, match="expected 2 words"):
        unpack_bits(np.zeros(1, np.uint64), 70)
    with pytest.raises(TypeError, match="uint64"):
        unpack_bits(np.zeros(2, np.int64), 70)
    with pytest.raises(ValueError):
        n_words(-1)


@given(st.lists(st.booleans(), min_size=1, max_size=300))
def test_hypothesis_round_trip(bits):
    x = np.array(bits, dtype=np.uint8)
    np.testing.assert_array_equal(unpack_bits(pack_bits(x), x.size), x)
