import numpy as np
import pytest

from edgecl.kernels import (
    n_words,
    tail_mask,
    threshold,
    threshold_float,
    threshold_float_reference,
    threshold_reference,
    unpack_bits,
)

SIZES = [1, 63, 64, 65, 127, 1000]


@pytest.mark.parametrize("c", SIZES)
@pytest.mark.parametrize("lead", [(1,), (5,), (2, 3, 4)])
def test_int_matches_reference_and_tail_zero(c, lead):
    rng = np.random.default_rng(c + len(lead))
    acc = rng.integers(-20, 21, size=lead + (c,), dtype=np.int32)
    thr = rng.integers(-5, 6, size=c).astype(np.int32)
    thr[::7] = acc.reshape(-1, c)[0, ::7]  # equality hits both directions
    flip = rng.random(c) < 0.5
    got = threshold(acc, thr, flip)
    assert got.dtype == np.uint64 and got.shape == lead + (n_words(c),)
    np.testing.assert_array_equal(got, threshold_reference(acc, thr, flip))
    assert not np.any(got[..., -1] & ~tail_mask(c))


def test_rule_by_hand():
    acc = np.array([[3, 3, 3, 3]], np.int32)
    thr = np.array([3, 4, 3, 2], np.int32)
    flip = np.array([False, False, True, True])
    bits = unpack_bits(threshold(acc, thr, flip), 4)
    # 3>=3, 3>=4 no, 3<=3, 3<=2 no
    np.testing.assert_array_equal(bits, [[1, 0, 1, 0]])


def test_extreme_thresholds_make_constant_channels():
    i32 = np.iinfo(np.int32)
    acc = np.array([[i32.min, 0, i32.max]] * 2, np.int32)
    thr = np.array([i32.min, i32.max, i32.max], np.int64)
    flip = np.array([False, False, True])
    bits = unpack_bits(threshold(acc, thr, flip), 3)
    np.testing.assert_array_equal(bits, [[1, 0, 1]] * 2)


@pytest.mark.parametrize("c", SIZES)
def test_float_matches_reference(c):
    rng = np.random.default_rng(c)
    y = rng.standard_normal((4, 3, c)).astype(np.float32)
    thr = rng.standard_normal(c).astype(np.float32)
    thr[0] = y[0, 0, 0]
    if c > 2:
        thr[1:3] = [np.inf, -np.inf]
    flip = rng.random(c) < 0.5
    got = threshold_float(y, thr, flip)
    np.testing.assert_array_equal(got, threshold_float_reference(y, thr, flip))
    assert not np.any(got[..., -1] & ~tail_mask(c))


def test_bad_input():
    acc = np.zeros((2, 5), np.int32)
    thr = np.zeros(5, np.int32)
    flip = np.zeros(5, bool)
    with pytest.raises(TypeError, match="int32 acc"):
        threshold(acc.astype(np.int64), thr, flip)
    with pytest.raises(ValueError, match=r"thresholds of shape \(5,\)"):
        threshold(acc, thr[:4], flip)
    with pytest.raises(ValueError, match=r"flip of shape \(5,\)"):
        threshold(acc, thr, flip[:3])
    with pytest.raises(TypeError, match="bool flip"):
        threshold(acc, thr, flip.astype(np.int8))
    with pytest.raises(TypeError, match="integer thresholds"):
        threshold(acc, thr.astype(np.float32), flip)
    with pytest.raises(ValueError, match="int32 range"):
        threshold(acc, thr.astype(np.int64) + 2**40, flip)
    with pytest.raises(TypeError, match="float32 y"):
        threshold_float(acc, thr.astype(np.float32), flip)
    with pytest.raises(TypeError, match="float32 thresholds"):
        threshold_float(acc.astype(np.float32), thr.astype(np.float64), flip)
    with pytest.raises(ValueError, match="NaN"):
        threshold_float(acc.astype(np.float32), np.full(5, np.nan, np.float32), flip)
